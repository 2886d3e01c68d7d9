"""``lowrank top-eigvec``: the top eigenvector of A^T A streamed from a .npy file; the streaming demo rows."""

import resource
import time

from lowrank.cli import DemoRow, timed


def register(subparsers):
    p = subparsers.add_parser(
        "top-eigvec",
        help="top eigenvector of A^T A from a .npy file of rows, in one pass and O(h d) memory",
        description=(
            "Stream the rows of a 2-D .npy file in batches (file reads into one buffer, so a file larger than "
            "memory works) and print the top eigenvector's summary: eigenvalue, heavy rows kept, memory, rows/s."
        ),
    )
    p.add_argument("path", help="a .npy file holding a 2-D float array (rows x features)")
    p.add_argument("--batch-rows", type=int, default=10_000, help="rows read per batch (default 10000)")
    p.add_argument(
        "--method",
        choices=("random_order", "oja", "exact"),
        default="random_order",
        help="random_order (heavy rows kept exactly; default), oja (any order) or exact (d x d Gram)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random start (default 0)")
    p.add_argument("--output", help="write the eigenvector to this .npy file")
    p.set_defaults(func=_run)


def _run(args):
    import numpy as np

    from lowrank.streaming import top_eigenvector_stream

    start = time.perf_counter()
    # a bad file or value becomes one "error:" line naming the argument in lowrank.cli.main
    result = top_eigenvector_stream(args.path, method=args.method, batch_rows=args.batch_rows, rng=args.seed)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    v = result.vector
    print(f"rows: {result.n_rows}  features: {v.shape[0]}  method: {result.method}")
    print(f"eigenvalue (sigma_1^2): {result.eigenvalue:.6g}")
    print(f"heavy rows kept: {result.n_heavy_rows}  state memory: {result.nbytes / 2**20:.2f} MiB  peak RSS: {peak_mib:.0f} MiB")
    print(f"time: {seconds:.2f} s  ({result.n_rows / max(seconds, 1e-9):,.0f} rows/s)")
    top = np.argsort(-np.abs(v))[:5]
    print("largest entries: " + ", ".join(f"[{i}] {v[i]:+.4f}" for i in top))
    if args.output:
        np.save(args.output, v)
        print(f"eigenvector written to {args.output}")
    return 0


def demo():
    """Each method on a 40,000 x 100 stream, gap R = 2, one heavy row first; vs eigh of A^T A."""
    import numpy as np

    from lowrank.datasets import planted_gap_stream
    from lowrank.streaming import ExactTopEigenvector, OjaTopEigenvector, RandomOrderTopEigenvector

    stream = planted_gap_stream(40_000, 100, gap=2.0, n_heavy=1, heavy_position="start", rng=0)
    A = stream.to_array()
    v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
    data = "planted 40000x100, R=2, 1 heavy row first"
    rows = []
    for cls in (RandomOrderTopEigenvector, OjaTopEigenvector, ExactTopEigenvector):
        cls(random_state=0).fit(A[:500])  # compile the kernels outside the timing
        est, seconds = timed(cls(random_state=0).fit, A, batch_rows=5_000)
        corr = abs(float(est.components_[0] @ v1))
        rows.append(
            DemoRow(cls.__name__, data, f"|<v,v1>| = {corr:.4f}, {est.nbytes_ / 1024:.0f} KiB", "numpy eigh of A^T A", seconds)
        )
    return rows
