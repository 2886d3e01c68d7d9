"""FastRP node embeddings (Chen et al., CIKM 2019), with the options of Neo4j GDS's implementation.

The embedding is a weighted sum of row-normalized powers of the transition matrix applied to a
very sparse random projection:

    M = D^-1 A                    (``transition="row"``; ``"none"`` keeps M = A)
    R' = D^beta R                 (R: very sparse random projection, beta = ``normalization_strength``)
    U_1 = M R',  U_i = M U_{i-1}
    E = sum_i alpha_i normalize(U_i) [+ s normalize(R')],   then standardize the columns of E.

Each step is one sparse-times-dense product over rows; rows are independent and the projection's
row ``i`` depends only on ``(seed, i)``, so a row-partitioned run on Dask equals the serial one.
"""

import logging
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from lowrank._utils.counter_rng import counter_bits
from lowrank._utils.io import load_npz, save_npz
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.graphs._input import as_adjacency
from lowrank.linalg import sparse_random_projection

__all__ = ["fastrp", "FastRP"]

logger = logging.getLogger(__name__)

_PAPER_WEIGHTS = (0.0, 0.0, 1.0, 6.67)
# GDS draws the feature projection with Achlioptas' sparsity 3 whatever the graph size.
_FEATURE_DENSITY = 1.0 / 3.0


def fastrp(
    graph,
    n_components=128,
    *,
    iteration_weights=_PAPER_WEIGHTS,
    normalization_strength=-0.64,
    transition="row",
    density="auto",
    self_influence=0.0,
    normalize_rows=True,
    standardize=True,
    node_features=None,
    feature_ratio=0.0,
    dtype=np.float32,
    rng=None,
    client=None,
    n_partitions=None,
):
    """FastRP node embeddings: weighted powers of the transition matrix on a very sparse random projection.

    Computes ``U_1 = M R'`` and ``U_i = M U_{i-1}`` for ``i = 2..k`` (``k = len(iteration_weights)``),
    where ``M = D^-1 A`` is the random-walk transition matrix and ``R' = D^beta R`` a very sparse
    random projection whose rows are scaled by the vertex degree to the power
    ``beta = normalization_strength``; returns ``E = sum_i alpha_i normalize(U_i)`` with its columns
    standardized. These defaults are the paper's BlogCatalog setting. The options also cover Neo4j
    GDS's ``gds.fastRP``: ``iterationWeights`` -> ``iteration_weights``, ``normalizationStrength`` ->
    ``normalization_strength``, ``nodeSelfInfluence`` -> ``self_influence``, ``propertyRatio`` and
    ``featureProperties`` -> ``feature_ratio`` and ``node_features``, relationship weights -> the
    adjacency's weights; use ``normalize_rows="propagate"``, ``standardize=False`` and ``density=3``
    for GDS's propagation.

    Parameters
    ----------
    graph : scipy sparse matrix, ndarray, networkx graph, str or os.PathLike
        Adjacency with ``A[i, j]`` the (non-negative) weight of arc ``i -> j``, or anything
        :func:`lowrank.graphs.as_adjacency` reads. Undirected graphs hold both arcs.
    n_components : int, default=128
        Embedding dimension ``d``.
    iteration_weights : sequence of float, default=(0.0, 0.0, 1.0, 6.67)
        ``alpha_1..alpha_k``, the weight of each power; its length is the number of propagation steps.
    normalization_strength : float, default=-0.64
        ``beta``: the initial vector of vertex ``j`` is scaled by ``degree_j ** beta`` (vertices of
        degree 0 keep scale 1). Negative values damp high-degree vertices. 0 disables it.
    transition : {"row", "none"}, default="row"
        ``"row"``: ``M = D^-1 A`` (the paper's transition matrix, ``D`` the weighted out-degrees);
        ``"none"``: ``M = A``.
    density : "auto", int or float, default="auto"
        Non-zero fraction of the projection ``R``: "auto" is ``1 / sqrt(n)`` (Li et al.'s very
        sparse projection, as in the paper), an int ``s >= 1`` means ``1 / s`` (GDS uses 3), a float
        in (0, 1] is the fraction itself.
    self_influence : float, default=0.0
        GDS's ``nodeSelfInfluence``: adds ``s * normalize(R')``, the vertex's own initial vector.
    normalize_rows : bool or "propagate", default=True
        True: the paper's ``normalize(U_i)`` (unit L2 rows) before weighting, while the
        unnormalized ``U_i`` is propagated; "propagate": GDS's variant, where the normalized rows
        are also what the next step propagates; False: no normalization.
    standardize : bool, default=True
        Scale each column of the result to zero mean and unit variance (the paper's final step).
    node_features : array_like or sparse of shape (n, n_features), optional
        Vertex features, projected (GDS's ``propertyRatio``) into the last
        ``int(feature_ratio * n_components)`` coordinates of the initial vectors.
    feature_ratio : float, default=0.0
        Fraction of the dimensions given to ``node_features``, in [0, 1]; needs ``node_features``.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Precision of the computation and of the result.
    rng : None, int or numpy.random.Generator, optional
        Seed of the projection. An int seeds row ``i`` through ``(seed, i)`` only, so the same
        int gives the same embedding on any partitioning.
    client : distributed.Client, optional
        Run on Dask, the adjacency split into row blocks (one task per block and step). Default:
        the active Dask client if ``distributed`` is imported and one is running, else in process.
        Both give the same embedding.
    n_partitions : int, optional
        Number of row blocks with ``client`` (default: the number of worker threads).

    Returns
    -------
    embedding : ndarray of shape (n, n_components), dtype ``dtype``

    Raises
    ------
    ValueError
        Bad graph (see :func:`as_adjacency`), out-of-range or non-finite options, features of the
        wrong shape, ``feature_ratio`` without ``node_features`` or the reverse.
    TypeError
        Arguments of the wrong type.

    See Also
    --------
    FastRP : the estimator, which can keep each ``U_i`` to re-weight them without recomputing.
    evaluate_node_classification : the standard protocol to score an embedding.

    Notes
    -----
    Cost: ``k`` sparse-times-dense products, ``O(k * nnz(A) * d)`` time and ``O(n * d)`` memory
    (three ``n x d`` arrays). GDS scales initial vectors by the unweighted degree; here ``D`` is the
    weighted out-degree (they agree on unweighted graphs, and the propagation of
    ``normalize_rows="propagate"`` does not depend on the row scaling at all).

    References
    ----------
    .. [1] H. Chen, S. F. Sultan, Y. Tian, M. Chen, S. Skiena, "Fast and Accurate Network
       Embeddings via Very Sparse Random Projection", CIKM 2019, arXiv:1908.11512.
    .. [2] P. Li, T. J. Hastie, K. W. Church, "Very sparse random projections", KDD 2006.
    .. [3] Neo4j Graph Data Science, "Fast Random Projection" (``gds.fastRP``).

    Examples
    --------
    >>> import networkx as nx
    >>> from lowrank.graphs import fastrp
    >>> G = nx.karate_club_graph()
    >>> E = fastrp(G, n_components=32, iteration_weights=(1.0, 1.0), rng=0)
    >>> E.shape, E.dtype
    ((34, 32), dtype('float32'))
    """
    params, A, features, seed = _iv(
        graph, n_components, iteration_weights, normalization_strength, transition, density, self_influence,
        normalize_rows, standardize, node_features, feature_ratio, dtype, rng,
    )
    client = _resolve_client(client)
    if n_partitions is not None:
        n_partitions = check_int(n_partitions, "n_partitions", low=1)
    if client is not None:
        return _fastrp_dask(A, features, seed, params, client, n_partitions)
    embedding, _, _ = _fastrp(A, features, seed, params)
    return embedding


class _Params:
    """The validated options of one FastRP run (plain attributes, picklable for Dask)."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @property
    def n_base(self):
        return self.n_components - self.n_feature_dims


def _iv(
    graph, n_components, iteration_weights, normalization_strength, transition, density, self_influence,
    normalize_rows, standardize, node_features, feature_ratio, dtype, rng,
):
    n_components = check_int(n_components, "n_components", low=1)
    weights = _check_weights(iteration_weights)
    beta = check_float(normalization_strength, "normalization_strength")
    check_choice(transition, "transition", ("row", "none"))
    self_influence = check_float(self_influence, "self_influence")
    if isinstance(normalize_rows, (bool, np.bool_)):
        normalize_rows = bool(normalize_rows)
    elif normalize_rows != "propagate":
        raise ValueError(f"`normalize_rows` must be True, False or 'propagate'; got {normalize_rows!r}")
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"`standardize` must be a bool, got {type(standardize).__name__}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"`dtype` must be numpy.float32 or numpy.float64, got {dtype}")
    feature_ratio = check_float(feature_ratio, "feature_ratio", low=0.0, high=1.0)

    A = as_adjacency(graph).matrix
    n = A.shape[0]
    density = _check_density(density, n)

    features = None
    n_feature_dims = 0
    if node_features is not None:
        features = _check_features(node_features, n)
        if feature_ratio == 0.0:
            raise ValueError("`node_features` given but `feature_ratio` is 0: set the fraction of dimensions for them")
        n_feature_dims = int(n_components * feature_ratio)
        if n_feature_dims == 0:
            raise ValueError(
                f"`feature_ratio`={feature_ratio} leaves no dimension for `node_features` with "
                f"`n_components`={n_components}"
            )
    elif feature_ratio != 0.0:
        raise ValueError("`feature_ratio` > 0 needs `node_features`")
    seed = as_seed(rng)
    params = _Params(
        n_components=n_components, weights=weights, beta=beta, transition=transition, density=density,
        self_influence=self_influence, normalize=normalize_rows is not False,
        propagate_normalized=normalize_rows == "propagate", standardize=bool(standardize), dtype=dtype,
        n_feature_dims=n_feature_dims,
    )
    return params, A, features, seed


def _check_weights(iteration_weights):
    if isinstance(iteration_weights, (str, bytes)) or not hasattr(iteration_weights, "__len__"):
        raise TypeError(f"`iteration_weights` must be a sequence of floats, got {type(iteration_weights).__name__}")
    w = np.asarray(iteration_weights)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"`iteration_weights` must be a non-empty 1-D sequence, got shape {w.shape}")
    if w.dtype.kind not in "iuf":
        raise TypeError(f"`iteration_weights` must hold real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError("`iteration_weights` must be finite")
    return tuple(float(x) for x in w)


def _check_density(density, n):
    if isinstance(density, str):
        if density != "auto":
            raise ValueError(f"`density` must be 'auto', an int s >= 1 or a float in (0, 1]; got {density!r}")
        return 1.0 / np.sqrt(n)
    if isinstance(density, (numbers.Integral, np.integer)) and not isinstance(density, bool):
        return 1.0 / check_int(density, "density", low=1)
    return check_float(density, "density", low=0.0, high=1.0, low_inclusive=False)


def _check_features(X, n):
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        data = X.data
    else:
        X = np.asarray(X)
        data = X
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"`node_features` must have shape (n_nodes={n}, n_features), got {X.shape}")
    if X.shape[1] == 0:
        raise ValueError("`node_features` has no columns")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"`node_features` must hold real numbers, got dtype {data.dtype}")
    if not np.isfinite(data.astype(np.float64, copy=False)).all():
        raise ValueError("`node_features` must not contain NaN or infinity")
    return X.astype(np.float64)


def _resolve_client(client):
    from lowrank.distributed import active_client

    return active_client(client, purpose="fastrp")


# --------------------------------------------------------------------------------------------
# body


def _transition(A, params):
    """``M`` in the computation dtype and the degrees used for ``D^beta``."""
    degree = np.asarray(A.sum(axis=1)).ravel()
    M = A.astype(params.dtype)
    if params.transition == "row":
        inv = np.zeros_like(degree)
        np.divide(1.0, degree, out=inv, where=degree > 0)
        M.data = (A.data * np.repeat(inv, np.diff(A.indptr))).astype(params.dtype)
    return M, degree


def _initial_vectors(rows, degree_rows, features_rows, seed, params, n):
    """Rows ``rows`` of ``R' = [D^beta R | X P]`` as CSR (identical whichever rows are asked for)."""
    blocks = []
    if params.n_base > 0:
        R = sparse_random_projection(n, params.n_base, density=params.density, rng=seed, rows=rows, dtype=np.float64)
        if params.beta != 0.0:
            scale = np.ones_like(degree_rows)
            np.power(degree_rows, params.beta, out=scale, where=degree_rows > 0)
            R.data *= np.repeat(scale, np.diff(R.indptr))
        blocks.append(R)
    if params.n_feature_dims > 0:
        P = sparse_random_projection(
            features_rows.shape[1], params.n_feature_dims, density=_FEATURE_DENSITY, rng=_feature_seed(seed),
            dtype=np.float64,
        )
        blocks.append(sp.csr_matrix(features_rows @ P))
    R0 = blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csr")
    R0 = sp.csr_matrix(R0, dtype=params.dtype)
    R0.sort_indices()
    return R0


def _feature_seed(seed):
    # a fixed, documented-by-code derivation: the feature projection must differ from R's stream
    return int(counter_bits(seed, 0xFEA7, 1) >> np.uint64(1))


def _propagate_block(M_block, source, res_block, weight, params, engine="numba"):
    """One step on a row block: returns the block of ``U_i`` to propagate; accumulates into ``res_block``."""
    out = np.empty((M_block.shape[0], params.n_components), dtype=params.dtype)
    if engine == "numba":
        from lowrank.graphs import _fastrp_kernels as kernels

        indptr, indices, data = M_block.indptr, M_block.indices, M_block.data
        flags = (float(weight), bool(params.normalize), bool(params.propagate_normalized))
        if sp.issparse(source):
            kernels.run_parallel(
                kernels.propagate_sparse, indptr, indices, data, source.indptr, source.indices, source.data, out,
                res_block, *flags,
            )
        else:
            kernels.run_parallel(kernels.propagate_dense, indptr, indices, data, source, out, res_block, *flags)
    else:
        from lowrank.graphs._fastrp_kernels import finish_rows_numpy

        product = M_block @ source
        out[...] = product.toarray() if sp.issparse(product) else product
        finish_rows_numpy(out, res_block, weight, params.normalize, params.propagate_normalized)
    return out


def _normalized_rows(X, dtype):
    """Unit-L2 rows of X (dense copy); zero rows stay zero."""
    X = X.toarray() if sp.issparse(X) else np.array(X)
    norm = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(norm > 0, 1.0 / norm, 0.0)
    return (X * inv.astype(X.dtype)[:, None]).astype(dtype, copy=False)


def _add_self_influence(res, R0, params):
    if params.self_influence == 0.0:
        return
    R0 = R0.tocsr()
    norm = np.sqrt(np.asarray(R0.multiply(R0).sum(axis=1), dtype=np.float64).ravel())
    scale = np.zeros_like(norm)
    if params.normalize:
        np.divide(params.self_influence, norm, out=scale, where=norm > 0)
    else:
        scale[:] = params.self_influence
    rows = np.repeat(np.arange(R0.shape[0]), np.diff(R0.indptr))
    np.add.at(res, (rows, R0.indices), (R0.data * scale[rows]).astype(res.dtype))


def _standardize(E):
    """In place: zero-mean, unit-variance columns (constant columns are only centred), like sklearn's scale."""
    mean = E.mean(axis=0, dtype=np.float64)
    E -= mean.astype(E.dtype)
    std = np.sqrt(np.einsum("ij,ij->j", E, E, dtype=np.float64) / E.shape[0])
    std[std == 0.0] = 1.0
    E *= (1.0 / std).astype(E.dtype)
    return E


def _fastrp(A, features, seed, params, *, keep_iterations=False, engine="numba"):
    """Body of :func:`fastrp` without input validation.

    Returns ``(embedding, iterations, R0)``; ``iterations`` is None unless ``keep_iterations``, then
    a ``(k, n, d)`` array of the terms ``normalize(U_i)`` (or ``U_i`` without normalization).
    """
    n = A.shape[0]
    M, degree = _transition(A, params)
    R0 = _initial_vectors(np.arange(n), degree, features, seed, params, n)
    res = np.zeros((n, params.n_components), dtype=params.dtype)
    iterations = None
    if keep_iterations:
        iterations = np.empty((len(params.weights), n, params.n_components), dtype=params.dtype)
    source = R0
    for i, weight in enumerate(params.weights):
        source = _propagate_block(M, source, res, weight, params, engine)
        if keep_iterations:
            iterations[i] = _normalized_rows(source, params.dtype) if params.normalize else source
    _add_self_influence(res, R0, params)
    if params.standardize:
        _standardize(res)
    return res, iterations, R0


# --------------------------------------------------------------------------------------------
# Dask: the adjacency split into row blocks; each step is one task per block


def _row_blocks(indptr, n_blocks):
    """Contiguous row ranges holding about the same number of arcs each."""
    n = indptr.size - 1
    n_blocks = max(1, min(n_blocks, n))
    targets = np.linspace(0, indptr[-1], n_blocks + 1)[1:-1]
    cuts = np.searchsorted(indptr, targets, side="left")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 0, n), [n]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _dask_initial_block(start, stop, degree_rows, features_rows, seed, params, n):
    return _initial_vectors(np.arange(start, stop), degree_rows, features_rows, seed, params, n)


def _dask_stack_sparse(blocks):
    return sp.vstack(blocks, format="csr")


def _dask_stack_dense(blocks):
    return np.vstack(blocks)


def _dask_step(M_block, source, res_block, weight, params):
    res_block = res_block.copy()  # task inputs must stay unchanged
    out = _propagate_block(M_block, source, res_block, weight, params)
    return out, res_block


def _dask_first(pair):
    return pair[0]


def _dask_second(pair):
    return pair[1]


def _dask_zeros(rows, params):
    return np.zeros((rows, params.n_components), dtype=params.dtype)


def _fastrp_dask(A, features, seed, params, client, n_partitions):
    """Body of :func:`fastrp` on Dask: one task per row block and step, every result recomputable.

    Fault tolerance is Dask's lineage: the row blocks of ``M`` enter the graph as task arguments
    (not ``scatter``: scattered data has no recipe, so a worker lost while holding it cancels the
    fit), every other value is a task of them, and keys are unique per call (``pure=False``: two
    calls on one client never share, and so never release, each other's keys). A worker lost at
    any point has its results recomputed from the graph, identically (counter RNG, row-wise
    kernels). The cost is one serialized copy of ``M`` kept by the scheduler until the fit ends.
    """
    from lowrank.distributed import submit_value

    n = A.shape[0]
    if n_partitions is None:
        n_partitions = max(1, sum(client.nthreads().values()))
    M, degree = _transition(A, params)
    bounds = _row_blocks(M.indptr, n_partitions)
    logger.debug("FastRP on Dask: %d row blocks", len(bounds))

    def submit(fn, *args):
        return client.submit(fn, *args, pure=False)

    m_blocks = [submit_value(client, M[a:b]) for a, b in bounds]
    r_blocks = [
        submit(_dask_initial_block, a, b, degree[a:b], None if features is None else features[a:b], seed, params, n)
        for a, b in bounds
    ]
    source = submit(_dask_stack_sparse, r_blocks)
    res = [submit(_dask_zeros, b - a, params) for a, b in bounds]
    for weight in params.weights:
        steps = [submit(_dask_step, m, source, r, weight, params) for m, r in zip(m_blocks, res)]
        res = [submit(_dask_second, step) for step in steps]
        source = submit(_dask_stack_dense, [submit(_dask_first, step) for step in steps])
    embedding = np.vstack(client.gather(res))
    if params.self_influence != 0.0:
        _add_self_influence(embedding, client.gather(submit(_dask_stack_sparse, r_blocks)), params)
    if params.standardize:
        _standardize(embedding)
    return embedding


# --------------------------------------------------------------------------------------------
# estimator


class FastRP(BaseEstimator):
    """FastRP node embeddings as an estimator: ``fit(graph)`` then ``embedding_``.

    Parameters are those of :func:`fastrp`; ``random_state`` is its ``rng``. With
    ``keep_iterations=True`` the terms ``normalize(U_i)`` are kept in ``iterations_`` and
    :meth:`reweight` recombines them with new weights without recomputing (the weights are
    usually tuned).

    Parameters
    ----------
    n_components : int, default=128
    iteration_weights : sequence of float, default=(0.0, 0.0, 1.0, 6.67)
    normalization_strength : float, default=-0.64
    transition : {"row", "none"}, default="row"
    density : "auto", int or float, default="auto"
    self_influence : float, default=0.0
    normalize_rows : bool or "propagate", default=True
    standardize : bool, default=True
    feature_ratio : float, default=0.0
        Needs ``node_features`` in :meth:`fit`.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
    keep_iterations : bool, default=False
        Keep the ``k`` per-step terms (``k * n * n_components`` extra numbers).
    random_state : None, int or numpy.random.Generator, default=None

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components)
    iterations_ : ndarray of shape (k, n_nodes, n_components) or None
        ``normalize(U_i)`` per step (``U_i`` when ``normalize_rows=False``); None unless ``keep_iterations``.
    initial_vectors_ : scipy.sparse.csr_matrix of shape (n_nodes, n_components) or None
        ``R'`` (kept with ``keep_iterations`` for :meth:`reweight`'s self-influence).
    n_features_in_ : int
        Number of vertices of the fitted graph.
    seed_ : int
        The projection seed used (pass it as ``random_state`` to reproduce the embedding).

    References
    ----------
    .. [1] H. Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
       Projection", CIKM 2019, arXiv:1908.11512.

    Examples
    --------
    >>> import networkx as nx
    >>> from lowrank.graphs import FastRP
    >>> model = FastRP(n_components=16, iteration_weights=(1.0, 1.0), keep_iterations=True, random_state=0)
    >>> E = model.fit_transform(nx.karate_club_graph())
    >>> E2 = model.reweight((0.5, 1.0))
    >>> E.shape, E2.shape
    ((34, 16), (34, 16))
    """

    def __init__(
        self,
        n_components=128,
        *,
        iteration_weights=_PAPER_WEIGHTS,
        normalization_strength=-0.64,
        transition="row",
        density="auto",
        self_influence=0.0,
        normalize_rows=True,
        standardize=True,
        feature_ratio=0.0,
        dtype=np.float32,
        keep_iterations=False,
        random_state=None,
    ):
        self.n_components = n_components
        self.iteration_weights = iteration_weights
        self.normalization_strength = normalization_strength
        self.transition = transition
        self.density = density
        self.self_influence = self_influence
        self.normalize_rows = normalize_rows
        self.standardize = standardize
        self.feature_ratio = feature_ratio
        self.dtype = dtype
        self.keep_iterations = keep_iterations
        self.random_state = random_state

    def fit(self, X, y=None, node_features=None):
        """Embed the graph ``X`` (adjacency, networkx graph or edge-list path).

        Parameters
        ----------
        X : graph
            See :func:`fastrp`'s ``graph``.
        y : ignored
        node_features : array_like of shape (n_nodes, n_features), optional

        Returns
        -------
        self
        """
        if sp.issparse(X) or isinstance(X, np.ndarray) or (hasattr(X, "__array__") and not isinstance(X, str)):
            X = validate_data(self, X, accept_sparse="csr", dtype="numeric", reset=True)
            data = X.data if sp.issparse(X) else X
            if data.size and data.min() < 0:
                raise ValueError("Negative values in data passed to FastRP: graph weights must be non-negative")
        if not isinstance(self.keep_iterations, (bool, np.bool_)):
            raise TypeError(f"`keep_iterations` must be a bool, got {type(self.keep_iterations).__name__}")
        params, A, features, seed = _iv(
            X, self.n_components, self.iteration_weights, self.normalization_strength, self.transition, self.density,
            self.self_influence, self.normalize_rows, self.standardize, node_features, self.feature_ratio,
            self.dtype, self.random_state,
        )
        embedding, iterations, R0 = _fastrp(A, features, seed, params, keep_iterations=bool(self.keep_iterations))
        self.embedding_ = embedding
        self.iterations_ = iterations
        self.initial_vectors_ = R0 if self.keep_iterations else None
        self.seed_ = seed
        self.n_features_in_ = A.shape[0]
        self._params = params
        return self

    def fit_transform(self, X, y=None, node_features=None):
        """Fit and return ``embedding_``."""
        return self.fit(X, y, node_features=node_features).embedding_

    def reweight(self, iteration_weights, self_influence=None):
        """Recombine the kept per-step terms with new weights (no propagation is recomputed).

        Parameters
        ----------
        iteration_weights : sequence of float
            One weight per step, same length as at fit time.
        self_influence : float, optional
            Default: the fitted ``self_influence``.

        Returns
        -------
        embedding : ndarray of shape (n_nodes, n_components)
            Equal to refitting with these weights and the same ``random_state``.
        """
        check_is_fitted(self, "embedding_")
        if self.iterations_ is None:
            raise ValueError("reweight needs the per-step terms: fit with keep_iterations=True")
        weights = _check_weights(iteration_weights)
        if len(weights) != self.iterations_.shape[0]:
            raise ValueError(
                f"`iteration_weights` must have {self.iterations_.shape[0]} entries (one per fitted step), "
                f"got {len(weights)}"
            )
        params = _Params(**vars(self._params))
        if self_influence is not None:
            params.self_influence = check_float(self_influence, "self_influence")
        res = np.zeros(self.iterations_.shape[1:], dtype=params.dtype)
        for w, term in zip(weights, self.iterations_):
            if w != 0.0:
                res += params.dtype.type(w) * term
        _add_self_influence(res, self.initial_vectors_, params)
        if params.standardize:
            _standardize(res)
        return res

    def save(self, path):
        """Save the fitted embedding (and kept terms) atomically to ``path`` (``.npz``)."""
        check_is_fitted(self, "embedding_")
        arrays = {"embedding": self.embedding_}
        if self.iterations_ is not None:
            R0 = self.initial_vectors_
            arrays.update(
                iterations=self.iterations_, r_indptr=R0.indptr, r_indices=R0.indices, r_data=R0.data,
            )
        meta = {"params": _jsonable(self.get_params()), "seed": self.seed_, "fitted": _jsonable(vars(self._params))}
        save_npz(path, arrays, kind="FastRP", meta=meta)

    @classmethod
    def load(cls, path):
        """Load what :meth:`save` wrote; the result is fitted and equal to the saved one."""
        arrays, meta = load_npz(path, kind="FastRP")
        params = dict(meta["params"])
        params["dtype"] = np.dtype(params["dtype"]).type
        params["iteration_weights"] = tuple(params["iteration_weights"])
        model = cls(**params)
        fitted = dict(meta["fitted"])
        fitted["dtype"] = np.dtype(fitted["dtype"])
        fitted["weights"] = tuple(fitted["weights"])
        model._params = _Params(**fitted)
        model.embedding_ = arrays["embedding"]
        model.seed_ = int(meta["seed"])
        model.n_features_in_ = model.embedding_.shape[0]
        if "iterations" in arrays:
            model.iterations_ = arrays["iterations"]
            n = model.embedding_.shape[0]
            model.initial_vectors_ = sp.csr_matrix(
                (arrays["r_data"], arrays["r_indices"], arrays["r_indptr"]), shape=(n, model.embedding_.shape[1])
            )
        else:
            model.iterations_ = None
            model.initial_vectors_ = None
        return model

    @classmethod
    def _sklearn_check_instances(cls):
        # seeded, so sklearn's determinism checks run too; small so they run fast
        return [cls(n_components=8, random_state=0), cls(n_components=8, normalize_rows="propagate", random_state=0)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = True
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.non_deterministic = self.random_state is None
        tags.requires_fit = True
        return tags


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, type) or isinstance(v, np.dtype):
            out[k] = np.dtype(v).name
        elif isinstance(v, (tuple, list)):
            out[k] = [float(x) for x in v]
        elif isinstance(v, (np.integer, np.floating, np.bool_)):
            out[k] = v.item()
        elif isinstance(v, np.random.Generator) or isinstance(v, np.random.RandomState):
            out[k] = None
        else:
            out[k] = v
    return out
