"""Band selection and coefficient estimation: the low-rank half of HIR-Diff.

A clean cube X (H x W x B) is modelled as A E with A (H x W x r) holding r selected bands and E (r x B)
the coefficients that rebuild every band from them. Both come from the top-r right singular vectors V_r
(B x r) of the unfolded cube: strong rank-revealing QR on V_r^T picks the bands, and
E = (V_r (V_r[bands])^-1)^T, so that E restricted to the selected bands is the identity.
"""

import numpy as np

from lowrank._utils.backend import is_torch
from lowrank._utils.validation import check_choice, check_int

__all__ = ["select_bands", "estimate_coefficients", "band_subspace"]


def _iv_cube(cube, name="cube"):
    if is_torch(cube):
        if cube.ndim != 3:
            raise ValueError(f"`{name}` must be 3-dimensional (height, width, bands), got {cube.ndim} dimension(s)")
        if cube.is_complex():
            raise TypeError(f"`{name}` must be real; complex input is not supported")
        if not cube.is_floating_point():
            cube = cube.double()
        if not bool(cube.isfinite().all()):
            raise ValueError(f"`{name}` must not contain NaN or infinity")
        return cube
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"`{name}` must be 3-dimensional (height, width, bands), got {cube.ndim} dimension(s)")
    if cube.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {cube.dtype}")
    if cube.dtype not in (np.float32, np.float64):
        cube = cube.astype(np.float64)
    if not np.isfinite(cube).all():
        raise ValueError(f"`{name}` must not contain NaN or infinity")
    if min(cube.shape) == 0:
        raise ValueError(f"`{name}` must be non-empty, got shape {cube.shape}")
    return cube


def band_subspace(cube, rank, *, rng=None):
    """Top-``rank`` right singular vectors (B x rank) of the cube unfolded to (H*W x B).

    Computed with :func:`lowrank.linalg.randomized_svd`; numpy in -> numpy out, torch in -> torch out.
    """
    from lowrank.linalg import randomized_svd

    unfolded = cube.reshape(-1, cube.shape[-1])
    _, _, vh = randomized_svd(unfolded, rank, rng=rng)
    return vh.T


def _select_from_subspace(v, n_bands, method):
    n_total = v.shape[0]
    if method == "uniform":
        return np.unique(np.round(np.linspace(0, n_total - 1, n_bands)).astype(np.intp))
    from lowrank.linalg import rrqr

    vt = v.detach().cpu().numpy().T if is_torch(v) else np.asarray(v).T
    _, _, perm = rrqr(np.ascontiguousarray(vt, dtype=np.float64), n_bands, strong=True, f=1.2)
    return np.sort(np.asarray(perm[:n_bands], dtype=np.intp))


def _coefficients_from_subspace(v, bands):
    """E = (V (V[bands])^-1)^T, shape (len(bands), B)."""
    if is_torch(v):
        import torch

        idx = torch.as_tensor(np.asarray(bands), device=v.device)
        return torch.linalg.solve(v[idx].T, v.T)
    return np.linalg.solve(v[np.asarray(bands)].T, v.T)


def select_bands(cube, n_bands=3, *, method="rrqr", rng=None):
    """Choose ``n_bands`` bands that best span the cube's spectral subspace.

    The cube, unfolded to (H*W x B), gives its top-``n_bands`` right singular vectors V (B x n_bands)
    by randomized SVD. ``method="rrqr"`` runs strong rank-revealing QR (Gu-Eisenstat, f=1.2) on V^T and
    keeps the first ``n_bands`` pivots, which makes V[bands] well conditioned (``|det|`` within a factor of
    the maximum volume); ``"uniform"`` takes equally spaced bands.

    Parameters
    ----------
    cube : array-like or torch.Tensor of shape (height, width, B)
        The (possibly degraded) cube.
    n_bands : int, default=3
        Number of bands; ``1 <= n_bands <= min(height * width, B)``.
    method : {"rrqr", "uniform"}, default="rrqr"
        Selection rule.
    rng : None, int or numpy.random.Generator, default=None
        Seed for the randomized SVD.

    Returns
    -------
    bands : ndarray of int of shape (n_bands,)
        Selected band indices, in increasing order.

    Raises
    ------
    ValueError
        On a cube that is not 3-D, holds NaN/inf, or an ``n_bands`` out of range.

    References
    ----------
    .. [1] Pang et al., "HIR-Diff: Unsupervised Hyperspectral Image Restoration Via Improved Diffusion
       Models", CVPR 2024, arXiv:2402.15865.
    .. [2] Gu and Eisenstat, "Efficient algorithms for computing a strong rank-revealing QR
       factorization", SIAM J. Sci. Comput. 17(4), 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision import select_bands
    >>> rng = np.random.default_rng(0)
    >>> cube = rng.random((16, 16, 3)) @ rng.random((3, 20))
    >>> select_bands(cube, 3, rng=0).shape
    (3,)
    """
    cube = _iv_cube(cube)
    n_bands = check_int(n_bands, "n_bands", low=1, high=min(cube.shape[0] * cube.shape[1], cube.shape[2]))
    check_choice(method, "method", ("rrqr", "uniform"))
    if method == "uniform":
        return _select_from_subspace(np.empty((cube.shape[2], 0)), n_bands, "uniform")
    return _select_from_subspace(band_subspace(cube, n_bands, rng=rng), n_bands, method)


def estimate_coefficients(cube, bands, *, rng=None):
    """Coefficients E such that ``cube ≈ cube[..., bands] @ E`` in the cube's rank-``len(bands)`` subspace.

    With V (B x r) the top-r right singular vectors of the unfolded cube (r = ``len(bands)``),
    ``E = (V (V[bands])^-1)^T``: the columns of E at ``bands`` form the identity, and every band is a
    fixed combination of the selected ones.

    Parameters
    ----------
    cube : array-like or torch.Tensor of shape (height, width, B)
        The (possibly degraded) cube.
    bands : array-like of int of shape (r,)
        Distinct band indices in ``[0, B)``, e.g. from :func:`select_bands`.
    rng : None, int or numpy.random.Generator, default=None
        Seed for the randomized SVD.

    Returns
    -------
    E : ndarray or torch.Tensor of shape (r, B)
        Same array type (and device) as ``cube``.

    Raises
    ------
    ValueError
        On bad ``bands`` (repeated, out of range, more than the cube's rank allows) or a singular
        ``V[bands]``.

    References
    ----------
    .. [1] Pang et al., "HIR-Diff: Unsupervised Hyperspectral Image Restoration Via Improved Diffusion
       Models", CVPR 2024, arXiv:2402.15865, Eq. (14).

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.vision import estimate_coefficients
    >>> rng = np.random.default_rng(0)
    >>> cube = rng.random((16, 16, 3)) @ rng.random((3, 20))
    >>> E = estimate_coefficients(cube, [2, 9, 15], rng=0)
    >>> np.allclose(E[:, [2, 9, 15]], np.eye(3)), np.allclose(cube[..., [2, 9, 15]] @ E, cube)
    (True, True)
    """
    cube = _iv_cube(cube)
    bands = _iv_bands(bands, cube.shape)
    v = band_subspace(cube, len(bands), rng=rng)
    coefficients = _coefficients_from_subspace(v, bands)
    bad = (not bool(coefficients.isfinite().all())) if is_torch(coefficients) else not np.isfinite(coefficients).all()
    if bad:
        raise ValueError("`bands` give a singular V[bands]; choose them with select_bands")
    return coefficients


def _iv_bands(bands, shape):
    bands = np.asarray(bands)
    if bands.ndim != 1 or bands.size == 0 or bands.dtype.kind not in "iu":
        raise ValueError(f"`bands` must be a non-empty 1-D array of integers, got {bands!r}")
    if len(np.unique(bands)) != len(bands):
        raise ValueError(f"`bands` must be distinct, got {bands.tolist()}")
    if bands.min() < 0 or bands.max() >= shape[2]:
        raise ValueError(f"`bands` must lie in [0, {shape[2]}), got {bands.tolist()}")
    if len(bands) > min(shape[0] * shape[1], shape[2]):
        raise ValueError(f"`bands` may hold at most min(height * width, B) = {min(shape[0] * shape[1], shape[2])} "
                         f"indices, got {len(bands)}")
    return bands.astype(np.intp)
