"""
Householder projector: latent traversals before and after fine-tuning
=====================================================================

A generator maps a latent code ``z`` (8-D) through a style layer ``W`` to three image factors --
horizontal position, vertical position and size of a blob -- and renders them. The true layer is
``W_true = diag(1.6, 1.2, 0.8) Q`` with orthonormal rows ``Q`` (one latent direction per factor); the
layer we are given is *entangled*, ``W = M W_true`` for a mixing matrix ``M``, so SeFa's closed-form
directions (:func:`~lowrank.vision.closed_form_directions`, the top right singular vectors of ``W``)
each move several factors at once. :class:`~lowrank.vision.HouseholderProjector` replaces the layer by
``H(U) diag(s) H(V)`` with learned scales ``s``, started at the truncated SVD of ``W``
(:meth:`~lowrank.vision.HouseholderProjector.from_linear`) and fine-tuned for 150 Adam steps to
reproduce the images of the true generator. Its three right singular vectors, orthonormal by
construction at every step, are then traversed with :func:`~lowrank.vision.traverse`. The
reference: the factors measured from the rendered pixels (centroid and spread of the blob), so
"one direction moves one factor" is checked on the images. (A plain ``Linear`` fine-tuned the same
way and factored by SeFa afterwards would find these directions too: what the projector adds is
that the directions are an orthonormal set throughout training, without a penalty.)
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from lowrank.vision import HouseholderProjector, closed_form_directions, traverse

torch.manual_seed(0)
size = 32
grid_y, grid_x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")


def render(factors):
    """Images (n, size, size) of a blob at (0.5 + 0.12 f0, 0.5 + 0.12 f1) with radius 0.08 e^{0.25 f2}."""
    x, y = 0.5 + 0.12 * factors[:, :1, None], 0.5 + 0.12 * factors[:, 1:2, None]
    radius = 0.08 * torch.exp(0.25 * factors[:, 2:3, None])
    return torch.exp(-((grid_x - x) ** 2 + (grid_y - y) ** 2) / (2 * radius**2))


def measure(images):
    """Factors read back from pixels: centroid (x, y) and root-mean-square radius of each blob."""
    mass = images.sum(dim=(1, 2))
    cx = (images * grid_x).sum(dim=(1, 2)) / mass
    cy = (images * grid_y).sum(dim=(1, 2)) / mass
    spread = ((images * ((grid_x - cx[:, None, None]) ** 2 + (grid_y - cy[:, None, None]) ** 2)).sum(dim=(1, 2))
              / mass).sqrt()
    return torch.stack([cx, cy, spread], dim=1)


Q = torch.linalg.qr(torch.randn(8, 3))[0].T  # orthonormal rows: the disentangled factor directions
W_true = torch.diag(torch.tensor([1.6, 1.2, 0.8])) @ Q
mixing = torch.tensor([[1.0, 0.6, 0.3], [-0.5, 1.0, 0.4], [0.3, -0.4, 1.0]])
layer = torch.nn.Linear(8, 3, bias=False)
with torch.no_grad():
    layer.weight.copy_(mixing @ W_true)  # the entangled "trained" layer

projector = HouseholderProjector.from_linear(layer, rank=3, learn_scale=True)
optimizer = torch.optim.Adam(projector.parameters(), lr=0.02)
for step in range(150):
    z = torch.randn(64, 8)
    loss = ((render(projector(z)) - render(z @ W_true.T)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

degrees = np.linspace(-2, 2, 7)
z0 = torch.zeros(1, 8)
sefa = torch.as_tensor(closed_form_directions(layer.weight.detach(), 3))
with torch.no_grad():
    tuned = projector.directions()


def purity(decode, directions):
    """Per direction: the share of the measured factor change that falls on its largest factor."""
    out = []
    for d in directions:
        with torch.no_grad():
            change = (measure(decode(0.5 * d[None])) - measure(decode(-0.5 * d[None]))).abs()[0]
        change = change / torch.tensor([0.12, 0.12, 0.08 * 0.25])  # factor units
        out.append(float(change.max() / change.sum()))
    return np.array(out)


purity_sefa = purity(lambda z: render(layer(z)), sefa)
purity_tuned = purity(lambda z: render(projector(z)), tuned)
gram_error = float((tuned.double() @ tuned.double().T - torch.eye(3, dtype=torch.float64)).abs().max())
alignment = np.abs((tuned.double() @ Q.double().T).numpy()).max(axis=1)
print("purity of each direction (1 = moves one factor only)")
print("  SeFa on the entangled layer:", np.round(purity_sefa, 3))
print("  fine-tuned projector:      ", np.round(purity_tuned, 3))
print(f"final loss {loss.item():.2e}; max |D D^T - I| of the directions {gram_error:.1e}; "
      f"|cos| with the true directions {np.round(alignment, 4)}")

fig, axes = plt.subplots(6, len(degrees), figsize=(8, 7.5))
rows = []
with torch.no_grad():
    for name, decode, directions in (
        ("SeFa", lambda z: render(layer(z)), sefa),
        ("projector", lambda z: render(projector(z)), tuned),
    ):
        for k in range(3):
            rows.append((f"{name} {k + 1}", traverse(decode, z0, directions[k], degrees)[:, 0]))
for i, (name, images) in enumerate(rows):
    for j in range(len(degrees)):
        ax = axes[i, j]
        ax.imshow(images[j].numpy(), cmap="magma", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel(name, fontsize=8)
        if i == 0:
            ax.set_title(f"t = {degrees[j]:+.1f}", fontsize=8)
fig.suptitle("Traversals z0 + t d: SeFa's directions (top) mix factors,\nthe fine-tuned projector's (bottom) do not", fontsize=10)
fig.tight_layout()

# %%
# The claim, checked on the pixels: after fine-tuning, each of the projector's directions moves one
# factor (more than 95 % of the measured change) and lies along a true direction (``|cos| > 0.99``),
# SeFa's directions on the entangled layer do not (their average purity is below 0.8), and the
# directions stay orthonormal to float32 precision through the Adam steps, with no penalty term.
assert np.all(purity_tuned > 0.95), purity_tuned
assert np.all(alignment > 0.99), alignment
assert purity_sefa.mean() < 0.8, purity_sefa
assert gram_error < 1e-5, gram_error
