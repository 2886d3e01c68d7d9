"""Reference CTR models in torch: a plain MLP, DeepFM and DCN-v2.

Every model takes ``(dense, categorical)``: a float tensor (batch, n_dense) and a long tensor
(batch, n_fields) of category ids, and returns one logit per row. Each field has its own
``nn.Embedding`` (``model.embeddings[f]``), so compression can treat tables one by one.
"""

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.ctr")
nn = torch.nn


def _mlp(in_features, hidden, dropout):
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return nn.Sequential(*layers), width


def _check_sizes(cardinalities, n_dense, embedding_dim, hidden, dropout):
    """Sizes checked before any layer is built: torch builds zero-element layers or fails deep inside."""
    if isinstance(cardinalities, (str, bytes)) or not hasattr(cardinalities, "__len__") or len(cardinalities) == 0:
        raise ValueError("`cardinalities` must be a non-empty list of positive integers")
    cardinalities = [check_int(c, "cardinalities", low=1) for c in cardinalities]
    n_dense = check_int(n_dense, "n_dense", low=0)
    embedding_dim = check_int(embedding_dim, "embedding_dim", low=1)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"`hidden` must be a sequence of positive integers, got {type(hidden).__name__}")
    hidden = tuple(check_int(h, "hidden", low=1) for h in hidden)
    dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
    return cardinalities, n_dense, embedding_dim, hidden, dropout


class _FieldEmbeddings(nn.Module):
    def __init__(self, cardinalities, embedding_dim, n_dense):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(int(c), embedding_dim) for c in cardinalities)
        self.n_dense = n_dense
        self.embedding_dim = embedding_dim
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=0.05)

    def field_vectors(self, categorical):
        """(batch, n_fields, embedding_dim)."""
        return torch.stack([emb(categorical[:, f]) for f, emb in enumerate(self.embeddings)], dim=1)


class _CTRModel(nn.Module):
    """Base of the reference models: ``self.fields`` holds one embedding table per field."""

    @property
    def embeddings(self):
        """The per-field ``nn.Embedding`` tables (``embeddings[f]`` for field ``f``)."""
        return self.fields.embeddings


class MLPCTR(_CTRModel):
    """Embeddings of every field concatenated with the dense features, then an MLP.

    Parameters
    ----------
    cardinalities : list of int
        Number of categories of each categorical field.
    n_dense : int, default=13
    embedding_dim : int, default=16
    hidden : tuple of int, default=(256, 128, 64)
    dropout : float, default=0.0

    Examples
    --------
    >>> model = MLPCTR([10, 20], n_dense=3, embedding_dim=4, hidden=(8,))
    >>> model(torch.zeros(5, 3), torch.zeros(5, 2, dtype=torch.long)).shape
    torch.Size([5])
    """

    def __init__(self, cardinalities, n_dense=13, embedding_dim=16, hidden=(256, 128, 64), dropout=0.0):
        super().__init__()
        cardinalities, n_dense, embedding_dim, hidden, dropout = _check_sizes(
            cardinalities, n_dense, embedding_dim, hidden, dropout)
        self.fields = _FieldEmbeddings(cardinalities, embedding_dim, n_dense)
        self.mlp, width = _mlp(n_dense + len(cardinalities) * embedding_dim, hidden, dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, dense, categorical):
        e = self.fields.field_vectors(categorical).flatten(1)
        return self.head(self.mlp(torch.cat([dense, e], dim=1))).squeeze(-1)


class DeepFM(_CTRModel):
    """DeepFM (Guo et al., IJCAI 2017): first-order terms + FM pairwise interactions + a deep MLP.

    The dense features join the FM as one extra field (a linear projection to ``embedding_dim``).

    Parameters
    ----------
    cardinalities : list of int
        Number of categories of each categorical field.
    n_dense : int, default=13
    embedding_dim : int, default=16
    hidden : tuple of int, default=(256, 128, 64)
    dropout : float, default=0.0

    Examples
    --------
    >>> model = DeepFM([10, 20], n_dense=3, embedding_dim=4, hidden=(8,))
    >>> model(torch.zeros(5, 3), torch.zeros(5, 2, dtype=torch.long)).shape
    torch.Size([5])
    """

    def __init__(self, cardinalities, n_dense=13, embedding_dim=16, hidden=(256, 128, 64), dropout=0.0):
        super().__init__()
        cardinalities, n_dense, embedding_dim, hidden, dropout = _check_sizes(
            cardinalities, n_dense, embedding_dim, hidden, dropout)
        self.fields = _FieldEmbeddings(cardinalities, embedding_dim, n_dense)
        self.first_order = nn.ModuleList(nn.Embedding(int(c), 1) for c in cardinalities)
        for emb in self.first_order:
            nn.init.zeros_(emb.weight)
        self.dense_linear = nn.Linear(n_dense, 1)
        self.dense_proj = nn.Linear(n_dense, embedding_dim)  # dense features join the FM as one field
        self.mlp, width = _mlp(n_dense + len(cardinalities) * embedding_dim, hidden, dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, dense, categorical):
        v = self.fields.field_vectors(categorical)
        first = self.dense_linear(dense).squeeze(-1) + sum(
            emb(categorical[:, f]).squeeze(-1) for f, emb in enumerate(self.first_order)
        )
        all_fields = torch.cat([v, self.dense_proj(dense)[:, None, :]], dim=1)
        square_of_sum = all_fields.sum(dim=1) ** 2
        sum_of_square = (all_fields**2).sum(dim=1)
        fm = 0.5 * (square_of_sum - sum_of_square).sum(dim=1)
        deep = self.head(self.mlp(torch.cat([dense, v.flatten(1)], dim=1))).squeeze(-1)
        return first + fm + deep


class CrossLayer(nn.Module):
    """DCN-v2 cross layer: ``x_{l+1} = x_0 * (W x_l + b) + x_l``."""

    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.normal_(self.linear.weight, std=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0, x):
        return x0 * self.linear(x) + x


class DCNv2(_CTRModel):
    """DCN-v2 (Wang et al., WWW 2021), stacked: cross layers then an MLP on their output.

    Parameters
    ----------
    cardinalities : list of int
        Number of categories of each categorical field.
    n_dense : int, default=13
    embedding_dim : int, default=16
    n_cross : int, default=2
        Number of :class:`CrossLayer` on the concatenated input.
    hidden : tuple of int, default=(256, 128, 64)
    dropout : float, default=0.0

    Examples
    --------
    >>> model = DCNv2([10, 20], n_dense=3, embedding_dim=4, hidden=(8,))
    >>> model(torch.zeros(5, 3), torch.zeros(5, 2, dtype=torch.long)).shape
    torch.Size([5])
    """

    def __init__(self, cardinalities, n_dense=13, embedding_dim=16, n_cross=2, hidden=(256, 128, 64), dropout=0.0):
        super().__init__()
        cardinalities, n_dense, embedding_dim, hidden, dropout = _check_sizes(
            cardinalities, n_dense, embedding_dim, hidden, dropout)
        n_cross = check_int(n_cross, "n_cross", low=0)
        self.fields = _FieldEmbeddings(cardinalities, embedding_dim, n_dense)
        width = n_dense + len(cardinalities) * embedding_dim
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(n_cross))
        self.mlp, out = _mlp(width, hidden, dropout)
        self.head = nn.Linear(out, 1)

    def forward(self, dense, categorical):
        x0 = torch.cat([dense, self.fields.field_vectors(categorical).flatten(1)], dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return self.head(self.mlp(x)).squeeze(-1)
