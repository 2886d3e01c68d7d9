"""`lowrank hsi-restore` and `lowrank train-prior` through lowrank.cli.main."""

import numpy as np
import pytest

pytest.importorskip("torch")

from lowrank.cli import main  # noqa: E402
from lowrank.vision.metrics_hsi import psnr  # noqa: E402


def _cube():
    yy, xx = np.mgrid[:24, :24] / 24
    regions = np.stack([xx < 0.5, xx >= 0.5], axis=-1).astype(float)
    spectra = np.stack([np.linspace(0.2, 0.9, 16), np.linspace(0.8, 0.3, 16)])
    return (regions * (0.8 + 0.2 * yy[..., None])) @ spectra


def test_hsi_restore_writes_a_better_cube(tmp_path, capsys):
    clean = _cube()
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    np.save(tmp_path / "noisy.npy", noisy)
    np.save(tmp_path / "clean.npy", clean)
    code = main(["hsi-restore", str(tmp_path / "noisy.npy"), "--prior", "tv", "--steps", "4",
                 "--device", "cpu", "--reference", str(tmp_path / "clean.npy")])
    assert code == 0
    out = capsys.readouterr().out
    assert "PSNR" in out and "SAM" in out
    restored = np.load(tmp_path / "noisy_restored.npy")
    assert psnr(restored, clean, data_range=1) > psnr(noisy, clean, data_range=1) + 5


def test_hsi_restore_reports_bad_input(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    assert main(["hsi-restore", str(tmp_path / "flat.npy"), "--prior", "tv"]) == 2
    assert "3-D" in capsys.readouterr().err


def test_train_prior_writes_loadable_weights(tmp_path, capsys):
    from lowrank.vision.prior import load_unet

    img = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    np.savez(tmp_path / "imgs.npz", a=img)
    code = main(["train-prior", "--out", str(tmp_path / "w.npz"), "--images", str(tmp_path / "imgs.npz"),
                 "--steps", "2", "--crop", "16", "--batch-size", "2", "--channels", "8", "--device", "cpu"])
    assert code == 0 and "weights written" in capsys.readouterr().out
    assert load_unet(tmp_path / "w.npz").config["channels"] == 8


def test_help_mentions_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["hsi-restore", "--help"])
    assert "HIR-Diff" in capsys.readouterr().out
