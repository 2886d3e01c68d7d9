"""The torch solver of personalized_pagerank (device= / torch tensors in -> torch out): the same iterate,
stopping rule and dangling convention as the numba kernel, on CPU torch; a CUDA run marked gpu."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.graphs import personalized_pagerank
from lowrank.graphs.pagerank import power_reference

torch = pytest.importorskip("torch")

ALPHA = 0.85


@pytest.fixture(scope="module")
def graph():
    """Directed, weighted, with dangling vertices (rows 3, 7, 11), a self-loop and an isolated vertex."""
    rng = np.random.default_rng(2)
    A = sp.random(120, 120, density=0.04, random_state=rng, format="lil")
    for i, j in zip(*A.nonzero()):
        A[i, j] = rng.uniform(0.2, 3.0)
    for d in (3, 7, 11):
        A[d, :] = 0
    A[5, 5] = 2.0
    A[119, :] = 0
    A[:, 119] = 0
    A = A.tocsr()
    A.eliminate_zeros()
    return A


SEEDS = [0, 3, 5, 42, 119]


def test_same_iterates_as_the_numba_path(graph):
    for tol in (1e-4, 1e-8):
        X = personalized_pagerank(graph, SEEDS, tol=tol)
        T = personalized_pagerank(graph, SEEDS, tol=tol, device="cpu")
        assert isinstance(T, torch.Tensor) and T.dtype == torch.float64 and T.device.type == "cpu"
        # the same stopping rule stops at the same iteration: equal up to rounding, not only within tol
        assert np.abs(T.numpy() - X).max() < 1e-12
    n = graph.shape[0]
    P = sp.csr_matrix((np.ones(len(SEEDS)), (np.arange(len(SEEDS)), SEEDS)), shape=(len(SEEDS), n))
    exact = power_reference(graph, P, ALPHA, tol=1e-14)
    T = personalized_pagerank(graph, SEEDS, tol=1e-7, device="cpu").numpy()
    assert (np.abs(T - exact).sum(axis=1) <= 1e-7).all()
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-9)


def test_torch_in_torch_out_and_float32(graph):
    dense = torch.from_numpy(graph.toarray())
    exact = personalized_pagerank(graph, SEEDS, tol=1e-12, max_iter=500)
    for layout in (dense, dense.to_sparse_csr(), dense.to_sparse_coo()):
        T = personalized_pagerank(layout, SEEDS, tol=1e-8)
        assert isinstance(T, torch.Tensor) and T.dtype == torch.float64
        assert np.abs(T.numpy() - exact).sum(axis=1).max() <= 1e-8
    T32 = personalized_pagerank(dense.float().to_sparse_csr(), SEEDS, tol=1e-5)
    assert T32.dtype == torch.float32
    assert np.abs(T32.numpy() - exact).sum(axis=1).max() <= 2e-5  # the bound plus float32 rounding
    # a torch personalization also selects the torch path
    W = torch.rand(3, graph.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    T = personalized_pagerank(graph, personalization=W, tol=1e-9)
    X = personalized_pagerank(graph, personalization=W.numpy(), tol=1e-9)
    assert isinstance(T, torch.Tensor) and np.abs(T.numpy() - X).max() < 1e-12
    # torch integer seeds are vertices
    np.testing.assert_array_equal(personalized_pagerank(graph, torch.tensor([0, 5])), personalized_pagerank(graph, [0, 5]))


def test_dangling_nstart_and_top_k_match_networkx(graph):
    G = nx.from_scipy_sparse_array(graph, create_using=nx.DiGraph)
    dangling = {0: 1.0, 50: 2.0}
    T = personalized_pagerank(graph, [42], dangling=dangling, tol=1e-10, max_iter=500, device="cpu")
    pr = nx.pagerank(G, alpha=ALPHA, personalization={42: 1}, dangling=dangling, tol=1e-15, max_iter=100_000)
    assert np.abs(T.numpy()[0] - np.array([pr[v] for v in G])).sum() <= 1e-10
    exact = personalized_pagerank(graph, [42], tol=1e-12, max_iter=500)
    warm = personalized_pagerank(graph, [42], nstart=exact, max_iter=1, tol=1e-8, device="cpu")
    assert np.abs(warm.numpy() - exact).sum() <= 1e-8
    idx, scores = personalized_pagerank(graph, SEEDS, top_k=7, device="cpu")
    ref_idx, ref_scores = personalized_pagerank(graph, SEEDS, top_k=7)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(scores.numpy(), ref_scores, atol=1e-12)


def test_torch_path_errors_and_warning(graph):
    with pytest.raises(ValueError, match="method='power'"):
        personalized_pagerank(graph, [0], device="cpu", method="push")
    with pytest.raises(ValueError, match="device"):
        personalized_pagerank(graph, [0], device="no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            personalized_pagerank(graph, [0], device="cuda")
    with pytest.warns(RuntimeWarning, match="max_iter"):
        personalized_pagerank(graph, [0], device="cpu", max_iter=2)
    with pytest.raises(ValueError, match="square"):
        personalized_pagerank(torch.ones(2, 3), [0])
    with pytest.raises(ValueError, match="non-negative"):
        personalized_pagerank(-torch.eye(3), [0])


@pytest.mark.gpu
def test_cuda_matches_cpu(graph):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X = personalized_pagerank(graph, SEEDS, tol=1e-9)
    T = personalized_pagerank(graph, SEEDS, tol=1e-9, device="cuda")
    assert T.device.type == "cuda"
    assert np.abs(T.cpu().numpy() - X).sum(axis=1).max() <= 2e-9
    G = torch.from_numpy(graph.toarray()).float().cuda().to_sparse_csr()
    T32 = personalized_pagerank(G, SEEDS, tol=1e-5)
    assert T32.device.type == "cuda" and T32.dtype == torch.float32
    assert np.abs(T32.cpu().numpy() - X).sum(axis=1).max() <= 2e-5
