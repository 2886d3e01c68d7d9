"""Quality of a restored hyperspectral cube: PSNR, SSIM (per band, averaged) and SAM.

All take numpy arrays or torch tensors of shape (height, width, bands) and return Python floats.
"""

import numpy as np

from lowrank._utils.backend import to_numpy
from lowrank._utils.validation import check_float

__all__ = ["psnr", "ssim", "sam", "quality_report"]


def _iv_pair(estimate, reference):
    estimate = np.asarray(to_numpy(estimate), dtype=np.float64)
    reference = np.asarray(to_numpy(reference), dtype=np.float64)
    if estimate.shape != reference.shape:
        raise ValueError(f"`estimate` and `reference` must have the same shape, got {estimate.shape} "
                         f"and {reference.shape}")
    if reference.ndim != 3:
        raise ValueError(f"cubes must be (height, width, bands), got {reference.ndim} dimension(s)")
    if not (np.isfinite(estimate).all() and np.isfinite(reference).all()):
        raise ValueError("cubes must not contain NaN or infinity")
    return estimate, reference


def _data_range(reference, data_range):
    if data_range is None:
        return float(reference.max() - min(reference.min(), 0.0)) or 1.0
    return check_float(data_range, "data_range", low=0.0, low_inclusive=False)


def psnr(estimate, reference, *, data_range=None):
    """Peak signal-to-noise ratio in dB, per band and averaged over bands.

    ``10 log10(data_range^2 / MSE_b)`` averaged over bands b (the usual hyperspectral "MPSNR").

    Parameters
    ----------
    estimate, reference : array-like or torch.Tensor of shape (H, W, B)
    data_range : float, optional
        Peak value; default ``max(reference) - min(min(reference), 0)`` (1 for cubes in [0, 1]).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision.metrics_hsi import psnr
    >>> ref = np.zeros((4, 4, 2)); ref[0, 0] = 1.0
    >>> round(psnr(ref + 0.1, ref), 6)
    20.0
    """
    estimate, reference = _iv_pair(estimate, reference)
    peak = _data_range(reference, data_range)
    mse = ((estimate - reference) ** 2).mean(axis=(0, 1))
    with np.errstate(divide="ignore"):
        return float(np.mean(10 * np.log10(peak**2 / np.maximum(mse, 1e-30))))


def ssim(estimate, reference, *, data_range=None):
    """Structural similarity, computed per band (Gaussian window, sigma 1.5) and averaged.

    Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` on each band.

    Parameters
    ----------
    estimate, reference : array-like or torch.Tensor of shape (H, W, B)
    data_range : float, optional
        As in :func:`psnr`.

    Returns
    -------
    float

    References
    ----------
    .. [1] Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility to
       structural similarity", IEEE TIP 13(4), 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision.metrics_hsi import ssim
    >>> ref = np.random.default_rng(0).random((16, 16, 3))
    >>> ssim(ref, ref)
    1.0
    """
    from scipy.ndimage import gaussian_filter

    estimate, reference = _iv_pair(estimate, reference)
    peak = _data_range(reference, data_range)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(a):
        return gaussian_filter(a, sigma=(1.5, 1.5, 0), truncate=3.5, mode="reflect")

    pad = 5  # skimage crops (win_size - 1) // 2, win_size = 2 * int(3.5 * 1.5 + 0.5) + 1 = 11
    mu_x, mu_y = blur(estimate), blur(reference)
    sxx = blur(estimate * estimate) - mu_x**2
    syy = blur(reference * reference) - mu_y**2
    sxy = blur(estimate * reference) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    if s.shape[0] > 2 * pad and s.shape[1] > 2 * pad:
        s = s[pad:-pad, pad:-pad]
    return float(np.round(s.mean(), 12))


def sam(estimate, reference, *, degrees=True):
    """Mean spectral angle between estimated and reference pixel spectra.

    ``mean over pixels of arccos(<x, y> / (|x| |y|))``; pixels where either spectrum is zero are skipped.

    Parameters
    ----------
    estimate, reference : array-like or torch.Tensor of shape (H, W, B)
    degrees : bool, default=True
        Degrees (else radians).

    Returns
    -------
    float

    References
    ----------
    .. [1] Kruse et al., "The spectral image processing system (SIPS)", Remote Sens. Environ. 44, 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision.metrics_hsi import sam
    >>> ref = np.ones((2, 2, 2)); est = ref.copy(); est[..., 1] = 0.0
    >>> round(sam(est, ref), 6)
    45.0
    """
    estimate, reference = _iv_pair(estimate, reference)
    x = estimate.reshape(-1, estimate.shape[-1])
    y = reference.reshape(-1, reference.shape[-1])
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    ok = (nx > 0) & (ny > 0)
    if not ok.any():
        return 0.0
    cos = np.clip((x[ok] * y[ok]).sum(1) / (nx[ok] * ny[ok]), -1.0, 1.0)
    angle = np.arccos(cos).mean()
    return float(np.degrees(angle) if degrees else angle)


def quality_report(estimate, reference, *, data_range=None):
    """``{"psnr": ..., "ssim": ..., "sam": ...}`` for a restored cube."""
    return {"psnr": psnr(estimate, reference, data_range=data_range),
            "ssim": ssim(estimate, reference, data_range=data_range),
            "sam": sam(estimate, reference)}
