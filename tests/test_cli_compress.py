"""``lowrank compress``: end to end in-process on a tiny saved MLP.

The written model must compute exactly what ``lowrank.nn.compress`` returns when called directly
with the same arguments (the reference), the JSON report must carry the same per-layer numbers, and
user errors must give exit status 2 with one ``error:`` line and no traceback.
"""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.cli import main  # noqa: E402
from lowrank.nn import compress, list_compressors  # noqa: E402


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
    x = torch.randn(200, 3) @ torch.randn(3, 6) + 0.05 * torch.randn(200, 6)  # near a 3-D subspace
    y = torch.randint(0, 4, (200,))
    torch.save(model, tmp_path / "m.pt")
    torch.save(x, tmp_path / "x.pt")
    torch.save((x, y), tmp_path / "xy.pt")
    np.savez(tmp_path / "x.npz", inputs=x.double().numpy())  # float64 on disk: cast to the model's float32
    return tmp_path, model, x, y


def _outputs_equal(path, reference, x):
    loaded = torch.load(path, weights_only=False)
    with torch.no_grad():
        return torch.equal(loaded(x), reference(x))


@pytest.mark.parametrize("argv, method, calib, kwargs", [
    (["--method", "svd", "--rank", "3"], "svd", None, dict(rank=3)),
    (["--method", "afm", "--budget", "0.5", "--targets", "0"], "afm", "x.pt", dict(budget=0.5, targets=["0"])),
    (["--method", "afm", "--energy", "0.95"], "afm", "x.npz", dict(energy=0.95)),
    (["--method", "fwsvd", "--rank", "2", "--option", "floor=0.01"], "fwsvd", "xy.pt", dict(rank=2, floor=0.01)),
    (["--method", "svd", "--budget", "0.6", "--budget-metric", "flops"], "svd", None,
     dict(budget=0.6, budget_metric="flops")),
])
def test_written_model_equals_direct_compress(saved, capsys, argv, method, calib, kwargs):
    tmp, model, x, y = saved
    files = [str(tmp / "m.pt")] + ([str(tmp / calib)] if calib else [])
    out, rep = tmp / "small.pt", tmp / "report.json"
    assert main(["compress", *files, *argv, "--out", str(out), "--report", str(rep), "--quiet"]) == 0
    calibration = None if calib is None else (x, y) if method == "fwsvd" else x
    reference, report = compress(model, method, calibration, **kwargs)
    assert report.model_params_after < report.model_params_before  # something was compressed
    x_test = torch.randn(50, 6)
    assert _outputs_equal(out, reference, x_test)
    printed = capsys.readouterr().out
    assert str(report) in printed
    data = json.loads(rep.read_text())
    assert data["method"] == method
    assert [(r["name"], r["rank"], r["params_after"]) for r in data["layers"]] == \
        [(r.name, r.rank, r.params_after) for r in report.layers]
    assert data["model_params_after"] == report.model_params_after
    assert data["compression_ratio"] == pytest.approx(report.compression_ratio)
    assert sorted(os.listdir(tmp)) == sorted({"m.pt", "x.pt", "xy.pt", "x.npz", "small.pt", "report.json"})


def test_default_output_path_and_ctr_compress_still_registered(saved):
    tmp, model, x, _ = saved
    assert main(["compress", str(tmp / "m.pt"), "--method", "svd", "--rank", "2", "-q"]) == 0
    reference, _ = compress(model, "svd", rank=2)
    assert _outputs_equal(tmp / "m.svd.pt", reference, x)
    from lowrank.cli import build_parser

    assert {"compress", "ctr-compress"} <= set(build_parser()._subparsers._group_actions[0].choices)


def _error_line(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_user_errors_exit_2_with_one_line(saved, capsys):
    tmp, *_ = saved
    m, x = str(tmp / "m.pt"), str(tmp / "x.pt")
    torch.save({"weight": torch.ones(2)}, tmp / "state.pt")
    (tmp / "garbage.pt").write_bytes(b"not a pickle at all")
    torch.save(torch.randn(20, 5), tmp / "x5.pt")  # the model takes 6 features
    line = _error_line(capsys, ["compress", str(tmp / "missing.pt"), x, "--method", "afm", "--rank", "2"])
    assert "argument MODEL" in line and "missing.pt" in line
    line = _error_line(capsys, ["compress", m, x, "--method", "nope", "--rank", "2"])
    assert "argument --method" in line and all(name in line for name in list_compressors())
    line = _error_line(capsys, ["compress", str(tmp / "state.pt"), x, "--method", "afm", "--rank", "2"])
    assert "argument MODEL" in line and "dict" in line and "torch.nn.Module" in line
    line = _error_line(capsys, ["compress", str(tmp / "garbage.pt"), x, "--method", "afm", "--rank", "2"])
    assert "argument MODEL" in line
    line = _error_line(capsys, ["compress", m, str(tmp / "x5.pt"), "--method", "afm", "--rank", "2"])
    assert "argument CALIB" in line and "x5.pt" in line
    line = _error_line(capsys, ["compress", m, "--method", "afm", "--rank", "2"])
    assert "argument CALIB" in line
    line = _error_line(capsys, ["compress", m, x, "--method", "svd", "--rank", "2"])
    assert "argument CALIB" in line
    line = _error_line(capsys, ["compress", m, x, "--method", "afm", "--rank", "2", "--option", "floor"])
    assert "argument --option" in line
    line = _error_line(capsys, ["compress", m, x, "--method", "afm"])
    assert "--rank" in line
    assert not (tmp / "m.afm.pt").exists() and not (tmp / "m.svd.pt").exists()
