"""HIR-Diff on the GPU: train the SmallUNet prior, tune the guidance weights on a validation cube,
report PSNR/SSIM/SAM and timings on the test cube (denoise sigma=50/255, SR x4, 80% inpainting).

Usage (data prepared on a machine with scikit-image + colour-science, see docs/hirdiff.md):

    python benchmarks/gpu/hirdiff_gpu.py --data .hsi_gpu --out $OUT [--train-seconds 300] [--weights w.npz]

``--data`` holds ``images.npz`` (uint8 training photographs) and ``cubes.npz`` (clean cubes
``val64, val256, test64, test256``). Prints a table and writes ``results.json`` to ``--out``.
The third pass's figures: ``--weights lowrank/vision/weights/hirdiff_unet.npz --seeds 2 --val-sizes 256
--old-module <the second pass's hirdiff.py>`` (64 x 64 choices from the CPU validation, in CHOSEN).
"""

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.getcwd())

from lowrank.vision import HIRDiff, Denoise, Inpaint, SuperResolve  # noqa: E402
from lowrank.vision._hsi_baselines import interpolation_baseline, lowrank_tv_restore  # noqa: E402
from lowrank.vision.metrics_hsi import quality_report  # noqa: E402
from lowrank.vision.prior import fallback_prior, load_prior, train_prior  # noqa: E402

TASKS = {
    "denoise": dict(op=lambda shape: Denoise(), noise=50 / 255),
    "sr": dict(op=lambda shape: SuperResolve(4), noise=0.01),
    "inpaint": dict(op=lambda shape: Inpaint.random(shape[:2], 0.8, rng=1), noise=0.0),
}
# (eta_fidelity, eta_tv, start_sigma): eta_fidelity is a step relative to 1 / L (divergence near 2);
# start_sigma multiplies the estimated noise level for denoising ("matched" start) and is the start level itself
# for SR and inpainting ("estimate" start).
GRID = {
    "denoise": list(itertools.product([0.02, 0.05, 0.1], [0.01, 0.03], [1.0, 1.5, 2.0])),
    "sr": list(itertools.product([1.0, 1.5], [0.01, 0.03], [0.25, 0.5, 1.0])),
    "inpaint": list(itertools.product([1.5, 2.0], [0.01, 0.03], [0.25, 0.5, 1.0])),
    ("tv", "denoise"): list(itertools.product([0.05, 0.2, 0.5], [0.01, 0.03, 0.1], [1.5, 3.0, 6.0])),
}
LRTV_GRID = [0.001, 0.003, 0.01, 0.03, 0.1]
# Validation choices (chelsea cubes): 64 x 64 from the CPU grid search of the third pass (docs/hirdiff.md),
# 256 x 256 from its H200 run. (psnr, eta_fidelity, eta_tv, start_sigma) per (prior, task, size); used with
# --skip-val or for the (prior, task, size) left out of --val-tasks / --val-priors / --val-sizes.
CHOSEN = {
    ("unet", "denoise", 64): (29.57, 0.05, 0.01, 1.5), ("tv", "denoise", 64): (29.17, 0.2, 0.03, 3.0),
    ("lrtv", "denoise", 64): (0, 0.03),
    ("unet", "sr", 64): (26.58, 1.5, 0.03, 0.25), ("tv", "sr", 64): (0, 1.5, 0.03, 0.25),  # tv: unet's
    ("lrtv", "sr", 64): (0, 0.001),
    ("unet", "inpaint", 64): (27.26, 2.0, 0.03, 1.0), ("tv", "inpaint", 64): (0, 2.0, 0.03, 1.0),  # tv: unet's
    ("lrtv", "inpaint", 64): (0, 0.001),
    ("unet", "denoise", 256): (30.84, 0.05, 0.01, 1.5), ("tv", "denoise", 256): (30.36, 0.2, 0.1, 1.5),
    ("lrtv", "denoise", 256): (29.50, 0.1),
    ("unet", "sr", 256): (29.32, 1.5, 0.01, 0.25), ("tv", "sr", 256): (29.13, 1.5, 0.01, 0.5),
    ("lrtv", "sr", 256): (29.12, 0.001),
    ("unet", "inpaint", 256): (29.57, 2.0, 0.01, 0.5), ("tv", "inpaint", 256): (29.42, 2.0, 0.01, 1.0),
    ("lrtv", "inpaint", 256): (28.87, 0.001),
}
# The second pass's sampler and choices (eta_fidelity, eta_tv per unit of H W / n_observed, start "estimate"),
# for a before/after comparison with --old-module.
OLD_CHOSEN = {("denoise", 64): (4.0, 0.1), ("sr", 64): (16.0, 0.03), ("inpaint", 64): (4.0, 0.03),
              ("denoise", 256): (2.0, 0.03), ("sr", 256): (16.0, 0.03), ("inpaint", 256): (4.0, 0.03)}


def observe(clean, task, seed=0):
    spec = TASKS[task]
    op = spec["op"](clean.shape)
    return op, op.degrade(clean, spec["noise"], rng=seed)


def run(model, y, op):
    kw = {"mask": op.mask} if isinstance(op, Inpaint) else {}
    return model.restore(y, op.name if not isinstance(op, Inpaint) else "inpaint", **kw)


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def rounded(d):
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=".hsi_gpu")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--train-seconds", type=float, default=300)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="smoke test: 64x64 only, tiny grids")
    parser.add_argument("--skip-val", action="store_true", help="use CHOSEN instead of tuning on validation cubes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--channels", type=int, default=32, help="U-Net width when training")
    parser.add_argument("--compare", default=None, help="other U-Net weights evaluated side by side ('unet_old')")
    parser.add_argument("--val-tasks", default=None,
                        help="comma list of tasks tuned on the validation cubes (others use CHOSEN; default all)")
    parser.add_argument("--val-priors", default="unet,tv,lrtv",
                        help="priors tuned on the validation cubes (others use CHOSEN)")
    parser.add_argument("--val-sizes", default="64,256", help="sizes tuned on the validation cubes")
    parser.add_argument("--old-module", default=None,
                        help="path of the previous hirdiff.py: its sampler runs beside the new one ('old')")
    args = parser.parse_args()
    sizes = (64,) if args.quick else (64, 256)
    val_tasks = tuple(TASKS) if args.val_tasks is None else tuple(t for t in args.val_tasks.split(",") if t)
    val_priors = tuple(args.val_priors.split(","))
    val_sizes = tuple(int(v) for v in args.val_sizes.split(",") if v)
    old_cls = None
    if args.old_module:
        import importlib.util

        spec = importlib.util.spec_from_file_location("hirdiff_old", args.old_module)
        old_mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old_mod)
        old_cls = old_mod.HIRDiff
    if args.quick:
        for key in GRID:
            GRID[key] = GRID[key][:2]
        LRTV_GRID[:] = LRTV_GRID[:1]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    cubes = dict(np.load(os.path.join(args.data, "cubes.npz")))

    if args.weights is None:
        with np.load(os.path.join(args.data, "images.npz")) as f:
            images = [f[k] for k in f.files]
        net, seconds = timed(lambda: train_prior(images, crop=64, batch_size=args.batch_size, n_iter=10**6,
                                                 channels=args.channels,
                                                 lr=4e-4, time_limit=args.train_seconds, device=device,
                                                 out=os.path.join(args.out, "hirdiff_unet.npz"), rng=0))
        results["train"] = {"seconds": seconds, "steps": net.train_steps_, "loss": net.train_loss_}
        print("trained", results["train"], flush=True)
        weights = os.path.join(args.out, "hirdiff_unet.npz")
    else:
        weights = args.weights
    priors = {"unet": load_prior(weights, device=device), "tv": fallback_prior()}
    if args.compare:
        priors["unet_old"] = load_prior(args.compare, device=device)

    # 1) tune eta on the validation cubes, per prior, task and size
    chosen = dict(CHOSEN)
    for size in (() if args.skip_val else tuple(z for z in sizes if z in val_sizes)):
        clean = cubes[f"val{size}"]
        for task in TASKS:
            if task not in val_tasks:
                continue
            op, y = observe(clean, task, seed=1)
            for pname, prior in priors.items():
                if pname not in val_priors:
                    continue
                best = None
                for ef, et, ss in GRID.get((pname, task), GRID[task]):
                    model = HIRDiff(prior=prior, eta_fidelity=ef, eta_tv=et, start_sigma=ss, random_state=0,
                                    device=device)
                    p = quality_report(run(model, y, op), clean)["psnr"]
                    if best is None or p > best[0]:
                        best = (p, ef, et, ss)
                chosen[(pname, task, size)] = best
                print("val", size, task, pname, best, flush=True)
            if "lrtv" not in val_priors:
                continue
            best = max((quality_report(lowrank_tv_restore(y, op, eta_tv=et, n_iter=400, lr=0.05, device=device), clean)["psnr"], et)
                       for et in LRTV_GRID)
            chosen[("lrtv", task, size)] = best
            print("val", size, task, "lrtv", best, flush=True)
    results["chosen"] = {"/".join(map(str, k)): v for k, v in chosen.items()}

    # 2) test cubes with the chosen weights
    rows = []
    for size in sizes:
        clean = cubes[f"test{size}"]
        for task in TASKS:
            op, y = observe(clean, task, seed=0)
            base = interpolation_baseline(y, op)
            rows.append(dict(size=size, task=task, method="input/bicubic/interp", **quality_report(base, clean)))
            et = chosen[("lrtv", task, size)][1]
            out, sec = timed(lambda: lowrank_tv_restore(y, op, eta_tv=et, n_iter=400, lr=0.05, device=device))
            rows.append(dict(size=size, task=task, method=f"lowrank+TV (eta_tv={et})", seconds=sec,
                             **quality_report(out, clean)))
            variants = [(pname, prior, "new") for pname, prior in priors.items()]
            if old_cls is not None:
                variants.append(("unet", priors["unet"], "old"))
            for pname, prior, version in variants:
                if version == "old":
                    ef, et = OLD_CHOSEN[(task, size)]
                    model = old_cls(prior=prior, eta_fidelity=ef, eta_tv=et, start="estimate", random_state=0,
                                    device=device)
                    ss = "old"
                else:
                    _, ef, et, ss = chosen.get((pname, task, size), CHOSEN[("unet" if "unet" in pname else pname,
                                                                            task, size)])
                    model = HIRDiff(prior=prior, eta_fidelity=ef, eta_tv=et, start_sigma=ss, random_state=0,
                                    device=device)
                run(model, y, op)  # warm-up
                scores = []
                for seed in range(args.seeds):
                    model.set_params(random_state=seed)
                    out, sec = timed(lambda: run(model, y, op))
                    scores.append(quality_report(out, clean) | {"seconds": sec})
                mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
                mean["psnr_std"] = float(np.std([s["psnr"] for s in scores]))
                label = "old sampler" if version == "old" else "start_sigma"
                method = f"HIR-Diff {pname} (eta={ef},{et}, {label} {ss})"
                rows.append(dict(size=size, task=task, method=method, **mean))
            for r in rows[-(2 + len(variants)):]:
                print(rounded(r), flush=True)
            with open(os.path.join(args.out, "results.json"), "w") as f:
                json.dump(results | {"rows": rows}, f, indent=1, default=float)
    results["rows"] = rows
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
