"""Procedural dSprites-like images with known factors of variation (shape, scale, rotation, position, colour).

Made by the package (nothing is downloaded): each image is one anti-aliased shape on a black
background, rendered from a signed distance in the shape's own frame, so every factor value maps
to exactly one image and disentanglement scores (MIG, DCI) can be computed against the truth.
"""

import numpy as np

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_int

__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "ProceduralShapes", "procedural_shapes", "render_shapes"]

FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y", "colour")
FACTOR_SIZES = (3, 4, 6, 8, 8, 4)
SHAPES = ("square", "ellipse", "triangle")
_SCALES = np.linspace(0.2, 0.38, FACTOR_SIZES[1])
# Rotations over a quarter turn: distinct images for every shape (the square has 4-fold symmetry).
_ROTATIONS = np.linspace(0.0, np.pi / 2, FACTOR_SIZES[2], endpoint=False)
_POSITIONS = np.linspace(-0.55, 0.55, FACTOR_SIZES[3])
_COLOURS = np.array([[1.0, 0.25, 0.2], [0.25, 0.9, 0.3], [0.3, 0.45, 1.0], [1.0, 0.85, 0.2]])


class ProceduralShapes:
    """Images and the integer factor values that generated them.

    Unpacks like a tuple: ``images, factors = data``.

    Attributes
    ----------
    images : ndarray, shape (n_samples, 3, image_size, image_size), float32
        RGB images in ``[0, 1]`` (channels first, as torch expects).
    factors : ndarray, shape (n_samples, 6), int64
        Factor indices, columns in the order of ``factor_names``.
    factor_names : tuple of str
        ``("shape", "scale", "rotation", "pos_x", "pos_y", "colour")``.
    factor_sizes : tuple of int
        Number of values of each factor: ``(3, 4, 6, 8, 8, 4)``.
    """

    def __init__(self, images, factors):
        self.images = images
        self.factors = factors
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = FACTOR_SIZES

    def __iter__(self):
        return iter((self.images, self.factors))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.images, self.factors)[index]

    def __repr__(self):
        n, _, s, _ = self.images.shape
        return f"ProceduralShapes(n_samples={n}, image_size={s}, factors={dict(zip(FACTOR_NAMES, FACTOR_SIZES))})"


def procedural_shapes(n_samples=10000, *, image_size=32, rng=None):
    """Random dSprites-like images with known factors (shape, scale, rotation, x, y, colour).

    Each factor index is drawn uniformly and independently; the image is rendered by
    :func:`render_shapes`. There are ``3 * 4 * 6 * 8 * 8 * 4 = 18432`` distinct images.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of images (``>= 1``).
    image_size : int, default=32
        Side in pixels (``>= 8``).
    rng : None, int or numpy.random.Generator, default=None
        Seeds the factor draws.

    Returns
    -------
    ProceduralShapes
        ``(images, factors)``; see the class for shapes.

    Raises
    ------
    TypeError, ValueError
        If ``n_samples`` or ``image_size`` is not an integer in range.

    References
    ----------
    .. [1] L. Matthey, I. Higgins, D. Hassabis and A. Lerchner, "dSprites: Disentanglement testing
       Sprites dataset", 2017 (the design followed here, with colour added).

    Examples
    --------
    >>> from lowrank.datasets import procedural_shapes
    >>> images, factors = procedural_shapes(5, image_size=16, rng=0)
    >>> images.shape, factors.shape
    ((5, 3, 16, 16), (5, 6))
    >>> bool(images.min() >= 0 and images.max() <= 1)
    True
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    image_size = check_int(image_size, "image_size", low=8)
    gen = as_generator(rng)
    factors = np.stack([gen.integers(0, size, n_samples) for size in FACTOR_SIZES], axis=1).astype(np.int64)
    return ProceduralShapes(_render(factors, image_size), factors)


def render_shapes(factors, *, image_size=32):
    """Render the images of given factor indices (columns as in ``FACTOR_NAMES``).

    Parameters
    ----------
    factors : array-like of int, shape (n, 6) or (6,)
        Factor indices, each within ``FACTOR_SIZES``.
    image_size : int, default=32
        Side in pixels (``>= 8``).

    Returns
    -------
    ndarray, shape (n, 3, image_size, image_size), float32

    Raises
    ------
    ValueError
        If a factor index is out of range or the shape is wrong.

    Examples
    --------
    >>> from lowrank.datasets.shapes import render_shapes
    >>> img = render_shapes([0, 3, 0, 4, 4, 2], image_size=16)
    >>> img.shape, bool(img[0, 2].max() > 0.9)
    ((1, 3, 16, 16), True)
    """
    image_size = check_int(image_size, "image_size", low=8)
    f = np.asarray(factors)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES) or f.dtype.kind not in "iu":
        raise ValueError(f"`factors` must be integers of shape (n, {len(FACTOR_SIZES)}), got {f.shape} {f.dtype}")
    if (f < 0).any() or (f >= np.array(FACTOR_SIZES)).any():
        raise ValueError(f"`factors` out of range: column j must lie in [0, {FACTOR_SIZES}[j])")
    return _render(f.astype(np.int64), image_size)


def _render(factors, image_size, chunk=2048):
    n = factors.shape[0]
    out = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    centers = (np.arange(image_size) + 0.5) * (2.0 / image_size) - 1.0
    gx, gy = np.meshgrid(centers, -centers)  # y axis points up
    pixel = 2.0 / image_size
    for start in range(0, n, chunk):
        f = factors[start : start + chunk]
        shape, scale = f[:, 0], _SCALES[f[:, 1]][:, None, None]
        theta = _ROTATIONS[f[:, 2]][:, None, None]
        x0, y0 = _POSITIONS[f[:, 3]][:, None, None], _POSITIONS[f[:, 4]][:, None, None]
        dx, dy = gx[None] - x0, gy[None] - y0
        c, s = np.cos(theta), np.sin(theta)
        u, v = (c * dx + s * dy) / scale, (-s * dx + c * dy) / scale  # shape frame, unit size
        sd = np.empty_like(u)
        sq, el, tr = shape == 0, shape == 1, shape == 2
        sd[sq] = np.maximum(np.abs(u[sq]), np.abs(v[sq])) - 0.8
        sd[el] = np.sqrt(u[el] ** 2 + (v[el] / 0.55) ** 2) - 1.0
        normals = np.array([[0.0, 1.0], [-np.sqrt(3) / 2, -0.5], [np.sqrt(3) / 2, -0.5]])
        sd[tr] = np.max([nx * u[tr] + ny * v[tr] for nx, ny in normals], axis=0) - 0.5
        # Coverage from the signed distance in pixels: a one-pixel anti-aliased edge.
        alpha = np.clip(0.5 - sd * scale / pixel, 0.0, 1.0)
        colour = _COLOURS[f[:, 5]]
        out[start : start + chunk] = (alpha[:, None] * colour[:, :, None, None]).astype(np.float32)
    return out
