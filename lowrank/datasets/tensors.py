"""Continuous-indexed tensors: seeded generators with known latent functions, the hourly 2010
temperatures that ship with ``vega_datasets``, and a loader for user files (no downloads)."""

from typing import Callable, NamedTuple

import numpy as np

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int

__all__ = ["continuous_tensor", "load_temperatures", "load_continuous_tensor"]


class ContinuousTensor(NamedTuple):
    """Entries of a continuous-indexed tensor with their noiseless values and the true function."""

    coords: np.ndarray  # (n, K) real coordinates
    values: np.ndarray  # (n,) noisy observations
    clean: np.ndarray  # (n,) noiseless values f(coords)
    function: Callable  # f: (m, K) coordinates -> (m,) noiseless values


class Temperatures(NamedTuple):
    """Hourly 2010 temperatures (deg F) of Seattle and San Francisco as a (city, day, hour) tensor."""

    coords: np.ndarray  # (n, 3): city latitude, day of year (1..365), hour (0..23)
    values: np.ndarray  # (n,) temperatures of the observed entries
    tensor: np.ndarray  # (2, 365, 24) with NaN where no reading exists
    cities: tuple  # ("Seattle", "San Francisco")
    latitudes: np.ndarray  # (2,) the city coordinate of mode 0


# the latent functions of the reference synthetic data (Fang et al., 2024, data/synthetic)
def _u_a(t):
    return np.sin(2 * np.pi * t) ** 2 * np.cos(2 * np.pi * t)


def _u_b(t):
    return np.exp(-2 * t) * np.sin(1.5 * np.pi * t)


def _u_c(t):
    return (1 - np.sin(0.5 * np.pi * t) ** 3) * np.sin(4 * np.pi * t)


def _u_d(t):
    return np.sin(2 * np.pi * t)


def _u_e(t):
    return np.cos(np.pi * t)


_TUCKER_CORE = np.array([[[1.0, 0.3], [0.2, -0.5]], [[0.4, 0.1], [-0.3, 0.8]]])


def _function(kind):
    if kind == "paper":
        return lambda Z: _u_a(Z[:, 0]) * _u_b(Z[:, 1])
    if kind == "cp3":
        return lambda Z: _u_a(Z[:, 0]) * _u_b(Z[:, 1]) * _u_e(Z[:, 2]) + 0.5 * _u_d(Z[:, 0]) * _u_c(Z[:, 1]) * _u_b(Z[:, 2])

    def tucker(Z):
        U = [np.stack([_u_a(Z[:, 0]), _u_d(Z[:, 0])], 1), np.stack([_u_b(Z[:, 1]), _u_c(Z[:, 1])], 1), np.stack([_u_e(Z[:, 2]), _u_b(Z[:, 2])], 1)]
        return np.einsum("abc,na,nb,nc->n", _TUCKER_CORE, *U)

    return tucker


def continuous_tensor(n_samples=1000, *, kind="paper", noise=0.001, rng=None):
    """Entries of a continuous-indexed tensor with known latent functions, at U(0, 1) coordinates.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of entries.
    kind : {"paper", "cp3", "tucker3"}, default="paper"
        ``"paper"``: the two-mode rank-one recipe of FunBaT's synthetic study,
        ``f(x, y) = sin^2(2 pi x) cos(2 pi x) * exp(-2 y) sin(1.5 pi y)``;
        ``"cp3"``: a three-mode CP of rank 2 built from the same family of functions;
        ``"tucker3"``: a three-mode Tucker with ranks (2, 2, 2) and a fixed dense core.
    noise : float, default=0.001
        Standard deviation of the Gaussian noise added to ``values``.
    rng : None, int or numpy.random.Generator, default=None
        Seed of the coordinates and the noise.

    Returns
    -------
    ContinuousTensor
        ``(coords (n, K), values (n,), clean (n,), function)``; ``function(coords)`` gives the
        noiseless values anywhere (for test sets).

    Raises
    ------
    ValueError
        Bad ``n_samples``, ``kind`` or ``noise``.

    References
    ----------
    Fang et al., "Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor Data",
    ICLR 2024, arXiv:2311.04829.

    Examples
    --------
    >>> from lowrank.datasets import continuous_tensor
    >>> data = continuous_tensor(5, rng=0)
    >>> data.coords.shape, data.values.shape
    ((5, 2), (5,))
    >>> bool(abs(data.values - data.clean).max() < 0.01)
    True
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    check_choice(kind, "kind", ("paper", "cp3", "tucker3"))
    noise = check_float(noise, "noise", low=0)
    gen = as_generator(rng)
    K = 2 if kind == "paper" else 3
    coords = gen.random((n_samples, K))
    f = _function(kind)
    clean = f(coords)
    values = clean + noise * gen.standard_normal(n_samples)
    return ContinuousTensor(coords, values, clean, f)


_LATITUDES = {"Seattle": 47.61, "San Francisco": 37.77}


def load_temperatures():
    """Hourly 2010 temperatures of Seattle and San Francisco (``vega_datasets``, offline).

    The 17,518 readings form a (city, day of year, hour) tensor of shape (2, 365, 24); one hour
    per city (the daylight-saving switch) has no reading. As continuous coordinates the city mode
    uses its latitude, the day mode the day of year (1..365) and the hour mode the hour (0..23).

    Returns
    -------
    Temperatures
        ``(coords (n, 3), values (n,), tensor (2, 365, 24), cities, latitudes)``.

    Raises
    ------
    ImportError
        When ``vega_datasets`` is missing (``pip install "lowrank[data]"``).

    References
    ----------
    The ``seattle-temps`` and ``sf-temps`` datasets of vega-datasets (NOAA hourly readings).

    Examples
    --------
    >>> from lowrank.datasets import load_temperatures
    >>> data = load_temperatures()  # doctest: +SKIP
    >>> data.tensor.shape, data.coords.shape  # doctest: +SKIP
    ((2, 365, 24), (17518, 3))
    """
    from lowrank._utils.optional import import_optional

    vega = import_optional("vega_datasets", purpose="the temperature tensor")
    frames = [vega.local_data.seattle_temps(), vega.local_data.sf_temps()]
    cities = ("Seattle", "San Francisco")
    tensor = np.full((2, 365, 24), np.nan)
    for c, df in enumerate(frames):
        stamps = df["date"]
        day = stamps.dt.day_of_year.to_numpy() - 1
        hour = stamps.dt.hour.to_numpy()
        tensor[c, day, hour] = df["temp"].to_numpy(dtype=np.float64)
    lat = np.array([_LATITUDES[c] for c in cities])
    idx = np.argwhere(np.isfinite(tensor))
    coords = np.column_stack([lat[idx[:, 0]], idx[:, 1] + 1.0, idx[:, 2].astype(np.float64)])
    return Temperatures(coords, tensor[tuple(idx.T)], tensor, cities, lat)


def load_continuous_tensor(path, *, value_column=-1, delimiter=","):
    """Read entries of a continuous-indexed tensor from a local file (.npy, .npz or text).

    Each row holds the K coordinates and the value of one entry (the value in ``value_column``).

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (2-D array), ``.npz`` (arrays ``coords`` and ``values``) or a delimited text file.
    value_column : int, default=-1
        Column of the values in a 2-D array or text file.
    delimiter : str, default=","
        Delimiter of a text file (lines starting with ``#`` are skipped).

    Returns
    -------
    coords : ndarray of shape (n, K)
    values : ndarray of shape (n,)

    Raises
    ------
    ValueError
        A file without at least two columns, or with NaN/inf; ``value_column`` out of range.
    TypeError
        A non-integer ``value_column``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from lowrank.datasets import load_continuous_tensor
    >>> path = os.path.join(tempfile.mkdtemp(), "entries.npy")
    >>> np.save(path, np.array([[0.1, 0.2, 1.0], [0.3, 0.4, 2.0]]))
    >>> coords, values = load_continuous_tensor(path)
    >>> coords.shape, values.tolist()
    ((2, 2), [1.0, 2.0])
    """
    path = str(path)
    if path.endswith(".npz"):
        with np.load(path) as f:
            if "coords" not in f or "values" not in f:
                raise ValueError("`path`: an .npz file must hold arrays `coords` and `values`")
            coords, values = np.asarray(f["coords"], dtype=np.float64), np.asarray(f["values"], dtype=np.float64)
    else:
        table = np.load(path) if path.endswith(".npy") else np.loadtxt(path, delimiter=delimiter, comments="#", ndmin=2)
        table = np.asarray(table, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] < 2:
            raise ValueError(f"`path` must hold a 2-D table with coordinates and a value column, got shape {table.shape}")
        n_cols = table.shape[1]
        col = check_int(value_column, "value_column", low=-n_cols, high=n_cols - 1) % n_cols
        values = table[:, col]
        coords = np.delete(table, col, axis=1)
    if coords.ndim != 2 or coords.shape[0] != values.shape[0]:
        raise ValueError("`path`: coordinates and values must have the same number of rows")
    if not (np.isfinite(coords).all() and np.isfinite(values).all()):
        raise ValueError("`path`: the file must not contain NaN or infinity")
    return coords, values
