"""Figures of lowrank.nn.compress: output error vs rank (AFM vs weight SVD, same parameters) on the
zoo's trained ConvNet (shapes_transfer, shape head) and MLP (digits_classifier), and compress time
at two model widths. Models and data come from asv_benchmarks/benchmarks/nn_compress.py.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_compress_curve.py --out docs/img/nn_compress_error.png

Writes a JSON of every figure next to the plot (the plot only if matplotlib is installed) and
prints a table. One thread.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.nn_compress import TARGETS, ZOO_TARGETS, conv_net, mlp, output_error, trained_models  # noqa: E402

from lowrank.nn import compress  # noqa: E402

RANKS = {"conv": [1, 2, 4, 8, 12, 16, 24, 32], "mlp": [1, 2, 4, 8, 16, 32, 64, 96]}


def accuracy(model, data):
    x, y = data
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _width(layer):
    return layer.out_channels if isinstance(layer, torch.nn.Conv2d) else layer.out_features


def error_curves(models):
    rows = []
    for name, (net, calib, test) in models.items():
        base = accuracy(net, test)
        for rank in RANKS[name]:
            row = {"model": name, "rank": rank, "base_accuracy": base}
            # A layer narrower than the rank keeps its full width (it is then left dense).
            per_layer = {n: min(rank, _width(net.get_submodule(n))) for n in ZOO_TARGETS[name]}
            for method in ("svd", "afm"):
                small, rep = compress(net, method, (calib,) if method == "afm" else None, rank=per_layer,
                                      targets=ZOO_TARGETS[name])
                row[f"{method}_params"] = rep.model_params_after
                row[f"{method}_output_error"] = output_error(small, net, test[0])
                row[f"{method}_accuracy"] = accuracy(small, test)
                row[f"{method}_layers_compressed"] = sum(r.compressed for r in rep.layers)
            row["params_before"] = rep.model_params_before
            rows.append(row)
    return rows


def timings(repeat=3):
    rows = []
    g = torch.Generator().manual_seed(0)
    cases = {"conv": (conv_net, 16, (torch.rand(512, 3, 16, 16, generator=g),)),
             "mlp": (mlp, 128, (torch.rand(2048, 64, generator=g),))}
    for name, (build, width, calib) in cases.items():
        for factor in (1, 4):
            net = build(width * factor).eval()
            for method in ("svd", "afm"):
                best = float("inf")
                for _ in range(repeat):
                    start = time.perf_counter()
                    compress(net, method, calib if method == "afm" else None, budget=0.25, targets=TARGETS[name])
                    best = min(best, time.perf_counter() - start)
                rows.append({"model": name, "width": width * factor, "method": method, "seconds": best,
                             "params": sum(p.numel() for p in net.parameters()),
                             "calibration_rows": int(calib[0].shape[0])})
    return rows


def plot(curves, out):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, name in zip(axes, ("conv", "mlp")):
        rows = [r for r in curves if r["model"] == name]
        ax.plot([r["afm_params"] for r in rows], [r["afm_output_error"] for r in rows], "o-", label="AFM")
        ax.plot([r["svd_params"] for r in rows], [r["svd_output_error"] for r in rows], "s--", label="weight SVD")
        ax.set_xlabel("parameters after compression")
        ax.set_ylabel("relative output error (test)")
        ax.set_yscale("log")
        ax.set_title({"conv": "zoo ConvNet (shapes_transfer, shape head)", "mlp": "zoo MLP 64-256-256-10 (digits)"}[name])
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/nn_compress_error.png")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    models = trained_models()
    train_seconds = time.perf_counter() - start
    curves = error_curves(models)
    times = [] if args.no_timing else timings()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"curves": curves, "timings": times, "train_seconds": train_seconds, "torch": torch.__version__}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plotted = plot(curves, out)
    print(f"trained in {train_seconds:.1f} s; plot written: {plotted}")
    print(f"{'model':<5} {'rank':>4} {'params':>13} {'svd err':>8} {'afm err':>8} {'ratio':>6} {'svd acc':>7} "
          f"{'afm acc':>7} {'base':>5}")
    for r in curves:
        print(f"{r['model']:<5} {r['rank']:>4} {r['afm_params']:>6}/{r['params_before']:<6} "
              f"{r['svd_output_error']:8.4f} {r['afm_output_error']:8.4f} "
              f"{r['afm_output_error'] / max(r['svd_output_error'], 1e-300):6.3f} {r['svd_accuracy']:7.3f} "
              f"{r['afm_accuracy']:7.3f} {r['base_accuracy']:5.3f}")
    for r in times:
        print(f"compress {r['method']:<3} {r['model']:<4} width {r['width']:>3} ({r['params']:,} params, "
              f"{r['calibration_rows']} calibration rows): {r['seconds']:.3f} s")


if __name__ == "__main__":
    main()
