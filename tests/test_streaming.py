"""lowrank.streaming: checked against numpy.linalg.eigh of A^T A on streams with a planted gap."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.datasets import planted_gap_stream
from lowrank.streaming import (
    ExactTopEigenvector,
    OjaTopEigenvector,
    RandomOrderTopEigenvector,
    iter_batches,
    top_eigenvector_stream,
)
from lowrank.streaming._kernels import (
    _gram_rows_csr,
    _gram_rows_dense,
    _oja_rows_csr,
    _oja_rows_dense,
    gram_rows_reference,
    oja_rows_reference,
)

N, D = 20_000, 50


def _stream(gap, n_heavy=0, position="start", tail_decay=1.0, seed=0, n=N, d=D, dtype=np.float64):
    stream = planted_gap_stream(n, d, gap=gap, n_heavy=n_heavy, heavy_position=position, tail_decay=tail_decay, dtype=dtype, rng=seed)
    A = stream.to_array()
    w, V = np.linalg.eigh(A.astype(np.float64).T @ A.astype(np.float64))
    return stream, A, V[:, -1], w


def _corr(v, v1):
    v = np.asarray(v, dtype=np.float64).ravel()
    return abs(v @ v1) / np.linalg.norm(v)


# -- the planted streams themselves -----------------------------------------------------------


@pytest.mark.parametrize("gap", [2.0, 10.0, 100.0])
@pytest.mark.parametrize("n_heavy", [0, 3])
def test_planted_stream_has_the_planted_gap_and_vector(gap, n_heavy):
    stream, A, v1, w = _stream(gap, n_heavy)
    assert abs(w[-1] / w[-2] / gap - 1) < 0.05
    assert _corr(stream.planted_vector, v1) > 0.999
    norms = np.sum(A * A, axis=1)
    if n_heavy:
        # each heavy row holds a constant share of ||A||_F^2, a light row O(1 / n)
        assert np.all(norms[stream.heavy_index] > 100 * np.median(norms))


def test_planted_stream_rows_do_not_depend_on_batching(tmp_path):
    stream = planted_gap_stream(9_000, 12, gap=3.0, n_heavy=2, heavy_position="random", rng=4)
    A = stream.to_array()
    assert np.array_equal(np.vstack(list(stream.batches(1_234))), A)
    path = stream.save_npy(tmp_path / "s.npy", batch_rows=1_000)
    assert np.array_equal(np.load(path), A)
    assert stream.heavy_index.shape == (2,)
    start = planted_gap_stream(100, 5, gap=3.0, n_heavy=2, heavy_position="start", rng=0).heavy_index
    end = planted_gap_stream(100, 5, gap=3.0, n_heavy=2, heavy_position="end", rng=0).heavy_index
    assert start.tolist() == [0, 1] and end.tolist() == [98, 99]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"gap": 1.0}, ValueError),
        ({"n_heavy": 100}, ValueError),
        ({"heavy_position": "middle"}, ValueError),
        ({"tail_decay": -1.0}, ValueError),
        ({"dtype": np.int64}, TypeError),
    ],
)
def test_planted_stream_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        planted_gap_stream(100, 5, **kwargs)


# -- accuracy against eigh ----------------------------------------------------------------------


@pytest.mark.parametrize("gap", [2.0, 10.0, 100.0])
@pytest.mark.parametrize("tail_decay", [1.0, 0.0])
@pytest.mark.parametrize("n_heavy, position", [(0, "start"), (2, "start"), (2, "end"), (2, "random")])
def test_random_order_correlation_at_least_1_minus_c_over_r(gap, tail_decay, n_heavy, position):
    _, A, v1, _ = _stream(gap, n_heavy, position, tail_decay)
    est = RandomOrderTopEigenvector(random_state=0)
    for start in range(0, N, 2_000):
        est.partial_fit(A[start : start + 2_000])
    assert _corr(est.components_, v1) >= 1 - 0.02 / gap
    assert est.n_rows_seen_ == N
    assert est.n_heavy_rows_ >= n_heavy


@pytest.mark.parametrize("position", ["start", "end", "random"])
def test_heavy_rows_defeat_plain_oja_but_not_the_heavy_row_handling(position):
    """The heavy rows carry most of v1: forgetting or under-weighting them yields v2 instead."""
    _, A, v1, _ = _stream(2.0, 1, position)
    kept = top_eigenvector_stream(A, method="random_order", batch_rows=2_000, rng=1)
    assert _corr(kept.vector, v1) > 0.99 and kept.n_heavy_rows >= 1
    oja = top_eigenvector_stream(A, method="oja", batch_rows=2_000, rng=1)
    assert _corr(oja.vector, v1) < 0.5
    if position == "start":  # sampled like any other row, an early heavy row is forgotten
        blind = top_eigenvector_stream(A, method="random_order", batch_rows=2_000, rng=1, max_heavy=0)
        assert _corr(blind.vector, v1) < 0.5


def test_oja_any_order_with_a_large_gap():
    _, A, v1, _ = _stream(100.0, tail_decay=0.0)
    assert _corr(OjaTopEigenvector(random_state=0).fit(A).components_, v1) > 0.999
    # adversarial order of the rows (sorted by their weight on v1): Oja is built for it
    order = np.argsort(np.abs(A @ v1))
    assert _corr(OjaTopEigenvector(random_state=0).fit(A[order]).components_, v1) > 0.99


def test_random_order_assumption_matters_for_light_rows():
    """Sorting the light rows (an adversarial order) breaks the random-order method; shuffling restores it."""
    _, A, v1, _ = _stream(2.0, tail_decay=0.0)
    order = np.argsort(np.abs(A @ v1))
    sorted_corr = _corr(top_eigenvector_stream(A[order], rng=0).vector, v1)
    shuffled = A[np.random.default_rng(0).permutation(N)]
    assert _corr(top_eigenvector_stream(shuffled, rng=0).vector, v1) > 0.99 > sorted_corr


def test_exact_matches_eigh():
    _, A, v1, w = _stream(2.0, 1, tail_decay=0.0)
    est = ExactTopEigenvector().fit(A, batch_rows=3_000)
    assert _corr(est.components_, v1) > 1 - 1e-12
    assert np.isclose(est.eigenvalue_, w[-1], rtol=1e-10)
    assert est.nbytes_ == D * D * 8


def test_eigenvalue_and_transform():
    _, A, v1, w = _stream(10.0, 2, "random")
    est = RandomOrderTopEigenvector(random_state=0).fit(A)
    assert abs(est.eigenvalue_ / w[-1] - 1) < 0.02
    assert np.isclose(est.explained_variance_[0], est.eigenvalue_ / N)
    np.testing.assert_allclose(est.transform(A[:10]), A[:10] @ est.components_.T)
    assert est.transform(A[:10]).shape == (10, 1)


def test_top_k_block_extension_matches_eigh_subspace():
    """Ritz vectors 2..k carry over when sigma_k^2 / sigma_{k+1}^2 is a gap too (here 4, 2, 1.5)."""
    _, A, _, w = _stream(4.0, 2, "end", n=30_000)
    V = np.linalg.eigh(A.T @ A)[1][:, ::-1][:, :3]
    est = RandomOrderTopEigenvector(4, n_components=3, random_state=0).fit(A, batch_rows=3_000)
    assert est.components_.shape == (3, D) and est.transform(A[:4]).shape == (4, 3)
    cosines = np.linalg.svd(est.components_ @ V, compute_uv=False)
    assert cosines.min() > 0.999
    np.testing.assert_allclose(est.explained_variance_ * est.n_rows_seen_, w[::-1][:3], rtol=0.02)
    exact = ExactTopEigenvector(n_components=3).fit(A)
    np.testing.assert_allclose(np.abs(exact.components_ @ V), np.eye(3), atol=1e-10)
    with pytest.raises(ValueError, match="n_components <= n_vectors"):
        RandomOrderTopEigenvector(4, n_components=5).fit(A[:100])


# -- memory, dtype, determinism, batching ---------------------------------------------------------


def test_memory_is_order_h_d_not_d_squared():
    # the heavy-row test needs n >> d log d rows (a shorter stream has only "heavy" rows)
    n, d, n_heavy = 30_000, 300, 3
    stream = planted_gap_stream(n, d, gap=10.0, n_heavy=n_heavy, heavy_position="random", dtype=np.float32, rng=0)
    est = RandomOrderTopEigenvector(random_state=0)
    for batch in stream.batches(3_000):
        est.partial_fit(batch)
    p = est.n_vectors
    assert est.n_heavy_rows_ == n_heavy
    # Z, Z^T, the block sum and the last block (6 p d float64), the heavy rows (h d) and their norms
    assert est.nbytes_ <= 6 * p * d * 8 + n_heavy * d * 4 + n_heavy * 8
    assert est.nbytes_ < d * d * 8 / 10  # far below the Gram matrix ...
    assert est.nbytes_ < n * d * 4 / 100  # ... and the stream
    assert OjaTopEigenvector().fit(stream.rows(0, 100)).nbytes_ <= 3 * 8 * d * 8


def test_float32_stays_float32():
    stream, A32, v1, _ = _stream(10.0, 1, dtype=np.float32)
    assert A32.dtype == np.float32
    for cls in (RandomOrderTopEigenvector, OjaTopEigenvector, ExactTopEigenvector):
        est = cls().fit(A32)
        assert est.components_.dtype == np.float32
        assert est.transform(A32[:5]).dtype == np.float32
    result = top_eigenvector_stream(stream.batches(4_000), rng=0)
    assert result.vector.dtype == np.float32
    assert _corr(result.vector, v1) > 0.99


def test_same_seed_same_result_and_batching_does_not_matter():
    _, A, _, _ = _stream(2.0, 2, "random")
    a = RandomOrderTopEigenvector(random_state=3).fit(A, batch_rows=1_000).components_
    b = RandomOrderTopEigenvector(random_state=3).fit(A, batch_rows=7_777).components_
    c = RandomOrderTopEigenvector(random_state=3).fit(A, batch_rows=1_000).components_
    assert np.array_equal(a, c)
    np.testing.assert_allclose(a, b, atol=1e-10)  # blocks are counted in rows, not batches


@pytest.mark.parametrize("cls", [RandomOrderTopEigenvector, OjaTopEigenvector, ExactTopEigenvector])
def test_save_load_resumes_the_stream_exactly(cls, tmp_path):
    _, A, _, _ = _stream(10.0, 2, "random", n=8_000)
    whole = cls(random_state=0)
    for start in range(0, 8_000, 1_000):
        whole.partial_fit(A[start : start + 1_000])
    first = cls(random_state=0)
    for start in range(0, 4_000, 1_000):
        first.partial_fit(A[start : start + 1_000])
    path = first.save(tmp_path / "state.npz")
    resumed = cls.load(path)
    np.testing.assert_array_equal(resumed.components_, first.components_)
    for start in range(4_000, 8_000, 1_000):
        resumed.partial_fit(A[start : start + 1_000])
    np.testing.assert_array_equal(resumed.components_, whole.components_)
    assert resumed.n_rows_seen_ == 8_000 and resumed.nbytes_ == whole.nbytes_
    with pytest.raises(ValueError, match="holds a"):
        (OjaTopEigenvector if cls is not OjaTopEigenvector else ExactTopEigenvector).load(path)


# -- input sources -------------------------------------------------------------------------------


def test_sources_agree(tmp_path):
    stream, A, v1, _ = _stream(10.0, 1, "random", n=6_000)
    reference = top_eigenvector_stream(A, batch_rows=1_000, rng=0).vector
    path = tmp_path / "rows.npy"
    np.save(path, A)
    sources = {
        "generator": (A[i : i + 1_000] for i in range(0, 6_000, 1_000)),
        "list": [A[i : i + 1_000] for i in range(0, 6_000, 1_000)],
        "path": path,
        "str path": str(path),
        "memmap": np.load(path, mmap_mode="r"),
        "sparse": sp.csr_array(A),
        "sparse batches": (sp.csr_matrix(A[i : i + 1_000]) for i in range(0, 6_000, 1_000)),
    }
    for name, source in sources.items():
        got = top_eigenvector_stream(source, batch_rows=1_000, rng=0)
        np.testing.assert_allclose(got.vector, reference, atol=1e-8, err_msg=name)
        assert got.n_rows == 6_000
    est = RandomOrderTopEigenvector(random_state=0).fit(path, batch_rows=1_000)
    np.testing.assert_allclose(est.components_[0], reference, atol=1e-8)
    assert est.n_features_in_ == A.shape[1]


def test_dask_array_source():
    da = pytest.importorskip("dask.array")
    _, A, _, _ = _stream(10.0, 1, "random", n=6_000)
    reference = top_eigenvector_stream(A, batch_rows=1_000, rng=0).vector
    X = da.from_array(A, chunks=(1_000, 25))
    np.testing.assert_allclose(top_eigenvector_stream(X, batch_rows=1_000, rng=0).vector, reference, atol=1e-8)


def test_npy_reader_keeps_one_buffer(tmp_path):
    A = np.arange(35.0).reshape(7, 5)
    np.save(tmp_path / "a.npy", A)
    batches = [b.copy() for b in iter_batches(tmp_path / "a.npy", batch_rows=3)]
    assert [b.shape[0] for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.vstack(batches), A)
    np.save(tmp_path / "f.npy", np.asfortranarray(A))
    np.testing.assert_array_equal(np.vstack(list(iter_batches(tmp_path / "f.npy", 2))), A)


# -- kernels against their numpy references --------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_gram_kernel_matches_reference(sparse):
    gen = np.random.default_rng(0)
    X = gen.standard_normal((300, 20)) * gen.exponential(size=(300, 1)) ** 3
    X[5] *= 1e3  # a heavy row
    ZT = np.linalg.qr(gen.standard_normal((20, 3)))[0].T.copy()
    want_Y, want_h = np.zeros((3, 20)), np.zeros(300, dtype=bool)
    want = gram_rows_reference(X, ZT, want_Y, 1.0, 1 / 40, want_h, False)
    got_Y, got_h = np.zeros((3, 20)), np.zeros(300, dtype=bool)
    if sparse:
        Xs = sp.csr_array(np.where(np.abs(X) > 0.5, X, 0.0))
        want_Y[:], want_h[:] = 0, False
        want = gram_rows_reference(Xs, ZT, want_Y, 1.0, 1 / 40, want_h, False)
        got = _gram_rows_csr(Xs.data, Xs.indices, Xs.indptr, ZT, got_Y, 1.0, 1 / 40, got_h, False)
    else:
        got = _gram_rows_dense(X, ZT, got_Y, 1.0, 1 / 40, got_h, False)
    np.testing.assert_allclose(got[:3], want[:3], rtol=1e-12)
    assert got[3] == want[3] == -1
    assert got_h[5] and np.array_equal(got_h, want_h)
    np.testing.assert_allclose(got_Y, want_Y, rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("sparse", [False, True])
def test_oja_kernel_matches_reference(sparse):
    gen = np.random.default_rng(1)
    X = gen.standard_normal((200, 15))
    if sparse:
        X[np.abs(X) < 0.7] = 0.0
    rates = np.array([1.0, 4.0, 16.0])
    x0 = np.linalg.qr(gen.standard_normal((15, 3)))[0].T.copy()
    want_x, want_l, want_e = x0.copy(), np.zeros(3), np.zeros(3)
    want_f, _ = oja_rows_reference(X, want_x, want_l, want_e, rates, 0.0)
    got_x, got_l, got_e = x0.copy(), np.zeros(3), np.zeros(3)
    if sparse:
        Xs = sp.csr_array(X)
        got_f, bad = _oja_rows_csr(Xs.data, Xs.indices, Xs.indptr, got_x, got_l, got_e, rates, 0.0)
    else:
        got_f, bad = _oja_rows_dense(X, got_x, got_l, got_e, rates, 0.0)
    assert bad == -1 and np.isclose(got_f, want_f)
    np.testing.assert_allclose(got_x, want_x, atol=1e-10)
    np.testing.assert_allclose(got_l, want_l, rtol=1e-10)
    np.testing.assert_allclose(got_e, want_e, rtol=1e-10)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random_order", "oja", "exact"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_rows_are_rejected(method, bad):
    gen = np.random.default_rng(0)
    batches = [gen.standard_normal((50, 4)) for _ in range(3)]
    batches[1][7, 2] = bad
    with pytest.raises(ValueError, match="batch 1.*NaN or infinity"):
        top_eigenvector_stream(iter(batches), method=method)
    estimator = {"random_order": RandomOrderTopEigenvector, "oja": OjaTopEigenvector,
                 "exact": ExactTopEigenvector}[method]()
    with pytest.raises(ValueError, match="^`X`: .*NaN or infinity"):  # the estimator names its argument
        estimator.partial_fit(batches[1])
    with pytest.raises(ValueError, match="^`X` \\(rows 50 to 99\\): .*NaN or infinity"):
        estimator.fit(np.vstack(batches), batch_rows=50)
    if method != "exact":
        options = {"min_block_rows": 10} if method == "random_order" else {}
        with pytest.raises(ValueError, match=r"NaN or infinity \(row 57\)"):
            top_eigenvector_stream(np.vstack(batches), method=method, **options)
    if method == "random_order":  # a batch spanning several power-iteration blocks is all or nothing
        state_est = RandomOrderTopEigenvector(min_block_rows=8, random_state=0).partial_fit(batches[0])
        before = (state_est.components_.copy(), state_est._state.n_blocks, state_est._state.frob)
        with pytest.raises(ValueError):
            state_est.partial_fit(batches[1])
        assert state_est._state.n_blocks == before[1] and state_est._state.frob == before[2]
        np.testing.assert_array_equal(state_est.components_, before[0])
    est = {"random_order": RandomOrderTopEigenvector, "oja": OjaTopEigenvector, "exact": ExactTopEigenvector}[method](random_state=0)
    est.partial_fit(batches[0])
    before = est.components_.copy()
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.partial_fit(batches[1])
    np.testing.assert_array_equal(est.components_, before)
    est.partial_fit(batches[2])  # the bad batch left no trace: the state goes on as if it never came
    clean = type(est)(random_state=0).partial_fit(batches[0]).partial_fit(batches[2])
    assert est.n_rows_seen_ == clean.n_rows_seen_ == 100
    np.testing.assert_array_equal(est.components_, clean.components_)
    assert est.eigenvalue_ == clean.eigenvalue_


def test_changing_width_and_empty_batches_are_rejected():
    gen = np.random.default_rng(0)
    with pytest.raises(ValueError, match="batch 1 has 5 features but the stream started with 4"):
        top_eigenvector_stream(iter([gen.standard_normal((3, 4)), gen.standard_normal((3, 5))]))
    with pytest.raises(ValueError, match="batch 1 is empty"):
        top_eigenvector_stream(iter([gen.standard_normal((3, 4)), np.zeros((0, 4))]))
    with pytest.raises(ValueError, match="stream is empty"):
        top_eigenvector_stream(iter([]))
    with pytest.raises(ValueError, match="2-dimensional"):
        top_eigenvector_stream(iter([np.ones(4)]))
    est = RandomOrderTopEigenvector().partial_fit(gen.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(gen.standard_normal((3, 5)))
    with pytest.raises(ValueError):
        est.partial_fit(np.zeros((0, 4)))
    with pytest.raises(TypeError, match="must hold real numbers"):
        top_eigenvector_stream(iter([np.array([["a", "b"]])]))


def test_bad_options_are_rejected(tmp_path):
    A = np.ones((4, 3))
    with pytest.raises(ValueError, match="`method` must be one of"):
        top_eigenvector_stream(A, method="power")
    with pytest.raises(TypeError, match="unknown option"):
        top_eigenvector_stream(A, method="oja", max_heavy=3)
    with pytest.raises(ValueError, match="n_vectors"):
        top_eigenvector_stream(A, n_vectors=0)
    with pytest.raises(ValueError, match="batch_rows"):
        top_eigenvector_stream(A, batch_rows=0)
    with pytest.raises(ValueError, match="heavy_threshold"):
        RandomOrderTopEigenvector(heavy_threshold=-1.0).fit(A)
    with pytest.raises(ValueError, match=".npy"):
        top_eigenvector_stream(str(tmp_path / "rows.csv"))
    with pytest.raises(TypeError, match="`source` must be"):
        top_eigenvector_stream(3.0)


def test_torch_tensors_are_rejected_with_a_hint():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"`source`: torch tensors are not supported"):
        top_eigenvector_stream(torch.ones(5, 3))
    with pytest.raises(TypeError, match=r"`source` batch 0: torch tensors are not supported"):
        top_eigenvector_stream(iter([torch.ones(5, 3)]))


# -- command line ------------------------------------------------------------------------------------


def test_cli_top_eigvec(tmp_path):
    stream, A, v1, _ = _stream(10.0, 1, "random", n=5_000)
    path = tmp_path / "rows.npy"
    np.save(path, A)
    out_path = tmp_path / "v.npy"
    proc = subprocess.run(
        [sys.executable, "-m", "lowrank", "top-eigvec", str(path), "--batch-rows", "1000", "--output", str(out_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rows/s" in proc.stdout
    assert _corr(np.load(out_path), v1) > 0.99


def test_cli_demo_rows():
    from lowrank.cli.streaming import demo

    rows = demo()
    assert {row.method for row in rows} >= {"RandomOrderTopEigenvector", "OjaTopEigenvector"}
    assert all(row.seconds >= 0 for row in rows)
