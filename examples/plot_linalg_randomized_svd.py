"""
Randomized SVD and CUR against the optimal truncated SVD
========================================================

The shared core (:mod:`lowrank.linalg`) approximates a matrix by rank ``k`` in two ways used all
over the library: :func:`~lowrank.linalg.randomized_svd` (a randomized range finder with ``q``
power iterations, Halko, Martinsson & Tropp 2011) and :func:`~lowrank.linalg.cur` (actual columns and
rows chosen by strong rank-revealing QR). Neither can beat the truncated SVD (Eckart-Young), so the
reference is the exact SVD's error ``sqrt(sum_{j>k} s_j**2)``. The test matrix, 1500 x 1000, has a
slowly decaying spectrum ``s_j = j**-0.5``, the hard case for a range finder without power
iterations.
"""

import matplotlib.pyplot as plt
import numpy as np

from lowrank.linalg import cur, randomized_svd

rng = np.random.default_rng(0)
m, n = 1500, 1000
U0 = np.linalg.qr(rng.standard_normal((m, n)))[0]
V0 = np.linalg.qr(rng.standard_normal((n, n)))[0]
spectrum = np.arange(1, n + 1) ** -0.5
A = (U0 * spectrum) @ V0.T
norm = np.linalg.norm(A)

ranks = np.array([5, 10, 20, 40, 80])
optimal = np.array([np.sqrt(np.sum(spectrum[k:] ** 2)) for k in ranks]) / norm
curves = {}
for q in (0, 1, 2, 4):
    errors = []
    for k in ranks:
        U, s, Vh = randomized_svd(A, int(k), n_iter=q, rng=0)
        errors.append(np.linalg.norm(A - (U * s) @ Vh) / norm)
    curves[f"randomized SVD, q = {q}"] = np.array(errors)
errors = []
for k in ranks:
    C, Ucore, R, rows, cols = cur(A, int(k), n_rows=2 * int(k), n_cols=2 * int(k))
    errors.append(np.linalg.norm(A - C @ Ucore @ R) / norm)
curves["CUR (RRQR, 2k rows and columns)"] = np.array(errors)

fig, ax = plt.subplots(figsize=(6.5, 4))
for name, values in curves.items():
    ax.plot(ranks, values / optimal, "o-", label=name)
ax.axhline(1.0, color="k", lw=1, ls="--", label="truncated SVD (optimal)")
ax.set_xscale("log")
ax.set_xticks(ranks, [str(k) for k in ranks])
ax.set_xlabel("rank k")
ax.set_ylabel("Frobenius error / optimal error")
ax.set_title(r"1500 x 1000, $s_j = j^{-1/2}$")
ax.legend(fontsize=8)
fig.tight_layout()
for name, values in curves.items():
    print(f"{name:34s} error / optimal: " + "  ".join(f"{v:.4f}" for v in values / optimal))

# %%
# The claim, checked: nothing beats the optimum; every power iteration brings randomized SVD closer
# to it, with two iterations within 1 % at every rank; CUR, restricted to actual columns and rows
# of ``A`` (twice k of each), stays within 30 % of the optimal rank-k error (13-22 % measured when
# this example was written: the price of an interpretable, sparse-friendly factorization).
for values in curves.values():
    assert np.all(values >= optimal * (1 - 1e-9))
for q_low, q_high in ((0, 1), (1, 2), (2, 4)):
    assert np.all(curves[f"randomized SVD, q = {q_high}"] <= curves[f"randomized SVD, q = {q_low}"] * (1 + 1e-9))
assert np.all(curves["randomized SVD, q = 2"] < 1.01 * optimal)
assert np.all(curves["CUR (RRQR, 2k rows and columns)"] < 1.30 * optimal)
