"""randomized_cp (sampled CP-ALS) against exact planted factors, the exact error and TensorLy's
randomised_parafac."""

import numpy as np
import pytest
import tensorly as tl
from tensorly.decomposition import randomised_parafac

from lowrank.tensors import randomized_cp


def _planted(seed, shape=(20, 21, 22), rank=3, noise=0.0):
    rng = np.random.default_rng(seed)
    X = tl.cp_to_tensor((np.ones(rank), [rng.standard_normal((n, rank)) for n in shape]))
    if noise:
        E = rng.standard_normal(X.shape)
        X = X + noise * np.linalg.norm(X) / np.linalg.norm(E) * E
    return X


def _rel(cp, X):
    return float(np.linalg.norm(tl.cp_to_tensor(cp) - X) / np.linalg.norm(X))


@pytest.mark.parametrize("sampling", ["uniform", "leverage"])
def test_exact_on_noiseless_cp(sampling):
    X = _planted(0)
    assert _rel(randomized_cp(X, 3, 60, sampling=sampling, rng=0), X) < 1e-8


def test_noise_floor_and_not_worse_than_tensorly():
    ours, ref = [], []
    for seed in range(3):
        X = _planted(seed + 1, shape=(30, 31, 32), noise=0.05)
        ours.append(_rel(randomized_cp(X, 3, 60, rng=seed), X))
        ref.append(_rel(randomised_parafac(X, 3, 60, init="svd", n_iter_max=100, random_state=seed), X))
    assert max(ours) < 0.05 * 1.3  # near the noise floor although each update sees 60 of ~1000 fibres
    assert np.mean(ours) <= np.mean(ref) * 1.1


def test_error_estimate_is_exact_when_the_fit_sample_covers_the_tensor():
    X = _planted(4, noise=0.1)
    seen = []

    def callback(it, err, factors):
        exact = np.linalg.norm(tl.cp_to_tensor((np.ones(3), factors)) - X) / np.linalg.norm(X)
        seen.append((err, exact))
        return it == 3

    randomized_cp(X, 3, 40, n_samples_fit=X.size, callback=callback, rng=0)
    assert len(seen) == 4
    for err, exact in seen:
        assert err == pytest.approx(exact, rel=1e-10)


def test_n_iter_max_zero_and_list_init():
    X = _planted(5)
    rng = np.random.default_rng(6)
    start = [rng.standard_normal((n, 3)) for n in X.shape]
    cp = randomized_cp(X, 3, 30, init=start, n_iter_max=0)
    np.testing.assert_allclose(tl.cp_to_tensor(cp), tl.cp_to_tensor((np.ones(3), start)), atol=1e-10)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    X = _planted(7)
    cp = randomized_cp(torch.as_tensor(X), 3, 60, rng=0)
    assert isinstance(cp.factors[0], torch.Tensor) and cp.factors[0].dtype == torch.float64
    ref = randomized_cp(X, 3, 60, rng=0)
    np.testing.assert_allclose(cp.weights.numpy(), ref.weights)


_X = _planted(8, shape=(4, 5, 6))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_samples": 2}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"sampling": "lev"}, ValueError, "sampling"),
        ({"n_samples_fit": 0}, ValueError, "n_samples_fit"),
        ({"max_stagnation": -1}, ValueError, "max_stagnation"),
        ({"init": "nndsvd"}, ValueError, "init"),
        ({"callback": 1}, TypeError, "callback"),
        ({"rank": 0}, ValueError, "rank"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"rank": 3, "n_samples": 10, **kwargs}
    with pytest.raises(exc, match=match):
        randomized_cp(_X, args.pop("rank"), args.pop("n_samples"), **args)


@pytest.mark.gpu
def test_cuda_in_cuda_out():
    torch = pytest.importorskip("torch")
    X = _planted(9)
    cp = randomized_cp(torch.as_tensor(X, device="cuda"), 3, 60, rng=0)
    assert cp.factors[0].device.type == "cuda"
    np.testing.assert_allclose(cp.weights.cpu().numpy(), randomized_cp(X, 3, 60, rng=0).weights, rtol=1e-10)
