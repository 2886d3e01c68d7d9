"""The ``decompose`` and ``funbat`` subcommands and the tensor demo rows."""

import numpy as np
import pytest

pytest.importorskip("tensorly")

from lowrank._utils.io import load_npz  # noqa: E402
from lowrank.cli import main  # noqa: E402
from lowrank.datasets import continuous_tensor  # noqa: E402


@pytest.mark.parametrize("method", ["tucker", "cp", "tt"])
def test_decompose_saves_factors_that_rebuild_the_tensor(tmp_path, capsys, method):
    import tensorly as tl

    rng = np.random.default_rng(0)
    X = np.einsum("ir,jr,kr->ijk", *(rng.standard_normal((n, 2)) for n in (6, 7, 8)))
    X[0, 0, 0] = np.nan  # a missing entry goes through mask=
    np.save(tmp_path / "x.npy", X)
    assert main(["decompose", str(tmp_path / "x.npy"), "--method", method, "--rank", "2", "-o", str(tmp_path / "f.npz")]) == 0
    assert "relative error" in capsys.readouterr().out
    arrays, meta = load_npz(tmp_path / "f.npz", kind=f"lowrank.tensors.{method}")
    factors = [arrays[f"factor_{i}"] for i in range(3)]
    if method == "tucker":
        R = tl.tucker_to_tensor((arrays["core"], factors))
    elif method == "cp":
        R = tl.cp_to_tensor((arrays["weights"], factors))
    else:
        R = tl.tt_to_tensor(factors)
    obs = np.isfinite(X)
    assert np.linalg.norm((R - X)[obs]) / np.linalg.norm(X[obs]) < 1e-3
    assert meta["shape"] == [6, 7, 8]


def test_funbat_subcommand_reports_heldout_metrics(tmp_path, capsys):
    data = continuous_tensor(200, rng=0)
    np.save(tmp_path / "e.npy", np.column_stack([data.coords, data.values]))
    np.save(tmp_path / "new.npy", np.array([[0.2, 0.3], [0.6, 0.1]]))
    argv = ["funbat", str(tmp_path / "e.npy"), "--rank", "1", "--core", "cp", "--epochs", "10",
            "--predict", str(tmp_path / "new.npy"), "-o", str(tmp_path / "pred.npy")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out" in out and "RMSE" in out
    pred = np.load(tmp_path / "pred.npy")
    assert pred.shape == (2, 2) and (pred[:, 1] > 0).all()
    np.testing.assert_allclose(pred[:, 0], data.function(np.array([[0.2, 0.3], [0.6, 0.1]])), atol=0.05)


def test_help_and_demo_rows(capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's exit after --help, status 0
        main(["decompose", "--help"])
    assert exit_info.value.code == 0
    assert "usage: lowrank decompose" in capsys.readouterr().out
    from lowrank.cli.tensors import demo

    rows = demo()
    assert len(rows) == 3
    assert all(row.seconds >= 0 for row in rows)
