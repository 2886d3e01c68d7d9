"""Quality table of issue #21: LQ-LoRA and QVGen against their baselines, mean of 3 seeds, one script.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_quant_table.py --out docs/img/nn_quant_table.json

Part 1 (LQ-LoRA), on the zoo's digits MLP (``digits_classifier``; fc1 and fc2 quantized, the head
stays full precision) and an MLPCTR on ``synthetic_ctr`` (its three hidden Linears quantized), at
4, 3 and 2 bits NF, group 64 (4.25 / 3.25 / 2.25 stored bits per weight):

* plain: ``W -> quant(W)``, no training;
* LQ: ``compress(model, "lq", rank=8, bits=b)``, no training;
* QLoRA-style: ``quant(W)`` frozen plus LoRA r8 fine-tuned;
* LQ-LoRA: ``adapt(model, "lq_lora", rank=8, bits=b)`` fine-tuned (same trainable count as QLoRA);
* LQ ILP: ``compress(model, "lq", rank=8, budget_bits=b + 0.25)`` (bits {2,3,4,8} x groups {32,64,128});
* LQ Fisher: ``compress(model, "lq", rank=8, bits=b, fisher=diagonal_fisher(...))`` (mean squared
  minibatch gradients of the training loss: 43 batches of 32 digits, 20 batches of 1024 CTR rows).

Part 2 (QVGen), digits MLP with fc1, fc2 and head fake-quantized (INT, group 64) at W4, W3 and W2:
plain QAT (STE) against ``QATWithLowRank`` (Phi rank 16, halved per stage) with the same steps,
optimizer and learning rate; the final QVGen model has no Phi.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

RANK = 8
GROUP = 64
# the issue asks for 4 and 3 bits; 2 bits is added because the digits MLP barely notices 3
BITS = (4, 3, 2)


def _quantize_layers(model, names, bits):
    from lowrank.nn.quant import quantize

    with torch.no_grad():
        for name in names:
            layer = model.get_submodule(name)
            layer.weight.copy_(quantize(layer.weight, bits, GROUP, "nf"))
    return model


def _weight_error(model, small, names):
    from lowrank.nn.quant import LQLinear

    total = 0.0
    for name in names:
        layer = small.get_submodule(name)
        merged = layer.merged().weight if isinstance(layer, LQLinear) else layer.weight
        total += float(((model.get_submodule(name).weight - merged) ** 2).sum().detach())
    return total


def _lq_rows(model, names, score, finetune, bits, fisher_data):
    from lowrank.nn import adapt, compress
    from lowrank.nn.quant import diagonal_fisher

    out = {}
    out["plain"] = score(_quantize_layers(copy.deepcopy(model), names, bits))
    lq, _ = compress(model, "lq", rank=RANK, bits=bits, targets=names)
    out["LQ"] = score(lq)
    qlora = _quantize_layers(copy.deepcopy(model), names, bits)
    adapter = adapt(qlora, "lora", targets=names, rank=RANK, rng=0)
    out["trainable"] = adapter.num_trainable
    finetune(qlora, adapter)
    out["QLoRA-style"] = score(qlora)
    lql = copy.deepcopy(model)
    adapter = adapt(lql, "lq_lora", targets=names, rank=RANK, bits=bits, group_size=GROUP, rng=0)
    assert adapter.num_trainable == out["trainable"]
    finetune(lql, adapter)
    out["LQ-LoRA"] = score(lql)
    ilp, _ = compress(model, "lq", rank=RANK, budget_bits=bits + 16 / GROUP, targets=names)
    out["LQ ILP"] = score(ilp)
    batches, loss_fn = fisher_data
    fisher = diagonal_fisher(model, batches, loss_fn, names)
    weighted, _ = compress(model, "lq", rank=RANK, bits=bits, targets=names, fisher=fisher)
    out["LQ Fisher"] = score(weighted)
    out["err LQ"] = _weight_error(model, lq, names)
    out["err LQ ILP"] = _weight_error(model, ilp, names)
    out["ILP bits"] = {n: ilp.get_submodule(n).config.bits for n in names}
    return out


def digits_lq(seed, bits, epochs):
    from lowrank.nn.zoo import accuracy, digits_classifier, fit_classifier

    task = digits_classifier(seed)
    names = ["fc1", "fc2"]

    def finetune(model, adapter):
        fit_classifier(model, task.train, epochs=epochs, lr=1e-3, params=adapter.trainable_parameters(), rng=seed)

    X, y = task.train
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, len(X), 32)]
    fisher_data = (batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]))
    out = _lq_rows(task.model, names, lambda m: accuracy(m, task.test), finetune, bits, fisher_data)
    out["full precision"] = accuracy(task.model, task.test)
    return out


_CTR = {}


def _ctr_task(seed):
    if seed not in _CTR:
        from lowrank.ctr import CTRTrainer, MLPCTR
        from lowrank.datasets import synthetic_ctr

        data = synthetic_ctr(30_000, n_categorical=26, cardinality=300, rng=seed)
        train, valid, test = data.split((0.8, 0.05, 0.15), rng=seed)
        torch.manual_seed(seed)
        model = MLPCTR(data.cardinalities, embedding_dim=16, hidden=(256, 128, 64))
        CTRTrainer(max_epochs=3, lr=3e-3, batch_size=2048, random_state=seed).fit(model, train, valid)
        _CTR[seed] = (model.eval(), train, valid, test)
    return _CTR[seed]


def ctr_lq(seed, bits, epochs):
    from lowrank.ctr import CTRTrainer, evaluate_ctr

    model, train, valid, test = _ctr_task(seed)
    names = ["mlp.0", "mlp.2", "mlp.4"]

    def finetune(m, adapter):
        CTRTrainer(max_epochs=epochs, lr=1e-3, batch_size=2048, random_state=seed).fit(m, train, valid)

    d, c, y = (torch.as_tensor(train.dense, dtype=torch.float32), torch.as_tensor(train.categorical),
               torch.as_tensor(train.labels, dtype=torch.float32))
    batches = [(d[i:i + 1024], c[i:i + 1024], y[i:i + 1024]) for i in range(0, 20 * 1024, 1024)]
    fisher_data = (batches, lambda m, b: F.binary_cross_entropy_with_logits(m(b[0], b[1]), b[2]))
    out = _lq_rows(model, names, lambda m: evaluate_ctr(m.eval(), test)["auc"], finetune, bits, fisher_data)
    out["full precision"] = evaluate_ctr(model, test)["auc"]
    return out


def digits_qat(seed, bits, epochs, rank):
    from lowrank.nn import QATWithLowRank
    from lowrank.nn.quant import QuantLayer
    from lowrank.nn.zoo import accuracy, digits_classifier

    task = digits_classifier(seed)
    X, y = task.train
    steps_per_epoch = -(-len(X) // 32)
    total = epochs * steps_per_epoch
    model = task.model
    qat = QATWithLowRank(model, total_steps=total, bits=bits, group_size=GROUP, kind="int", rank=rank,
                         targets=["fc1", "fc2", "head"])
    opt = torch.optim.Adam(qat.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    start_acc = accuracy(model, task.test)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
            qat.step(opt)
    final = qat.finalize()
    assert all(isinstance(final.get_submodule(n), QuantLayer) for n in ("fc1", "fc2", "head"))
    return {"start": start_acc, "final": accuracy(final, task.test), "full precision": task.info["base_metric"]}


def _mean(runs, key):
    return float(np.mean([r[key] for r in runs]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (LoRA / LQ-LoRA)")
    parser.add_argument("--qat-epochs", type=int, default=10)
    parser.add_argument("--skip-ctr", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    result = {"seeds": seeds, "lq": {}, "qat": {}}
    tasks = [("digits MLP (accuracy)", digits_lq, args.epochs)]
    if not args.skip_ctr:
        tasks.append(("MLPCTR synthetic_ctr (AUC)", ctr_lq, 2))
    keys = ["full precision", "plain", "LQ", "LQ Fisher", "QLoRA-style", "LQ-LoRA", "LQ ILP", "err LQ", "err LQ ILP"]
    for label, fn, epochs in tasks:
        for bits in BITS:
            t0 = time.perf_counter()
            runs = [fn(s, bits, epochs) for s in seeds]
            row = {k: _mean(runs, k) for k in keys}
            row["ILP bits"] = [r["ILP bits"] for r in runs]
            row["trainable"] = runs[0]["trainable"]
            row["per seed"] = runs
            row["seconds"] = time.perf_counter() - t0
            result["lq"][f"{label} @ {bits} bits"] = row
            print(f"{label} @ {bits} bits: " + ", ".join(f"{k} {row[k]:.4f}" for k in keys)
                  + f", trainable {row['trainable']}, ILP bits {row['ILP bits']}, {row['seconds']:.0f}s", flush=True)
    for bits in BITS:
        for label, rank in (("plain QAT", 0), ("QVGen", 16)):
            t0 = time.perf_counter()
            runs = [digits_qat(s, bits, args.qat_epochs, rank) for s in seeds]
            row = {k: _mean(runs, k) for k in ("start", "final", "full precision")}
            row["per seed"] = [r["final"] for r in runs]
            row["seconds"] = time.perf_counter() - t0
            result["qat"][f"W{bits} {label}"] = row
            print(f"digits MLP W{bits} {label}: start {row['start']:.4f} final {row['final']:.4f} "
                  f"(full precision {row['full precision']:.4f}) per seed {row['per seed']}, {row['seconds']:.0f}s",
                  flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
