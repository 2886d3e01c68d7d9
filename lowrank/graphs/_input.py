"""Graph input shared by every graph method: sparse adjacency, networkx graph or edge-list file.

Convention: ``A[i, j]`` is the weight of the arc i -> j (row = source). Undirected
graphs are stored with both arcs. Self-loops are kept; isolated vertices are rows
and columns of zeros.
"""

import csv
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lowrank._utils.validation import check_int


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


def as_adjacency(graph, *, weight="weight", directed=None, reindex=True, n_nodes=None):
    """Convert a graph given in any supported form to an :class:`Adjacency`.

    Parameters
    ----------
    graph : scipy sparse matrix/array, numpy array, networkx graph, str or os.PathLike
        Square adjacency (row = source), a networkx ``Graph``/``DiGraph``, or the path of an
        edge-list file ``source target [weight]`` (whitespace, comma or tab separated, an optional
        header row; see :func:`read_edge_list`).
    weight : str or None, default="weight"
        networkx edge attribute holding weights; None treats every edge as weight 1.
    directed : bool, optional
        For edge-list files only: False adds the reverse of every arc. Default True.
    reindex : bool, default=True
        For edge-list files only: True numbers the ids present ``0..n-1`` and keeps them as labels;
        False uses integer ids as indices (see :func:`read_edge_list`).
    n_nodes : int, optional
        For edge-list files read with ``reindex=False``: the number of vertices (to include
        isolated trailing vertices). Default ``max id + 1``.

    Returns
    -------
    Adjacency

    Raises
    ------
    ValueError
        Non-square matrix, negative or non-finite weights, empty graph (also an empty networkx
        graph), unreadable or malformed file (see :func:`read_edge_list`).
    FileNotFoundError
        An edge-list path that does not exist.
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
        return read_edge_list(
            graph, directed=True if directed is None else directed, reindex=reindex, n_nodes=n_nodes
        )
    if _is_networkx(graph):
        import networkx as nx

        if graph.number_of_nodes() == 0:
            raise ValueError("`graph` is empty (0 vertices)")
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
    kind = A.dtype.kind if hasattr(A, "dtype") else None
    if kind not in ("b", "i", "u", "f", "c"):
        # scipy's own message for these names no argument
        raise TypeError(f"`graph` weights must be numbers, got dtype {getattr(A, 'dtype', None)}")
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


def read_edge_list(
    path, *, directed=True, reindex=True, n_nodes=None, delimiter="auto", header="auto", comments=("#", "%")
):
    """Read an edge-list file (``source target [weight]`` per line) into an :class:`Adjacency`.

    Reads the files users have: whitespace-separated SNAP / KONECT lists, CSV or TSV exports with a
    header row such as ``source,target,weight``. Vertex ids are *labels*: the ids present are
    numbered ``0..n-1`` (integer ids in increasing order, other ids in order of first appearance) and
    kept in ``Adjacency.labels``, so results can be reported by label and a sparse id space (ids up to
    ``10**12``) costs nothing. When the integer ids present are exactly ``0..n-1``, ``labels`` is None.
    ``reindex=False`` uses integer ids as row indices instead. Repeated arcs add their weights.

    Parameters
    ----------
    path : str or os.PathLike
        UTF-8 text file, one arc ``source target [weight [timestamp]]`` per line (weight 1 when
        absent; a fourth column, KONECT's timestamp, is ignored).
    directed : bool, default=True
        False adds the reverse of every arc (a self-loop is kept once).
    reindex : bool, default=True
        True: ids are labels, renumbered ``0..n-1``. False: integer ids are the vertex indices
        themselves (``n = max id + 1`` unless ``n_nodes`` says more); needs integer ids.
    n_nodes : int, optional
        With ``reindex=False``: the number of vertices (to include isolated trailing vertices).
        Default ``max id + 1``.
    delimiter : {"auto", ",", "\\t", ";", "|", None}, default="auto"
        Column separator; None means any whitespace. "auto" picks tab, then comma, when every one of
        the first 50 lines holds it, else whitespace.
    header : {"auto", True, False}, default="auto"
        Whether the first line names the columns. "auto": it does when its weight field is not a
        number (``source,target,weight``), or when its ids are not integers while every other
        line's are (``source,target``). A header over non-integer ids needs ``header=True``.
    comments : str or tuple of str, default=("#", "%")
        Everything after one of these strings on a line is ignored (SNAP uses ``#``, KONECT ``%``).

    Returns
    -------
    Adjacency

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable or non-UTF-8 file, a line without 2 to 4 fields, a weight that is not a number,
        no arcs, ``reindex=False`` with non-integer or negative ids or more than ``2**31 - 1``
        vertices, ``n_nodes`` below ``max id + 1`` or given with ``reindex=True``, negative or
        non-finite weights, an unknown ``delimiter`` or ``header``.
    TypeError
        ``directed`` or ``reindex`` not a bool, ``path`` not a path.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "g.csv")
    >>> _ = open(path, "w").write("source,target,weight\\n10,3352,2.5\\n3352,7,1\\n")
    >>> adj = read_edge_list(path)
    >>> adj.labels, adj.matrix.shape
    ((7, 10, 3352), (3, 3))
    >>> float(adj.matrix[adj.index_of([10])[0], adj.index_of([3352])[0]])
    2.5
    """
    directed = _check_bool(directed, "directed")
    reindex = _check_bool(reindex, "reindex")
    if delimiter not in ("auto", ",", "\t", ";", "|", None):
        raise ValueError(f"`delimiter` must be 'auto', ',', '\\t', ';', '|' or None; got {delimiter!r}")
    if header not in ("auto", True, False):
        raise ValueError(f"`header` must be 'auto', True or False; got {header!r}")
    if isinstance(comments, str):
        comments = (comments,)
    if not isinstance(comments, (tuple, list)) or not all(isinstance(c, str) and c for c in comments):
        raise TypeError("`comments` must be a non-empty str or a tuple of them")
    if n_nodes is not None:
        if reindex:
            raise ValueError("`n_nodes` applies to integer ids used as indices: pass it with reindex=False")
        n_nodes = check_int(n_nodes, "n_nodes", low=1)
    numbered, rows = _read_rows(path, delimiter, comments)
    if header == "auto":
        header = bool(rows) and _looks_like_header(rows)
    if header:
        numbered, rows = numbered[1:], rows[1:]
    if not rows:
        raise ValueError(f"`path`: edge list {path!s} holds no edges")
    src, dst, w = [], [], []
    for lineno, parts in zip(numbered, rows):
        if len(parts) not in (2, 3, 4) or not parts[0] or not parts[1]:
            raise ValueError(f"`path`: {path}:{lineno}: expected 'source target [weight]', got {parts!r}")
        src.append(parts[0])
        dst.append(parts[1])
        if len(parts) >= 3:
            try:
                w.append(float(parts[2]))
            except ValueError:
                raise ValueError(f"`path`: {path}:{lineno}: weight {parts[2]!r} is not a number") from None
        else:
            w.append(1.0)
    s, t, labels, n = _number_vertices(src, dst, path, reindex, n_nodes)
    weights = np.asarray(w, dtype=np.float64)
    if not directed:
        s, t, weights = np.concatenate([s, t]), np.concatenate([t, s]), np.concatenate([weights, weights])
        loops = s == t  # a self-loop listed once must not count twice
        keep = ~loops | (np.arange(s.size) < s.size // 2)
        s, t, weights = s[keep], t[keep], weights[keep]
    A = sp.coo_matrix((weights, (s, t)), shape=(n, n))
    return Adjacency(_check_matrix(A), labels)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _read_rows(path, delimiter, comments):
    """Split the data lines of ``path`` into fields: (line numbers, rows of stripped fields)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`: no such edge-list file: {path!s}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"`path`: {path!s} is not a UTF-8 text edge list (undecodable byte at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise ValueError(f"`path`: cannot read edge list {path!s}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ValueError(f"`path`: {path!s} is not a text edge list (it holds NUL bytes)")
    numbered, lines = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        for c in comments:
            line = line.split(c, 1)[0]
        line = line.strip()
        if line:
            numbered.append(lineno)
            lines.append(line)
    if delimiter == "auto":
        sample = lines[:50]
        delimiter = next((d for d in ("\t", ",") if sample and all(d in line for line in sample)), None)
    if delimiter is None:
        rows = [line.split() for line in lines]
    else:
        rows = [[field.strip() for field in row] for row in csv.reader(lines, delimiter=delimiter)]
        for row in rows:  # a trailing separator ("1,2,") is not an empty weight
            while len(row) > 2 and row[-1] == "":
                row.pop()
    return numbered, rows


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(rows):
    first = rows[0]
    if len(first) >= 3 and not _is_float(first[2]):
        return True
    if len(rows) < 2 or len(first) < 2 or (_is_int(first[0]) and _is_int(first[1])):
        return False
    return all(len(r) >= 2 and _is_int(r[0]) and _is_int(r[1]) for r in rows[1:])


def _number_vertices(src, dst, path, reindex, n_nodes):
    """Row indices of the arcs' ends, the labels (None for plain 0..n-1) and the vertex count."""
    try:
        s, t = np.asarray([int(v) for v in src], dtype=np.int64), np.asarray([int(v) for v in dst], dtype=np.int64)
    except (ValueError, OverflowError):
        if not reindex:
            raise ValueError(
                f"`path`: {path!s} has vertex ids that are not integers; reindex=False needs integer ids"
            ) from None
        order = {}
        for v in _interleave(src, dst):
            order.setdefault(v, len(order))
        s = np.asarray([order[v] for v in src], dtype=np.int64)
        t = np.asarray([order[v] for v in dst], dtype=np.int64)
        return s, t, tuple(order), len(order)
    if reindex:
        ids, inverse = np.unique(np.concatenate([s, t]), return_inverse=True)
        n = ids.size
        plain = ids[0] == 0 and ids[-1] == n - 1
        return inverse[: s.size], inverse[s.size :], None if plain else tuple(int(v) for v in ids), n
    if (s < 0).any() or (t < 0).any():
        raise ValueError(f"`path`: {path!s} has negative vertex ids; they cannot be indices (use reindex=True)")
    n = int(max(s.max(), t.max())) + 1
    if n_nodes is not None:
        if n_nodes < n:
            raise ValueError(f"`n_nodes`={n_nodes} is smaller than the largest vertex id + 1 = {n}")
        n = n_nodes
    if n > 2**31 - 1:
        raise ValueError(
            f"`path`: vertex id {n - 1} used as an index would make a {n}-vertex graph; "
            "use reindex=True (the default) to number the ids present"
        )
    return s, t, None, n


def _interleave(src, dst):
    for a, b in zip(src, dst):
        yield a
        yield b
