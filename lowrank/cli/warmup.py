"""``lowrank warmup [AREA ...]``: compile every numba kernel once and store it in the kernel cache.

Meant for container images and CI: run it once after installing (with the same ``NUMBA_CACHE_DIR`` /
home as the later runs) and no later process pays numba's compile time again. Each area runs its
public functions on tiny inputs with the default dtypes (float64, and float32 where a method computes
in float32 by default), so the kernels compiled are the ones a default call uses; a call with other
dtypes compiles its own variant on first use and caches it then.
"""

import time

import numpy as np


def _graphs():
    import scipy.sparse as sp

    from lowrank.graphs import PowerWalk, fastrp, personalized_pagerank

    rows = np.array([0, 1, 2, 3, 4, 0])
    cols = np.array([1, 2, 3, 4, 0, 2])
    A = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(6, 6))  # vertex 5 is dangling
    for dtype in (np.float32, np.float64):
        fastrp(A + A.T, 4, dtype=dtype, rng=0)
    for method in ("power", "push"):
        personalized_pagerank(A, [0, 2], method=method)
    index = PowerWalk(n_walks=2, walk_length=3, random_state=0).fit(A)
    index.query([0, 1])
    index.query([0, 1], threshold=1e-4)  # the decomposition query


def _completion():
    from lowrank.completion import complete_matrix
    from lowrank.datasets import planted_low_rank

    X = planted_low_rank(30, 24, 2, 0.5, rng=0).observed
    for kwargs in (dict(method="robust_altmin"), dict(method="robust_altmin", preconditioner="sketch"),
                   dict(method="altmin"), dict(method="softimpute", shrinkage=1.0)):
        complete_matrix(X, 2, max_iter=2, rng=0, **kwargs)
    complete_matrix(X, 2, max_iter=2, validation_fraction=0.2, rng=0).predict([0, 1], [0, 1])


def _streaming():
    import scipy.sparse as sp

    from lowrank.streaming import ExactTopEigenvector, OjaTopEigenvector, RandomOrderTopEigenvector

    X = np.random.default_rng(0).standard_normal((64, 5))
    for cls in (RandomOrderTopEigenvector, OjaTopEigenvector, ExactTopEigenvector):
        for data in (X, X.astype(np.float32), sp.csr_array(X)):
            cls(random_state=0).fit(data, batch_rows=16)


def _linalg():
    from lowrank.linalg import sparse_random_projection

    sparse_random_projection(20, 4, rng=0)


def _tensors():
    from lowrank.tensors._kalman import kalman_rts

    # FunBaT's chain smoother; a tiny fit would run it in Python, so call the compiled path directly
    J, d, R = 3, 2, 1
    A = np.broadcast_to(np.eye(d), (J, d, d))
    kalman_rts(A, 0.1 * A, np.eye(d), R, np.ones((J, R, R)), np.ones((J, R)), use_numba=True)


AREAS = {"graphs": _graphs, "completion": _completion, "streaming": _streaming, "linalg": _linalg,
         "tensors": _tensors}


def register(subparsers):
    p = subparsers.add_parser(
        "warmup",
        help="compile every numba kernel once and store it in the on-disk kernel cache (for images and CI)",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("areas", nargs="*", metavar="AREA",
                   help=f"areas to warm (default: all of {', '.join(sorted(AREAS))})")
    p.set_defaults(func=_run)


def _kernel_counts():
    from lowrank._utils.jit import KERNELS

    compiled = sum(len(k.signatures) for k in KERNELS)
    hits = sum(sum(k.stats.cache_hits.values()) for k in KERNELS if k.signatures)
    return compiled, hits


def _run(args):
    from lowrank._utils.jit import cache_root, cache_size
    from lowrank.cli import UserError

    unknown = [a for a in args.areas if a not in AREAS]
    if unknown:
        raise UserError(f"argument AREA: unknown area {unknown[0]!r} (choose from {', '.join(sorted(AREAS))})")
    before = _kernel_counts()
    for name in args.areas or sorted(AREAS):
        start = time.perf_counter()
        AREAS[name]()
        compiled, hits = _kernel_counts()
        print(f"{name:<11} {compiled - before[0]:3d} kernel variants ({hits - before[1]} from the cache) "
              f"in {time.perf_counter() - start:.1f} s")
        before = (compiled, hits)
    root = cache_root()
    print(f"kernel cache: {root} ({cache_size(root) / 2**20:.1f} MiB)")
    return 0
