"""Pieces shared by the exact PPR solvers and PowerWalk: graph -> transition, seeds -> personalization."""

import numbers

import numpy as np
import scipy.sparse as sp

from lowrank._utils.validation import check_float
from lowrank.graphs._input import Adjacency, as_adjacency


class Transition:
    """Row-stochastic transition ``P = D^-1 A`` of a graph, in the arrays the kernels read.

    Attributes: ``indptr, indices, probs`` (CSR of P, row = source), ``out_degree`` (number of
    out-arcs), ``dangling`` (bool, no out-arc), ``n``.
    """

    def __init__(self, A):
        A = sp.csr_matrix(A, dtype=np.float64)
        strength = np.asarray(A.sum(axis=1)).ravel()
        self.n = A.shape[0]
        self.indptr = A.indptr.astype(np.int64)
        self.indices = A.indices.astype(np.int64)
        self.out_degree = np.diff(self.indptr)
        self.dangling = strength == 0
        inv = np.zeros_like(strength)
        np.divide(1.0, strength, out=inv, where=~self.dangling)
        self.probs = A.data * np.repeat(inv, self.out_degree)

    def matrix(self):
        """P as a scipy CSR matrix."""
        return sp.csr_matrix((self.probs, self.indices, self.indptr), shape=(self.n, self.n))

    def transposed(self, mask_sources=None):
        """CSR arrays of ``P^T`` (row v lists the in-arcs of v), for the gather kernels.

        ``mask_sources`` (bool, n): arcs leaving these vertices get probability 0. Cached.
        """
        if mask_sources is None and getattr(self, "_t", None) is not None:
            return self._t
        M = self.matrix()
        if mask_sources is not None:
            probs = np.where(np.repeat(mask_sources, self.out_degree), 0.0, self.probs)
            M = sp.csr_matrix((probs, self.indices, self.indptr), shape=M.shape)
        T = M.T.tocsr()
        T.sort_indices()
        out = (T.indptr.astype(np.int64), T.indices.astype(np.int64), T.data)
        if mask_sources is None:
            self._t = out
        return out

    def cumulative(self):
        """Per-row cumulative transition probabilities (for drawing a weighted out-neighbour)."""
        cum = np.cumsum(self.probs)
        before = np.concatenate([[0.0], cum])[self.indptr[:-1]]
        return cum - np.repeat(before, self.out_degree)

    def uniform_rows(self):
        """True when every row's arcs share one weight, so a neighbour is drawn by index alone."""
        if self.probs.size == 0:
            return True
        first = np.repeat(self.probs[self.indptr[:-1][self.out_degree > 0]], self.out_degree[self.out_degree > 0])
        return bool(np.allclose(self.probs, first, rtol=1e-12, atol=0))


def load_graph(graph, weights):
    """``as_adjacency`` plus the ``weights`` switch: None keeps weights, False drops them, a str names
    the networkx edge attribute. An already validated :class:`Adjacency` passes through."""
    if isinstance(graph, Adjacency):
        adj = graph
        if weights is False:
            A = adj.matrix.copy()
            A.data[:] = 1.0
            adj = Adjacency(A, adj.labels)
        elif weights not in (None, True):
            raise TypeError("`weights` must be None or a bool for an Adjacency input")
        return adj
    if weights is None or weights is True:
        adj = as_adjacency(graph)
    elif weights is False:
        adj = as_adjacency(graph, weight=None)
        if adj.matrix.nnz:
            A = adj.matrix.copy()
            A.data[:] = 1.0
            adj = Adjacency(A, adj.labels)
    elif isinstance(weights, str):
        adj = as_adjacency(graph, weight=weights)
    else:
        raise TypeError(f"`weights` must be None, a bool or an edge-attribute name, got {type(weights).__name__}")
    return adj


def check_damping(damping_factor):
    return check_float(damping_factor, "damping_factor", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


def personalization_rows(adj, seeds, *, name="seeds"):
    """Turn ``seeds`` into a CSR (k, n) personalization with rows summing to 1.

    ``seeds``: one vertex (k = 1), a sequence of vertices (one row each), a ``{vertex: weight}``
    dict (k = 1) or a sequence of such dicts.
    """
    n = adj.n_nodes
    if isinstance(seeds, dict):
        dicts = [seeds]
    elif _is_vertex(seeds, adj):
        idx = adj.index_of([seeds], name=name)
        return _unit_rows(idx, n)
    else:
        if _is_torch(seeds):
            seeds = seeds.detach().cpu().numpy()
        if sp.issparse(seeds):
            raise TypeError(
                f"`{name}` are vertices; a restart distribution given as a vector or matrix goes to `personalization=`"
            )
        if isinstance(seeds, np.ndarray):
            if seeds.ndim != 1:
                raise ValueError(
                    f"`{name}` must be a vertex, a 1-D sequence of vertices or a dict, got a {seeds.ndim}-D array; "
                    "a (k, n) matrix of restart distributions goes to `personalization=`"
                )
            if seeds.dtype.kind in "bfc" and not _labels_of_kind(adj, seeds.dtype.kind):
                raise TypeError(
                    f"`{name}` holds {seeds.dtype} values, not vertices; a weight vector over the vertices goes "
                    "to `personalization=`"
                )
            _check_not_a_vector(seeds.tolist(), n, name)
            seeds = seeds.tolist()
        try:
            seeds = list(seeds)
        except TypeError:
            raise TypeError(f"`{name}` must be a vertex, a sequence of vertices or a {{vertex: weight}} dict") from None
        if not seeds:
            raise ValueError(f"`{name}` is empty")
        if not all(isinstance(s, dict) for s in seeds):
            if any(isinstance(s, dict) for s in seeds):
                raise TypeError(f"`{name}` mixes dicts and vertices")
            return _unit_rows(adj.index_of(seeds, name=name), n)
        dicts = seeds
    rows, cols, vals = [], [], []
    for i, d in enumerate(dicts):
        if not d:
            raise ValueError(f"`{name}`: a personalization dict is empty")
        idx = adj.index_of(list(d.keys()), name=name)
        w = np.asarray(list(d.values()), dtype=np.float64)
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"`{name}`: personalization weights must be finite and non-negative")
        if w.sum() <= 0:
            raise ValueError(f"`{name}`: personalization weights must not all be zero")
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(w / w.sum())
    M = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(dicts), n)
    )
    M.sum_duplicates()
    M.sort_indices()
    M.data /= np.asarray(M.sum(axis=1)).ravel()[np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))]
    return M


def _check_not_a_vector(seeds, n, name):
    """An integer array with one entry per vertex and repeats reads as a weight vector as easily as a seed
    list: refuse to guess. (A Python list stays a list of seed vertices, repeats allowed.)"""
    if n < 3 or len(seeds) != n:
        return
    if not all(isinstance(s, (numbers.Integral, np.integer)) and not isinstance(s, bool) for s in seeds):
        return
    if len(set(int(s) for s in seeds)) < n:
        raise ValueError(
            f"`{name}` is ambiguous: an array of {n} integers with repeats for a graph of {n} vertices may be a "
            f"weight vector (then pass it as `personalization=`) or {n} seed vertices (then pass them as a list)"
        )


def _labels_of_kind(adj, kind):
    """True when the graph's vertex labels are themselves bools/floats/complex (so such seeds are names)."""
    if adj.labels is None or not adj.labels:
        return False
    probe = np.asarray(adj.labels[:1])
    return probe.dtype.kind == kind


def _is_torch(obj):
    return type(obj).__module__.startswith("torch")


def distribution_rows(adj, value, *, name="personalization", rows=None):
    """A distribution (or a batch of them) over the vertices as a CSR (k, n) with rows summing to 1.

    ``value``: a ``{vertex: weight}`` dict (k = 1), a sequence of such dicts, a length-n vector
    (k = 1) or a (k, n) matrix (numpy, scipy sparse, torch, nested lists). Weights are normalized
    per row; they must be finite and non-negative with a positive sum. ``rows``: the number of rows
    required (a single row is broadcast to it), or None for any.
    """
    n = adj.n_nodes
    if isinstance(value, dict) or (
        isinstance(value, (list, tuple)) and value and all(isinstance(d, dict) for d in value)
    ):
        M = personalization_rows(adj, value, name=name)
    else:
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(
                f"`{name}` must be a {{vertex: weight}} dict, a length-{n} vector or a (k, {n}) matrix, "
                f"got {type(value).__name__}"
            )
        if _is_torch(value):
            value = value.detach().cpu().numpy()
        if sp.issparse(value):
            M = sp.csr_matrix(value)
            if M.ndim != 2:
                raise ValueError(f"`{name}` must be 1-D or 2-D")
        else:
            try:
                arr = np.asarray(value)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be a dict, a vector or a matrix of weights") from None
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"`{name}` must hold real weights, got dtype {arr.dtype}")
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2:
                raise ValueError(f"`{name}` must be a length-{n} vector or a (k, {n}) matrix, got {arr.ndim}-D")
            M = sp.csr_matrix(arr.astype(np.float64))
        if M.shape[1] != n:
            raise ValueError(
                f"`{name}` must have one entry per vertex ({n}), got shape {tuple(np.shape(value))}"
            )
        if M.shape[0] == 0:
            raise ValueError(f"`{name}` is empty")
        M = sp.csr_matrix(M, dtype=np.float64)
        M.sum_duplicates()
        if not np.isfinite(M.data).all() or (M.data < 0).any():
            raise ValueError(f"`{name}`: weights must be finite and non-negative")
        M.eliminate_zeros()
        sums = np.asarray(M.sum(axis=1)).ravel()
        if (sums <= 0).any():
            raise ValueError(f"`{name}`: row {int(np.flatnonzero(sums <= 0)[0])} has no positive weight")
        M.sort_indices()
        M.data /= np.repeat(sums, np.diff(M.indptr))
    if rows is not None and M.shape[0] != rows:
        if M.shape[0] != 1:
            raise ValueError(f"`{name}` has {M.shape[0]} rows; expected 1 or {rows} (one per personalization)")
        M = sp.csr_matrix(sp.vstack([M] * rows))
    return M


def _is_vertex(obj, adj):
    if isinstance(obj, (numbers.Integral, np.integer)) and not isinstance(obj, bool):
        return True
    if adj.labels is not None and not isinstance(obj, (list, np.ndarray, dict, set)):
        try:
            return obj in set(adj.labels)
        except TypeError:
            return False
    return isinstance(obj, str)


def _unit_rows(idx, n):
    k = idx.size
    return sp.csr_matrix((np.ones(k), idx, np.arange(k + 1)), shape=(k, n))


def column_batches(k, n, budget_bytes=128 * 2**20, itemsize=8):
    """Split ``k`` seeds into batches whose (n, batch) blocks stay within ``budget_bytes``."""
    size = max(1, min(k, budget_bytes // (itemsize * n)))
    return [(lo, min(k, lo + size)) for lo in range(0, k, size)]


def pers_arrays(M):
    """The CSR arrays of a personalization matrix as the kernels take them."""
    return M.indptr.astype(np.int64), M.indices.astype(np.int64), M.data.astype(np.float64)


def pers_transposed(Pb):
    """``pers_arrays`` of ``Pb^T`` (row v lists (column j, weight)), for the row-major block kernels."""
    PT = Pb.T.tocsr()
    PT.sort_indices()
    return pers_arrays(PT)


