"""Hyperspectral cubes: a labelled synthetic generator built from real reflectance spectra, and a file loader.

:func:`synthetic_hyperspectral` paints the segments of a photograph that ships with scikit-image (or
scikit-learn) with measured reflectance spectra from colour-science (ColorChecker charts, the CIE test colour
samples, the NIST CQS samples), each segment receiving the spectrum whose sRGB colour is nearest to the
segment's mean colour, and multiplies by a shading map taken from the photograph's luminance. The result
has a known ground truth (labels, spectra, shading) and the low spectral rank of real scenes.

:func:`load_hyperspectral` reads a cube the user already has (``.npy``, ``.npz``, ``.mat`` or ENVI
``.hdr`` + binary). Nothing here downloads.
"""

import logging
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int

logger = logging.getLogger(__name__)

__all__ = ["synthetic_hyperspectral", "load_hyperspectral", "HyperspectralCube"]

_SKIMAGE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                   "retina", "colorwheel", "camera", "moon", "coins", "brick", "grass", "gravel")
_SKLEARN_IMAGES = ("china.jpg", "flower.jpg")


class HyperspectralCube(NamedTuple):
    """A synthetic cube and its ground truth (unpacks like a tuple).

    Attributes
    ----------
    cube : ndarray of shape (height, width, n_bands)
        Reflectance times shading, scaled so that its maximum is 1.
    labels : ndarray of int of shape (height, width)
        Segment of each pixel.
    spectra : ndarray of shape (n_segments, n_bands)
        The spectrum painted on each segment (before shading and scaling).
    wavelengths : ndarray of shape (n_bands,)
        Band centres in nanometres.
    """

    cube: np.ndarray
    labels: np.ndarray
    spectra: np.ndarray
    wavelengths: np.ndarray


def _load_image(image):
    """An RGB float image in [0, 1] from a bundled name or an array."""
    if isinstance(image, str):
        if image in _SKLEARN_IMAGES:
            from sklearn.datasets import load_sample_image

            rgb = load_sample_image(image)
        elif image in _SKIMAGE_IMAGES:
            data = import_optional("skimage.data", purpose="synthetic_hyperspectral")
            rgb = getattr(data, image)()
        else:
            options = ", ".join(repr(n) for n in _SKIMAGE_IMAGES + _SKLEARN_IMAGES)
            raise ValueError(f"`image` must be one of {options} or an array; got {image!r}")
    else:
        rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"`image` must be (height, width) or (height, width, 3); got shape {rgb.shape}")
    rgb = rgb[..., :3]
    if rgb.dtype.kind in "ui":
        rgb = rgb.astype(np.float64) / np.iinfo(rgb.dtype).max
    else:
        rgb = rgb.astype(np.float64)
    if not np.isfinite(rgb).all():
        raise ValueError("`image` must not contain NaN or infinity")
    return np.clip(rgb, 0.0, 1.0)


def _import_colour():
    """Import colour-science quietly; ``import_optional`` names the extra when it is missing and drops
    the MagicMock stand-ins colour registers for an absent matplotlib."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_optional("colour", purpose="synthetic_hyperspectral (measured spectra)")


def reflectance_library(wavelengths):
    """Measured reflectance spectra shipped with colour-science, resampled at ``wavelengths``.

    Returns
    -------
    spectra : ndarray of shape (n_spectra, n_wavelengths)
        Reflectances in [0, 1] (ColorChecker N Ohta, BabelColor average, CIE 1995 test colour samples,
        NIST CQS 9.0 samples).
    srgb : ndarray of shape (n_spectra, 3)
        Their sRGB colours under illuminant D65, clipped to [0, 1].
    """
    colour = _import_colour()
    from colour.quality.datasets.tcs import SDS_TCS
    from colour.quality.datasets.vs import SDS_VS

    sources = [colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"], colour.SDS_COLOURCHECKERS["BabelColor Average"],
               SDS_TCS["CIE 1995"], SDS_VS["NIST CQS 9.0"]]
    spectra, srgb = [], []
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    illuminant = colour.SDS_ILLUMINANTS["D65"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in sources:
            for sd in source.values():
                values = np.interp(wavelengths, sd.wavelengths, sd.values)
                spectra.append(np.clip(values, 0.0, 1.0))
                xyz = colour.sd_to_XYZ(sd, cmfs, illuminant) / 100.0
                srgb.append(np.clip(colour.XYZ_to_sRGB(xyz), 0.0, 1.0))
    return np.asarray(spectra), np.asarray(srgb)


def _iv_synthetic(shape, n_bands, n_segments, wavelength_range, shading, mixing):
    if np.ndim(shape) == 0:
        shape = (shape, shape)
    if len(shape) != 2:
        raise ValueError(f"`shape` must be an int or a pair (height, width); got {shape!r}")
    shape = tuple(check_int(s, "shape", low=8) for s in shape)
    n_bands = check_int(n_bands, "n_bands", low=3)
    n_segments = check_int(n_segments, "n_segments", low=1)
    if len(wavelength_range) != 2:
        raise ValueError(f"`wavelength_range` must be a pair (low, high) in nm; got {wavelength_range!r}")
    low = check_float(wavelength_range[0], "wavelength_range", low=360.0, high=830.0)
    high = check_float(wavelength_range[1], "wavelength_range", low=360.0, high=830.0)
    if not low < high:
        raise ValueError(f"`wavelength_range` must satisfy low < high; got {wavelength_range!r}")
    shading = check_float(shading, "shading", low=0.0, high=1.0)
    mixing = check_float(mixing, "mixing", low=0.0, high=1.0)
    return shape, n_bands, n_segments, (low, high), shading, mixing


def synthetic_hyperspectral(image="astronaut", shape=(64, 64), *, n_bands=31, n_segments=60,
                            wavelength_range=(400.0, 700.0), shading=0.7, mixing=0.3, rng=None):
    """A labelled synthetic hyperspectral cube: an image's segments painted with real reflectance spectra.

    The photograph is resized to ``shape`` and segmented with SLIC; each segment gets the measured
    reflectance spectrum (colour-science) whose sRGB colour under D65 is nearest to the segment's mean
    colour, mixed with a random second spectrum with weight up to ``mixing`` (so that neighbouring segments
    differ). Each pixel's spectrum is scaled by a shading factor taken from the photograph's luminance
    relative to its segment's mean, which keeps the photograph's texture and edges. The cube is divided by
    its maximum.

    Parameters
    ----------
    image : str or array-like, default="astronaut"
        A bundled image name (scikit-image: ``"astronaut"``, ``"coffee"``, ``"chelsea"``, ``"rocket"``,
        ``"hubble_deep_field"``, ``"immunohistochemistry"``, ``"retina"``, ``"colorwheel"``, ``"camera"``,
        ``"moon"``, ``"coins"``, ``"brick"``, ``"grass"``, ``"gravel"``; scikit-learn: ``"china.jpg"``,
        ``"flower.jpg"``) or an RGB/grey image array.
    shape : int or (int, int), default=(64, 64)
        Spatial size (height, width) of the cube.
    n_bands : int, default=31
        Number of bands, equally spaced over ``wavelength_range``.
    n_segments : int, default=60
        Approximate number of SLIC segments.
    wavelength_range : (float, float), default=(400.0, 700.0)
        First and last band centre in nm, inside [360, 830].
    shading : float, default=0.7
        Strength of the luminance shading in [0, 1] (0: flat segments).
    mixing : float, default=0.3
        Largest weight of the random second spectrum mixed into each segment's spectrum, in [0, 1].
    rng : None, int or numpy.random.Generator, default=None
        Seed for the spectrum mixing.

    Returns
    -------
    HyperspectralCube
        ``(cube, labels, spectra, wavelengths)``; see :class:`HyperspectralCube`.

    Raises
    ------
    ValueError
        On an unknown image name or out-of-range argument.
    ImportError
        When scikit-image or colour-science is missing (``pip install "lowrank[data]"``).

    References
    ----------
    .. [1] Pang et al., "HIR-Diff: Unsupervised Hyperspectral Image Restoration Via Improved Diffusion
       Models", CVPR 2024, arXiv:2402.15865 (evaluates on 31-band 400-700 nm cubes such as CAVE/ICVL).
    .. [2] Achanta et al., "SLIC Superpixels Compared to State-of-the-Art Superpixel Methods", IEEE TPAMI 2012.

    Examples
    --------
    >>> from lowrank.datasets import synthetic_hyperspectral
    >>> cube, labels, spectra, wavelengths = synthetic_hyperspectral(shape=32, rng=0)
    >>> cube.shape, float(cube.max()), wavelengths[[0, -1]].tolist()
    ((32, 32, 31), 1.0, [400.0, 700.0])
    """
    shape, n_bands, n_segments, (low, high), shading, mixing = _iv_synthetic(
        shape, n_bands, n_segments, wavelength_range, shading, mixing)
    rgb = _load_image(image)
    generator = as_generator(rng)
    transform = import_optional("skimage.transform", purpose="synthetic_hyperspectral")
    segmentation = import_optional("skimage.segmentation", purpose="synthetic_hyperspectral")

    # Crop to the target aspect ratio (centred), then resize with anti-aliasing.
    h, w = rgb.shape[:2]
    target = shape[0] / shape[1]
    if h / w > target:
        ch = max(1, int(round(w * target)))
        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
    else:
        cw = max(1, int(round(h / target)))
        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
    rgb = transform.resize(rgb, shape, anti_aliasing=True)
    labels = segmentation.slic(rgb, n_segments=n_segments, compactness=10.0, start_label=0, channel_axis=-1)
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(shape)
    n_labels = int(labels.max()) + 1

    wavelengths = np.linspace(low, high, n_bands)
    library, library_rgb = reflectance_library(wavelengths)
    counts = np.bincount(labels.ravel(), minlength=n_labels)
    mean_rgb = np.stack([np.bincount(labels.ravel(), weights=rgb[..., c].ravel(), minlength=n_labels)
                         for c in range(3)], axis=1) / counts[:, None]
    nearest = np.argmin(((mean_rgb[:, None, :] - library_rgb[None]) ** 2).sum(-1), axis=1)
    other = generator.integers(0, len(library), size=n_labels)
    weight = generator.uniform(0.0, mixing, size=n_labels)[:, None]
    spectra = (1.0 - weight) * library[nearest] + weight * library[other]

    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    seg_mean = (np.bincount(labels.ravel(), weights=luminance.ravel(), minlength=n_labels) / counts)[labels]
    ratio = (luminance + 0.02) / (seg_mean + 0.02)
    shade = (1.0 - shading) + shading * np.clip(ratio, 0.0, 2.5)
    # Brightness of the segment itself also follows the photograph, not only the spectrum's albedo.
    albedo = np.clip((seg_mean + 0.05) / (spectra @ np.ones(n_bands) / n_bands + 0.05)[labels], 0.2, 3.0)
    cube = spectra[labels] * (shade * albedo)[..., None]
    cube = cube / cube.max()
    return HyperspectralCube(cube, labels, spectra, wavelengths)


# ---------------------------------------------------------------------------------------------- loading

_ENVI_DTYPES = {1: np.uint8, 2: np.int16, 3: np.int32, 4: np.float32, 5: np.float64, 12: np.uint16,
                13: np.uint32, 14: np.int64, 15: np.uint64}


def _parse_envi_header(path):
    text = Path(path).read_text(errors="replace")
    if not text.lstrip().upper().startswith("ENVI"):
        raise ValueError(f"{path} is not an ENVI header (it must start with 'ENVI')")
    fields, key, buffer = {}, None, None
    for line in text.splitlines()[1:]:
        if buffer is not None:
            buffer += " " + line.strip()
            if "}" in line:
                fields[key] = buffer.strip()
                buffer = None
            continue
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        key = key.lower()
        if value.startswith("{") and "}" not in value:
            buffer = value
        else:
            fields[key] = value
    return fields


def _envi_list(value):
    return [v.strip() for v in value.strip().lstrip("{").rstrip("}").split(",") if v.strip()]


def _load_envi(header_path, data_path=None):
    fields = _parse_envi_header(header_path)
    try:
        samples, lines, bands = (int(fields[k]) for k in ("samples", "lines", "bands"))
        dtype = np.dtype(_ENVI_DTYPES[int(fields["data type"])])
    except KeyError as exc:
        raise ValueError(f"ENVI header {header_path} lacks or has an unsupported field: {exc}") from None
    interleave = fields.get("interleave", "bsq").lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise ValueError(f"ENVI interleave must be bsq, bil or bip; got {interleave!r}")
    dtype = dtype.newbyteorder(">" if int(fields.get("byte order", "0")) == 1 else "<")
    offset = int(fields.get("header offset", "0"))
    if data_path is None:
        stem = Path(header_path).with_suffix("")
        candidates = [stem] + [stem.with_suffix(s) for s in (".img", ".dat", ".raw", ".bsq", ".bil", ".bip")]
        data_path = next((c for c in candidates if c.is_file()), None)
        if data_path is None:
            raise FileNotFoundError(f"no ENVI data file found beside {header_path}")
    raw = np.fromfile(data_path, dtype=dtype, offset=offset, count=samples * lines * bands)
    if raw.size != samples * lines * bands:
        raise ValueError(f"{data_path} holds {raw.size} values; the header says {samples * lines * bands}")
    order = {"bsq": (bands, lines, samples), "bil": (lines, bands, samples), "bip": (lines, samples, bands)}
    axes = {"bsq": (1, 2, 0), "bil": (0, 2, 1), "bip": (0, 1, 2)}
    cube = raw.reshape(order[interleave]).transpose(axes[interleave])
    wavelengths = None
    if "wavelength" in fields:
        wavelengths = np.array([float(v) for v in _envi_list(fields["wavelength"])])
    return cube, wavelengths


def _load_mat(path, key):
    try:
        from scipy.io import loadmat

        data = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        h5py = import_optional("h5py", purpose="reading MATLAB v7.3 (HDF5) .mat files")
        with h5py.File(path, "r") as f:
            # HDF5 stores MATLAB arrays transposed.
            data = {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}
    return _pick(data, key, path)


def _pick(data, key, path):
    if key is not None:
        if key not in data:
            raise KeyError(f"`key` {key!r} not in {path}; it holds {sorted(data)}")
        return np.asarray(data[key])
    cubes = {k: np.asarray(v) for k, v in data.items() if np.ndim(v) == 3}
    if len(cubes) != 1:
        raise ValueError(f"{path} holds {len(cubes)} 3-D arrays ({sorted(cubes)}); name one with `key`")
    return next(iter(cubes.values()))


def load_hyperspectral(path, *, key=None, bands_last=None):
    """Load a hyperspectral cube from a local file (no download).

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` / ``.npz`` array, a MATLAB ``.mat`` file (v7.3 HDF5 files need h5py) or an ENVI header
        ``.hdr`` (the binary beside it, same stem, is read; bsq/bil/bip interleave, either byte order).
    key : str, optional
        The variable to read from a ``.npz``/``.mat`` file holding several 3-D arrays (ICVL files use
        ``"rad"``, CAVE conversions often ``"hsi"``).
    bands_last : bool, optional
        Whether the array is (height, width, bands). ``None`` guesses: (bands, height, width) when the
        first axis is strictly the smallest, else bands last. ENVI files are always returned
        (lines, samples, bands).

    Returns
    -------
    cube : ndarray of shape (height, width, n_bands)
        The cube as float64 (float32 kept), bands last.
    wavelengths : ndarray of shape (n_bands,) or None
        Band centres from an ENVI header's ``wavelength`` field, else None.

    Raises
    ------
    FileNotFoundError
        When ``path`` (or the ENVI data file) does not exist.
    ValueError
        On an unknown extension, no or several candidate arrays, a non-3-D array, or NaN/inf values.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from lowrank.datasets import load_hyperspectral
    >>> path = os.path.join(tempfile.mkdtemp(), "cube.npy")
    >>> np.save(path, np.zeros((31, 64, 48)))
    >>> load_hyperspectral(path)[0].shape
    (64, 48, 31)
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    wavelengths = None
    if suffix == ".npy":
        cube = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            cube = _pick({k: data[k] for k in data.files}, key, path)
    elif suffix == ".mat":
        cube = _load_mat(path, key)
    elif suffix == ".hdr":
        cube, wavelengths = _load_envi(path)
        bands_last = True
    else:
        raise ValueError(f"`path` must end in .npy, .npz, .mat or .hdr; got {path.name!r}")
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"a hyperspectral cube must be 3-D; {path.name} holds shape {cube.shape}")
    if cube.dtype.kind not in "biuf":
        raise ValueError(f"a hyperspectral cube must hold real numbers; got dtype {cube.dtype}")
    if bands_last is None:
        bands_last = not cube.shape[0] < min(cube.shape[1:])
    if not bands_last:
        cube = np.moveaxis(cube, 0, -1)
    cube = cube.astype(np.float32 if cube.dtype == np.float32 else np.float64)
    if not np.isfinite(cube).all():
        raise ValueError(f"{path.name} contains NaN or infinity")
    return np.ascontiguousarray(cube), wavelengths
