"""Edge-weighted anisotropic 3-D total variation of a cube (N, B, H, W), and its edge weights."""

from lowrank._utils.optional import import_optional

__all__ = ["weighted_tv_loss", "edge_weights", "differences"]


def differences(x):
    """Forward differences of (..., B, H, W) along W, H and B (each one element shorter on its axis)."""
    dx = x[..., :, :, 1:] - x[..., :, :, :-1]
    dy = x[..., :, 1:, :] - x[..., :, :-1, :]
    dz = x[..., 1:, :, :] - x[..., :-1, :, :]
    return dx, dy, dz


def edge_weights(reference, delta=0.5):
    """Weights that relax the TV penalty across edges of ``reference`` (HIR-Diff's weighted TV).

    For each direction d (W, H, spectral), with g = |mean over bands of the forward difference of
    ``reference``|: w = max(g) / (g + delta * max(g)), then all three divided by their common maximum,
    so weights lie in (0, 1] and are smallest on strong edges.

    Parameters
    ----------
    reference : torch.Tensor of shape (..., B, H, W)
        A clean-ish estimate (HIR-Diff uses a rank-3 SVD denoise of the input).
    delta : float, default=0.5
        Larger values flatten the weights towards 1.

    Returns
    -------
    (wx, wy, wz) : tuple of torch.Tensor
        Broadcastable to the differences returned by :func:`differences`.
    """
    torch = import_optional("torch", purpose="HIR-Diff")
    out = []
    for d in differences(reference):
        g = d.mean(dim=-3, keepdim=True).abs()
        top = g.max().clamp_min(torch.finfo(g.dtype).tiny)
        out.append(top / (g + delta * top))
    top = max(float(w.max()) for w in out)
    return tuple(w / top for w in out)


def weighted_tv_loss(x, weights=None):
    """Edge-weighted anisotropic 3-D total variation of a cube.

    ``mean(|wx * Dx x|) + mean(|wy * Dy x|) + mean(|wz * Dz x|)``, with D forward differences along
    width, height and the spectral axis, each mean taken over that difference's own entries.

    Parameters
    ----------
    x : torch.Tensor of shape (..., B, H, W)
        The cube (bands before the two spatial axes), differentiable.
    weights : tuple of three torch.Tensor, optional
        (wx, wy, wz) broadcastable to the three differences, e.g. from :func:`edge_weights`;
        ``None`` means unweighted TV.

    Returns
    -------
    loss : torch.Tensor (scalar)

    Raises
    ------
    ValueError
        When ``x`` has fewer than 3 dimensions or ``weights`` is not a triple.

    References
    ----------
    .. [1] Pang et al., "HIR-Diff: Unsupervised Hyperspectral Image Restoration Via Improved Diffusion
       Models", CVPR 2024, arXiv:2402.15865, Eq. (12).

    Examples
    --------
    >>> import torch
    >>> from lowrank.vision import weighted_tv_loss
    >>> x = torch.zeros(1, 2, 4, 4); x[..., 2:] = 1.0   # a vertical step edge
    >>> round(float(weighted_tv_loss(x)), 4)             # 8 of the 24 width-differences are 1
    0.3333
    """
    torch = import_optional("torch", purpose="HIR-Diff")
    if not torch.is_tensor(x):
        raise TypeError(f"`x` must be a torch.Tensor (the loss is differentiated), got {type(x).__name__}; "
                        "wrap a numpy cube with torch.as_tensor")
    if x.ndim < 3:
        raise ValueError(f"`x` must be (..., bands, height, width), got {x.ndim} dimension(s)")
    if weights is None:
        weights = (1.0, 1.0, 1.0)
    if len(weights) != 3:
        raise ValueError(f"`weights` must be a triple (wx, wy, wz), got {len(weights)} entries")
    loss = 0.0
    for d, w in zip(differences(x), weights):
        if d.numel():
            loss = loss + (w * d).abs().mean()
    return loss
