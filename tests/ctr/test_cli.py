import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.cli import main  # noqa: E402


def test_ctr_compress_cli(tmp_path, capsys):
    from lowrank.ctr import MLPCTR

    torch.manual_seed(0)
    model = MLPCTR([20, 30], n_dense=3, embedding_dim=8, hidden=(32, 16))
    torch.save(model, tmp_path / "m.pt")
    g = np.random.default_rng(0)
    dense = g.normal(size=(500, 3)).astype(np.float32)
    cat = np.stack([g.integers(0, 20, 500), g.integers(0, 30, 500)], axis=1)
    np.savez(tmp_path / "calib.npz", dense=dense, categorical=cat)
    assert main(["ctr-compress", str(tmp_path / "m.pt"), str(tmp_path / "calib.npz"), "--energy", "0.999999",
                 "-o", str(tmp_path / "small.pt")]) == 0
    small = torch.load(tmp_path / "small.pt", weights_only=False)
    x = (torch.as_tensor(dense), torch.as_tensor(cat))
    torch.testing.assert_close(small(*x), model(*x), rtol=1e-3, atol=1e-3)
    assert "afm:" in capsys.readouterr().out
