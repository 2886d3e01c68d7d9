"""
HIR-Diff: noisy, restored and clean bands of a hyperspectral cube
=================================================================

:class:`~lowrank.vision.HIRDiff` restores a hyperspectral cube ``X ≈ A E`` through a few selected
bands ``A`` (an image a small diffusion prior understands) and a coefficient matrix ``E``
estimated from the degraded cube. Here a 64 x 64 x 31 synthetic cube built from the astronaut
photograph and measured reflectance spectra (:func:`~lowrank.datasets.synthetic_hyperspectral`) is
corrupted with Gaussian noise of standard deviation 50/255 and denoised with the shipped U-Net
prior and a 20-step schedule. The references, in the same script: the noisy input and the
rank-3 truncated SVD of the noisy cube along the spectral mode (the best rank-3 spectral
subspace, a strong classical denoiser for such cubes); PSNR against the clean cube.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from lowrank.datasets import synthetic_hyperspectral
from lowrank.vision import Denoise, HIRDiff
from lowrank.vision.metrics_hsi import psnr

torch.manual_seed(0)
clean = synthetic_hyperspectral("astronaut", (64, 64), rng=0).cube  # 64 x 64 x 31, 400-700 nm
noisy = Denoise().degrade(clean, 50 / 255, rng=0)
restored = np.asarray(HIRDiff(n_steps=20, random_state=0).restore(noisy, "denoise"))

flat = np.asarray(noisy).reshape(-1, clean.shape[-1])
U, s, Vh = np.linalg.svd(flat, full_matrices=False)
svd3 = ((U[:, :3] * s[:3]) @ Vh[:3]).reshape(clean.shape)

scores = {name: float(psnr(cube, clean)) for name, cube in
          (("noisy", noisy), ("rank-3 SVD", svd3), ("HIR-Diff", restored))}
for name, value in scores.items():
    print(f"{name:10s} PSNR {value:6.2f} dB")

bands = (5, 15, 25)  # 450, 550 and 650 nm
panels = (("noisy", noisy), ("rank-3 SVD", svd3), ("HIR-Diff", restored), ("clean", clean))
fig, axes = plt.subplots(len(bands), len(panels), figsize=(9, 7))
for i, band in enumerate(bands):
    for j, (name, cube) in enumerate(panels):
        ax = axes[i, j]
        ax.imshow(np.clip(np.asarray(cube)[:, :, band], 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(name if name == "clean" else f"{name}\n{scores[name]:.2f} dB")
        if j == 0:
            ax.set_ylabel(f"band {band}\n{400 + 10 * band} nm")
fig.suptitle(r"Denoising, $\sigma = 50/255$ (PSNR over all 31 bands)")
fig.tight_layout()

# %%
# The claim, checked: HIR-Diff gains more than 12 dB over the noisy cube and beats the rank-3
# spectral SVD of the same noisy cube.
assert scores["HIR-Diff"] > scores["noisy"] + 12, scores
assert scores["HIR-Diff"] > scores["rank-3 SVD"], scores
