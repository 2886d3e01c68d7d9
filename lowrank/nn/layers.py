"""Factorized replacements for nn.Linear / nn.Conv1d/2d/3d / nn.Embedding / nn.EmbeddingBag.

Each layer is ``up(down(x))``: a thin map into ``rank`` dimensions followed by a map back out,
holding ``rank * (in + out)`` weights instead of ``in * out``. They are plain modules, so
they train, save (``state_dict``) and move between devices like the layers they replace.
"""

import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_int

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn


class LowRankLinear(nn.Module):
    """``y = up(down(x))`` with ``down: in -> rank`` and ``up: rank -> out`` (both affine).

    Parameters
    ----------
    in_features, out_features, rank : int
    bias : bool, default=True
        Bias of the output map (the inner map's bias is kept too: it carries ``U_k^T b`` in AFM).

    Examples
    --------
    >>> layer = LowRankLinear(64, 32, rank=4)
    >>> layer(torch.zeros(2, 64)).shape
    torch.Size([2, 32])
    """

    def __init__(self, in_features, out_features, rank, *, bias=True, device=None, dtype=None):
        super().__init__()
        if not 0 < rank <= min(in_features, out_features):
            raise ValueError(f"`rank` must satisfy 0 < rank <= min(in_features, out_features), got {rank}")
        self.down = nn.Linear(in_features, rank, bias=True, device=device, dtype=dtype)
        self.up = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

    @property
    def rank(self):
        return self.down.out_features

    def forward(self, x):
        return self.up(self.down(x))

    def to_linear(self):
        """The equivalent dense ``nn.Linear`` (for checks; it undoes the compression)."""
        return merge_linear(self.down, self.up)


_CONV_CLASSES = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}


class LowRankConv(nn.Module):
    """A ConvNd factorized through ``rank`` channels: ``up(down(x))``.

    ``down`` is a ConvNd ``in_channels -> rank`` with the original kernel, stride, padding and
    dilation; ``up`` is a 1x1 ConvNd ``rank -> out_channels`` carrying the bias. It holds
    ``rank * (in_channels * prod(kernel_size) + 1 + out_channels)`` weights (plus the bias)
    instead of ``out_channels * in_channels * prod(kernel_size)``. The inner bias carries the
    projected original bias in AFM (it is zero after a weight SVD).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
    rank : int
        ``0 < rank <= min(out_channels, in_channels * prod(kernel_size))``.
    dims : {1, 2, 3}, default=2
        Spatial dimensions (Conv1d, Conv2d or Conv3d).
    stride, padding, dilation, padding_mode
        As for the ConvNd it replaces (used by ``down``).
    bias : bool, default=True
        Bias of ``up``.
    device, dtype : optional

    Raises
    ------
    TypeError, ValueError
        For non-integer or non-positive sizes, or a rank out of range.

    Examples
    --------
    >>> conv = LowRankConv(3, 16, 3, rank=4, padding=1)
    >>> conv(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 16, 8, 8])
    >>> conv.to_conv().weight.shape
    torch.Size([16, 3, 3, 3])
    """

    def __init__(self, in_channels, out_channels, kernel_size, rank, *, dims=2, stride=1, padding=0, dilation=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        check_choice(dims, "dims", (1, 2, 3))
        in_channels = check_int(in_channels, "in_channels", low=1)
        out_channels = check_int(out_channels, "out_channels", low=1)
        ks = (kernel_size,) * dims if not isinstance(kernel_size, (tuple, list)) else tuple(kernel_size)
        if len(ks) != dims:
            raise ValueError(f"`kernel_size` must have {dims} entries, got {kernel_size!r}")
        ks = tuple(check_int(k, "kernel_size", low=1) for k in ks)
        limit = min(out_channels, in_channels * math.prod(ks))
        rank = check_int(rank, "rank", low=1, high=limit)
        Conv = getattr(nn, _CONV_CLASSES[dims])
        self.down = Conv(in_channels, rank, ks, stride=stride, padding=padding, dilation=dilation, bias=True,
                         padding_mode=padding_mode, device=device, dtype=dtype)
        self.up = Conv(rank, out_channels, 1, bias=bias, device=device, dtype=dtype)

    @property
    def rank(self):
        return self.down.out_channels

    def forward(self, x):
        return self.up(self.down(x))

    def to_conv(self):
        """The equivalent dense ConvNd (for checks; it undoes the compression)."""
        d, u = self.down, self.up
        merged = type(d)(d.in_channels, u.out_channels, d.kernel_size, stride=d.stride, padding=d.padding,
                         dilation=d.dilation, bias=True, padding_mode=d.padding_mode, device=u.weight.device,
                         dtype=u.weight.dtype)
        U = u.weight.detach().reshape(u.out_channels, self.rank)
        with torch.no_grad():
            merged.weight.copy_((U @ d.weight.detach().reshape(self.rank, -1)).reshape(merged.weight.shape))
            bias = U @ d.bias.detach()
            if u.bias is not None:
                bias = bias + u.bias.detach()
            merged.bias.copy_(bias)
        return merged


class LowRankEmbedding(nn.Module):
    """An embedding table stored as ``codes (num, rank)`` times ``basis (rank -> dim)`` plus a mean.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Shape of the table it replaces.
    rank : int
        ``0 < rank <= embedding_dim``.

    Examples
    --------
    >>> emb = LowRankEmbedding(100, 16, rank=4)
    >>> emb(torch.tensor([[1, 2]])).shape
    torch.Size([1, 2, 16])
    """

    def __init__(self, num_embeddings, embedding_dim, rank, *, device=None, dtype=None):
        super().__init__()
        if not 0 < rank <= embedding_dim:
            raise ValueError(f"`rank` must satisfy 0 < rank <= embedding_dim = {embedding_dim}, got {rank}")
        self.codes = nn.Embedding(num_embeddings, rank, device=device, dtype=dtype)
        self.up = nn.Linear(rank, embedding_dim, bias=True, device=device, dtype=dtype)

    @property
    def rank(self):
        return self.codes.embedding_dim

    def forward(self, index):
        return self.up(self.codes(index))


class LowRankEmbeddingBag(nn.Module):
    """An ``nn.EmbeddingBag`` (mode "sum" or "mean") with a factorized table ``codes @ basis + mean``.

    With mode "sum" the mean is added once per bagged index (per-bag counts), so the output equals
    the bag-reduction of the reconstructed rows exactly.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Shape of the table it replaces.
    rank : int
        ``0 < rank <= embedding_dim``.
    mode : {"mean", "sum"}, default="mean"

    Examples
    --------
    >>> bag = LowRankEmbeddingBag(100, 16, rank=4, mode="sum")
    >>> bag(torch.tensor([[1, 2, 3], [4, 5, 6]])).shape
    torch.Size([2, 16])
    """

    def __init__(self, num_embeddings, embedding_dim, rank, *, mode="mean", device=None, dtype=None):
        super().__init__()
        if mode not in ("sum", "mean"):
            raise ValueError(f"`mode` must be 'sum' or 'mean' (a max over a factorized table is not linear), got {mode!r}")
        if not 0 < rank <= embedding_dim:
            raise ValueError(f"`rank` must satisfy 0 < rank <= embedding_dim = {embedding_dim}, got {rank}")
        self.mode = mode
        self.codes = nn.EmbeddingBag(num_embeddings, rank, mode=mode, device=device, dtype=dtype)
        self.up = nn.Linear(rank, embedding_dim, bias=False, device=device, dtype=dtype)
        self.register_buffer("mean", torch.zeros(embedding_dim, device=device, dtype=dtype))

    @property
    def rank(self):
        return self.codes.embedding_dim

    def forward(self, input, offsets=None, per_sample_weights=None):
        out = self.up(self.codes(input, offsets, per_sample_weights=per_sample_weights))
        if self.mode == "mean":
            return out + self.mean
        counts = _bag_weights(input, offsets, per_sample_weights, out.dtype)
        return out + counts[:, None] * self.mean


def _bag_weights(input, offsets, per_sample_weights, dtype):
    """Total weight (count, or sum of per-sample weights) of each bag."""
    if input.dim() == 2:
        if per_sample_weights is None:
            return torch.full((input.shape[0],), input.shape[1], dtype=dtype, device=input.device)
        return per_sample_weights.sum(dim=1).to(dtype)
    w = torch.ones_like(input, dtype=dtype) if per_sample_weights is None else per_sample_weights.to(dtype)
    bag = torch.bucketize(torch.arange(input.numel(), device=input.device), offsets, right=True) - 1
    return torch.zeros(offsets.numel(), dtype=dtype, device=input.device).index_add_(0, bag, w)


def merge_linear(first, second):
    """One ``nn.Linear`` equal to ``second(first(x))`` for two affine layers (exactly, up to rounding).

    Used to fold a factor's up-projection into the next linear layer when nothing lies in between.

    Examples
    --------
    >>> a, b = nn.Linear(5, 3), nn.Linear(3, 2)
    >>> x = torch.randn(4, 5)
    >>> bool(torch.allclose(merge_linear(a, b)(x), b(a(x)), atol=1e-6))
    True
    """
    if first.out_features != second.in_features:
        raise ValueError(
            f"cannot merge: first.out_features={first.out_features} != second.in_features={second.in_features}"
        )
    merged = nn.Linear(first.in_features, second.out_features, bias=True,
                       device=second.weight.device, dtype=second.weight.dtype)
    with torch.no_grad():
        merged.weight.copy_(second.weight @ first.weight)
        bias = torch.zeros(second.out_features, dtype=second.weight.dtype, device=second.weight.device)
        if first.bias is not None:
            bias += second.weight @ first.bias
        if second.bias is not None:
            bias += second.bias
        merged.bias.copy_(bias)
    return merged


def count_parameters(module):
    """Number of parameters of ``module`` (buffers excluded)."""
    return sum(p.numel() for p in module.parameters())
