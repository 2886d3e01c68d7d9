"""Random-number conventions: ``rng`` (SPEC 7) in functions, ``random_state`` in estimators.

Both accept None, an int seed, a ``numpy.random.Generator`` or a legacy
``RandomState``; :func:`as_generator` turns any of them into a Generator.
"""

import numbers

import numpy as np


def as_generator(rng, *, name="rng"):
    """Return a ``numpy.random.Generator`` from None, an int, a Generator or a RandomState."""
    if isinstance(rng, (bool, np.bool_)):  # an int subclass, but never meant as a seed
        raise TypeError(f"`{name}` must be None, an int, a numpy Generator or RandomState, got a bool")
    if rng is None or isinstance(rng, (numbers.Integral, np.integer)):
        if rng is not None and int(rng) < 0:
            raise ValueError(f"`{name}` must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        # Draw a seed from the legacy state so the caller's stream still advances.
        return np.random.default_rng(rng.randint(0, 2**31 - 1))
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    raise TypeError(
        f"`{name}` must be None, an int, a numpy Generator or RandomState, got {type(rng).__name__}"
    )


def as_seed(rng, *, name="rng"):
    """Return a 64-bit integer seed for counter-based generators.

    An int is used as is, so that ``seed=3`` means the same stream everywhere;
    otherwise one integer is drawn from the generator.
    """
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if not 0 <= int(rng) < 2**64:
            # counter generators take 64 bits: a larger seed would wrap onto another seed's stream
            raise ValueError(f"`{name}` must be an integer seed in [0, 2**64), got {rng}")
        return int(rng)
    return int(as_generator(rng, name=name).integers(0, 2**63 - 1))
