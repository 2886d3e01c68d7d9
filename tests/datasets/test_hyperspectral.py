"""Synthetic hyperspectral cubes (planted ground truth) and the file loader (round trips)."""

import numpy as np
import pytest
import scipy.io

from lowrank.datasets import load_hyperspectral


@pytest.fixture(scope="module")
def synthetic():
    pytest.importorskip("skimage")
    pytest.importorskip("colour")
    from lowrank.datasets import synthetic_hyperspectral

    return synthetic_hyperspectral("coffee", (40, 48), n_segments=30, rng=0)


def test_synthetic_cube_is_planted_spectra_times_shading(synthetic):
    cube, labels, spectra, wavelengths = synthetic
    assert cube.shape == (40, 48, 31) and labels.shape == (40, 48)
    assert cube.max() == pytest.approx(1.0) and cube.min() >= 0
    np.testing.assert_allclose(wavelengths, np.arange(400, 701, 10))
    # every pixel spectrum is a non-negative multiple of its segment's planted spectrum
    planted = spectra[labels]
    ratio = (cube * planted).sum(-1) / (planted * planted).sum(-1)
    np.testing.assert_allclose(cube, ratio[..., None] * planted, atol=1e-12)
    assert (ratio > 0).all()
    assert set(np.unique(labels)) == set(range(len(spectra)))


def test_synthetic_spectra_are_measured_reflectances(synthetic):
    from lowrank.datasets.hyperspectral import reflectance_library

    library, srgb = reflectance_library(synthetic.wavelengths)
    assert library.shape[0] >= 70 and library.min() >= 0 and library.max() <= 1
    # ColorChecker "dark skin" at 400 nm reflects about 5%; "white" about 90% in the middle of the range
    assert 0.02 < library[0, 0] < 0.08
    assert srgb.min() >= 0 and srgb.max() <= 1
    # each painted spectrum is within the library's convex hull of two spectra: a mix of library rows
    coef, residual, *_ = np.linalg.lstsq(library.T, synthetic.spectra.T, rcond=None)
    assert np.abs(library.T @ coef - synthetic.spectra.T).max() < 1e-8


def test_synthetic_cube_has_low_spectral_rank_and_is_deterministic(synthetic):
    from lowrank.datasets import synthetic_hyperspectral

    s = np.linalg.svd(synthetic.cube.reshape(-1, 31), compute_uv=False)
    assert (s[:3] ** 2).sum() / (s**2).sum() > 0.99
    again = synthetic_hyperspectral("coffee", (40, 48), n_segments=30, rng=0)
    np.testing.assert_array_equal(again.cube, synthetic.cube)


def test_synthetic_argument_errors():
    pytest.importorskip("skimage")
    from lowrank.datasets import synthetic_hyperspectral

    with pytest.raises(ValueError, match="image"):
        synthetic_hyperspectral("no-such-image")
    with pytest.raises(ValueError, match="n_bands"):
        synthetic_hyperspectral(n_bands=2)
    with pytest.raises(ValueError, match="wavelength_range"):
        synthetic_hyperspectral(wavelength_range=(700, 400))


def test_load_npy_moves_the_band_axis_last(tmp_path, rng):
    cube = rng.random((31, 40, 44))
    np.save(tmp_path / "c.npy", cube)
    out, wavelengths = load_hyperspectral(tmp_path / "c.npy")
    np.testing.assert_array_equal(out, np.moveaxis(cube, 0, -1))
    assert wavelengths is None
    out, _ = load_hyperspectral(tmp_path / "c.npy", bands_last=True)
    np.testing.assert_array_equal(out, cube)
    np.save(tmp_path / "d.npy", np.moveaxis(cube, 0, -1))
    np.testing.assert_array_equal(load_hyperspectral(tmp_path / "d.npy")[0], np.moveaxis(cube, 0, -1))


def test_load_mat_and_npz_pick_the_named_cube(tmp_path, rng):
    cube = rng.random((40, 44, 31))
    scipy.io.savemat(tmp_path / "c.mat", {"rad": cube, "rgb": rng.random((40, 44, 3))})
    with pytest.raises(ValueError, match="name one with `key`"):
        load_hyperspectral(tmp_path / "c.mat")
    np.testing.assert_array_equal(load_hyperspectral(tmp_path / "c.mat", key="rad")[0], cube)
    np.savez(tmp_path / "c.npz", hsi=cube)
    np.testing.assert_array_equal(load_hyperspectral(tmp_path / "c.npz")[0], cube)
    with pytest.raises(KeyError, match="nope"):
        load_hyperspectral(tmp_path / "c.npz", key="nope")


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
def test_load_envi_round_trip(tmp_path, rng, interleave, byte_order):
    lines, samples, bands = 5, 7, 4
    cube = rng.integers(0, 4000, (lines, samples, bands)).astype(np.uint16)
    layout = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    raw = np.ascontiguousarray(cube.transpose(layout)).astype(">u2" if byte_order else "<u2")
    (tmp_path / "scene.img").write_bytes(raw.tobytes())
    (tmp_path / "scene.hdr").write_text(
        "ENVI\ndescription = {test}\n"
        f"samples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\n"
        f"data type = 12\ninterleave = {interleave}\nbyte order = {byte_order}\n"
        "wavelength = {\n 450.0, 550.0,\n 650.0, 750.0}\n"
    )
    out, wavelengths = load_hyperspectral(tmp_path / "scene.hdr")
    np.testing.assert_array_equal(out, cube.astype(np.float64))
    np.testing.assert_array_equal(wavelengths, [450.0, 550.0, 650.0, 750.0])


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_hyperspectral(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="must end in"):
        load_hyperspectral(tmp_path / "x.txt")
    np.save(tmp_path / "flat.npy", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="3-D"):
        load_hyperspectral(tmp_path / "flat.npy")
    np.save(tmp_path / "nan.npy", np.full((3, 3, 3), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        load_hyperspectral(tmp_path / "nan.npy")
