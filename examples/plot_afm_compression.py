"""
AFM: AUC loss against compression ratio, compared with weight SVD
=================================================================

Atomic feature mimicking (:func:`~lowrank.ctr.compress_afm`) compresses each layer of a CTR model by
keeping the top eigenvectors of the covariance of what the layer *outputs* on calibration data,
where plain weight SVD (:func:`~lowrank.ctr.compress_weight_svd`) keeps the top singular directions
of the weight itself. Outputs concentrate in few directions even when weights do not, so at the same
parameter budget AFM should lose less AUC. An MLP CTR model (:class:`~lowrank.ctr.MLPCTR`) is trained
on a synthetic Criteo-shaped click log labelled by a known teacher
(:func:`~lowrank.datasets.synthetic_ctr`) and both compressors are run at the same global parameter
budgets; the reference is the uncompressed model's test AUC (:func:`~lowrank.ctr.evaluate_ctr`).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from lowrank.ctr import CTRTrainer, MLPCTR, compress_afm, compress_weight_svd, evaluate_ctr
from lowrank.datasets import synthetic_ctr

torch.manual_seed(0)
data = synthetic_ctr(50_000, n_categorical=8, cardinality=200, rng=0)
train, calib, test = data.split((0.75, 0.05, 0.2), rng=0)
model = MLPCTR(data.cardinalities, embedding_dim=16, hidden=(128, 64))
CTRTrainer(lr=3e-3, max_epochs=3, batch_size=1024, random_state=0).fit(model, train, test)
full_auc = evaluate_ctr(model, test)["auc"]
calibration = (torch.as_tensor(calib.dense), torch.as_tensor(calib.categorical))

budgets = (0.08, 0.15, 0.25, 0.4)
curves = {"AFM": ([], []), "weight SVD": ([], [])}
for budget in budgets:
    for name, compress in (
        ("AFM", lambda: compress_afm(model, calibration, budget=budget)),
        ("weight SVD", lambda: compress_weight_svd(model, budget=budget)),
    ):
        small, report = compress()
        ratios, losses = curves[name]
        ratios.append(report.compression_ratio)
        losses.append(full_auc - evaluate_ctr(small, test)["auc"])
for name, (ratios, losses) in curves.items():
    print(f"{name:10s} " + "  ".join(f"x{r:.2f}: dAUC {d:+.4f}" for r, d in zip(ratios, losses)))
print(f"uncompressed test AUC {full_auc:.4f}")

fig, ax = plt.subplots(figsize=(6, 4))
for name, (ratios, losses) in curves.items():
    ax.plot(ratios, np.maximum(losses, 1e-5), "o-", label=name)
ax.set_yscale("log")
ax.set_xlabel("compression ratio of the whole model (parameters before / after)")
ax.set_ylabel("AUC lost on the test set")
ax.set_title(f"MLP CTR model, test AUC {full_auc:.3f} uncompressed")
ax.legend()
fig.tight_layout()

# %%
# The claim, checked: at compression ratios up to about 7x AFM loses less AUC than weight SVD
# (several times less at 2.5x and 4x), at ratios within 2 % of each other (the same budget buys
# the same parameter count). At the most aggressive budget (about 12.7x) the two are close and
# weight SVD was slightly ahead when this example was written (dAUC 0.0039 vs 0.0046): the paper's
# "better at every ratio" does not hold there on this model, and the example does not claim it.
for budget, r_afm, d_afm, r_svd, d_svd in zip(budgets, *curves["AFM"], *curves["weight SVD"]):
    assert abs(r_afm / r_svd - 1) < 0.02, (r_afm, r_svd)
    if budget >= 0.15:
        assert d_afm < d_svd, (r_afm, d_afm, d_svd)
