"""
Streaming top eigenvector with a heavy row: random order vs Oja vs IncrementalPCA
=================================================================================

A stream of 40,000 rows in 100 dimensions has a planted top eigenvector ``v1`` of ``A^T A`` with gap
``R = 10``, but most of that eigenvalue sits in **one heavy row** at the start of the stream; the light
rows alone point to ``v2``. A method that forgets early rows (a decaying-rate Oja) ends on ``v2``.
:class:`~lowrank.streaming.RandomOrderTopEigenvector` (Kacham & Woodruff) keeps heavy rows exactly and
runs a block power method on the light rows; :class:`~lowrank.streaming.OjaTopEigenvector` uses Price &
Xun's rate choice; scikit-learn's :class:`~sklearn.decomposition.IncrementalPCA` keeps a rank-1 SVD.
The reference is the exact top eigenvector of ``A^T A`` (``numpy.linalg.eigh``). The curve: the
correlation ``|<v, v1>|`` after each batch of rows.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import IncrementalPCA

from lowrank.datasets import planted_gap_stream
from lowrank.streaming import OjaTopEigenvector, RandomOrderTopEigenvector

stream = planted_gap_stream(40_000, 100, gap=10.0, n_heavy=1, heavy_position="start", rng=0)
A = stream.to_array()
w, V = np.linalg.eigh(A.T @ A)
v1 = V[:, -1]  # the exact answer over the whole stream

batch_rows = 2000
estimators = {
    "random order (Kacham-Woodruff)": RandomOrderTopEigenvector(random_state=0),
    "Oja (Price-Xun rates)": OjaTopEigenvector(random_state=0),
    "IncrementalPCA (rank 1)": IncrementalPCA(n_components=1),
}
rows_seen, correlation = [], {name: [] for name in estimators}
for batch in stream.batches(batch_rows):
    for name, est in estimators.items():
        est.partial_fit(batch)
        correlation[name].append(abs(float(est.components_[0] @ v1)))
    rows_seen.append(rows_seen[-1] + len(batch) if rows_seen else len(batch))

fig, ax = plt.subplots(figsize=(6.5, 4))
styles = {"random order (Kacham-Woodruff)": dict(lw=4, alpha=0.5), "Oja (Price-Xun rates)": dict(marker="o", ms=3),
          "IncrementalPCA (rank 1)": dict(ls="--", marker="s", ms=3)}
for name, values in correlation.items():
    ax.plot(rows_seen, values, label=name, **styles[name])
ax.set_ylim(-0.02, 1.02)
ax.set_xlabel("rows seen")
ax.set_ylabel(r"$|\langle v, v_1\rangle|$ with the exact top eigenvector")
ax.set_title("One heavy row first, 39,999 light rows in random order")
ax.legend(loc="center right")
fig.tight_layout()

final = {name: values[-1] for name, values in correlation.items()}
for name, value in final.items():
    print(f"{name:32s} final correlation {value:.4f}")

# %%
# The claim, checked: the random-order method ends within 1e-3 of the exact eigenvector (it kept the
# heavy row), while Oja ends far from it, below 0.5. IncrementalPCA recovers it too on this stream:
# each batch is merged with the exact rank-1 SVD of everything before, so the heavy direction, by
# far the largest, is never truncated away (its memory is ``O(d)`` as well; it needs ``d``-column
# SVDs per batch where the random-order method does one pass of matrix-vector work).
assert final["random order (Kacham-Woodruff)"] > 0.999, final
assert final["Oja (Price-Xun rates)"] < 0.5, final
