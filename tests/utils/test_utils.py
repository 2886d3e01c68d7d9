"""Shared helpers: the counter RNG (numpy == numba, uniform), atomic saves, validation, rng conversion."""

import os

import numpy as np
import pytest

from lowrank._utils.counter_rng import counter_uniform
from lowrank._utils.io import load_npz, save_npz
from lowrank._utils.rng import as_generator, as_seed


def test_counter_rng_numba_matches_numpy():
    numba = pytest.importorskip("numba")
    from lowrank._utils import _counter_rng_numba as nb

    @numba.njit
    def draw(seed, n, m):
        out = np.empty((n, m))
        for i in range(n):
            for j in range(m):
                out[i, j] = nb.counter_uniform(seed, i, j)
        return out

    expected = counter_uniform(12345, np.arange(50)[:, None], np.arange(7)[None, :])
    np.testing.assert_array_equal(draw(12345, 50, 7), expected)


def test_counter_rng_is_uniform_and_independent():
    u = counter_uniform(7, np.arange(200000))
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    hist = np.histogram(u, bins=20, range=(0, 1))[0]
    chi2 = np.sum((hist - 10000) ** 2 / 10000)
    assert chi2 < 50  # 19 dof: p ~ 1e-4


def test_atomic_save_round_trip_and_failure_keeps_old(tmp_path):
    path = tmp_path / "state.npz"
    a = np.arange(10.0)
    save_npz(path, {"a": a}, kind="thing", meta={"x": 1})
    arrays, meta = load_npz(path, kind="thing")
    np.testing.assert_array_equal(arrays["a"], a)
    assert meta == {"x": 1}

    class Boom:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_npz(path, {"a": Boom()}, kind="thing")
    arrays, _ = load_npz(path, kind="thing")  # the good file survived
    np.testing.assert_array_equal(arrays["a"], a)
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    with pytest.raises(ValueError, match="holds a 'thing'"):
        load_npz(path, kind="other")


def test_rng_conversions():
    assert isinstance(as_generator(None), np.random.Generator)
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    assert as_seed(5) == 5
    with pytest.raises(TypeError, match="`random_state`"):
        as_generator("x", name="random_state")
    with pytest.raises(ValueError, match="non-negative"):
        as_generator(-1)
    # a seed past 64 bits would wrap onto another seed's counter stream; a bool is no seed
    assert as_seed(2**64 - 1) == 2**64 - 1
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        as_seed(2**64 + 1)
    with pytest.raises(ValueError, match="`random_state`"):
        as_seed(-3, name="random_state")
    for flag in (True, np.bool_(False)):
        with pytest.raises(TypeError, match="bool"):
            as_seed(flag)
        with pytest.raises(TypeError, match="bool"):
            as_generator(flag)
