"""``DictLinear``: a Linear layer stored as a dense dictionary times a column-sparse code matrix."""

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["DictLinear"]


class DictLinear(nn.Module):
    """``y = C^T (D^T x) + b``: ``k`` dictionary atoms, each output a combination of ``s`` of them.

    The weight ``W = C^T D^T`` (``out x in``) is never formed: the forward projects the input on
    the ``k`` atoms (``x @ D``, ``in x k``) and each output gathers its ``s`` atom responses and
    weighs them. ``C`` is stored sparse, column by column: ``indices`` (``out x s``, a buffer) say
    which atoms output ``o`` uses, ``values`` (``out x s``, a parameter) with which coefficients.

    Parameters
    ----------
    dictionary : torch.Tensor, shape (in_features, k)
    indices : torch.LongTensor, shape (out_features, s)
        Atom indices in ``[0, k)``.
    values : torch.Tensor, shape (out_features, s)
    bias : torch.Tensor of shape (out_features,), optional

    Raises
    ------
    ValueError
        Inconsistent shapes or indices outside ``[0, k)``.

    References
    ----------
    "CoSpaDi: Compressing LLMs via Calibration-Guided Sparse Dictionary Learning", 2025, arXiv:2509.22075.

    Examples
    --------
    >>> D = torch.eye(3)[:, :2]                       # atoms e0, e1 of R^3
    >>> layer = DictLinear(D, torch.tensor([[0], [1]]), torch.tensor([[2.0], [3.0]]))
    >>> layer(torch.tensor([[1.0, 1.0, 5.0]])).detach()
    tensor([[2., 3.]])
    >>> layer.to_dense()
    tensor([[2., 0., 0.],
            [0., 3., 0.]])
    """

    def __init__(self, dictionary, indices, values, bias=None):
        super().__init__()
        if dictionary.dim() != 2 or indices.dim() != 2 or values.shape != indices.shape:
            raise ValueError("`dictionary` must be (in, k) and `indices`, `values` both (out, s), got "
                             f"{tuple(dictionary.shape)}, {tuple(indices.shape)}, {tuple(values.shape)}")
        k = dictionary.shape[1]
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= k):
            raise ValueError(f"`indices` must lie in [0, {k})")
        if bias is not None and tuple(bias.shape) != (indices.shape[0],):
            raise ValueError(f"`bias` must have shape ({indices.shape[0]},), got {tuple(bias.shape)}")
        self.dictionary = nn.Parameter(dictionary.detach().clone())
        self.values = nn.Parameter(values.detach().clone().to(dictionary.dtype))
        self.register_buffer("indices", indices.detach().clone().long())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone().to(dictionary.dtype))

    @property
    def in_features(self):
        return self.dictionary.shape[0]

    @property
    def out_features(self):
        return self.indices.shape[0]

    @property
    def n_atoms(self):
        return self.dictionary.shape[1]

    @property
    def nonzeros_per_column(self):
        return self.indices.shape[1]

    def forward(self, x):
        z = x @ self.dictionary                         # (..., k) atom responses
        y = (z[..., self.indices] * self.values).sum(-1)  # (..., out): each output reads its s atoms
        return y if self.bias is None else y + self.bias

    def codes(self):
        """``C`` as a torch sparse COO tensor ``(k, out)`` with ``s`` entries per column."""
        out, s = self.indices.shape
        cols = torch.arange(out, device=self.indices.device).repeat_interleave(s)
        return torch.sparse_coo_tensor(torch.stack([self.indices.reshape(-1), cols]), self.values.detach().reshape(-1),
                                       (self.n_atoms, out), check_invariants=False).coalesce()

    def to_dense(self):
        """The dense weight ``C^T D^T`` (``out x in``; for checks: it undoes the compression)."""
        return (self.codes().to_dense().T @ self.dictionary.detach().T)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, atoms={self.n_atoms}, "
                f"nonzeros_per_column={self.nonzeros_per_column}, bias={self.bias is not None}")
