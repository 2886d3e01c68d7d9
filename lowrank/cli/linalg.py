"""Command-line face of the shared core: its rows in ``lowrank demo``."""

import numpy as np

from lowrank.cli import DemoRow, timed


def demo():
    from lowrank.linalg import cur, randomized_svd, rrqr, strong_rrqr_bounds

    rng = np.random.default_rng(0)
    A = (rng.standard_normal((1000, 100)) * 0.9 ** np.arange(100)) @ rng.standard_normal((100, 500))
    (U, s, Vh), t = timed(randomized_svd, A, 20, rng=0)
    s_exact = np.linalg.svd(A, compute_uv=False)
    opt = np.sqrt(np.sum(s_exact[20:] ** 2))
    err = np.linalg.norm(A - (U * s) @ Vh)
    rows = [
        DemoRow("randomized_svd", "1000x500 decaying spectrum, rank 20", f"error / optimal = {err / opt:.4f}", "LAPACK SVD", t)
    ]
    (C, Ucur, R, _, _), t = timed(cur, A, 20)
    rows.append(
        DemoRow("cur (rrqr)", "same matrix, rank 20", f"error / optimal = {np.linalg.norm(A - C @ Ucur @ R) / opt:.2f}", "LAPACK SVD", t)
    )
    V = rng.standard_normal((3, 31))
    (_, _, perm), t = timed(rrqr, V, 3, strong=True)
    import scipy.linalg

    bound = max(strong_rrqr_bounds(scipy.linalg.qr(V[:, perm], mode="economic")[1], 3))
    rows.append(DemoRow("rrqr strong", "3x31 band selection", f"max bound = {bound:.3f} (<= 1.2)", "Gu-Eisenstat bound", t))
    return rows
