"""personalized_pagerank against networkx.pagerank's own options: personalization vectors and matrices,
``dangling=``, ``nstart=``, the empty graph, and the seeds/personalization ambiguity."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.graphs import PowerWalk
from lowrank.graphs import personalized_pagerank as _ppr

ALPHA = 0.85


def personalized_pagerank(*args, **kwargs):
    kwargs.setdefault("max_iter", 2000)  # tight tolerances on graphs with slow mixing
    return _ppr(*args, **kwargs)


@pytest.fixture(scope="module")
def digraph():
    """Directed, weighted, 60 vertices, with dangling vertices (no out-arcs) and a self-loop."""
    G = nx.gnp_random_graph(60, 0.08, seed=4, directed=True)
    rng = np.random.default_rng(0)
    for u, v in G.edges():
        G[u][v]["weight"] = float(rng.uniform(0.2, 3.0))
    for d in (5, 17, 33):
        G.remove_edges_from(list(G.out_edges(d)))
    G.add_edge(8, 8, weight=2.0)
    assert sum(1 for v in G if G.out_degree(v) == 0) >= 3
    return G


def _nx(G, **kwargs):
    pr = nx.pagerank(G, alpha=ALPHA, tol=1e-15, max_iter=100_000, **kwargs)
    return np.array([pr[v] for v in G.nodes()])


def test_personalization_vector_matrix_and_dict_match_networkx(digraph):
    n = digraph.number_of_nodes()
    rng = np.random.default_rng(1)
    W = rng.random((3, n)) * (rng.random((3, n)) < 0.3)
    W[:, 0] += 0.5  # every row has weight
    refs = [_nx(digraph, personalization={v: W[i, v] for v in range(n)}) for i in range(3)]
    X = personalized_pagerank(digraph, personalization=W, tol=1e-9)
    assert X.shape == (3, n)
    for i in range(3):
        assert np.abs(X[i] - refs[i]).sum() <= 1e-9
    one = personalized_pagerank(digraph, personalization=W[1], tol=1e-9)
    assert one.shape == (1, n) and np.abs(one[0] - refs[1]).sum() <= 1e-9
    sparse = personalized_pagerank(digraph, personalization=sp.csr_matrix(W), tol=1e-9)
    np.testing.assert_allclose(sparse, X, atol=1e-12)
    d = {v: W[2, v] for v in range(n) if W[2, v] > 0}  # missing vertices weigh 0, as in networkx
    assert np.abs(personalized_pagerank(digraph, personalization=d, tol=1e-9)[0] - refs[2]).sum() <= 1e-9
    # the call: an indicator vector is a personalization, not five seeds
    five = nx.path_graph(5, create_using=nx.DiGraph)
    pi = personalized_pagerank(five, personalization=np.array([1, 0, 0, 0, 0]), tol=1e-10)
    assert np.abs(pi[0] - _nx(five, personalization={0: 1})).sum() <= 1e-9


def test_global_pagerank_is_uniform_personalization(digraph):
    n = digraph.number_of_nodes()
    X = personalized_pagerank(digraph, personalization=np.ones(n), tol=1e-10)
    assert np.abs(X[0] - _nx(digraph)).sum() <= 1e-9


@pytest.mark.parametrize("use_personalization", [False, True])
def test_dangling_matches_networkx(digraph, use_personalization):
    n = digraph.number_of_nodes()
    dangling = {0: 1.0, 10: 3.0, 40: 0.5}  # normalized, as networkx does
    if use_personalization:
        pers = {3: 1.0, 7: 2.0}
        X = personalized_pagerank(digraph, personalization=pers, dangling=dangling, tol=1e-10)
        ref = _nx(digraph, personalization=pers, dangling=dangling)
    else:
        X = personalized_pagerank(digraph, [3], dangling=dangling, tol=1e-10)
        ref = _nx(digraph, personalization={3: 1}, dangling=dangling)
    assert np.abs(X[0] - ref).sum() <= 1e-10
    # a different dangling rule gives a different answer, and as a vector it equals the dict
    default = personalized_pagerank(digraph, [3], tol=1e-10)
    assert np.abs(default[0] - X[0]).sum() > 1e-3
    vec = np.zeros(n)
    vec[[0, 10, 40]] = [1.0, 3.0, 0.5]
    seeds_form = personalized_pagerank(digraph, [3, 7], dangling=vec, tol=1e-10)
    ref7 = _nx(digraph, personalization={7: 1}, dangling=dangling)
    assert np.abs(seeds_form[1] - ref7).sum() <= 1e-10


def test_dangling_equal_to_personalization_is_the_default(digraph):
    n = digraph.number_of_nodes()
    p = np.zeros(n)
    p[[2, 9]] = [0.3, 0.7]
    a = personalized_pagerank(digraph, personalization=p, dangling=p, tol=1e-11)
    b = personalized_pagerank(digraph, personalization=p, tol=1e-11)
    assert np.abs(a - b).sum() <= 2e-11


def test_nstart_is_a_warm_start(digraph):
    exact = _nx(digraph, personalization={3: 1})
    # started at the answer, one iteration already meets tol (no max_iter warning)
    X = personalized_pagerank(digraph, [3], nstart=exact, max_iter=1, tol=1e-8)
    assert np.abs(X[0] - exact).sum() <= 1e-8
    with pytest.warns(RuntimeWarning, match="max_iter"):
        personalized_pagerank(digraph, [3], max_iter=1, tol=1e-8)
    # any start gives the same answer within tol; networkx agrees with the same nstart
    start = {v: 1.0 for v in range(10)}
    Y = personalized_pagerank(digraph, [3], nstart=start, tol=1e-10)
    ref = _nx(digraph, personalization={3: 1}, nstart=start)
    assert np.abs(Y[0] - ref).sum() <= 1e-10
    # a (k, n) nstart starts each row; with a fixed dangling distribution too
    both = personalized_pagerank(digraph, [3, 7], nstart=np.vstack([exact, exact]), dangling={0: 1}, tol=1e-10)
    assert np.abs(both[0] - _nx(digraph, personalization={3: 1}, dangling={0: 1})).sum() <= 1e-10


def test_empty_networkx_graph_raises_the_documented_error():
    for G in (nx.Graph(), nx.DiGraph()):
        with pytest.raises(ValueError, match="empty"):
            personalized_pagerank(G, [0])
        with pytest.raises(ValueError, match="empty"):
            PowerWalk().fit(G)


def test_ambiguous_and_bad_personalizations(digraph):
    n = digraph.number_of_nodes()
    five = nx.path_graph(5, create_using=nx.DiGraph)
    with pytest.raises(ValueError, match="ambiguous"):
        personalized_pagerank(five, np.array([1, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="ambiguous"):
        personalized_pagerank(five, np.array([0, 0, 1, 1, 2]))
    # a list is a list of seeds, repeats allowed (one row each)
    rows = personalized_pagerank(five, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(rows[0], rows[1])
    with pytest.raises(TypeError, match="personalization"):
        personalized_pagerank(five, np.array([1.0, 0, 0, 0, 0]))
    with pytest.raises(TypeError, match="personalization"):
        personalized_pagerank(five, np.array([True, False, False, False, False]))
    with pytest.raises(ValueError, match="personalization"):
        personalized_pagerank(five, np.eye(5, dtype=np.int64))
    # every vertex once is a batch of n seeds, not a vector
    X = personalized_pagerank(five, np.arange(5))
    np.testing.assert_allclose(np.diag(X) > 0, True)
    cases = [
        ({"seeds": [0], "personalization": np.ones(n)}, ValueError, "not both"),
        ({}, ValueError, "neither"),
        ({"personalization": np.ones(n - 1)}, ValueError, "one entry per vertex"),
        ({"personalization": np.ones((2, n + 1))}, ValueError, "one entry per vertex"),
        ({"personalization": -np.ones(n)}, ValueError, "non-negative"),
        ({"personalization": np.full(n, np.nan)}, ValueError, "finite"),
        ({"personalization": np.zeros(n)}, ValueError, "positive weight"),
        ({"personalization": np.ones((2, 3, n))}, ValueError, "personalization"),
        ({"personalization": "abc"}, TypeError, "personalization"),
        ({"personalization": {999: 1.0}}, ValueError, "unknown vertex"),
        ({"seeds": [0], "dangling": np.ones((2, n))}, ValueError, "dangling"),
        ({"seeds": [0], "dangling": {0: -1.0}}, ValueError, "non-negative"),
        ({"seeds": [0], "nstart": np.ones(n + 2)}, ValueError, "nstart"),
        ({"seeds": [0], "nstart": np.ones((3, n))}, ValueError, "nstart"),
        ({"seeds": [0], "dangling": {0: 1.0}, "method": "push"}, ValueError, "power"),
        ({"seeds": [0], "nstart": np.ones(n), "method": "powerwalk"}, ValueError, "power"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            personalized_pagerank(digraph, **kwargs)


def test_powerwalk_query_takes_a_personalization(digraph):
    n = digraph.number_of_nodes()
    pw = PowerWalk(n_walks=20, random_state=0).fit(digraph)
    p = np.zeros(n)
    p[[3, 7]] = [1.0, 3.0]
    np.testing.assert_allclose(pw.query(personalization=p), pw.query({3: 1.0, 7: 3.0}), atol=1e-7)
    exact = personalized_pagerank(digraph, personalization=p, tol=1e-10)
    assert np.abs(pw.query(personalization=p, tol=1e-3) - exact).sum() <= 1e-3
    with pytest.raises(ValueError, match="not both"):
        pw.query([3], personalization=p)


@pytest.mark.parametrize("frac", [0.05, 0.3, 0.9])
def test_fixed_dangling_against_a_dense_solve(frac):
    """The kernel path (substochastic solves combined by linearity, then certified) on graphs with many
    dangling vertices, against a dense linear solve with the dangling rows replaced by ``d``."""
    rng = np.random.default_rng(int(frac * 100))
    n = 80
    A = (rng.random((n, n)) < 0.06) * rng.uniform(0.5, 2.0, (n, n))
    A[rng.random(n) < frac] = 0.0
    d = rng.random(n) * (rng.random(n) < 0.5)
    d[0] += 0.1
    d /= d.sum()
    deg = A.sum(axis=1)
    M = np.divide(A, deg[:, None], out=np.zeros_like(A), where=deg[:, None] > 0)
    M[deg == 0] = d
    seeds = [1, 5, 40]
    X = personalized_pagerank(sp.csr_matrix(A), seeds, dangling=d, tol=1e-9)
    for i, s in enumerate(seeds):
        p = np.zeros(n)
        p[s] = 1.0
        exact = np.linalg.solve(np.eye(n) - ALPHA * M.T, (1 - ALPHA) * p)
        assert np.abs(X[i] - exact).sum() <= 1e-9
