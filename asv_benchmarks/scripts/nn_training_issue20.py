"""Quality table for issue 20 (low-rank training), mean of seeds, baselines in the same run.

Teacher-MLP regression (zoo ``teacher_regression``, 64-256-256-16, planted heavy-tailed spectra): full-rank
training, plain low-rank factorized training (r=16 on fc1, fc2; dense head), SLTrain, LOST, SST, Maestro and
ProjectedAdam (svd = GaLore / dct / random control) with galore-torch's GaLoreAdamW as the peer. TRP on the
zoo ConvNet trained from scratch on procedural shapes (label: shape) against the same ConvNet trained plainly.

Run (one thread, seconds per method):
    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_training_issue20.py --steps 800 --seeds 3
"""

import argparse
import copy
import time

import numpy as np
import torch

from lowrank.datasets import procedural_shapes
from lowrank.nn import (LowRankLinear, OrderedLowRankLinear, SparsePlusLowRankLinear, SpectralLinear,
                        TrainedRankPruning)
from lowrank.nn.optim import ProjectedAdam
from lowrank.nn.zoo import teacher_regression
from lowrank.nn.zoo.models import ConvNet

RANK, DENSITY, LR, BATCH = 16, 0.03, 2e-3, 128
TARGETS = ("fc1", "fc2")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def val_mse(model, test):
    model.eval()
    with torch.no_grad():
        out = float(torch.nn.functional.mse_loss(model(test[0]), test[1]))
    model.train()
    return out


def train(model, data, steps, seed, *, opt=None, after_backward=None, after_step=None):
    X, Y = data
    gen = torch.Generator().manual_seed(seed)
    opt = opt or torch.optim.Adam(model.parameters(), lr=LR)
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, X.shape[0], (BATCH,), generator=gen)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X[idx]), Y[idx])
        if after_backward is None:
            loss.backward()
        else:
            after_backward(loss)
        opt.step()
        if after_step is not None:
            after_step(step, opt)
    return (time.perf_counter() - start) / steps


def swap(model, make):
    for name in TARGETS:
        setattr(model, name, make(getattr(model, name)))
    return model


def regression_row(method, seed, steps):
    task = teacher_regression(seed=seed)
    model, train_data, test = task.model, task.train, task.test
    extra = {}
    if method == "full":
        t = train(model, train_data, steps, seed)
    elif method == "lowrank r16":
        swap(model, lambda lin: LowRankLinear(lin.in_features, lin.out_features, RANK))
        t = train(model, train_data, steps, seed)
    elif method == "SLTrain r16+3%":
        swap(model, lambda lin: SparsePlusLowRankLinear(lin.in_features, lin.out_features, RANK, DENSITY, seed=seed))
        t = train(model, train_data, steps, seed)
    elif method == "LOST r16+3% (no remainder)":
        swap(model, lambda lin: SparsePlusLowRankLinear.from_linear(lin, RANK, DENSITY, keep_remainder=False))
        t = train(model, train_data, steps, seed)
    elif method.startswith("SST"):
        swap(model, lambda lin: SpectralLinear.from_linear(lin, n_sample=RANK, seed=seed))
        layers = [getattr(model, n) for n in TARGETS]

        def new_round(step, opt):
            if step % 50 == 0:
                for layer in layers:
                    layer.reorthogonalize()
                    layer.resample()
                    for p in (layer.U, layer.V, layer.s):
                        opt.state.pop(p, None)  # the drawn pairs start fresh moments, as the paper's rounds

        for layer in layers:
            layer.resample()
        t = train(model, train_data, steps, seed, after_step=new_round)
        extra["trainable/round"] = sum(RANK * (la.in_features + la.out_features) + la.rank for la in layers)
    elif method.startswith("Maestro"):
        swap(model, lambda lin: OrderedLowRankLinear(lin.in_features, lin.out_features, seed=seed))
        layers = [getattr(model, n) for n in TARGETS]
        t = train(model, train_data, steps, seed,
                  after_backward=lambda loss: (loss + 1e-5 * sum(la.group_lasso() for la in layers)).backward())
        model.eval()
        extra["full"] = val_mse(model, test)
        for name, layer in zip(TARGETS, layers):
            setattr(model, name, layer.truncate(layer.rank // 2))
    elif method.startswith("ProjectedAdam") or method == "GaLoreAdamW (peer)":
        matrices = [p for n, p in model.named_parameters() if p.ndim == 2]
        others = [p for n, p in model.named_parameters() if p.ndim != 2]
        if method == "GaLoreAdamW (peer)":
            from galore_torch import GaLoreAdamW
            opt = GaLoreAdamW([{"params": others}, {"params": matrices, "rank": RANK, "update_proj_gap": 200,
                                                     "scale": 0.25, "proj_type": "std"}], lr=LR, weight_decay=0.0)
        else:
            basis = method.split()[-1]
            opt = ProjectedAdam(model.parameters(), RANK, basis=basis, update_gap=200, scale=0.25, lr=LR, rng=seed)
        t = train(model, train_data, steps, seed, opt=opt)
        extra["opt state (KiB)"] = state_kib(opt)
    else:
        raise ValueError(method)
    return {"mse": val_mse(model, test), "params": n_params(model), "s/step": t, **extra}


def state_kib(opt):
    """Optimizer state in KiB: moments, projectors (galore-torch keeps its own in a projector object), indices."""
    total = 0
    for state in opt.state.values():
        for v in state.values():
            v = getattr(v, "ortho_matrix", v)
            if torch.is_tensor(v):
                total += v.numel() * v.element_size()
    return total / 1024


def svd_truncate_half(model, test):
    """Baseline for Maestro: the normally trained model with fc1, fc2 truncated to half rank by SVD."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name in TARGETS:
            W = getattr(model, name).weight
            U, s, Vh = torch.linalg.svd(W, full_matrices=False)
            k = len(s) // 2
            W.copy_((U[:, :k] * s[:k]) @ Vh[:k])
    return val_mse(model, test)


def refresh_times(repeat=20):
    """Projector refresh for one 256x256 float32 gradient: DCT alignment vs randomized SVD vs galore's SVD."""
    G = torch.randn(256, 256)
    out = {}
    for basis in ("dct", "svd", "random"):
        opt = ProjectedAdam([torch.nn.Parameter(torch.zeros(256, 256))], RANK, basis=basis, rng=0)
        opt._refresh(G, True, RANK, {})  # builds the DCT basis once (cached per shape)
        start = time.perf_counter()
        for _ in range(repeat):
            opt._refresh(G, True, RANK, {})
        out[basis] = (time.perf_counter() - start) / repeat
    try:
        from galore_torch.galore_projector import GaLoreProjector
        proj = GaLoreProjector(RANK, update_proj_gap=1, proj_type="std")
        start = time.perf_counter()
        for i in range(repeat):
            proj.project(G, i)
        out["galore-torch (full SVD)"] = (time.perf_counter() - start) / repeat
    except ImportError:
        pass
    return out


def conv_flops(model, image_size):
    """Multiply-adds of every conv (dense or factorized) for one image."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            total += output[0].numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 3, image_size, image_size))
    for h in handles:
        h.remove()
    return total


def trp_rows(seed, steps, energy, nuclear=3e-4):
    images, factors = procedural_shapes(4000, image_size=16, rng=seed)
    X, y = torch.from_numpy(images), torch.from_numpy(factors[:, 0].copy()).long()
    Xtr, ytr, Xte, yte = X[:3000], y[:3000], X[3000:], y[3000:]
    rows = {}
    for method in ("ConvNet baseline", f"ConvNet + TRP (energy {energy}, nuclear {nuclear})"):
        torch.manual_seed(seed)
        model = ConvNet(16, 3)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        trp = TrainedRankPruning(model, energy=energy, period=20, nuclear_weight=nuclear,
                                 targets=["conv1", "conv2", "conv3"]) if "TRP" in method else None
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(0, 3000, (64,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xtr[idx]), ytr[idx]).backward()
            if trp:
                trp.regularize()
            opt.step()
            if trp:
                trp.step()
        if trp:
            trp.finalize()
        model.eval()
        with torch.no_grad():
            acc = float((model(Xte).argmax(1) == yte).float().mean())
        rows[method] = {"acc": acc, "conv MACs": conv_flops(model, 16), "ranks": dict(trp.ranks_) if trp else {}}
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trp-steps", type=int, default=400)
    parser.add_argument("--energy", type=float, default=0.9)
    parser.add_argument("--nuclear", type=float, default=3e-4)
    parser.add_argument("--only-trp", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only_trp:
        return trp_table(args)
    methods = ["full", "lowrank r16", "SLTrain r16+3%", "LOST r16+3% (no remainder)", "SST (n_sample 16)",
               "Maestro (OD, truncated to 50%)", "ProjectedAdam svd", "ProjectedAdam dct", "ProjectedAdam random",
               "GaLoreAdamW (peer)"]
    table = {m: [] for m in methods}
    svd_half = []
    for seed in range(args.seeds):
        for m in methods:
            table[m].append(regression_row(m, seed, args.steps))
        # Maestro's baseline: SVD truncation of the normally trained full model (same seed, same steps)
        task = teacher_regression(seed=seed)
        train(task.model, task.train, args.steps, seed)
        svd_half.append((val_mse(task.model, task.test), svd_truncate_half(task.model, task.test)))
    print(f"## teacher_regression, {args.steps} Adam steps (batch {BATCH}, lr {LR}), mean of {args.seeds} seeds")
    print("| method | val MSE (mean +- sd) | params | s/step | extra |")
    print("|---|---|---|---|---|")
    for m in methods:
        rows = table[m]
        mse = np.array([r["mse"] for r in rows])
        extras = {k: np.mean([r[k] for r in rows]) for k in rows[0] if k not in ("mse", "params", "s/step")}
        extra = ", ".join(f"{k}={v:.4g}" for k, v in extras.items())
        print(f"| {m} | {mse.mean():.4g} +- {mse.std():.2g} | {rows[0]['params']} | "
              f"{np.mean([r['s/step'] for r in rows]) * 1e3:.2f} ms | {extra} |")
    full, half = np.mean(svd_half, axis=0)
    maestro_full = np.mean([r["full"] for r in table["Maestro (OD, truncated to 50%)"]])
    maestro_half = np.mean([r["mse"] for r in table["Maestro (OD, truncated to 50%)"]])
    print(f"\nMaestro 50% truncation loss: OD-trained {maestro_full:.4g} -> {maestro_half:.4g} "
          f"(+{maestro_half - maestro_full:.3g}); plain-trained + SVD {full:.4g} -> {half:.4g} (+{half - full:.3g})")
    print("\n## projector refresh, one 256x256 gradient, rank 16 (s)")
    for k, v in refresh_times().items():
        print(f"  {k}: {v * 1e3:.3f} ms")
    trp_table(args)


def trp_table(args):
    print(f"\n## TRP on the zoo ConvNet (procedural shapes, label shape, {args.trp_steps} Adam steps), "
          f"mean of {args.seeds} seeds")
    trp = [trp_rows(seed, args.trp_steps, args.energy, args.nuclear) for seed in range(args.seeds)]
    for m in trp[0]:
        acc = np.mean([r[m]["acc"] for r in trp])
        macs = np.mean([r[m]["conv MACs"] for r in trp])
        print(f"| {m} | acc {acc:.4f} | conv MACs {macs:.0f} | ranks {[r[m]['ranks'] for r in trp]} |")
    base = np.mean([r["ConvNet baseline"]["conv MACs"] for r in trp])
    other = [m for m in trp[0] if "TRP" in m][0]
    print(f"conv MAC reduction: {base / np.mean([r[other]['conv MACs'] for r in trp]):.2f}x")


if __name__ == "__main__":
    main()
