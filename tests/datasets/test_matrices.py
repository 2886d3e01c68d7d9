"""planted_low_rank against its own definition (dense truth, binomial counts, noise level) and
load_ratings on hand-written files."""

import numpy as np
import pytest

from lowrank.datasets import load_ratings, planted_low_rank
from lowrank.datasets.matrices import factored_relative_error


def test_planted_entries_are_the_truth_and_sampling_is_bernoulli():
    planted = planted_low_rank(200, 150, 4, 0.2, rng=0)
    observed, left, right = planted
    truth = left @ right.T
    assert np.linalg.matrix_rank(truth) == 4
    coo = observed.tocoo()
    np.testing.assert_allclose(coo.data, truth[coo.row, coo.col], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(planted.entries(coo.row, coo.col), coo.data, rtol=1e-12, atol=1e-12)
    # rms(M) = 1 by construction
    assert np.sqrt(np.mean(truth**2)) == pytest.approx(1.0, rel=1e-10)
    # |Omega| ~ Binomial(m n, p): within 5 standard deviations
    mn, p = 200 * 150, 0.2
    assert abs(observed.nnz - mn * p) < 5 * np.sqrt(mn * p * (1 - p))
    assert observed.has_canonical_format
    assert np.unique(coo.row * 150 + coo.col).size == observed.nnz


def test_planted_noise_level_and_determinism():
    clean = planted_low_rank(300, 300, 3, 0.3, rng=5)
    noisy = planted_low_rank(300, 300, 3, 0.3, noise=0.1, rng=5)
    np.testing.assert_array_equal(clean.left, noisy.left)
    np.testing.assert_array_equal(clean.observed.indices, noisy.observed.indices)
    diff = noisy.observed.data - clean.observed.data
    assert np.std(diff) == pytest.approx(0.1, rel=0.05)
    again = planted_low_rank(300, 300, 3, 0.3, noise=0.1, rng=5)
    np.testing.assert_array_equal(again.observed.data, noisy.observed.data)


def test_coherence_grows_with_the_coherence_parameter():
    values = [planted_low_rank(2000, 500, 3, 0.01, coherence=c, rng=1).coherence for c in (0.0, 0.5, 1.0)]
    assert values[0] < 10 < values[1] < values[2]
    planted = planted_low_rank(200, 100, 3, 0.1, coherence=0.0, rng=1)
    Q, _ = np.linalg.qr(planted.left)
    mu_left = 200 / 3 * np.max(np.sum(Q**2, axis=1))
    assert planted.coherence >= mu_left - 1e-9


def test_relative_error_in_factored_form_matches_dense():
    planted = planted_low_rank(80, 60, 3, 0.5, rng=2)
    rng = np.random.default_rng(0)
    U = planted.left + 1e-3 * rng.standard_normal(planted.left.shape)
    V = planted.right
    dense = np.linalg.norm(U @ V.T - planted.to_dense()) / np.linalg.norm(planted.to_dense())
    assert planted.relative_error((U, V)) == pytest.approx(dense, rel=1e-8)
    # tiny errors are measured accurately (no sqrt(eps) floor from cancellation)
    assert factored_relative_error(planted.left * (1 + 1e-12), V, planted.left, V) == pytest.approx(1e-12, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(m=0, n=5, rank=1, p_observed=0.5), ValueError),
        (dict(m=5, n=5, rank=6, p_observed=0.5), ValueError),
        (dict(m=5, n=5, rank=2, p_observed=0.0), ValueError),
        (dict(m=5, n=5, rank=2, p_observed=1.5), ValueError),
        (dict(m=5, n=5, rank=2, p_observed=0.5, noise=-1.0), ValueError),
        (dict(m=5.0, n=5, rank=2, p_observed=0.5), TypeError),
        (dict(m=5, n=5, rank=2, p_observed=float("nan")), ValueError),
    ],
)
def test_planted_bad_input(kwargs, error):
    with pytest.raises(error):
        planted_low_rank(**kwargs)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_ratings_csv_with_header_and_timestamps(tmp_path):
    path = _write(
        tmp_path,
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4.0,5\n1,31,5.0,1260759999\n",
    )
    ratings = load_ratings(path)
    matrix, users, items = ratings
    assert users.tolist() == [1, 7] and items.tolist() == [31, 1029]
    # (1, 31) appears twice: the later timestamp wins
    np.testing.assert_array_equal(matrix.toarray(), [[5.0, 3.0], [4.0, 0.0]])
    assert ratings.timestamps.toarray()[0, 0] == 1260759999


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("u1\ti1\t4\nu2\ti1\t3\nu1\ti2\t1\n", "auto"),
        ("u1::i1::4::0\nu2::i1::3::0\nu1::i2::1::0\n", "auto"),
        ("u1 i1 4\nu2  i1 3\n# comment\n\nu1 i2 1\n", "auto"),
        ("u1;i1;4\nu2;i1;3\nu1;i2;1\n", ";"),
    ],
)
def test_load_ratings_layouts_and_string_ids(tmp_path, text, delimiter):
    matrix, users, items = load_ratings(_write(tmp_path, "r.txt", text), delimiter=delimiter)
    assert users.tolist() == ["u1", "u2"] and items.tolist() == ["i1", "i2"]
    np.testing.assert_array_equal(matrix.toarray(), [[4.0, 1.0], [3.0, 0.0]])


def test_load_ratings_without_timestamps_keeps_the_last_line(tmp_path):
    matrix, _, _ = load_ratings(_write(tmp_path, "r.csv", "1,2,3\n1,2,4\n"))
    assert matrix.toarray().tolist() == [[4.0]]


def test_load_ratings_keeps_zero_ratings_as_observed(tmp_path):
    matrix, _, _ = load_ratings(_write(tmp_path, "r.csv", "1,1,0\n1,2,3\n2,1,1\n"))
    assert matrix.nnz == 3


def test_load_ratings_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_ratings(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="fewer than 3 fields"):
        load_ratings(_write(tmp_path, "a.csv", "1,2,3\n1,2\n"))
    with pytest.raises(ValueError, match="not a number"):
        load_ratings(_write(tmp_path, "b.csv", "1,2,3\n1,3,x\n"))
    with pytest.raises(ValueError, match="no ratings"):
        load_ratings(_write(tmp_path, "c.csv", "# nothing\n"))
    with pytest.raises(ValueError, match="delimiter"):
        load_ratings(_write(tmp_path, "d.csv", "1,2,3\n"), delimiter="#")
