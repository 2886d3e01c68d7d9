"""PowerWalk: error trend in walks and decomposition steps against exact PPR, a plain-numpy query,
counter-RNG determinism across threads and partitions, save/load, Dask (incl. a lost worker), errors."""

import asyncio

import networkx as nx
import numba
import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.graphs import PowerWalk, personalized_pagerank
from lowrank.graphs._ppr_common import Transition
from lowrank.graphs.powerwalk import _walk_arrays, assemble_blocks, fingerprint_block, submit_blocks

ALPHA = 0.85


@pytest.fixture(scope="module")
def ba():
    A = nx.to_scipy_sparse_array(nx.barabasi_albert_graph(1500, 3, seed=1), format="csr")
    seeds = list(range(0, 1500, 60))
    return sp.csr_matrix(A), seeds, personalized_pagerank(A, seeds, tol=1e-10)


@pytest.fixture(scope="module")
def directed():
    """Directed, weighted, with dangling vertices and self-loops."""
    rng = np.random.default_rng(3)
    A = sp.random(300, 300, density=0.02, random_state=rng, format="lil")
    for i, j in zip(*A.nonzero()):
        A[i, j] = rng.uniform(0.1, 5.0)
    A[[4, 9, 17], :] = 0
    A[2, 2] = 3.0
    return A.tocsr()


def _mean_l1(X, Y):
    return np.abs(X - Y).sum(axis=1).mean()


def test_error_falls_with_walks_and_steps(ba):
    A, seeds, exact = ba
    by_walks = []
    for R in (2, 8, 32):
        errs = [_mean_l1(PowerWalk(n_walks=R, random_state=s).fit(A).query(seeds, n_decomp=3), exact) for s in (0, 1)]
        by_walks.append(np.mean(errs))
    assert by_walks[0] > by_walks[1] > by_walks[2]
    assert by_walks[2] < 0.6 * by_walks[0]
    pw = PowerWalk(n_walks=8, random_state=0).fit(A)
    by_steps = [_mean_l1(pw.query(seeds, n_decomp=T), exact) for T in (0, 2, 5, 10, 20)]
    assert all(a > b for a, b in zip(by_steps, by_steps[1:]))
    assert by_steps[-1] < 0.02


def test_weighted_directed_graph_converges_to_exact(directed):
    seeds = [0, 4, 2, 50]  # 4 is dangling, 2 has a self-loop
    exact = personalized_pagerank(directed, seeds, tol=1e-10)
    pw = PowerWalk(n_walks=50, walk_length=30, random_state=0).fit(directed)
    X = pw.query(seeds, n_decomp=25)
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-5)
    assert _mean_l1(X, exact) < 0.01


def test_endpoint_fingerprints_estimate_ppr():
    """Law of large numbers: endpoint fingerprints with many walks approach the exact PPR (networkx)."""
    G = nx.karate_club_graph()
    pw = PowerWalk(n_walks=2000, walk_length=30, fingerprint="endpoint", random_state=0).fit(G)
    fp = pw.query([0, 33], n_decomp=0)
    for i, s in enumerate([0, 33]):
        pr = nx.pagerank(G, personalization={s: 1}, tol=1e-12)
        ref = np.array([pr[v] for v in range(34)])
        assert np.abs(fp[i] - ref).sum() < 0.12
    full = PowerWalk(n_walks=2000, walk_length=30, random_state=0).fit(G).query([0], n_decomp=0)
    pr = nx.pagerank(G, personalization={0: 1}, tol=1e-12)
    assert np.abs(full[0] - np.array([pr[v] for v in range(34)])).sum() < 0.08


def _numpy_query(pw, A, seeds, T):
    """The decomposition written with dense numpy (dangling rows jump to the seed)."""
    n = A.shape[0]
    M = Transition(A).matrix().toarray()
    F = np.zeros((n, n))
    for u in range(n):
        lo, hi = pw.fingerprint_indptr_[u], pw.fingerprint_indptr_[u + 1]
        F[u, pw.fingerprint_indices_[lo:hi]] = pw.fingerprint_counts_[lo:hi]
    F /= F.sum(axis=1, keepdims=True)
    out = []
    for s in seeds:
        Ms = M.copy()
        Ms[M.sum(axis=1) == 0, :] = 0
        Ms[M.sum(axis=1) == 0, s] = 1
        r = np.zeros(n)
        r[s] = 1
        est = np.zeros(n)
        for _ in range(T):
            est += (1 - ALPHA) * r
            r = ALPHA * r @ Ms
        out.append(est + r @ F)
    return np.array(out)


def _ring_with_dangling(n=3000, seed=0, frac=0.03):
    """Directed ring i -> i+1 with two short forward chords per vertex; ``frac`` of the vertices dangling."""
    rng = np.random.default_rng(seed)
    src = np.tile(np.arange(n), 3)
    dst = np.concatenate([np.arange(1, n + 1), np.arange(n) + rng.integers(2, 50, n), np.arange(n) + rng.integers(2, 50, n)])
    dead = rng.choice(n, int(frac * n), replace=False)
    keep = ~np.isin(src, dead)
    A = sp.csr_matrix((np.ones(keep.sum()), (src[keep], dst[keep] % n)), shape=(n, n))
    A.data[:] = 1.0
    return A


@pytest.mark.parametrize("kind", ["barabasi_albert", "ring_with_dangling"])
def test_default_tol_meets_the_documented_accuracy(kind):
    if kind == "barabasi_albert":
        A = sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(3000, 5, seed=0), format="csr"))
    else:
        A = _ring_with_dangling()
        assert (np.diff(A.indptr) == 0).mean() == pytest.approx(0.03)
    seeds = list(range(0, 3000, 150))
    exact = personalized_pagerank(A, seeds, tol=1e-10, max_iter=1000)
    pw = PowerWalk(random_state=0).fit(A)
    X = pw.query(seeds)
    err = np.abs(X - exact).sum(axis=1)
    assert err.max() <= 0.04  # the guarantee of the default tol
    assert err.mean() <= 0.01  # the accuracy documented in query's docstring
    # tol picks the steps: the fewest T with 2 alpha^T <= tol
    np.testing.assert_array_equal(X, pw.query(seeds, n_decomp=25))
    assert 2 * ALPHA**25 <= 0.04 < 2 * ALPHA**24
    errors = [np.abs(pw.query(seeds, tol=t) - exact).sum(axis=1).max() for t in (0.5, 0.1, 0.01)]
    assert errors[0] > errors[1] > errors[2] and all(e <= t for e, t in zip(errors, (0.5, 0.1, 0.01)))


def test_tol_is_a_guarantee_even_with_one_walk(directed):
    seeds = [0, 4, 2, 50, 120]
    exact = personalized_pagerank(directed, seeds, tol=1e-11, max_iter=1000)
    pw = PowerWalk(n_walks=1, walk_length=3, random_state=1).fit(directed)  # very rough fingerprints
    for tol in (1.0, 0.3, 0.05, 1e-3):
        assert np.abs(pw.query(seeds, tol=tol) - exact).sum(axis=1).max() <= tol
    with pytest.raises(ValueError, match="not both"):
        pw.query(seeds, tol=0.1, n_decomp=3)
    with pytest.raises(ValueError, match="tol"):
        pw.query(seeds, tol=0.0)
    np.testing.assert_array_equal(pw.query(seeds, tol=2.0), pw.query(seeds, n_decomp=0))


@pytest.mark.parametrize("threshold", [0.0, 1e-300])
def test_query_kernels_match_plain_numpy(directed, threshold):
    pw = PowerWalk(n_walks=5, random_state=4).fit(directed)
    seeds = [0, 4, 2]
    ref = _numpy_query(pw, directed, seeds, 6)
    X = pw.query(seeds, n_decomp=6, threshold=threshold)
    np.testing.assert_allclose(X, ref, atol=2e-6)


def test_sparse_frontier_threshold_and_hubs(ba):
    A, seeds, exact = ba
    pw = PowerWalk(n_walks=8, random_state=0).fit(A)
    dense = pw.query(seeds, n_decomp=8)
    loose = pw.query(seeds, n_decomp=8, threshold=1e-4)
    np.testing.assert_allclose(loose.sum(axis=1), 1.0, atol=1e-9)  # closing early drops no mass
    assert _mean_l1(dense, exact) <= _mean_l1(loose, exact) < 0.2
    max_deg = int(np.diff(A.indptr).max())
    same = PowerWalk(n_walks=8, random_state=0, degree_threshold=max_deg).fit(A).query(seeds, n_decomp=8)
    np.testing.assert_array_equal(same, dense)
    hubs = PowerWalk(n_walks=8, random_state=0, degree_threshold=20).fit(A)
    h_dense = hubs.query(seeds, n_decomp=8)
    np.testing.assert_allclose(h_dense.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(h_dense, hubs.query(seeds, n_decomp=8, threshold=1e-300), atol=1e-6)
    # flow reaching a hub is closed by one R-walk fingerprint: cheaper queries, larger error
    assert _mean_l1(dense, exact) < _mean_l1(h_dense, exact) < 1.0


def test_counter_rng_makes_index_independent_of_threads_and_blocks(ba):
    A = ba[0]
    ref = PowerWalk(n_walks=6, random_state=11).fit(A)
    walk = _walk_arrays(Transition(A))
    args = (ref.seed_, 6, 10, ALPHA, False)
    blocks = [fingerprint_block(walk, lo, hi, *args, parallel=False) for lo, hi in [(0, 7), (7, 700), (700, 1500)]]
    counts, idx, vis = assemble_blocks(blocks)
    np.testing.assert_array_equal(idx, ref.fingerprint_indices_)
    np.testing.assert_array_equal(vis, ref.fingerprint_counts_)
    np.testing.assert_array_equal(np.diff(ref.fingerprint_indptr_), counts)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = PowerWalk(n_walks=6, random_state=11).fit(A)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(one.fingerprint_indices_, ref.fingerprint_indices_)
    other = PowerWalk(n_walks=6, random_state=12).fit(A)
    assert not np.array_equal(other.fingerprint_counts_, ref.fingerprint_counts_)


def test_fingerprint_statistics(ba):
    A = ba[0]
    pw = PowerWalk(n_walks=7, walk_length=5, random_state=0).fit(A)
    totals = np.add.reduceat(pw.fingerprint_counts_.astype(np.int64), pw.fingerprint_indptr_[:-1])
    assert (totals >= 7).all() and (totals <= 7 * 6).all()  # the source, plus at most L steps per walk
    # mean walk length (visits - 1) is sum_{t=1}^{L} alpha^t
    expected = sum(ALPHA**t for t in range(1, 6))
    assert abs(totals.mean() / 7 - 1 - expected) < 0.05
    # every recorded vertex is the source or reachable by an arc chain; the source is always there
    for u in range(0, 1500, 97):
        lo, hi = pw.fingerprint_indptr_[u], pw.fingerprint_indptr_[u + 1]
        assert u in pw.fingerprint_indices_[lo:hi]
        assert (np.diff(pw.fingerprint_indices_[lo:hi]) > 0).all()
    ends = PowerWalk(n_walks=7, walk_length=5, fingerprint="endpoint", random_state=0).fit(A)
    totals = np.add.reduceat(ends.fingerprint_counts_.astype(np.int64), ends.fingerprint_indptr_[:-1])
    assert (totals == 7).all()


def test_save_load_round_trip(tmp_path, ba):
    A, seeds, _ = ba
    pw = PowerWalk(n_walks=4, random_state=5).fit(A)
    path = tmp_path / "index.npz"
    pw.save(path)
    back = PowerWalk.load(path)
    for name in ("fingerprint_indptr_", "fingerprint_indices_", "fingerprint_counts_"):
        a, b = getattr(pw, name), getattr(back, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert (back.adjacency_ != pw.adjacency_).nnz == 0
    assert back.get_params() == pw.get_params()
    assert back.seed_ == pw.seed_ and back.nbytes_ == pw.nbytes_
    np.testing.assert_array_equal(back.query(seeds), pw.query(seeds))
    assert pw.graph_weights_ is None  # unweighted: the transition is 1/degree, no weights stored
    arrays = (pw.fingerprint_indptr_, pw.fingerprint_indices_, pw.fingerprint_counts_)
    arrays += (pw.graph_indptr_, pw.graph_indices_)
    assert pw.nbytes_ == sum(a.nbytes for a in arrays)


def test_weighted_graph_round_trip(tmp_path, directed):
    pw = PowerWalk(n_walks=3, random_state=1).fit(directed)
    assert pw.graph_weights_ is not None
    assert abs(pw.adjacency_ - directed).max() == 0
    path = tmp_path / "w.npz"
    pw.save(path)
    back = PowerWalk.load(path)
    np.testing.assert_array_equal(back.graph_weights_, pw.graph_weights_)
    np.testing.assert_array_equal(back.query([0, 4]), pw.query([0, 4]))


def test_labels_round_trip(tmp_path):
    G = nx.les_miserables_graph()
    pw = PowerWalk(n_walks=20, random_state=0).fit(G, weights=False)
    path = tmp_path / "lm.npz"
    pw.save(path)
    back = PowerWalk.load(path)
    assert back.labels_ == pw.labels_
    idx, scores = back.query(["Valjean", "Javert"], top_k=3)
    assert pw.labels_[idx[0, 0]] == "Valjean"
    exact = personalized_pagerank(G, ["Valjean"], weights=False)
    assert np.abs(back.query("Valjean") - exact).sum() < 0.1
    with pytest.raises(ValueError, match="holds"):
        from lowrank._utils.io import load_npz

        load_npz(path, kind="something else")


def test_bad_input(ba):
    A = ba[0]
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PowerWalk().query([0])
    for params, match in [
        ({"n_walks": 0}, "n_walks"),
        ({"walk_length": 0}, "walk_length"),
        ({"damping_factor": 1.5}, "damping_factor"),
        ({"fingerprint": "middle"}, "fingerprint"),
        ({"degree_threshold": -1}, "degree_threshold"),
    ]:
        with pytest.raises(ValueError, match=match):
            PowerWalk(**params).fit(A)
    pw = PowerWalk(n_walks=2, random_state=0).fit(A)
    with pytest.raises(ValueError, match="unknown vertex"):
        pw.query([10**6])
    with pytest.raises(ValueError, match="n_decomp"):
        pw.query([0], n_decomp=-1)
    with pytest.raises(ValueError, match="threshold"):
        pw.query([0], threshold=-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        PowerWalk().fit(sp.csr_matrix(np.array([[0, -1.0], [1, 0]])))


# ------------------------------------------------------------------------------------------ Dask

distributed = pytest.importorskip("distributed")
from distributed.utils_test import gen_cluster  # noqa: E402


def _dask_graph():
    return sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(3000, 3, seed=2), format="csr"))


@gen_cluster(client=True, timeout=120)
async def test_dask_fit_equals_local_fit(c, s, a, b):
    A = _dask_graph()
    local = PowerWalk(n_walks=5, random_state=7).fit(A)

    def fit_with_sync_client():
        with distributed.Client(s.address) as client:
            return PowerWalk(n_walks=5, random_state=7).fit(A, client=client, n_blocks=7)

    remote = await asyncio.get_running_loop().run_in_executor(None, fit_with_sync_client)
    np.testing.assert_array_equal(remote.fingerprint_indptr_, local.fingerprint_indptr_)
    np.testing.assert_array_equal(remote.fingerprint_indices_, local.fingerprint_indices_)
    np.testing.assert_array_equal(remote.fingerprint_counts_, local.fingerprint_counts_)
    with pytest.raises(ValueError, match="asynchronous"):
        PowerWalk(n_walks=5).fit(A, client=c)


@gen_cluster(client=True, nthreads=[("127.0.0.1", 1)] * 3, timeout=120)
async def test_dask_fit_survives_a_lost_worker(c, s, a, b, w3):
    A = _dask_graph()
    local = PowerWalk(n_walks=30, random_state=3).fit(A)
    walk = _walk_arrays(Transition(A))
    n = A.shape[0]
    bounds = [(k * n // 40, (k + 1) * n // 40) for k in range(40)]
    [graph] = await c.scatter([walk], broadcast=True, hash=False)
    futures = submit_blocks(c, graph, bounds, (local.seed_, 30, 10, ALPHA, False))
    while not a.state.executing_count and not a.state.tasks:  # wait until worker a holds work
        await asyncio.sleep(0.01)
    await a.close()  # a worker is lost mid-fit: its blocks are recomputed elsewhere
    blocks = await c.gather(futures)
    counts, idx, vis = assemble_blocks(blocks)
    assert len(s.workers) == 2
    np.testing.assert_array_equal(np.diff(local.fingerprint_indptr_), counts)
    np.testing.assert_array_equal(idx, local.fingerprint_indices_)
    np.testing.assert_array_equal(vis, local.fingerprint_counts_)
