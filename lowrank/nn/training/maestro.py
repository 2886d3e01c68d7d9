"""Maestro: a factorized linear layer trained with ordered dropout so that every prefix rank is a valid model."""

import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn.training")
nn = torch.nn

__all__ = ["OrderedLowRankConv", "OrderedLowRankLinear"]


class OrderedLowRankLinear(nn.Module):
    """``y = U_k V_k x + b``: the first ``k`` of ``R`` components, ``k`` drawn per step by ordered dropout (Maestro).

    ``U`` (``out x R``) and ``V`` (``R x in``) start at ``U sqrt(S)`` and ``sqrt(S) V^T`` of the SVD of a
    Kaiming-uniform weight. In training mode with ``ordered_dropout``, each forward keeps the first
    ``k = ceil(p R)`` components with ``p ~ Uniform(p_min, 1]``, so the leading components learn to carry the
    most of the map (on a linear layer with isotropic inputs they converge to its SVD). :meth:`group_lasso` is
    the hierarchical penalty ``sum_i sqrt(sum_{j >= i} ||u_j||^2 + ||v_j||^2)`` (later components sit in more
    groups and shrink first). After training, :meth:`truncate` keeps any prefix; :meth:`prune` keeps the
    prefix up to the last component whose importance ``||u_j|| ||v_j||`` reaches a threshold. A truncation
    past break-even (``k (in + out) >= in out``) returns a dense ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    rank : int, optional
        ``R``, default ``min(in, out)``.
    ordered_dropout : bool, default=True
    p_min : float in [0, 1), default=0.0
    bias : bool, default=True
    seed : int, default=0
        Seeds the initial weight and the dropout draws.

    Raises
    ------
    TypeError, ValueError
        On non-integer sizes, a rank out of range or ``p_min`` outside [0, 1).

    References
    ----------
    Horvath et al., "Maestro: Uncovering Low-Rank Structures via Trainable Decomposition", 2023, arXiv:2308.14929.

    Examples
    --------
    >>> layer = OrderedLowRankLinear(16, 8, seed=0).eval()
    >>> x = torch.randn(3, 16)
    >>> bool(torch.allclose(layer.truncate(3)(x), layer(x, rank=3), atol=1e-6))
    True
    """

    def __init__(self, in_features, out_features, rank=None, *, ordered_dropout=True, p_min=0.0, bias=True, seed=0,
                 device=None, dtype=None):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        limit = min(in_features, out_features)
        rank = limit if rank is None else check_int(rank, "rank", low=1, high=limit)
        self.p_min = check_float(p_min, "p_min", low=0, high=1, high_inclusive=False)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.ordered_dropout = bool(ordered_dropout)
        self._gen = torch.Generator().manual_seed(check_int(seed, "seed", low=0))
        bound = 1.0 / math.sqrt(in_features)
        W = (torch.rand(out_features, in_features, generator=self._gen, dtype=torch.float64) * 2 - 1) * bound
        U, s, Vh = torch.linalg.svd(W, full_matrices=False)
        root = s[:rank].sqrt()
        factory = dict(device=device, dtype=dtype or torch.get_default_dtype())
        self.U = nn.Parameter((U[:, :rank] * root).to(**factory))
        self.V = nn.Parameter((root[:, None] * Vh[:rank]).to(**factory))
        self.bias = nn.Parameter(torch.zeros(out_features, **factory)) if bias else None

    def sample_rank(self):
        """An ordered-dropout rank ``ceil(p R)``, ``p ~ Uniform(p_min, 1]``."""
        p = self.p_min + (1 - self.p_min) * (1 - torch.rand((), generator=self._gen).item())
        return max(1, min(self.rank, math.ceil(p * self.rank)))

    def forward(self, x, rank=None):
        if rank is None:
            rank = self.sample_rank() if (self.training and self.ordered_dropout) else self.rank
        y = (x @ self.V[:rank].T) @ self.U[:, :rank].T
        return y if self.bias is None else y + self.bias

    def group_lasso(self):
        """Hierarchical group lasso ``sum_i sqrt(sum_{j >= i} ||u_j||^2 + ||v_j||^2)``.

        Add ``lam`` times it to the loss.
        """
        energy = self.U.pow(2).sum(0) + self.V.pow(2).sum(1)
        tails = energy.flip(0).cumsum(0).flip(0)
        return tails.clamp_min(1e-30).sqrt().sum()

    def importance(self):
        """``||u_j|| ||v_j||`` per component (the singular values when the factors are orthogonal)."""
        return (self.U.detach().norm(dim=0) * self.V.detach().norm(dim=1))

    @torch.no_grad()
    def truncate(self, rank):
        """The first ``rank`` components as a new layer; a dense ``nn.Linear`` past break-even."""
        rank = check_int(rank, "rank", low=1, high=self.rank)
        factory = dict(device=self.U.device, dtype=self.U.dtype)
        if rank * (self.in_features + self.out_features) >= self.in_features * self.out_features:
            dense = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, **factory)
            dense.weight.copy_(self.U[:, :rank] @ self.V[:rank])
            if self.bias is not None:
                dense.bias.copy_(self.bias)
            return dense
        new = OrderedLowRankLinear(self.in_features, self.out_features, rank, ordered_dropout=self.ordered_dropout,
                                   p_min=self.p_min, bias=self.bias is not None, **factory)
        new.U.copy_(self.U[:, :rank])
        new.V.copy_(self.V[:rank])
        if self.bias is not None:
            new.bias.copy_(self.bias)
        return new.train(self.training)

    def prune(self, threshold):
        """Truncate after the last component whose importance is at least ``threshold`` (at least one kept)."""
        threshold = check_float(threshold, "threshold", low=0)
        keep = torch.nonzero(self.importance() >= threshold).flatten()
        return self.truncate(int(keep.max()) + 1 if keep.numel() else 1)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"ordered_dropout={self.ordered_dropout}")


class OrderedLowRankConv(nn.Module):
    """The convolutional form of :class:`OrderedLowRankLinear`: ``up_k(down_k(x))`` with ordered dropout (Maestro).

    ``down`` is a ConvNd ``in -> R`` with the full kernel (stride, padding, dilation), ``up`` a 1x1 ConvNd
    ``R -> out``; both start from the SVD of a Kaiming-uniform weight reshaped channel-wise to
    ``(out, in * prod(kernel))``. Training mode keeps the first ``ceil(p R)`` channels of the bottleneck.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
    rank : int, optional
        ``R``, default ``min(out, in * kernel_size**dims)``.
    dims : {1, 2, 3}, default=2
    stride, padding, dilation : int, default=1, 0, 1
    ordered_dropout : bool, default=True
    p_min : float in [0, 1), default=0.0
    bias : bool, default=True
    seed : int, default=0

    Raises
    ------
    TypeError, ValueError
        On non-integer sizes, a rank out of range or ``p_min`` outside [0, 1).

    References
    ----------
    Horvath et al., "Maestro: Uncovering Low-Rank Structures via Trainable Decomposition", 2023, arXiv:2308.14929.

    Examples
    --------
    >>> conv = OrderedLowRankConv(3, 8, 3, padding=1).eval()
    >>> x = torch.randn(2, 3, 6, 6)
    >>> bool(torch.allclose(conv.truncate(4)(x), conv(x, rank=4), atol=1e-6))
    True
    """

    def __init__(self, in_channels, out_channels, kernel_size, rank=None, *, dims=2, stride=1, padding=0, dilation=1,
                 ordered_dropout=True, p_min=0.0, bias=True, seed=0, device=None, dtype=None):
        super().__init__()
        if dims not in (1, 2, 3):
            raise ValueError(f"`dims` must be 1, 2 or 3, got {dims!r}")
        in_channels = check_int(in_channels, "in_channels", low=1)
        out_channels = check_int(out_channels, "out_channels", low=1)
        kernel_size = check_int(kernel_size, "kernel_size", low=1)
        fan_in = in_channels * kernel_size**dims
        limit = min(out_channels, fan_in)
        rank = limit if rank is None else check_int(rank, "rank", low=1, high=limit)
        self.p_min = check_float(p_min, "p_min", low=0, high=1, high_inclusive=False)
        self.in_channels, self.out_channels, self.kernel_size, self.rank, self.dims = (
            in_channels, out_channels, kernel_size, rank, dims)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.ordered_dropout = bool(ordered_dropout)
        self._gen = torch.Generator().manual_seed(check_int(seed, "seed", low=0))
        self._conv = getattr(nn.functional, f"conv{dims}d")
        bound = 1.0 / math.sqrt(fan_in)
        W = (torch.rand(out_channels, fan_in, generator=self._gen, dtype=torch.float64) * 2 - 1) * bound
        U, s, Vh = torch.linalg.svd(W, full_matrices=False)
        root = s[:rank].sqrt()
        factory = dict(device=device, dtype=dtype or torch.get_default_dtype())
        ks = (kernel_size,) * dims
        self.down = nn.Parameter((root[:, None] * Vh[:rank]).reshape(rank, in_channels, *ks).to(**factory))
        self.up = nn.Parameter((U[:, :rank] * root).reshape(out_channels, rank, *(1,) * dims).to(**factory))
        self.bias = nn.Parameter(torch.zeros(out_channels, **factory)) if bias else None

    sample_rank = OrderedLowRankLinear.sample_rank

    def forward(self, x, rank=None):
        if rank is None:
            rank = self.sample_rank() if (self.training and self.ordered_dropout) else self.rank
        h = self._conv(x, self.down[:rank], None, self.stride, self.padding, self.dilation)
        return self._conv(h, self.up[:, :rank], self.bias)

    def group_lasso(self):
        """Hierarchical group lasso over the bottleneck channels (as :meth:`OrderedLowRankLinear.group_lasso`)."""
        energy = self.up.pow(2).flatten(2).sum((0, 2)) + self.down.pow(2).flatten(1).sum(1)
        return energy.flip(0).cumsum(0).flip(0).clamp_min(1e-30).sqrt().sum()

    def importance(self):
        """``||up_j|| ||down_j||`` per bottleneck channel."""
        return self.up.detach().flatten(2).norm(dim=(0, 2)) * self.down.detach().flatten(1).norm(dim=1)

    @torch.no_grad()
    def truncate(self, rank):
        """The first ``rank`` channels as a new layer (prefixes are nested)."""
        rank = check_int(rank, "rank", low=1, high=self.rank)
        new = OrderedLowRankConv(self.in_channels, self.out_channels, self.kernel_size, rank, dims=self.dims,
                                 stride=self.stride, padding=self.padding, dilation=self.dilation,
                                 ordered_dropout=self.ordered_dropout, p_min=self.p_min, bias=self.bias is not None,
                                 device=self.up.device, dtype=self.up.dtype)
        new.down.copy_(self.down[:rank])
        new.up.copy_(self.up[:, :rank])
        if self.bias is not None:
            new.bias.copy_(self.bias)
        return new.train(self.training)

    def weight(self):
        """The dense ConvNd kernel ``(out, in, *kernel)`` of the full-rank layer."""
        return (self.up.flatten(1) @ self.down.flatten(1)).reshape(self.out_channels, self.in_channels,
                                                                   *self.down.shape[2:])
