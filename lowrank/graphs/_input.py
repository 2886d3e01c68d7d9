"""Graph input shared by every graph method: sparse adjacency, networkx graph or edge-list file.

Convention: ``A[i, j]`` is the weight of the arc i -> j (row = source). Undirected
graphs are stored with both arcs. Self-loops are kept; isolated vertices are rows
and columns of zeros.
"""

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Adjacency:
    """A validated graph: CSR ``matrix`` (n x n, float64, row = source) and node ``labels``.

    ``labels`` is None when nodes are the integers ``0..n-1``; otherwise ``labels[i]`` is
    the user's name of node ``i`` and :meth:`index_of` maps names back.
    """

    matrix: sp.csr_matrix
    labels: tuple | None = None

    @property
    def n_nodes(self):
        return self.matrix.shape[0]

    def index_of(self, nodes, *, name="seeds"):
        """Map user node names (or ints) to row indices, with a clear error for unknown ones."""
        nodes = list(nodes)
        if self.labels is None:
            out = []
            for v in nodes:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < self.n_nodes:
                    raise ValueError(f"`{name}`: unknown vertex {v!r} (graph has vertices 0..{self.n_nodes - 1})")
                out.append(int(v))
            return np.asarray(out, dtype=np.int64)
        lookup = {label: i for i, label in enumerate(self.labels)}
        try:
            return np.asarray([lookup[v] for v in nodes], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"`{name}`: unknown vertex {exc.args[0]!r}") from None


def as_adjacency(graph, *, weight="weight", directed=None, n_nodes=None):
    """Convert a graph given in any supported form to an :class:`Adjacency`.

    Parameters
    ----------
    graph : scipy sparse matrix/array, numpy array, networkx graph, str or os.PathLike
        Square adjacency (row = source), a networkx ``Graph``/``DiGraph``, or the path of a
        whitespace/comma separated edge list ``source target [weight]`` (``#`` starts a comment).
    weight : str or None, default="weight"
        networkx edge attribute holding weights; None treats every edge as weight 1.
    directed : bool, optional
        For edge-list files only: False adds the reverse of every arc. Default True.
    n_nodes : int, optional
        For edge-list files with integer ids: the number of vertices (to include isolated
        trailing vertices). Default ``max id + 1``.

    Returns
    -------
    Adjacency

    Raises
    ------
    ValueError
        Non-square matrix, negative or non-finite weights, empty graph, unreadable file.
    TypeError
        Unsupported input type or complex weights.

    Examples
    --------
    >>> import networkx as nx
    >>> adj = as_adjacency(nx.cycle_graph(4))
    >>> adj.matrix.shape, adj.matrix.nnz
    ((4, 4), 8)
    """
    if isinstance(graph, (str, os.PathLike)):
        return read_edge_list(graph, directed=True if directed is None else directed, n_nodes=n_nodes)
    if _is_networkx(graph):
        import networkx as nx

        labels = tuple(graph.nodes())
        A = nx.to_scipy_sparse_array(graph, nodelist=list(labels), weight=weight, format="csr", dtype=np.float64)
        plain = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels) and list(
            labels
        ) == list(range(len(labels)))
        return Adjacency(_check_matrix(A), None if plain else labels)
    if sp.issparse(graph) or isinstance(graph, np.ndarray):
        return Adjacency(_check_matrix(graph))
    raise TypeError(
        "`graph` must be a scipy sparse adjacency, a numpy array, a networkx graph or an edge-list path; "
        f"got {type(graph).__name__}"
    )


def _is_networkx(obj):
    return type(obj).__module__.startswith("networkx")


def _check_matrix(A):
    A = sp.csr_matrix(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"`graph` adjacency must be square, got shape {A.shape}")
    if A.shape[0] == 0:
        raise ValueError("`graph` is empty (0 vertices)")
    if np.iscomplexobj(A.data):
        raise TypeError("`graph` weights must be real")
    A = A.astype(np.float64)
    A.sum_duplicates()
    if not np.isfinite(A.data).all():
        raise ValueError("`graph` weights must be finite")
    if (A.data < 0).any():
        raise ValueError("`graph` weights must be non-negative")
    A.eliminate_zeros()
    A.sort_indices()
    return A


def read_edge_list(path, *, directed=True, n_nodes=None, comments="#"):
    """Read ``source target [weight]`` lines (whitespace or comma separated) into an :class:`Adjacency`.

    Integer ids are used as vertex indices directly; any other ids are numbered in order
    of first appearance and kept as labels. Repeated arcs add their weights.

    Parameters
    ----------
    path : str or os.PathLike
        Text file, one arc ``source target [weight]`` per line (weight 1 when absent).
    directed : bool, default=True
        False adds the reverse of every arc (a self-loop is kept once).
    n_nodes : int, optional
        With integer ids: the number of vertices (to include isolated trailing vertices).
        Default ``max id + 1``.
    comments : str, default="#"
        Everything after this string on a line is ignored.

    Returns
    -------
    Adjacency

    Raises
    ------
    ValueError
        Unreadable file, a line without 2 or 3 fields, no arcs, negative integer ids,
        ``n_nodes`` below ``max id + 1``, negative or non-finite weights.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "g.txt")
    >>> _ = open(path, "w").write("0 1\\n1 2 2.5\\n")
    >>> float(read_edge_list(path).matrix.toarray()[1, 2])
    2.5
    """
    src, dst, w = [], [], []
    try:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.split(comments, 1)[0].strip()
                if not line:
                    continue
                parts = line.replace(",", " ").split()
                if len(parts) not in (2, 3):
                    raise ValueError(f"{path}:{lineno}: expected 'source target [weight]', got {line!r}")
                src.append(parts[0])
                dst.append(parts[1])
                w.append(float(parts[2]) if len(parts) == 3 else 1.0)
    except OSError as exc:
        raise ValueError(f"cannot read edge list {path!s}: {exc}") from exc
    if not src:
        raise ValueError(f"`graph`: edge list {path!s} holds no edges")
    try:
        s, t = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        labels = None
        if (s < 0).any() or (t < 0).any():
            raise ValueError(f"{path}: negative vertex ids")
        n = int(max(s.max(), t.max())) + 1
        if n_nodes is not None:
            if n_nodes < n:
                raise ValueError(f"`n_nodes`={n_nodes} is smaller than the largest vertex id + 1 = {n}")
            n = int(n_nodes)
    except ValueError as exc:
        if "negative" in str(exc) or "n_nodes" in str(exc):
            raise
        order = {}
        for v in _interleave(src, dst):
            order.setdefault(v, len(order))
        s = np.asarray([order[v] for v in src], dtype=np.int64)
        t = np.asarray([order[v] for v in dst], dtype=np.int64)
        labels, n = tuple(order), len(order)
    weights = np.asarray(w, dtype=np.float64)
    if not directed:
        s, t, weights = np.concatenate([s, t]), np.concatenate([t, s]), np.concatenate([weights, weights])
        loops = s == t  # a self-loop listed once must not count twice
        keep = ~loops | (np.arange(s.size) < s.size // 2)
        s, t, weights = s[keep], t[keep], weights[keep]
    A = sp.coo_matrix((weights, (s, t)), shape=(n, n))
    return Adjacency(_check_matrix(A), labels)


def _interleave(src, dst):
    for a, b in zip(src, dst):
        yield a
        yield b
