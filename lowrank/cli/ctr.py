"""Command-line face of lowrank.ctr: ``ctr-compress`` and the AFM rows of ``lowrank demo``."""

from lowrank.cli import DemoRow, timed


def register(subparsers):
    p = subparsers.add_parser(
        "ctr-compress",
        help="compress a saved torch model by atomic feature mimicking (AFM)",
        description="Compress the Linear/Embedding layers of a model saved with torch.save(model) using "
        "calibration inputs from an .npz file (arrays 'dense' and 'categorical', or arrays passed to the "
        "model positionally in key order). Loading a pickled model runs its code: only load files you trust.",
    )
    p.add_argument("model", help="model file written by torch.save(model)")
    p.add_argument("calibration", help=".npz with the model's inputs")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--budget", type=float, help="fraction of the target layers' parameters to keep, e.g. 0.25")
    group.add_argument("--energy", type=float, help="fraction of each layer's output variance to keep, e.g. 0.99")
    group.add_argument("--rank", type=int, help="the same rank for every target layer")
    p.add_argument("--targets", nargs="*", help="fnmatch patterns of layer names (default: every supported layer)")
    p.add_argument("--method", choices=["afm", "weight-svd"], default="afm")
    p.add_argument("-o", "--output", default=None, help="where to save the compressed model (default: MODEL.afm.pt)")
    p.set_defaults(func=_compress)


def _compress(args):
    import numpy as np
    import torch

    from lowrank._utils.io import atomic_write_bytes
    from lowrank.ctr import compress_afm, compress_weight_svd

    model = torch.load(args.model, weights_only=False, map_location="cpu")
    with np.load(args.calibration) as npz:
        keys = ["dense", "categorical"] if {"dense", "categorical"} <= set(npz.files) else sorted(npz.files)
        calib = tuple(torch.as_tensor(npz[k]) for k in keys)
    kwargs = dict(rank=args.rank, energy=args.energy, budget=args.budget, targets=args.targets or None)
    if args.method == "afm":
        small, report = compress_afm(model, calib, **kwargs)
    else:
        small, report = compress_weight_svd(model, **kwargs)
    out = args.output or f"{args.model}.afm.pt"
    atomic_write_bytes(out, lambda f: torch.save(small, f))
    print(report)
    print(f"saved {out}")
    return 0


def demo():
    import torch

    from lowrank.ctr import CTRTrainer, MLPCTR, compress_afm, compress_weight_svd, evaluate_ctr
    from lowrank.datasets import synthetic_ctr

    data = synthetic_ctr(40_000, n_categorical=8, cardinality=200, rng=0)
    train, calib_part, test = data.split((0.8, 0.05, 0.15), rng=0)
    torch.manual_seed(0)
    model = MLPCTR(data.cardinalities, embedding_dim=16, hidden=(128, 64))
    CTRTrainer(max_epochs=3, lr=3e-3, batch_size=1024).fit(model, train)
    base = evaluate_ctr(model, test)["auc"]
    calib = (torch.as_tensor(calib_part.dense), torch.as_tensor(calib_part.categorical))
    (small, rep), t = timed(compress_afm, model, calib, budget=0.25)
    (svd, rep_svd), _ = timed(compress_weight_svd, model, budget=0.25)
    d_afm = evaluate_ctr(small, test)["auc"] - base
    d_svd = evaluate_ctr(svd, test)["auc"] - base
    return [
        DemoRow(
            "compress_afm (budget 0.25)",
            f"synthetic CTR 40k rows, Bayes AUC {data.bayes_auc:.3f}",
            f"{rep.compression_ratio:.1f}x smaller, dAUC {d_afm:+.4f} (weight SVD {d_svd:+.4f})",
            f"uncompressed AUC {base:.4f}",
            t,
        )
    ]
