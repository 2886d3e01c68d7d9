"""Procedural shapes: every factor shows up in the image as its analytic geometry says."""

import math

import numpy as np
import pytest

from lowrank.datasets import procedural_shapes
from lowrank.datasets.shapes import _COLOURS, _POSITIONS, _ROTATIONS, _SCALES, FACTOR_SIZES, render_shapes

S = 64
PIXEL = 2.0 / S


def _moments(alpha):
    centers = (np.arange(S) + 0.5) * PIXEL - 1.0
    gx, gy = np.meshgrid(centers, -centers)
    m = alpha.sum()
    cx, cy = (alpha * gx).sum() / m, (alpha * gy).sum() / m
    cov = np.array([[(alpha * (gx - cx) ** 2).sum(), (alpha * (gx - cx) * (gy - cy)).sum()],
                    [(alpha * (gx - cx) * (gy - cy)).sum(), (alpha * (gy - cy) ** 2).sum()]]) / m
    return m * PIXEL**2, cx, cy, cov


def test_shapes_are_deterministic_and_in_range():
    a = procedural_shapes(50, image_size=16, rng=3)
    b = procedural_shapes(50, image_size=16, rng=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.dtype == np.float32 and a.images.min() >= 0 and a.images.max() <= 1
    assert np.all(a.factors >= 0) and np.all(a.factors < np.array(FACTOR_SIZES))
    images, factors = a
    np.testing.assert_array_equal(images, render_shapes(factors, image_size=16))


@pytest.mark.parametrize("shape,area", [(0, lambda r: (1.6 * r) ** 2), (1, lambda r: math.pi * 0.55 * r * r),
                                        (2, lambda r: 3 * math.sqrt(3) * (0.5 * r) ** 2)])
def test_area_and_centroid_follow_scale_and_position(shape, area):
    for scale in (0, 3):
        f = np.array([shape, scale, 0, 2, 5, 0])
        img = render_shapes(f, image_size=S)[0]
        alpha = img[0] / _COLOURS[0, 0]
        m, cx, cy, _ = _moments(alpha)
        assert m == pytest.approx(area(_SCALES[scale]), rel=0.04)
        if shape != 2:  # the triangle's centroid is its incentre as well, but check the symmetric ones tightly
            assert cx == pytest.approx(_POSITIONS[2], abs=0.1 * PIXEL)
            assert cy == pytest.approx(_POSITIONS[5], abs=0.1 * PIXEL)
        else:
            assert math.hypot(cx - _POSITIONS[2], cy - _POSITIONS[5]) < 0.5 * PIXEL


def test_rotation_turns_the_ellipse_major_axis():
    for rot in range(FACTOR_SIZES[2]):
        img = render_shapes(np.array([1, 3, rot, 4, 4, 1]), image_size=S)[0]
        _, _, _, cov = _moments(img[1] / _COLOURS[1, 1])
        evals, evecs = np.linalg.eigh(cov)
        major = evecs[:, 1]
        angle = math.atan2(major[1], major[0]) % math.pi
        diff = min(abs(angle - _ROTATIONS[rot]), math.pi - abs(angle - _ROTATIONS[rot]))
        assert diff < 0.03
        assert evals[1] / evals[0] == pytest.approx(1 / 0.55**2, rel=0.1)


def test_colour_factor_sets_the_rgb_ratio():
    for colour in range(FACTOR_SIZES[5]):
        img = render_shapes(np.array([0, 3, 0, 4, 4, colour]), image_size=S)[0]
        inside = img[:, S // 2, S // 2]  # the centre pixel is fully covered
        np.testing.assert_allclose(inside, _COLOURS[colour], atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="image_size"):
        procedural_shapes(5, image_size=4)
    with pytest.raises(TypeError, match="n_samples"):
        procedural_shapes(2.5)
    with pytest.raises(ValueError, match="out of range"):
        render_shapes(np.array([3, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        render_shapes(np.zeros((2, 5), dtype=int))
