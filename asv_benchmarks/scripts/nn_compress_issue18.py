"""Quality table of the one-shot compressors of issue 18 at equal parameters (mean of 3 seeds).

svd (LORD), afm, fwsvd, welore and uniform-ratio SVD (WeLore's baseline) and cospadi on the
zoo's digits MLP (``digits_classifier``: 64-256-256-10, targets fc1 and fc2) at 2x, 3x, 4x and 8x
compression of the targets' parameters. Every method gets the same parameter allowance:
svd/afm/fwsvd/welore through ``budget=1/ratio``, uniform SVD and cospadi through per-layer
ranks/atoms chosen to fit it. Reports test accuracy and test cross-entropy. One thread.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_compress_issue18.py [--seeds 3] [--out FILE.json]
    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_compress_issue18.py --finetune   # LRC-only vs full
    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_compress_issue18.py --model conv  # the shapes ConvNet
      (conv1-3 and fc; no cospadi: it handles Linear layers only)
    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_compress_issue18.py --model ctr   # MLPCTR: AUC / logloss
"""

import argparse
import json
import math
import time

import torch

from lowrank.nn import compress
from lowrank.nn.zoo import digits_classifier

TARGETS = ["fc1", "fc2"]
CONV_TARGETS = ["conv1", "conv2", "conv3", "fc"]
CTR_TARGETS = ["mlp.0", "mlp.2", "mlp.4"]
RATIOS = (2, 3, 4, 8)


def _dense(layer):
    return sum(p.numel() for p in layer.parameters())


def uniform_ranks(model, ratio, targets=TARGETS):
    """Per layer the largest SVD rank keeping at most 1/ratio of the layer's parameters."""
    from lowrank.nn.compression._ranks import rank_cost

    ranks = {}
    for name in targets:
        unit, fixed, dense = rank_cost(model.get_submodule(name), "params")
        ranks[name] = max(1, int((dense / ratio - fixed) // unit))
    return ranks


def load_conv(seed):
    """The zoo ConvNet of shapes_transfer with its pretrained shape head; calibration: the 200
    transfer-split images with their shape labels; test: the 1000 source test images."""
    from lowrank.nn.zoo import shapes_transfer
    from lowrank.nn.zoo.shapes import FACTOR_NAMES

    task = shapes_transfer(seed)
    model = task.model
    model.head = task.info["source_head"]
    labels = task.info["train_factors"][:, FACTOR_NAMES.index("shape")].long()
    return model.eval(), (task.train[0], labels), task.info["source_test"]


def cospadi_atoms(model, ratio, density=0.5, targets=TARGETS):
    """Per layer the most atoms k whose DictLinear (k*in + ceil(density k)*out + out) fits 1/ratio."""
    atoms = {}
    for name in targets:
        m = model.get_submodule(name)
        k = 1
        while (k + 1) * m.in_features + math.ceil(density * (k + 1)) * m.out_features + m.out_features \
                <= _dense(m) / ratio:
            k += 1
        atoms[name] = k
    return atoms


def load_ctr(seed):
    """MLPCTR trained 3 epochs on synthetic_ctr (30,000 rows, 26 fields of 300 ids); calibration:
    8,192 training rows; test: 15% of the rows."""
    from lowrank.ctr import CTRTrainer, MLPCTR
    from lowrank.datasets import synthetic_ctr

    data = synthetic_ctr(30_000, n_categorical=26, cardinality=300, rng=seed)
    train, valid, test = data.split((0.8, 0.05, 0.15), rng=seed)
    torch.manual_seed(seed)
    model = MLPCTR(data.cardinalities, embedding_dim=16, hidden=(256, 128, 64))
    CTRTrainer(max_epochs=3, lr=3e-3, batch_size=2048, random_state=seed).fit(model, train, valid)
    calib = (torch.as_tensor(train.dense[:8192], dtype=torch.float32), torch.as_tensor(train.categorical[:8192]),
             torch.as_tensor(train.labels[:8192], dtype=torch.float32))
    return model.eval(), calib, test


def _bce(logits, y):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)


def scores(model, test):
    if not isinstance(test, tuple):   # CTRData: (AUC, logloss)
        from lowrank.ctr import evaluate_ctr

        out = evaluate_ctr(model.eval(), test)
        return out["auc"], out["logloss"]
    x, y = test
    with torch.no_grad():
        out = model(x)
    return float((out.argmax(1) == y).float().mean()), float(torch.nn.functional.cross_entropy(out, y))


def run(seeds, model_name="mlp"):
    rows = []
    targets = {"mlp": TARGETS, "conv": CONV_TARGETS, "ctr": CTR_TARGETS}[model_name]
    for seed in range(seeds):
        t0 = time.perf_counter()
        if model_name == "mlp":
            task = digits_classifier(seed=seed)
            model, train, test = task.model.eval(), task.train, task.test
        elif model_name == "conv":
            model, train, test = load_conv(seed)
        else:
            model, train, test = load_ctr(seed)
        inputs = train[:-1]   # calibration without the labels (afm, cospadi)
        extra = dict(loss_fn=_bce) if model_name == "ctr" else {}
        train_s = time.perf_counter() - t0
        acc, loss = scores(model, test)
        rows.append(dict(seed=seed, ratio=1, method="dense", accuracy=acc, loss=loss, params=sum(
            _dense(model.get_submodule(n)) for n in targets), seconds=train_s))
        for ratio in RATIOS:
            calls = {
                "svd": lambda: compress(model, "svd", budget=1 / ratio, targets=targets),
                "svd_uniform": lambda: compress(model, "svd", rank=uniform_ranks(model, ratio, targets),
                                                targets=targets),
                "afm": lambda: compress(model, "afm", inputs, budget=1 / ratio, targets=targets),
                "fwsvd": lambda: compress(model, "fwsvd", train, budget=1 / ratio, targets=targets, batch_size=64,
                                          **extra),
                "welore": lambda: compress(model, "welore", budget=1 / ratio, targets=targets),
            }
            if model_name != "conv":   # CoSpaDi handles Linear layers only
                calls["cospadi"] = lambda: compress(model, "cospadi", inputs,
                                                    rank=cospadi_atoms(model, ratio, targets=targets),
                                                    targets=targets, n_iter=10)
            for method, call in calls.items():
                t0 = time.perf_counter()
                small, report = call()
                seconds = time.perf_counter() - t0
                acc, loss = scores(small.eval(), test)
                rows.append(dict(seed=seed, ratio=ratio, method=method, accuracy=acc, loss=loss,
                                 params=sum(r.params_after for r in report.layers), seconds=seconds,
                                 ranks=[r.rank for r in report.layers]))
                print(f"seed {seed} {ratio}x {method:<12} acc {acc:.4f} loss {loss:.4f} "
                      f"params {rows[-1]['params']} ranks {rows[-1]['ranks']} {seconds:.2f}s", flush=True)
    return rows


def finetune(seeds, ratio=8, epochs=2):
    """WeLore at ``ratio``: LRC-only fine-tuning (trainable="lrc") vs fine-tuning every parameter."""
    from lowrank.nn.zoo import fit_classifier

    rows = []
    for seed in range(seeds):
        task = digits_classifier(seed=seed)
        for trainable in ("lrc", "all"):
            small, _ = compress(task.model, "welore", budget=1 / ratio, targets=TARGETS, trainable=trainable)
            before = scores(small.eval(), task.test)
            n_train = sum(p.numel() for p in small.parameters() if p.requires_grad)
            fit_classifier(small, task.train, epochs=epochs, lr=1e-3, rng=seed)
            acc, loss = scores(small.eval(), task.test)
            rows.append(dict(seed=seed, trainable=trainable, trainable_params=n_train, accuracy_before=before[0],
                             accuracy=acc, loss=loss))
            print(f"seed {seed} welore {ratio}x trainable={trainable}: {n_train} trainable, accuracy "
                  f"{before[0]:.4f} -> {acc:.4f} (loss {loss:.4f}) after {epochs} epochs", flush=True)
    return rows


def table(rows):
    import statistics

    lines = [f"{'ratio':>5} {'method':<12} {'params':>7} {'accuracy':>9} {'loss':>7} {'seconds':>8}"]
    keys = sorted({(r["ratio"], r["method"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for ratio, method in keys:
        sel = [r for r in rows if r["ratio"] == ratio and r["method"] == method]
        lines.append(f"{ratio:>5} {method:<12} {statistics.mean(r['params'] for r in sel):7.0f} "
                     f"{statistics.mean(r['accuracy'] for r in sel):9.4f} {statistics.mean(r['loss'] for r in sel):7.4f} "
                     f"{statistics.mean(r['seconds'] for r in sel):8.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--model", choices=["mlp", "conv", "ctr"], default="mlp")
    parser.add_argument("--finetune", action="store_true", help="only WeLore's LRC-only vs full fine-tuning")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.finetune:
        finetune(args.seeds)
        return
    rows = run(args.seeds, args.model)
    print(table(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
