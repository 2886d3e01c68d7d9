"""SST: a linear layer trained in its spectral form, a sampled subset of singular vector pairs at a time."""

import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_int

torch = import_optional("torch", purpose="lowrank.nn.training")
nn = torch.nn

__all__ = ["SpectralLinear"]


class SpectralLinear(nn.Module):
    """``y = U diag(s) V^T x + b``, ``s`` always trained, ``U`` and ``V`` only on sampled singular pairs (SST).

    The layer starts from the SVD of a weight (a Kaiming-uniform one, or a given ``nn.Linear`` by
    :meth:`from_linear`). Each *round* (:meth:`resample`) draws ``n_sample`` indices without replacement with
    probabilities proportional to ``s``; gradient hooks zero the columns of ``U`` and ``V`` that were not drawn,
    while ``s`` gets its full gradient. :meth:`reorthogonalize` (call it every few rounds) restores orthonormal
    ``U`` and ``V`` without changing the weight: QR of both factors, then an SVD of the small
    ``r x r`` core (a re-SVD). With Adam, moments of undrawn columns keep decaying into them; reset the
    optimizer state for ``U`` and ``V`` after a resample if undrawn columns must not move at all.

    Parameters
    ----------
    in_features, out_features : int
    rank : int, optional
        Kept singular pairs, default ``min(in, out)`` (the full spectrum; the paper's setting).
    n_sample : int, optional
        Pairs of ``U``, ``V`` trained per round, default ``rank // 4`` (at least 1); ``rank`` trains jointly.
    bias : bool, default=True
    seed : int, default=0
        Seeds the initial weight and the sampling of rounds.

    Attributes
    ----------
    U : Parameter (out, r)
    s : Parameter (r,)
    V : Parameter (in, r)
    active : buffer (r,) bool, the pairs drawn this round

    Raises
    ------
    TypeError, ValueError
        On non-integer sizes or a rank / n_sample out of range.

    References
    ----------
    Zhao et al., "Sparse Spectral Training and Inference on Euclidean and Hyperbolic Neural Networks", 2024,
    arXiv:2405.15481.

    Examples
    --------
    >>> layer = SpectralLinear(16, 8, n_sample=2)
    >>> layer.resample()
    >>> int(layer.active.sum()), bool(torch.allclose(layer.U.T @ layer.U, torch.eye(8), atol=1e-5))
    (2, True)
    """

    def __init__(self, in_features, out_features, rank=None, *, n_sample=None, bias=True, seed=0, device=None,
                 dtype=None):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        limit = min(in_features, out_features)
        rank = limit if rank is None else check_int(rank, "rank", low=1, high=limit)
        n_sample = max(1, rank // 4) if n_sample is None else check_int(n_sample, "n_sample", low=1, high=rank)
        self.in_features, self.out_features, self.rank, self.n_sample = in_features, out_features, rank, n_sample
        self._gen = torch.Generator().manual_seed(check_int(seed, "seed", low=0))
        bound = 1.0 / math.sqrt(in_features)
        W = (torch.rand(out_features, in_features, generator=self._gen, dtype=torch.float64) * 2 - 1) * bound
        U, s, Vh = torch.linalg.svd(W, full_matrices=False)
        factory = dict(device=device, dtype=dtype or torch.get_default_dtype())
        self.U = nn.Parameter(U[:, :rank].to(**factory))
        self.s = nn.Parameter(s[:rank].to(**factory))
        self.V = nn.Parameter(Vh[:rank].T.contiguous().to(**factory))
        self.bias = nn.Parameter(torch.zeros(out_features, **factory)) if bias else None
        self.register_buffer("active", torch.ones(rank, dtype=torch.bool, device=device))
        self.U.register_hook(self._mask)
        self.V.register_hook(self._mask)

    @classmethod
    def from_linear(cls, linear, rank=None, *, n_sample=None, seed=0):
        """The spectral form of a trained ``nn.Linear`` (top-``rank`` SVD; exact at full rank)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"`linear` must be a torch.nn.Linear, got {type(linear).__name__}")
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, rank, n_sample=n_sample, bias=linear.bias is not None,
                    seed=seed, device=W.device, dtype=W.dtype)
        U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        with torch.no_grad():
            r = layer.rank
            layer.U.copy_(U[:, :r])
            layer.s.copy_(s[:r])
            layer.V.copy_(Vh[:r].T)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def _mask(self, grad):
        return grad * self.active.to(grad.dtype)

    def resample(self):
        """Start a round: draw ``n_sample`` singular pairs with probability proportional to ``s``."""
        weights = self.s.detach().abs().double().cpu() + 1e-12
        chosen = torch.multinomial(weights, self.n_sample, replacement=False, generator=self._gen)
        active = torch.zeros(self.rank, dtype=torch.bool)
        active[chosen] = True
        self.active.copy_(active)

    @torch.no_grad()
    def reorthogonalize(self):
        """Make ``U`` and ``V`` orthonormal again, keeping ``U diag(s) V^T`` (QR of both, SVD of the core)."""
        Qu, Ru = torch.linalg.qr(self.U.double())
        Qv, Rv = torch.linalg.qr(self.V.double())
        a, sigma, bh = torch.linalg.svd(Ru @ torch.diag(self.s.double()) @ Rv.T)
        self.U.copy_(Qu @ a)
        self.s.copy_(sigma)
        self.V.copy_(Qv @ bh.T)

    def weight(self):
        """The dense weight ``U diag(s) V^T``."""
        return (self.U * self.s) @ self.V.T

    def forward(self, x):
        y = ((x @ self.V) * self.s) @ self.U.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"n_sample={self.n_sample}")
