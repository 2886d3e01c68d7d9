"""Planted-partition generator (edge counts against the binomial law, structure) and the BlogCatalog loader."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from lowrank.datasets import load_blogcatalog, planted_partition
from lowrank.datasets.graphs import _triangle_pair


def _counts(A, labels):
    coo = sp.triu(A, k=1).tocoo()
    same = labels[coo.row] == labels[coo.col]
    return int(same.sum()), int((~same).sum())


def test_symmetric_simple_graph_with_balanced_communities():
    A, labels = planted_partition(1003, 4, p_in=0.05, p_out=0.005, rng=0)
    assert A.shape == (1003, 1003) and labels.shape == (1003,)
    assert (A != A.T).nnz == 0
    assert A.diagonal().sum() == 0
    assert set(np.unique(A.data)) == {1.0}
    sizes = np.bincount(labels)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 1003


def test_edge_counts_follow_the_binomial_law():
    n, k, p_in, p_out = 2000, 5, 0.02, 0.002
    A, labels = planted_partition(n, k, p_in=p_in, p_out=p_out, rng=1)
    sizes = np.bincount(labels)
    pairs_in = int(np.sum(sizes * (sizes - 1) // 2))
    pairs_out = n * (n - 1) // 2 - pairs_in
    m_in, m_out = _counts(A, labels)
    # within 5 standard deviations of the binomial means
    assert abs(m_in - pairs_in * p_in) < 5 * np.sqrt(pairs_in * p_in * (1 - p_in))
    assert abs(m_out - pairs_out * p_out) < 5 * np.sqrt(pairs_out * p_out * (1 - p_out))


def test_pairs_are_uniform_within_a_block():
    # every pair of a 6-vertex single community, p = 0.5: each of the 15 pairs appears about half the time
    hits = np.zeros((6, 6))
    for seed in range(400):
        A, _ = planted_partition(6, 1, p_in=0.5, p_out=0.0, shuffle=False, rng=seed)
        hits += A.toarray()
    freq = hits[np.triu_indices(6, 1)] / 400
    assert np.all(np.abs(freq - 0.5) < 0.1)


def test_average_degree_and_mixing():
    A, labels = planted_partition(20_000, 10, average_degree=12, mixing=0.25, rng=2)
    degree = A.nnz / A.shape[0]
    assert abs(degree - 12) < 0.2
    m_in, m_out = _counts(A, labels)
    assert abs(m_out / (m_in + m_out) - 0.25) < 0.01


def test_seed_reproducible_and_shuffle_relabels():
    A1, l1 = planted_partition(500, 3, average_degree=6, rng=5)
    A2, l2 = planted_partition(500, 3, average_degree=6, rng=5)
    assert (A1 != A2).nnz == 0 and np.array_equal(l1, l2)
    _, ordered = planted_partition(500, 3, average_degree=6, shuffle=False, rng=5)
    assert np.all(np.diff(ordered) >= 0)
    assert not np.all(np.diff(l1) >= 0)


def test_extreme_probabilities():
    A, labels = planted_partition(30, 3, p_in=1.0, p_out=0.0, rng=0)
    assert A.nnz == 3 * 10 * 9  # three complete K10
    A, _ = planted_partition(30, 3, p_in=0.0, p_out=0.0, rng=0)
    assert A.nnz == 0


def test_triangle_pair_enumerates_the_lower_triangle():
    s = 300
    k = np.arange(s * (s - 1) // 2)
    i, j = _triangle_pair(k)
    assert np.all(i > j) and np.all(j >= 0) and np.all(i < s)
    np.testing.assert_array_equal(i * (i - 1) // 2 + j, k)  # row-major order, hence a bijection
    # huge blocks: float rounding of the square root is corrected exactly
    big = np.array([10**12, 10**12 + 1, 4999999950000000 - 1], dtype=np.int64)
    i, j = _triangle_pair(big)
    assert np.all((j >= 0) & (j < i))
    np.testing.assert_array_equal(i * (i - 1) // 2 + j, big)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((10, 0), dict(average_degree=2), ValueError, "n_communities"),
        ((3, 5), dict(average_degree=1), ValueError, "n_nodes"),
        ((10, 2), dict(p_in=0.5), ValueError, "p_out"),
        ((10, 2), dict(), ValueError, "average_degree"),
        ((10, 2), dict(p_in=0.5, p_out=0.1, average_degree=3), ValueError, "not both"),
        ((10, 2), dict(p_in=1.5, p_out=0.1), ValueError, "p_in"),
        ((10, 2), dict(p_in=np.nan, p_out=0.1), ValueError, "p_in"),
        ((10, 2), dict(average_degree=50), ValueError, "above 1"),
        ((10, 2), dict(average_degree=2, mixing=2.0), ValueError, "mixing"),
        ((10.5, 2), dict(average_degree=2), TypeError, "n_nodes"),
        ((10, 2), dict(average_degree=2, shuffle="yes"), TypeError, "shuffle"),
    ],
)
def test_planted_partition_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        planted_partition(*args, **kwargs)


def test_load_blogcatalog_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    upper = sp.triu(sp.random(50, 50, density=0.1, random_state=rng), k=1)
    network = ((upper + upper.T) > 0).astype(np.float64).tocsc()
    group = sp.csc_matrix((rng.random((50, 4)) < 0.3).astype(np.float64))
    path = tmp_path / "bc.mat"
    scipy.io.savemat(path, {"network": network, "group": group})
    A, Y = load_blogcatalog(path)
    assert (A != network).nnz == 0 and A.format == "csr"
    np.testing.assert_array_equal(Y, group.toarray().astype(np.int8))


def test_load_blogcatalog_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_blogcatalog(tmp_path / "missing.mat")
    bad = tmp_path / "bad.mat"
    bad.write_text("not a mat file")
    with pytest.raises(ValueError, match="cannot read"):
        load_blogcatalog(bad)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"x": np.ones(3)})
    with pytest.raises(ValueError, match="network"):
        load_blogcatalog(other)


REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "blogcatalog.mat"


@pytest.mark.skipif(not REAL.exists(), reason="BlogCatalog file not present")
def test_real_blogcatalog_statistics():
    A, Y = load_blogcatalog(REAL)
    assert A.shape == (10312, 10312) and Y.shape == (10312, 39)
    assert sp.triu(A, k=1).nnz == 333983 and (A != A.T).nnz == 0
