"""Personalized PageRank: an exact batched solver, forward push and PowerWalk behind one function.

Convention. With damping factor ``alpha`` and personalization ``p`` (a distribution over vertices),
the personalized PageRank vector ``pi`` solves

    pi = (1 - alpha) p + alpha pi P,        P = D^-1 A  (row = source),

where the out-mass of a dangling vertex (no out-arc, or only zero-weight arcs) returns to the
personalization: ``P``'s dangling rows are replaced by ``p``. This is networkx's default when a
personalization is given (``dangling=None``) and igraph's PRPACK's; each ``pi`` sums to 1. Self-loops
are ordinary arcs; isolated vertices are dangling. ``dangling=d`` replaces the dangling rows by one
fixed distribution ``d`` instead (networkx's ``dangling=``).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lowrank._utils.ranking import top_k_rows
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.graphs._ppr_torch import graph_to_scipy, is_torch, power_torch, resolve_device, top_k_torch, torch_module
from lowrank.graphs._ppr_common import (
    Transition,
    check_damping,
    column_batches,
    distribution_rows,
    load_graph,
    pers_arrays,
    pers_transposed,
    personalization_rows,
)

__all__ = ["personalized_pagerank"]

_METHODS = ("power", "push", "powerwalk")


@dataclass(frozen=True)
class _Options:
    """Validated options of one :func:`personalized_pagerank` call."""

    alpha: float
    tol: float
    max_iter: int
    method: str
    top_k: int | None
    dangling: np.ndarray | None  # (n,) distribution, or None: back to each row's personalization
    nstart: sp.csr_matrix | None  # (k, n) starting distributions of the power iteration


def personalized_pagerank(
    graph,
    seeds=None,
    *,
    personalization=None,
    dangling=None,
    nstart=None,
    damping_factor=0.85,
    weights=None,
    tol=1e-6,
    max_iter=100,
    method="power",
    top_k=None,
    rng=None,
    device=None,
):
    """Personalized PageRank of one or many seeds.

    Parameters
    ----------
    graph : scipy sparse matrix, numpy array, torch tensor, networkx graph, str or os.PathLike
        Adjacency with ``A[u, v]`` the weight of arc u -> v (row = source), a networkx
        ``Graph``/``DiGraph``, or an edge-list file ``source target [weight]`` (directed).
        See :func:`lowrank.graphs.as_adjacency`. A torch tensor (dense, COO, CSR or CSC, on any
        device) selects the torch solver on its device and dtype (float32 stays float32).
    seeds : vertex, sequence of vertices, dict or sequence of dicts, optional
        One vertex, a batch of vertices (one PPR vector per vertex), a personalization
        ``{vertex: weight}`` (weights are normalized) or a batch of such dicts. Vertices are
        integers ``0..n-1``, or the node labels of a networkx graph / edge-list file. Give
        ``seeds`` or ``personalization``, not both. A float/bool array is refused (it is a weight
        vector: use ``personalization``), and so is an integer array of ``n`` entries with repeats
        on an ``n``-vertex graph (it reads as a weight vector as easily as ``n`` seeds; a Python
        list is always a list of seeds).
    personalization : dict, array_like of shape (n,) or (k, n), or sparse (k, n), optional
        Restart distributions given by weight: a ``{vertex: weight}`` dict (networkx's
        ``personalization``; missing vertices weigh 0), a length-n vector, or a (k, n) matrix
        whose rows are k distributions (one PPR vector each); columns follow the graph's vertex
        order (``G.nodes()``, or the labels of an edge-list file). Rows are normalized to sum 1; weights
        must be finite and non-negative with a positive sum. ``np.ones(n)`` gives global PageRank.
    dangling : dict or array_like of shape (n,), optional
        networkx's ``dangling``: where the out-mass of a dangling vertex goes, as one distribution
        over the vertices (normalized) shared by every row. Default None: back to each row's own
        personalization. ``method="power"`` only.
    nstart : dict or array_like of shape (n,) or (k, n), optional
        networkx's ``nstart``: starting distributions of the power iteration (a warm start, e.g.
        a previous answer on a slightly changed graph). A single row starts every personalization.
        It changes the number of iterations, not the answer (``tol`` still bounds the error).
        Default: the personalization itself. ``method="power"`` only.
    damping_factor : float, default=0.85
        Probability ``alpha`` of following an arc, in (0, 1).
    weights : None, bool or str, default=None
        None/True: use the arc weights (the matrix values, networkx's ``"weight"`` attribute).
        False: every arc counts 1. A str: the networkx edge attribute holding the weights.
    tol : float, default=1e-6
        ``"power"`` and ``"push"``: guaranteed L1 error of every returned vector. ``power`` stops
        when ``alpha / (1 - alpha) * ||x_{t+1} - x_t||_1 <= tol``, an upper bound on the error;
        ``push`` stops when the residual mass (its exact L1 error) is ``<= tol``. Ignored by
        ``"powerwalk"``.
    max_iter : int, default=100
        ``"power"``: iteration cap (a RuntimeWarning says when it is reached above ``tol``).
        ``"powerwalk"``: the decomposition runs ``T = min(max_iter, 10)`` steps.
    method : {"power", "push", "powerwalk"}, default="power"
        ``"power"``: power iteration on the whole batch at once (a numba kernel gathering contiguous
        rows of a row-major (n, n_seeds) block, one pass over the arcs per iteration for all seeds).
        ``"push"``: forward push per seed (fast for local, low-accuracy answers).
        ``"powerwalk"``: fit a :class:`~lowrank.graphs.PowerWalk` index (10 walks per vertex) and
        query it with ``T = min(max_iter, 10)``; approximate, see that class for the error.
    top_k : int, optional
        Return only the ``top_k`` highest-scoring vertices per seed.
    rng : None, int or numpy.random.Generator, default=None
        Seed of the random walks (``"powerwalk"`` only).
    device : str or torch.device, optional
        Run the ``"power"`` solver in torch on this device (``"cuda"``, ``"cpu"``): the batched
        iteration as torch sparse CSR x dense block products, with the same stopping rule, bound and
        dangling convention as the numba kernel. Also chosen, on the input's device, when ``graph``
        or ``personalization`` is a torch tensor. The result is then a torch tensor on that device
        (float64, or the torch graph's float32). Default: numpy in, numpy out (numba).

    Returns
    -------
    scores : ndarray or torch.Tensor of shape (n_seeds, n)
        When ``top_k`` is None. Row ``i`` is the PPR vector of ``seeds[i]`` (a single vertex or a
        single dict gives one row); columns follow the graph's vertex order. A torch tensor on the
        torch path (``device`` or torch input).
    (indices, scores) : tuple of ndarrays (or torch tensors) of shape (n_seeds, top_k)
        When ``top_k`` is given: vertex positions (int64) and scores, by decreasing score (ties to
        the smaller position).

    Raises
    ------
    ValueError
        Unknown seed vertex, negative/non-finite weights, empty graph (also an empty networkx
        graph), ``damping_factor`` outside (0, 1), ``tol <= 0``, bad ``top_k``, both or neither of
        ``seeds`` and ``personalization``, an ambiguous ``seeds``, a ``personalization`` /
        ``dangling`` / ``nstart`` of the wrong length, ``dangling`` or ``nstart`` with a method
        other than ``"power"`` (also for torch input / ``device``), an unknown ``device`` or CUDA
        asked for without one.
    TypeError
        Unsupported graph, seeds or personalization type (a float array given as ``seeds``).

    References
    ----------
    .. [1] L. Page, S. Brin, R. Motwani, T. Winograd, "The PageRank citation ranking", 1999.
    .. [2] R. Andersen, F. Chung, K. Lang, "Local graph partitioning using PageRank vectors",
       FOCS 2006 (forward push).
    .. [3] Q. Liu, Z. Li, J. C. S. Lui, J. Cheng, "PowerWalk: Scalable Personalized PageRank via
       Random Walks with Vertex-Centric Decomposition", CIKM 2016, arXiv:1608.06054.

    Examples
    --------
    On a directed cycle every vertex is symmetric, so the global PageRank (uniform personalization)
    is uniform, and from one seed the scores fall geometrically along the cycle:

    >>> import numpy as np, scipy.sparse as sp
    >>> n = 5
    >>> A = sp.csr_matrix((np.ones(n), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    >>> personalized_pagerank(A, {v: 1.0 for v in range(n)}).round(6)
    array([[0.2, 0.2, 0.2, 0.2, 0.2]])
    >>> pi = personalized_pagerank(A, [0])
    >>> bool(np.allclose(pi[0, 1] / pi[0, 0], 0.85, atol=1e-5))
    True
    >>> idx, scores = personalized_pagerank(A, [0, 3], top_k=2)
    >>> idx.tolist()
    [[0, 1], [3, 4]]

    A weight vector over the vertices is a ``personalization``, and ``dangling`` says where the
    mass of a vertex without out-arcs goes (here vertex 4 loses its arc and sends it to vertex 2):

    >>> B = A.tolil(); B[4, 0] = 0; B = B.tocsr(); B.eliminate_zeros()
    >>> pi = personalized_pagerank(B, personalization=np.array([1, 0, 0, 0, 0]), dangling={2: 1.0})
    >>> pi.shape, round(float(pi.sum()), 6)
    ((1, 5), 1.0)
    """
    torch_device, torch_dtype = None, None
    if device is not None or is_torch(graph) or is_torch(personalization):
        graph, torch_device, torch_dtype = _torch_inputs(graph, device, method)
    adj, P, opts = _iv(graph, seeds, personalization, dangling, nstart, damping_factor, weights, tol, max_iter,
                       method, top_k)
    if torch_device is not None:
        X = power_torch(P, adj, opts.alpha, opts.tol, opts.max_iter, device=torch_device, dtype=torch_dtype,
                        dangling=opts.dangling, nstart=opts.nstart)
        return top_k_torch(X, opts.top_k) if opts.top_k is not None else X
    X = _solve(adj, P, opts, rng)
    if opts.top_k is not None:
        return top_k_rows(X, opts.top_k)
    return X


def _torch_inputs(graph, device, method):
    """The torch path's graph (on the host, for validation), device and dtype."""
    torch = torch_module()
    if method != "power":
        raise ValueError(f"torch tensors / `device` need method='power', got method={method!r}")
    graph_device, dtype = None, torch.float64
    if is_torch(graph):
        graph, graph_device, dtype = graph_to_scipy(graph)
    return graph, resolve_device(device, graph_device), dtype


def _solve(adj, P, opts, rng=None):
    """Body of :func:`personalized_pagerank` without validation: (k, n) scores."""
    if opts.method == "power":
        if opts.dangling is None:
            return _power(P, adj, opts.alpha, opts.tol, opts.max_iter, nstart=opts.nstart)
        return _power_fixed_dangling(P, adj, opts.dangling, opts.alpha, opts.tol, opts.max_iter, nstart=opts.nstart)
    if opts.method == "push":
        return _push(P, adj, opts.alpha, opts.tol)
    from lowrank.graphs.powerwalk import PowerWalk

    pw = PowerWalk(damping_factor=opts.alpha, random_state=rng)
    pw._fit_adjacency(adj)
    return pw._query_rows(P, n_decomp=min(opts.max_iter, 10), threshold=pw._default_threshold())


def _iv(graph, seeds, personalization, dangling, nstart, damping_factor, weights, tol, max_iter, method, top_k):
    alpha = check_damping(damping_factor)
    tol = check_float(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = check_int(max_iter, "max_iter", low=1)
    method = check_choice(method, "method", _METHODS)
    if method != "power":
        for name, value in (("dangling", dangling), ("nstart", nstart)):
            if value is not None:
                raise ValueError(f"`{name}` is supported by method='power' only, got method={method!r}")
    if (seeds is None) == (personalization is None):
        raise ValueError(
            "give either `seeds` (vertices) or `personalization` (restart distributions by weight), "
            + ("not both" if seeds is not None else "got neither")
        )
    adj = load_graph(graph, weights)
    if top_k is not None:
        top_k = check_int(top_k, "top_k", low=1, high=adj.n_nodes)
    if seeds is not None:
        P = personalization_rows(adj, seeds)
    else:
        P = distribution_rows(adj, personalization, name="personalization")
    if dangling is not None:
        D = distribution_rows(adj, dangling, name="dangling")
        if D.shape[0] != 1:
            raise ValueError(f"`dangling` must be one distribution (a dict or a length-{adj.n_nodes} vector)")
        dangling = D.toarray().ravel()
    if nstart is not None:
        nstart = distribution_rows(adj, nstart, name="nstart", rows=P.shape[0])
    return adj, P, _Options(alpha, tol, max_iter, method, top_k, dangling, nstart)


def _warn_max_iter(bound, tol, max_iter):
    import warnings

    if (bound > tol).any():
        warnings.warn(
            f"personalized_pagerank: max_iter={max_iter} reached with an L1 error bound of "
            f"{bound.max():.2e} > tol={tol:.1e}; raise `max_iter`",
            RuntimeWarning,
            stacklevel=4,
        )


def _power(P, adj, alpha, tol, max_iter, *, nstart=None):
    """Body of the exact batched solver: returns (k, n). ``nstart``: (k, n) start, default ``P``."""
    from lowrank.graphs import _ppr_kernels as K

    tr = Transition(adj.matrix)
    t_indptr, t_indices, t_probs = tr.transposed()
    dangling_idx = np.flatnonzero(tr.dangling).astype(np.int64)
    out = np.empty(P.shape)
    bound = np.zeros(P.shape[0])
    start = P if nstart is None else nstart
    for lo, hi in column_batches(P.shape[0], tr.n):
        Pb = P[lo:hi]
        X, _, bound[lo:hi] = K.power_block(
            t_indptr,
            t_indices,
            t_probs,
            dangling_idx,
            *pers_transposed(Pb),
            np.ascontiguousarray(start[lo:hi].toarray().T),
            alpha,
            tol,
            max_iter,
        )
        out[lo:hi] = X.T
    _warn_max_iter(bound, tol, max_iter)
    return out


def _power_fixed_dangling(P, adj, d, alpha, tol, max_iter, *, nstart=None):
    """Exact PPR where dangling mass goes to the fixed distribution ``d`` (networkx's ``dangling``).

    By linearity, ``x = y_p + kappa y_d``: ``y_p`` and ``y_d`` solve the substochastic iteration
    ``y <- alpha y P0 + (1 - alpha) q`` (``P0``: P with its dangling rows left empty, so the numba
    kernel runs it with no dangling vertex) for ``q = p`` and ``q = d``, and the mass lost on the
    dangling vertices fixes ``kappa = beta a / (1 - beta b)``, ``beta = alpha / (1 - alpha)``,
    ``a = y_p(dangling)``, ``b = y_d(dangling)``. The combination is then certified by steps of the
    true iteration (:func:`_iterate_fixed_dangling`), so the returned error bound is the usual one.
    With ``nstart`` the true iteration runs from it directly. Returns (k, n).
    """
    if nstart is not None:
        return _iterate_fixed_dangling(P, adj, d, alpha, tol, max_iter, start=nstart.toarray())
    from lowrank.graphs import _ppr_kernels as K

    tr = Transition(adj.matrix)
    t_indptr, t_indices, t_probs = tr.transposed()
    none = np.empty(0, dtype=np.int64)
    beta = alpha / (1.0 - alpha)
    inner = tol / 10.0  # headroom, so that the certifying step usually already meets tol

    def substochastic(Q):
        X, _, _ = K.power_block(
            t_indptr, t_indices, t_probs, none, *pers_transposed(Q), np.ascontiguousarray(Q.toarray().T),
            alpha, inner, max_iter,
        )
        return X

    y_d = substochastic(sp.csr_matrix(d[None, :]))[:, 0]
    b = y_d[tr.dangling].sum()
    start = np.empty(P.shape)
    for lo, hi in column_batches(P.shape[0], tr.n):
        Y = substochastic(P[lo:hi])
        kappa = beta * Y[tr.dangling].sum(axis=0) / (1.0 - beta * b)  # 1 - beta b = |y_d|_1 >= 1 - alpha
        start[lo:hi] = (Y + np.outer(y_d, kappa)).T
    return _iterate_fixed_dangling(P, adj, d, alpha, tol, max_iter, start=start)


def _iterate_fixed_dangling(P, adj, d, alpha, tol, max_iter, *, start):
    """The true iteration ``x <- alpha x P0 + (1 - alpha) p + alpha (x . 1_dangling) d`` from ``start``
    (k, n), on (n, batch) blocks with scipy's CSR x dense product; the stopping rule and error bound of
    :func:`_power`. Returns (k, n).
    """
    tr = Transition(adj.matrix)
    MT = tr.matrix().T.tocsr()
    dangling = tr.dangling
    factor = alpha / (1.0 - alpha)
    out = np.empty(P.shape)
    bound = np.full(P.shape[0], np.inf)
    for lo, hi in column_batches(P.shape[0], tr.n):
        teleport = (1.0 - alpha) * P[lo:hi].toarray().T
        X = np.ascontiguousarray(start[lo:hi].T)
        for _ in range(max_iter):
            lost = X[dangling].sum(axis=0)
            Y = alpha * (MT @ X)
            Y += teleport
            Y += np.outer(d, alpha * lost)
            bound[lo:hi] = factor * np.abs(Y - X).sum(axis=0)
            X = Y
            if (bound[lo:hi] <= tol).all():
                break
        out[lo:hi] = X.T
    _warn_max_iter(bound, tol, max_iter)
    return out


def _push(P, adj, alpha, tol):
    from lowrank.graphs import _ppr_kernels as K

    tr = Transition(adj.matrix)
    out = np.zeros((P.shape[0], tr.n))
    p_indptr, p_indices, p_values = pers_arrays(P)
    K.push_batch(
        tr.indptr, tr.indices, tr.probs, tr.dangling, p_indptr, p_indices, p_values, alpha, tol, max(tol, 1e-4), out
    )
    return out


def power_reference(A, P, alpha, *, tol=1e-12, max_iter=10_000):
    """Plain scipy power iteration (the numpy path the kernels are cross-checked against).

    ``A``: CSR adjacency, ``P``: (k, n) personalization (dense or sparse). Returns (k, n).
    """
    tr = Transition(A)
    M = tr.matrix()
    Pd = np.asarray(P.toarray() if hasattr(P, "toarray") else P, dtype=np.float64)
    X = Pd.copy()
    for _ in range(max_iter):
        lost = X[:, tr.dangling].sum(axis=1, keepdims=True)
        Y = alpha * (M.T @ X.T).T + ((1 - alpha) + alpha * lost) * Pd
        if np.abs(Y - X).sum(axis=1).max() * alpha / (1 - alpha) <= tol:
            return Y
        X = Y
    return X
