"""SLTrain / LOST: a linear layer whose weight is a low-rank product plus a sparse matrix on a fixed support."""

import math
import warnings

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn.training")
nn = torch.nn

__all__ = ["SparsePlusLowRankLinear"]


def _support(out_features, in_features, density, support, seed):
    """Row and column indices of the fixed sparse support, regenerated from ``seed`` (never saved)."""
    gen = torch.Generator().manual_seed(seed)
    if support == "random":
        nnz = max(1, round(density * out_features * in_features))
        flat = torch.randperm(out_features * in_features, generator=gen)[:nnz].sort().values
        return flat // in_features, flat % in_features
    n_channels = max(1, round(density * in_features))
    channels = torch.randperm(in_features, generator=gen)[:n_channels].sort().values
    return _channel_support(out_features, channels)


def _channel_support(out_features, channels):
    rows = torch.arange(out_features).repeat_interleave(channels.numel())
    return rows, channels.repeat(out_features)


def _crow(index, n):
    crow = torch.zeros(n + 1, dtype=torch.int64, device=index.device)
    crow[1:] = torch.bincount(index, minlength=n).cumsum(0)
    return crow


def _csr(crow, cols, values, shape):
    # torch warns that CSR support is "beta"; the two ops used (mm, sampled_addmm) are tested against dense
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


class _SparseMatmul(torch.autograd.Function):
    """``x @ S^T`` for ``S`` given by CSR structure + values; gradients for ``x`` and the values only."""

    @staticmethod
    def forward(ctx, x, values, layer):
        ctx.layer = layer
        ctx.save_for_backward(x, values)
        S = _csr(layer.crow, layer.cols, values, (layer.out_features, layer.in_features))
        return torch.sparse.mm(S, x.T).T

    @staticmethod
    def backward(ctx, grad):
        x, values = ctx.saved_tensors
        layer = ctx.layer
        grad_x = grad_values = None
        if ctx.needs_input_grad[0]:
            St = _csr(layer.crow_t, layer.rows_t, values[layer.perm_t], (layer.in_features, layer.out_features))
            grad_x = torch.sparse.mm(St, grad.T).T
        if ctx.needs_input_grad[1]:
            template = _csr(layer.crow, layer.cols, torch.zeros_like(values), (layer.out_features, layer.in_features))
            grad_values = torch.sparse.sampled_addmm(template, grad.T.contiguous(), x, beta=0.0).values()
        return grad_x, grad_values, None


class SparsePlusLowRankLinear(nn.Module):
    """``y = ((alpha / r) B A + S) x + b`` with ``S`` on a fixed sparse support (SLTrain; LOST by ``from_linear``).

    ``B`` (``out x r``) starts at zero and ``A`` (``r x in``) Kaiming-uniform, so training starts from ``S``
    alone. ``S`` keeps only its ``nnz`` values as a parameter; its support is drawn once from ``seed`` --
    ``support="random"``: ``round(density * out * in)`` uniformly random entries; ``support="channel"``:
    ``round(density * in)`` whole input channels (columns) -- and is regenerated from the seed on load, so
    the saved state is the values plus one integer. The sparse product never forms ``S`` densely: it is a
    torch sparse CSR matmul (``torch.sparse.mm``) in a custom autograd function whose backward uses the CSR
    of ``S^T`` for the input gradient and ``torch.sparse.sampled_addmm`` (``grad^T x`` sampled on the
    support) for the values' gradient. Measured here (1 thread, batch 128, 3% density, forward + backward,
    ``SparseProduct`` in ``asv_benchmarks/benchmarks/nn_training.py``): a dense ``S`` takes 1.9x (256 x 256)
    and 27x (1024 x 1024) the CSR time, a gather/index_add version 55x and 91x.

    Parameters
    ----------
    in_features, out_features, rank : int
    density : float in (0, 1], default=0.03
    support : {"random", "channel"}, default="random"
    alpha : float, default=None
        Scale of the low-rank product; ``None`` means ``alpha = rank`` (a scale of 1).
    bias : bool, default=True
    seed : int, default=0
        Seeds the support and the initialization of ``A`` and ``S``.

    Attributes
    ----------
    B : Parameter (out, r)
    A : Parameter (r, in)
    values : Parameter (nnz,)
    rows, cols : buffers (nnz,), not saved in ``state_dict`` (rebuilt from ``seed``)
    remainder : buffer (out, in) or None
        The frozen part of the original weight kept by ``from_linear(..., keep_remainder=True)``.

    Raises
    ------
    TypeError, ValueError
        On non-integer sizes, a rank outside ``[1, min(in, out)]``, a density outside (0, 1] or an
        unknown support.

    References
    ----------
    Han et al., "SLTrain: a sparse plus low-rank approach for parameter and memory efficient pretraining",
    NeurIPS 2024, arXiv:2406.02214.
    "LOST: Low-rank and Sparse Pre-training for Large Language Models", 2025, arXiv:2508.02668.

    Examples
    --------
    >>> layer = SparsePlusLowRankLinear(32, 16, rank=4, density=0.05, seed=1)
    >>> layer.values.numel(), sum(p.numel() for p in layer.parameters())
    (26, 234)
    >>> bool(torch.allclose(layer(torch.ones(2, 32)), torch.ones(2, 32) @ layer.dense_weight().T + layer.bias))
    True
    """

    def __init__(self, in_features, out_features, rank, density=0.03, *, support="random", alpha=None, bias=True,
                 seed=0, device=None, dtype=None):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        rank = check_int(rank, "rank", low=1, high=min(in_features, out_features))
        density = check_float(density, "density", low=0, high=1, low_inclusive=False)
        self.support = check_choice(support, "support", ("random", "channel"))
        self.seed = check_int(seed, "seed", low=0)
        alpha = float(rank) if alpha is None else check_float(alpha, "alpha", low=0, low_inclusive=False)
        self.in_features, self.out_features, self.rank, self.density = in_features, out_features, rank, density
        self.scaling = alpha / rank
        factory = dict(device=device, dtype=dtype)
        self.B = nn.Parameter(torch.zeros(out_features, rank, **factory))
        self.A = nn.Parameter(torch.empty(rank, in_features, **factory))
        rows, cols = _support(out_features, in_features, density, support, self.seed)
        self._set_support(rows.to(device), cols.to(device))
        self.values = nn.Parameter(torch.empty(rows.numel(), **factory))
        self.bias = nn.Parameter(torch.zeros(out_features, **factory)) if bias else None
        self.register_buffer("remainder", None)
        gen = torch.Generator().manual_seed(self.seed + 1)
        with torch.no_grad():
            # Kaiming-uniform as nn.Linear (a = sqrt(5)): bound 1 / sqrt(fan_in)
            bound = 1.0 / math.sqrt(in_features)
            self.A.copy_((torch.rand(self.A.shape, generator=gen) * 2 - 1) * bound)
            self.values.copy_((torch.rand(self.values.shape, generator=gen) * 2 - 1) * bound)

    @classmethod
    def from_linear(cls, linear, rank, density=0.03, *, keep_remainder=True):
        """LOST initialization: top-``rank`` SVD as trainable factors, a channel-wise sparse part of the rest.

        With ``W = U diag(s) V^T``, ``B = U_r diag(sqrt(s_r))`` and ``A = diag(sqrt(s_r)) V_r^T``; the residual
        ``W - B A`` keeps its ``round(density * in)`` input channels of largest norm as ``S`` (support stored as
        channel indices, as it is data-dependent), and the rest is a frozen buffer when ``keep_remainder``
        (so the layer starts exactly at ``W``) or dropped.

        Parameters
        ----------
        linear : nn.Linear
        rank : int
        density : float in (0, 1], default=0.03
        keep_remainder : bool, default=True

        Returns
        -------
        SparsePlusLowRankLinear
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"`linear` must be a torch.nn.Linear, got {type(linear).__name__}")
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, rank, density, support="channel",
                    bias=linear.bias is not None, device=W.device, dtype=W.dtype)
        U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        root = s[:rank].sqrt()
        B, A = U[:, :rank] * root, root[:, None] * Vh[:rank]
        residual = W.double() - B @ A
        channels = torch.topk(residual.norm(dim=0), layer.cols.numel() // linear.out_features).indices.sort().values
        rows, cols = _channel_support(linear.out_features, channels.cpu())
        layer.support = "given"
        layer.register_buffer("channels", channels.to(W.device))
        layer._set_support(rows.to(W.device), cols.to(W.device))
        with torch.no_grad():
            layer.B.copy_(B)
            layer.A.copy_(A)
            layer.values = nn.Parameter(residual[layer.rows, layer.cols].to(W.dtype))
            if keep_remainder:
                sparse = torch.zeros_like(residual)
                sparse[layer.rows, layer.cols] = residual[layer.rows, layer.cols]
                # remainder = W - (low-rank + sparse) evaluated in the layer's dtype, so their sum gives W back
                layer.remainder = (W - (B @ A).to(W.dtype) - sparse.to(W.dtype)).detach()
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def _set_support(self, rows, cols):
        """Store the support (row-major sorted) and its CSR structures for ``S`` and ``S^T`` (never saved)."""
        for name, value in (("rows", rows), ("cols", cols), ("crow", _crow(rows, self.out_features)),
                            ("perm_t", torch.argsort(cols * self.out_features + rows))):
            self.register_buffer(name, value, persistent=False)
        self.register_buffer("rows_t", rows[self.perm_t], persistent=False)
        self.register_buffer("crow_t", _crow(cols, self.in_features), persistent=False)

    def sparse_matmul(self, x):
        """``x @ S^T`` by a CSR sparse-dense product (``S`` is never formed densely)."""
        flat = x.reshape(-1, self.in_features)
        out = _SparseMatmul.apply(flat, self.values, self)
        return out.reshape(*x.shape[:-1], self.out_features)

    def forward(self, x):
        y = (x @ self.A.T) @ self.B.T * self.scaling + self.sparse_matmul(x)
        if self.remainder is not None:
            y = y + x @ self.remainder.T
        if self.bias is not None:
            y = y + self.bias
        return y

    def sparse_weight(self):
        """``S`` as a dense tensor (for checks)."""
        S = self.values.new_zeros(self.out_features, self.in_features)
        return S.index_put((self.rows, self.cols), self.values)

    def dense_weight(self):
        """The effective weight ``(alpha / r) B A + S (+ remainder)`` as a dense tensor (for checks and export)."""
        W = self.scaling * self.B @ self.A + self.sparse_weight()
        return W if self.remainder is None else W + self.remainder

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"nnz={self.values.numel()}, support={self.support!r}")
