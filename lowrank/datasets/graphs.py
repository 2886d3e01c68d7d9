"""Graphs with known communities: a fast planted-partition generator and a BlogCatalog loader.

Nothing here downloads: :func:`load_blogcatalog` reads a ``.mat`` file from a path the user gives.
"""

import os

import numpy as np
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

__all__ = ["planted_partition", "load_blogcatalog"]


def planted_partition(
    n_nodes, n_communities, p_in=None, p_out=None, *, average_degree=None, mixing=0.2, shuffle=True, rng=None
):
    """Undirected planted-partition (stochastic block) graph with its community labels.

    Vertices are split into ``n_communities`` communities of equal size (sizes differ by at most
    one). Every pair of distinct vertices is joined independently, with probability ``p_in``
    inside a community and ``p_out`` across communities. Instead of the two probabilities,
    ``average_degree`` and ``mixing`` may be given: the expected degree of a vertex is
    ``average_degree``, a fraction ``mixing`` of it leaving the vertex's community.

    The generator samples the number of edges of each block from its binomial law and then that
    many distinct vertex pairs, so its cost is linear in the number of edges (10 million edges
    take a few seconds), not quadratic in the number of vertices.

    Parameters
    ----------
    n_nodes : int
        Number of vertices, ``n_nodes >= n_communities``.
    n_communities : int
        Number of communities, ``>= 1``.
    p_in, p_out : float, optional
        Edge probabilities inside and across communities, in ``[0, 1]``. Give both, or neither
        (then ``average_degree`` is required).
    average_degree : float, optional
        Expected vertex degree; used when ``p_in``/``p_out`` are not given.
    mixing : float, default=0.2
        With ``average_degree``: expected fraction of a vertex's edges that cross communities,
        in ``[0, 1]``. ``mixing = 1 - 1/n_communities`` gives no community structure.
    shuffle : bool, default=True
        Number vertices in a random order (True) or community by community (False).
    rng : None, int or numpy.random.Generator, optional
        Randomness; the same seed gives the same graph.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix of shape (n_nodes, n_nodes)
        Symmetric 0/1 adjacency (float64), no self-loops.
    labels : ndarray of shape (n_nodes,), int64
        Community of each vertex, ``0 .. n_communities - 1``.

    Raises
    ------
    ValueError
        Out-of-range sizes or probabilities, or an inconsistent choice of ``p_in``/``p_out``
        and ``average_degree`` (including a degree the community sizes cannot reach).
    TypeError
        Non-integer sizes or non-real probabilities.

    References
    ----------
    .. [1] Condon and Karp, "Algorithms for graph partitioning on the planted partition model",
       Random Structures & Algorithms 18(2), 2001.

    Examples
    --------
    >>> A, labels = planted_partition(1000, 4, average_degree=10, mixing=0.1, rng=0)
    >>> A.shape, labels.shape, (A != A.T).nnz
    ((1000, 1000), (1000,), 0)
    >>> round(A.nnz / 1000)  # average degree
    10
    """
    n_nodes, n_communities, p_in, p_out, shuffle, gen = _iv_planted(
        n_nodes, n_communities, p_in, p_out, average_degree, mixing, shuffle, rng
    )
    sizes = np.full(n_communities, n_nodes // n_communities, dtype=np.int64)
    sizes[: n_nodes % n_communities] += 1
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    block_of = np.repeat(np.arange(n_communities, dtype=np.int64), sizes)

    rows_in, cols_in = _intra_edges(sizes, offsets, p_in, gen)
    rows_out, cols_out = _inter_edges(n_nodes, sizes, block_of, p_out, gen)
    rows = np.concatenate([rows_in, rows_out])
    cols = np.concatenate([cols_in, cols_out])

    if shuffle:
        perm = gen.permutation(n_nodes)  # position k becomes vertex perm[k]
        rows, cols = perm[rows], perm[cols]
        labels = np.empty(n_nodes, dtype=np.int64)
        labels[perm] = block_of
    else:
        labels = block_of
    return _symmetric_csr(rows, cols, n_nodes), labels


def _iv_planted(n_nodes, n_communities, p_in, p_out, average_degree, mixing, shuffle, rng):
    n_communities = check_int(n_communities, "n_communities", low=1)
    n_nodes = check_int(n_nodes, "n_nodes", low=n_communities)
    if (p_in is None) != (p_out is None):
        raise ValueError("give both `p_in` and `p_out`, or neither (and `average_degree`)")
    if p_in is not None:
        if average_degree is not None:
            raise ValueError("give either `p_in`/`p_out` or `average_degree`, not both")
        p_in = check_float(p_in, "p_in", low=0.0, high=1.0)
        p_out = check_float(p_out, "p_out", low=0.0, high=1.0)
    else:
        if average_degree is None:
            raise ValueError("give `p_in` and `p_out`, or `average_degree` (with `mixing`)")
        average_degree = check_float(average_degree, "average_degree", low=0.0)
        mixing = check_float(mixing, "mixing", low=0.0, high=1.0)
        size = n_nodes / n_communities
        inside, outside = size - 1.0, n_nodes - size
        p_in = average_degree * (1.0 - mixing) / inside if inside > 0 else 0.0
        p_out = average_degree * mixing / outside if outside > 0 else 0.0
        if p_in > 1.0 or p_out > 1.0:
            raise ValueError(
                f"`average_degree`={average_degree} with `mixing`={mixing} needs edge probabilities "
                f"p_in={p_in:.3g}, p_out={p_out:.3g} above 1: use more vertices or a smaller degree"
            )
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"`shuffle` must be a bool, got {type(shuffle).__name__}")
    return n_nodes, n_communities, p_in, p_out, bool(shuffle), as_generator(rng)


def _intra_edges(sizes, offsets, p, gen):
    """Distinct pairs i < j inside each community, the count per community drawn from its binomial."""
    n_pairs = sizes * (sizes - 1) // 2
    want = gen.binomial(n_pairs, p) if p > 0 else np.zeros_like(n_pairs)
    if p == 1.0:
        want = n_pairs.copy()
    # key = block-local pair index + offset of the block among all pair indices
    pair_offset = np.concatenate([[0], np.cumsum(n_pairs)])[:-1]
    keys = np.empty(0, dtype=np.int64)
    block = np.empty(0, dtype=np.int64)
    missing = want.copy()
    # Draw pair indices with replacement and drop repeats until each block has its count:
    # the result is a uniformly random set of distinct pairs of the right size.
    while missing.any():
        draw_block = np.repeat(np.arange(sizes.size, dtype=np.int64), missing)
        new = (gen.random(draw_block.size) * n_pairs[draw_block]).astype(np.int64)
        new = np.minimum(new, n_pairs[draw_block] - 1)
        keys = np.concatenate([keys, new + pair_offset[draw_block]])
        keys = _sorted_unique(keys)
        block = np.searchsorted(pair_offset, keys, side="right") - 1
        missing = want - np.bincount(block, minlength=sizes.size)
    local = keys - pair_offset[block]
    i, j = _triangle_pair(local)
    return offsets[block] + i, offsets[block] + j


def _triangle_pair(k):
    """Map k in [0, s(s-1)/2) to the pair (i, j), i > j, of the strict lower triangle (row-major)."""
    i = ((1.0 + np.sqrt(1.0 + 8.0 * k.astype(np.float64))) / 2.0).astype(np.int64)
    # float rounding can be off by one near perfect squares: fix exactly in integers
    i -= (i * (i - 1) // 2) > k
    i += ((i + 1) * i // 2) <= k
    j = k - i * (i - 1) // 2
    return i, j


def _inter_edges(n, sizes, block_of, p, gen):
    """Distinct pairs joining different communities: uniform ordered pairs, rejected and deduplicated."""
    total = (n * n - int(np.sum(sizes * sizes))) // 2
    if p == 0.0 or total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    want = total if p == 1.0 else int(gen.binomial(total, p))
    keys = np.empty(0, dtype=np.int64)
    while keys.size < want:
        # oversample by the acceptance rate so one round usually suffices
        accept = 2.0 * total / (n * n)
        m = int((want - keys.size) / accept * 1.05) + 16
        a = gen.integers(0, n, size=m)
        b = gen.integers(0, n, size=m)
        ok = block_of[a] != block_of[b]
        a, b = a[ok], b[ok]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys = _sorted_unique(np.concatenate([keys, lo * n + hi]))
    if keys.size > want:
        # drop a uniformly random surplus (the keys are sorted)
        keys = keys[np.sort(gen.choice(keys.size, size=want, replace=False))]
    return keys // n, keys % n


def _sorted_unique(keys):
    # np.unique hashes 1-D integers on NumPy >= 2.3, which is several times slower than a sort here
    keys = np.sort(keys)
    if keys.size:
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys


def _symmetric_csr(rows, cols, n):
    index_dtype = np.int32 if 2 * rows.size < np.iinfo(np.int32).max and n < np.iinfo(np.int32).max else np.int64
    r = np.concatenate([rows, cols]).astype(index_dtype)
    c = np.concatenate([cols, rows]).astype(index_dtype)
    data = np.ones(r.size, dtype=np.float64)
    A = sp.csr_matrix((data, (r, c)), shape=(n, n))
    A.sort_indices()
    return A


def load_blogcatalog(path):
    """Read the BlogCatalog social graph (10,312 bloggers, 39 interest groups) from a local ``.mat`` file.

    The file is the one redistributed with the FastRP and DeepWalk reference code: a sparse
    symmetric adjacency ``network`` and a sparse multi-label membership matrix ``group``.
    Nothing is downloaded.

    Parameters
    ----------
    path : str or os.PathLike
        Path of ``blogcatalog.mat``.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix of shape (10312, 10312)
        Symmetric adjacency (float64), 333,983 undirected edges.
    labels : ndarray of shape (10312, 39), int8
        0/1 group membership; a blogger may belong to several groups.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not a MATLAB file holding ``network`` and ``group`` of matching sizes.

    References
    ----------
    .. [1] Tang and Liu, "Relational learning via latent social dimensions", KDD 2009.
    .. [2] Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
       Projection", CIKM 2019, arXiv:1908.11512.

    Examples
    --------
    >>> import os
    >>> path = "../shared/data/blogcatalog.mat"
    >>> if os.path.exists(path):  # doctest: +SKIP
    ...     A, Y = load_blogcatalog(path)
    ...     A.shape, Y.shape
    ((10312, 10312), (10312, 39))
    """
    import scipy.io

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"BlogCatalog file not found: {path!r} (nothing is downloaded; give a local path)")
    try:
        data = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for a bad file
        raise ValueError(f"cannot read {path!r} as a MATLAB file: {exc}") from exc
    if "network" not in data or "group" not in data:
        raise ValueError(f"{path!r} must hold the variables 'network' and 'group'")
    A = sp.csr_matrix(data["network"], dtype=np.float64)
    groups = data["group"]
    labels = (groups.toarray() if sp.issparse(groups) else np.asarray(groups)) != 0
    if A.shape[0] != A.shape[1] or labels.shape[0] != A.shape[0]:
        raise ValueError(f"{path!r}: 'network' {A.shape} and 'group' {labels.shape} do not match")
    A.sort_indices()
    return A, labels.astype(np.int8)
