"""GPU figures for issue 10: householder_product vs torch.linalg.householder_product, and the shapes demo.

Run on the accelerator machine from the repository root::

    python benchmarks/gpu/householder_gpu.py --out DIR [--demo style|vae] [--budget 200] [--seeds 0 1 2]
    python benchmarks/gpu/householder_gpu.py --out DIR --aggregate RUN1/metrics.json RUN2/metrics.json ...

1. forward + backward time (median of 20, CUDA-synchronized) at d = 512, k in {10, 64, 512} (and
   d = 2048) in float32, our compact-WY product against torch.linalg.householder_product on the
   same LAPACK-convention inputs, with the relative gradient difference (``--skip-product`` to skip);
2. the Householder-projector demo on CUDA for each seed while the time budget lasts. ``--demo style``
   (default): the style-generator demo (``lowrank.vision._shapes_style.STYLE_FULL``: projector in the
   affine w -> styles layer, traversal-based MIG / DCI / attribution, Frechet proxy), with paired
   differences projector - SeFa (fine-tuned) per seed; ``--demo vae``: the earlier MLP-VAE demo
   (``lowrank.vision._shapes_vae.FULL``, interleaved with ``--betas``). metrics.json, metrics.md and
   the traversal PNGs of the first seed are written to DIR (metrics.json after every seed).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from lowrank.linalg._householder import householder_product


def _time(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_product(device):
    rows = []
    for d, k in [(512, 10), (512, 64), (512, 512), (2048, 64), (2048, 2048)]:
        gen = torch.Generator(device=device).manual_seed(0)
        A = torch.randn(d, d, device=device, generator=gen)
        tau = 2.0 / (1.0 + torch.tril(A, -1)[:, :k].pow(2).sum(0))
        W = torch.randn(d, d, device=device, generator=gen)
        grads = {}

        def run(fn, name):
            a, t = A.clone().requires_grad_(), tau.clone().requires_grad_()
            (fn(a, t) * W).sum().backward()
            grads[name] = a.grad

        ours = _time(lambda: run(householder_product, "ours"))
        reps = 3 if k >= 2048 else 20
        peer = _time(lambda: run(torch.linalg.householder_product, "torch"), reps=reps, warmup=1)
        rel = float((grads["ours"] - grads["torch"]).abs().max() / grads["torch"].abs().max())
        Q = householder_product(A, tau)
        orth = float((Q.double().T @ Q.double() - torch.eye(d, device=device, dtype=torch.float64)).abs().max())
        row = {"d": d, "k": k, "ours_s": ours, "torch_s": peer, "speedup": peer / ours, "grad_rel_diff": rel,
               "orthonormality_f32": orth}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=200.0, help="seconds for the demo runs (no new seed after)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0], help="VAE KL weights (interleaved with seeds)")
    parser.add_argument("--demo", choices=("style", "vae"), default="style")
    parser.add_argument("--style-size", choices=("medium", "full"), default="full",
                        help="STYLE_FULL (32x32) or STYLE_MEDIUM (16x16, about 20x less compute)")
    parser.add_argument("--skip-product", action="store_true")
    parser.add_argument("--aggregate", type=Path, nargs="+", default=None,
                        help="only summarize these metrics.json files of --demo style runs (e.g. one process per seed) into OUT")
    parser.add_argument("--smoke", action="store_true", help="CPU smoke test of this script (tiny demo, no timing)")
    args = parser.parse_args(argv)
    if args.aggregate:
        runs = [run for path in args.aggregate for run in json.loads(path.read_text()).get("demo", [])]
        runs.sort(key=lambda r: r["seed"])
        text = _summary(runs, "style generator", keys=STYLE_KEYS) + "\n\n" + _paired(runs)
        print(text, flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.md").write_text(text + "\n")
        (args.out / "metrics.json").write_text(json.dumps({"demo": runs}, indent=2))
        return 0
    if not torch.cuda.is_available() and not args.smoke:
        print("CUDA is not available", file=sys.stderr)
        return 1
    device = torch.device("cpu" if args.smoke else "cuda")
    name = "cpu (smoke)" if args.smoke else torch.cuda.get_device_name()
    print(name, torch.__version__, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"device": name}
    if not args.skip_product and not args.smoke:
        result["product"] = bench_product(device)

    from lowrank.cli.householder import grid_image, metrics_table, write_png
    from lowrank.vision._shapes_vae import FULL, TINY, config_dict, run_demo
    from dataclasses import replace

    if args.demo == "style":
        return _style(args, device, result)

    start, runs = time.perf_counter(), []
    plan = [(beta, seed) for seed in args.seeds for beta in args.betas]
    for i, (beta, seed) in enumerate(plan):
        if i > 0 and time.perf_counter() - start > args.budget:
            break
        base = replace(TINY, pretrain_steps=20, finetune_steps=5, feature_steps=5, n_train=300) if args.smoke else FULL
        config = replace(base, device=device.type, seed=seed, beta=beta)
        t = time.perf_counter()
        rows, grids, _ = run_demo(config)
        print(f"beta {beta} seed {seed}: {time.perf_counter() - t:.1f} s\n" + metrics_table(rows), flush=True)
        runs.append({"beta": beta, "seed": seed, "rows": rows})
        if i == 0:
            result["config"] = config_dict(config)
            for name, grid in grids.items():
                slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
                write_png(args.out / f"traversal_{slug}.png", grid_image(grid))
        result["demo"] = runs
        (args.out / "metrics.json").write_text(json.dumps(result, indent=2))
    summary = "\n\n".join(_summary([r for r in runs if r["beta"] == b], f"beta {b}") for b in args.betas)
    print(summary, flush=True)
    (args.out / "metrics.md").write_text(summary + "\n")
    return 0


STYLE_KEYS = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "attr_disentanglement",
              "attr_completeness", "recon_mse", "frechet"]


def _style(args, device, result):
    from dataclasses import replace

    from lowrank.cli.householder import grid_image, metrics_table, write_png
    import logging

    from lowrank.vision._shapes_style import STYLE_FULL, STYLE_MEDIUM, STYLE_TINY, config_dict, run_style_demo

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    logging.getLogger("lowrank").setLevel(logging.INFO)

    start, runs = time.perf_counter(), []
    for i, seed in enumerate(args.seeds):
        if i > 0 and time.perf_counter() - start > args.budget:
            break
        if args.smoke:
            base = replace(STYLE_TINY, pretrain_steps=20, finetune_steps=5, feature_steps=5, n_train=300)
        else:
            base = STYLE_MEDIUM if args.style_size == "medium" else STYLE_FULL
        config = replace(base, device=device.type, seed=seed)
        t = time.perf_counter()
        rows, grids, _ = run_style_demo(config)
        print(f"seed {seed}: {time.perf_counter() - t:.1f} s\n" + metrics_table(rows), flush=True)
        runs.append({"seed": seed, "rows": rows})
        if i == 0:
            result["config"] = config_dict(config)
            for name, grid in grids.items():
                slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
                write_png(args.out / f"traversal_{slug}.png", grid_image(grid))
        result["demo"] = runs
        (args.out / "metrics.json").write_text(json.dumps(result, indent=2))
    text = _summary(runs, "style generator", keys=STYLE_KEYS) + "\n\n" + _paired(runs)
    print(text, flush=True)
    (args.out / "metrics.md").write_text(text + "\n")
    return 0


def _paired(runs, baseline="SeFa (fine-tuned)"):
    """Per-seed differences method - baseline, with mean, sd and the number of seeds where the method is higher."""
    if not runs:
        return "no run"
    methods = [r["method"] for r in runs[0]["rows"] if r["method"] != baseline]
    lines = [f"paired differences vs {baseline} (per seed; mean ± sd; seeds where higher)",
             "| method | " + " | ".join(STYLE_KEYS) + " |", "|---|" + "---|" * len(STYLE_KEYS)]
    for m in methods:
        vals = []
        for key in STYLE_KEYS:
            diffs = []
            for run in runs:
                by = {row["method"]: row for row in run["rows"]}
                diffs.append(by[m][key] - by[baseline][key])
            diffs = [d for d in diffs if d == d]
            if not diffs:
                vals.append("nan")
                continue
            sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            per = ", ".join(f"{d:+.3f}" for d in diffs)
            vals.append(f"{statistics.mean(diffs):+.3f} ± {sd:.3f} ({sum(d > 0 for d in diffs)}/{len(diffs)}; {per})")
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def _summary(runs, title, keys=None):
    if not runs:
        return f"{title}: no demo run"
    methods = [r["method"] for r in runs[0]["rows"]]
    keys = keys or ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "recon_mse", "frechet"]
    lines = [f"{title}, mean ± sd over seeds {[r['seed'] for r in runs]}", "| method | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for m in methods:
        vals = []
        for key in keys:
            xs = [row[key] for run in runs for row in run["rows"] if row["method"] == m]
            xs = [x for x in xs if x == x]  # drop NaN (an undefined score)
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            vals.append(f"{statistics.mean(xs):.3f} ± {sd:.3f}" if xs else "nan")
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
