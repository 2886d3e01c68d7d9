"""numba twins of :mod:`lowrank._utils.counter_rng` (identical bits).

Import only from modules that already need numba: importing this compiles nothing
until first call (lazy ``@njit``), but it imports numba itself.
"""

import numpy as np

from lowrank._utils.jit import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def mix64(x):
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def counter_bits(seed, a, b):
    k = mix64(np.uint64(seed) ^ mix64(np.uint64(a)))
    return mix64(k ^ mix64(np.uint64(b) + _GOLDEN))


@njit(inline="always")
def counter_uniform(seed, a, b):
    return np.float64(counter_bits(seed, a, b) >> _S11) * _INV_2_53
