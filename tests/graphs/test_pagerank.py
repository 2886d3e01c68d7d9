"""personalized_pagerank: against networkx and igraph's PRPACK, analytic answers, a plain-numpy power loop,
input forms, top-k, the CLI and bad input."""

import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.graphs import personalized_pagerank
from lowrank.graphs.pagerank import power_reference

ALPHA = 0.85


def _directed_graph(n=80, seed=0):
    """Directed, weighted, with dangling vertices, self-loops, an isolated vertex and zero-weight rows."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.05, random_state=rng, format="lil")
    for i, j in zip(*A.nonzero()):
        A[i, j] = rng.uniform(0.2, 3.0)
    for d in (3, 7, 11):  # dangling: no out-arc
        A[d, :] = 0
    A[5, 5] = 2.0  # self-loops
    A[20, 20] = 1.0
    A[n - 1, :] = 0  # isolated
    A[:, n - 1] = 0
    A = A.tocsr()
    A.eliminate_zeros()
    return A


def _networkx_ppr(G, personalization, alpha=ALPHA, weight="weight"):
    pr = nx.pagerank(G, alpha=alpha, personalization=personalization, tol=1e-15, max_iter=100_000, weight=weight)
    return np.array([pr[v] for v in G.nodes()])


def _igraph_ppr(A, seed, alpha=ALPHA):
    ig = pytest.importorskip("igraph")
    C = A.tocoo()
    g = ig.Graph(n=A.shape[0], edges=list(zip(C.row.tolist(), C.col.tolist())), directed=True)
    g.es["weight"] = C.data.tolist()
    return np.array(
        g.personalized_pagerank(damping=alpha, reset_vertices=[seed], weights="weight", implementation="prpack")
    )


@pytest.fixture(scope="module")
def graph():
    return _directed_graph()


@pytest.fixture(scope="module")
def seeds():
    return [0, 3, 5, 11, 20, 42, 79]  # includes dangling (3, 11), self-loop (5, 20) and isolated (79) seeds


def test_matches_networkx_and_igraph_prpack(graph, seeds):
    X = personalized_pagerank(graph, seeds, tol=1e-6)
    G = nx.from_scipy_sparse_array(graph, create_using=nx.DiGraph)
    for i, s in enumerate(seeds):
        ref_nx = _networkx_ppr(G, {s: 1.0})
        ref_ig = _igraph_ppr(graph, s)
        assert np.abs(ref_nx - ref_ig).sum() < 1e-8  # the two references agree on the dangling convention
        assert np.abs(X[i] - ref_nx).sum() <= 1e-6
        assert np.abs(X[i] - ref_ig).sum() <= 1e-6
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-9)
    # an isolated seed keeps all its mass
    np.testing.assert_allclose(X[-1, 79], 1.0)


@pytest.mark.parametrize("method,tol", [("power", 1e-6), ("power", 1e-9), ("push", 1e-6), ("push", 1e-4)])
def test_error_is_within_tol_of_an_independent_solve(graph, seeds, method, tol):
    n = graph.shape[0]
    P = sp.csr_matrix((np.ones(len(seeds)), (np.arange(len(seeds)), seeds)), shape=(len(seeds), n))
    ref = power_reference(graph, P, ALPHA, tol=1e-14)
    X = personalized_pagerank(graph, seeds, tol=tol, method=method)
    assert (np.abs(X - ref).sum(axis=1) <= tol).all()


def test_plain_numpy_reference_matches_dense_solve(graph):
    """The numpy path is itself checked against a dense linear solve of the PPR equation."""
    n = graph.shape[0]
    A = graph.toarray()
    d = A.sum(axis=1)
    M = np.divide(A, d[:, None], out=np.zeros_like(A), where=d[:, None] > 0)
    p = np.zeros(n)
    p[[0, 3]] = [0.25, 0.75]
    M[d == 0] = p  # dangling rows jump to the personalization
    exact = np.linalg.solve(np.eye(n) - ALPHA * M.T, (1 - ALPHA) * p)
    ref = power_reference(graph, p[None, :], ALPHA, tol=1e-14)[0]
    assert np.abs(ref - exact).sum() < 1e-12
    X = personalized_pagerank(graph, {0: 1.0, 3: 3.0})
    assert np.abs(X[0] - exact).sum() <= 1e-6


@pytest.mark.parametrize("n", [5, 12])
def test_cycle_analytic(n):
    A = sp.csr_matrix((np.ones(n), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    uniform = personalized_pagerank(A, {v: 1 for v in range(n)})
    np.testing.assert_allclose(uniform, 1.0 / n, atol=1e-9)
    # from vertex 0 the surfer is at distance k with probability (1 - a) a^k / (1 - a^n)
    X = personalized_pagerank(A, [0, 2], tol=1e-10, max_iter=1000)  # periodic: error falls only like alpha^t
    k = np.arange(n)
    expected = (1 - ALPHA) * ALPHA**k / (1 - ALPHA**n)
    np.testing.assert_allclose(X[0], expected, atol=1e-10)
    np.testing.assert_allclose(X[1], np.roll(expected, 2), atol=1e-10)


def test_batch_equals_single_and_personalization_is_linear(graph):
    X = personalized_pagerank(graph, [0, 42])
    for i, s in enumerate([0, 42]):
        np.testing.assert_allclose(personalized_pagerank(graph, s)[0], X[i], atol=1e-7)
    # dangling mass returns to the whole personalization, so PPR is linear in it
    mix = personalized_pagerank(graph, {0: 1.0, 42: 3.0}, tol=1e-10)
    G = nx.from_scipy_sparse_array(graph, create_using=nx.DiGraph)
    assert np.abs(mix[0] - _networkx_ppr(G, {0: 0.25, 42: 0.75})).sum() < 1e-8
    both = personalized_pagerank(graph, [{0: 1.0}, {0: 1.0, 42: 3.0}])
    assert both.shape == (2, graph.shape[0])
    assert np.abs(both[1] - mix[0]).sum() < 1e-6


def test_networkx_input_with_labels_and_weights_switch():
    G = nx.DiGraph()
    G.add_weighted_edges_from([("a", "b", 2.0), ("b", "c", 1.0), ("c", "a", 1.0), ("a", "c", 1.0), ("b", "d", 5.0)])
    X = personalized_pagerank(G, ["a", "d"])
    for i, s in enumerate(["a", "d"]):
        assert np.abs(X[i] - _networkx_ppr(G, {s: 1})).sum() <= 1e-6
    plain = personalized_pagerank(G, "a", weights=False)
    assert np.abs(plain[0] - _networkx_ppr(G, {"a": 1}, weight=None)).sum() <= 1e-6
    assert np.abs(plain[0] - X[0]).sum() > 1e-2  # weights matter on this graph


def test_undirected_graph_and_edge_list_file(tmp_path):
    G = nx.karate_club_graph()
    X = personalized_pagerank(G, [0, 33])
    for i, s in enumerate([0, 33]):
        assert np.abs(X[i] - _networkx_ppr(G, {s: 1})).sum() <= 1e-6
    path = tmp_path / "edges.txt"
    path.write_text("# directed\n0 1\n1 2 2.0\n2 0\n2 3\n")
    Y = personalized_pagerank(path, [0])
    D = nx.DiGraph()
    D.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 2.0), (2, 0, 1.0), (2, 3, 1.0)])
    assert np.abs(Y[0] - _networkx_ppr(D, {0: 1})).sum() <= 1e-6


def test_top_k(graph, seeds):
    X = personalized_pagerank(graph, seeds)
    idx, scores = personalized_pagerank(graph, seeds, top_k=5)
    assert idx.shape == scores.shape == (len(seeds), 5)
    for i in range(len(seeds)):
        np.testing.assert_allclose(scores[i], np.sort(X[i])[::-1][:5])
        np.testing.assert_allclose(X[i, idx[i]], scores[i])
    assert (np.diff(scores, axis=1) <= 0).all()


def test_max_iter_warns(graph):
    with pytest.warns(RuntimeWarning, match="max_iter"):
        personalized_pagerank(graph, [0], max_iter=2)


def test_powerwalk_method_is_close(graph, seeds):
    X = personalized_pagerank(graph, seeds)
    Y = personalized_pagerank(graph, seeds, method="powerwalk", rng=0)
    np.testing.assert_allclose(Y.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(X - Y).sum(axis=1).mean() < 0.1


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"seeds": [999]}, ValueError, "unknown vertex"),
        ({"seeds": [-1]}, ValueError, "unknown vertex"),
        ({"seeds": []}, ValueError, "empty"),
        ({"seeds": {0: -1.0}}, ValueError, "non-negative"),
        ({"seeds": {0: 0.0}}, ValueError, "all be zero"),
        ({"seeds": 1.5}, TypeError, "seeds"),
        ({"damping_factor": 1.0}, ValueError, "damping_factor"),
        ({"damping_factor": 0.0}, ValueError, "damping_factor"),
        ({"damping_factor": float("nan")}, ValueError, "damping_factor"),
        ({"tol": 0.0}, ValueError, "tol"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"method": "magic"}, ValueError, "method"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"top_k": 1000}, ValueError, "top_k"),
    ],
)
def test_bad_arguments(graph, kwargs, error, match):
    args = {"seeds": [0], **kwargs}
    seeds = args.pop("seeds")
    with pytest.raises(error, match=match):
        personalized_pagerank(graph, seeds, **args)


def test_bad_graphs():
    with pytest.raises(ValueError, match="non-negative"):
        personalized_pagerank(sp.csr_matrix(np.array([[0, -1.0], [1, 0]])), [0])
    with pytest.raises(ValueError, match="finite"):
        personalized_pagerank(sp.csr_matrix(np.array([[0, np.nan], [1, 0]])), [0])
    with pytest.raises(ValueError, match="empty"):
        personalized_pagerank(sp.csr_matrix((0, 0)), [0])
    with pytest.raises(ValueError, match="square"):
        personalized_pagerank(sp.csr_matrix(np.ones((2, 3))), [0])
    with pytest.raises(TypeError, match="graph"):
        personalized_pagerank([[0, 1], [1, 0]], [0])


def test_cli(tmp_path):
    from lowrank.cli import main

    path = tmp_path / "edges.txt"
    path.write_text("0 1\n1 2\n2 0\n2 3\n3 0\n")
    out = tmp_path / "out.txt"
    assert main(["ppr", str(path), "--seeds", "0,2", "--top-k", "2", "--output", str(out)]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 4
    idx, scores = personalized_pagerank(path, [0, 2], top_k=2)
    assert [int(row[1]) for row in lines[:2]] == idx[0].tolist()
    np.testing.assert_allclose([float(row[2]) for row in lines[2:]], scores[1], rtol=1e-6)


def test_cli_reports_by_label(tmp_path):
    from lowrank.cli import main

    path = tmp_path / "edges.csv"
    path.write_text("source,target,weight\n3352,17,1\n17,900,2\n900,3352,1\n17,3352,1\n")
    out = tmp_path / "out.txt"
    assert main(["ppr", str(path), "--seeds", "17", "--top-k", "3", "--tol", "1e-10", "--output", str(out)]) == 0
    rows = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]
    G = nx.DiGraph()
    G.add_weighted_edges_from([(3352, 17, 1.0), (17, 900, 2.0), (900, 3352, 1.0), (17, 3352, 1.0)])
    pr = nx.pagerank(G, alpha=ALPHA, personalization={17: 1}, tol=1e-14, max_iter=10_000)
    assert [int(r[0]) for r in rows] == [17, 17, 17]
    assert {int(r[1]): float(r[2]) for r in rows} == pytest.approx(pr, abs=1e-8)
    with pytest.raises(ValueError, match="unknown vertex"):  # 2 is no label of this file (17, 900, 3352)
        personalized_pagerank(path, [2])


def test_cli_help_runs_in_a_subprocess():
    cmd = [sys.executable, "-m", "lowrank", "ppr", "--help"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "--top-k" in res.stdout


def _dense_ppr(A, p, alpha):
    """Dense linear solve of pi = (1 - alpha) p + alpha pi M, dangling rows of M replaced by p."""
    A = np.asarray(A, dtype=np.float64)
    d = A.sum(axis=1)
    M = np.divide(A, d[:, None], out=np.zeros_like(A), where=d[:, None] > 0)
    M[d == 0] = p
    return np.linalg.solve(np.eye(A.shape[0]) - alpha * M.T, (1 - alpha) * p)


def test_random_graphs_match_dense_solve():
    """Property check over random directed weighted graphs (dangling vertices, loops, any damping)."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=15, deadline=None, derandomize=True)
    @hypothesis.given(
        n=st.integers(1, 25),
        density=st.floats(0.0, 0.5),
        alpha=st.floats(0.05, 0.95),
        seed=st.integers(0, 2**31 - 1),
    )
    def check(n, density, alpha, seed):
        rng = np.random.default_rng(seed)
        A = (rng.random((n, n)) < density) * rng.uniform(0.1, 4.0, (n, n))
        seeds = rng.integers(0, n, size=3).tolist()
        X = personalized_pagerank(sp.csr_matrix(A), seeds, damping_factor=alpha, tol=1e-9, max_iter=2000)
        Y = personalized_pagerank(sp.csr_matrix(A), seeds, damping_factor=alpha, tol=1e-7, method="push")
        for i, s in enumerate(seeds):
            p = np.zeros(n)
            p[s] = 1.0
            exact = _dense_ppr(A, p, alpha)
            assert np.abs(X[i] - exact).sum() <= 1e-9
            assert np.abs(Y[i] - exact).sum() <= 1e-7

    check()
