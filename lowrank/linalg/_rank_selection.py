"""Choosing a rank from a spectrum."""

import numpy as np

from lowrank._utils.validation import check_float


def _spectrum(s):
    kind = np.asarray(s).dtype.kind
    if kind not in ("b", "i", "u", "f"):
        # asarray(float64) would take "3.0" strings and drop imaginary parts (with only a warning)
        raise TypeError(f"`s` must hold real singular values, got dtype {np.asarray(s).dtype}")
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError("`s` must be a non-empty 1-D array of singular values")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("`s` must hold finite, non-negative singular values")
    if (np.diff(s) > 1e-12 * max(1.0, s[0])).any():
        raise ValueError("`s` must be sorted in descending order")
    return s


def rank_by_energy(s, energy=0.9):
    """Smallest ``k`` whose leading singular values hold at least ``energy`` of ``sum(s**2)``.

    Parameters
    ----------
    s : (n,) array, descending singular values
    energy : float in (0, 1], default=0.9

    Returns
    -------
    int
        At least 1; an all-zero spectrum (no energy to keep) gives 1, the smallest rank.

    Raises
    ------
    ValueError
        ``s`` empty, not 1-D, negative, non-finite or not descending; ``energy`` outside (0, 1].

    Examples
    --------
    >>> rank_by_energy([3.0, 2.0, 1.0], 0.9)
    2
    """
    s = _spectrum(s)
    energy = check_float(energy, "energy", low=0.0, high=1.0, low_inclusive=False)
    total = np.sum(s**2)
    if total == 0:
        return 1
    frac = np.cumsum(s**2) / total
    return int(min(np.searchsorted(frac, energy - 1e-12) + 1, s.size))


def rank_by_knee(s):
    """The knee of a spectrum: the index farthest below the chord of the log-spectrum.

    Draws the straight line from the first to the last point of ``log(s)`` (on a normalized index
    axis) and returns the number of values up to the point of largest distance under it. A cliff
    after ``k`` dominant values gives ``k``; heavy-tailed spectra give the bend of the tail.

    Parameters
    ----------
    s : (n,) array, descending singular values

    Returns
    -------
    int, at least 1
        An all-zero spectrum (no head at all) gives 1, as :func:`rank_by_energy` does.

    Raises
    ------
    ValueError
        ``s`` empty, not 1-D, negative, non-finite or not descending.

    Examples
    --------
    >>> rank_by_knee([10, 9, 8, 1e-3, 1e-3, 1e-3, 1e-3])
    3
    """
    s = _spectrum(s)
    if s.size <= 2 or s[0] == 0:
        return 1
    floor = s[0] * 1e-15 if s[0] > 0 else 1e-300
    y = np.log(np.maximum(s, floor))
    x = np.linspace(0.0, 1.0, s.size)
    y = (y - y[-1]) / (y[0] - y[-1]) if y[0] != y[-1] else np.zeros_like(y)
    chord = 1.0 - x
    # The dominant head ends where the curve stands highest above the chord.
    return int(np.argmax(y - chord) + 1)
