"""A counter-based random generator: the value at counter (seed, a, b) depends on
nothing else, so a computation split over threads, rows or Dask workers draws
exactly the same numbers as a serial one.

The mixer is SplitMix64's finaliser (Steele, Lea, Flood 2014), applied to a
key built from the counter words. Plain numpy versions live here; numba
kernels import :mod:`lowrank._utils._counter_rng_numba`, which mirrors them
bit for bit (a test checks that).
"""

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0


def mix64(x):
    """SplitMix64 finaliser on a uint64 array (wraps modulo 2**64)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def counter_bits(seed, a, b=0):
    """64 random bits at counter (seed, a, b); ``a`` and ``b`` broadcast."""
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    with np.errstate(over="ignore"):
        k = mix64(np.uint64(seed) ^ mix64(a))
        return mix64(k ^ mix64(b + _GOLDEN))


def counter_uniform(seed, a, b=0):
    """Uniform floats in [0, 1) at counter (seed, a, b), 53 random bits each."""
    return (counter_bits(seed, a, b) >> np.uint64(11)).astype(np.float64) * _INV_2_53
