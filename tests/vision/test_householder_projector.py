"""HouseholderProjector, SeFa directions, traverse, and the demo pipeline / CLI."""

import json
import re
import struct
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.vision import HouseholderProjector, closed_form_directions, traverse  # noqa: E402


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("in_f,out_f,rank", [(16, 12, 5), (12, 16, 12), (64, 64, 10)])
def test_exactly_rank_unit_singular_values(dtype, tol, in_f, out_f, rank):
    torch.manual_seed(0)
    layer = HouseholderProjector(in_f, out_f, rank, dtype=dtype)
    W = layer.weight.detach().double()
    s = torch.linalg.svdvals(W)
    assert torch.all((s[:rank] - 1).abs() <= tol)
    assert torch.all(s[rank:].abs() <= tol)
    # W W^T W = W characterizes partial isometries
    assert (W @ W.T @ W - W).abs().max() <= 3 * tol


def test_directions_are_right_singular_vectors():
    torch.manual_seed(1)
    layer = HouseholderProjector(20, 15, 4, dtype=torch.float64)
    W, D = layer.weight.detach(), layer.directions()
    assert D.shape == (4, 20)
    torch.testing.assert_close(D @ D.T, torch.eye(4, dtype=torch.float64), atol=1e-12, rtol=0)
    # W^T W d = d for each direction, and the directions span W's row space
    torch.testing.assert_close(W.T @ W @ D.T, D.T, atol=1e-12, rtol=0)
    P_row = torch.linalg.pinv(W) @ W
    torch.testing.assert_close(P_row, D.T @ D, atol=1e-10, rtol=0)


def test_forward_is_linear_with_bias():
    torch.manual_seed(2)
    layer = HouseholderProjector(7, 5, 3, dtype=torch.float64)
    x = torch.randn(4, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)
    nobias = HouseholderProjector(7, 5, 3, bias=False)
    assert nobias.bias is None and nobias(torch.randn(2, 7)).shape == (2, 5)


@pytest.mark.parametrize("in_f,out_f,rank", [(10, 8, 3), (8, 10, 8), (9, 9, 9), (6, 6, 4), (1, 5, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_from_linear_is_polar_factor_of_truncated_svd(in_f, out_f, rank, seed):
    torch.manual_seed(seed)
    lin = torch.nn.Linear(in_f, out_f).double()
    W = lin.weight.detach().numpy()
    U, s, Vh = np.linalg.svd(W)
    target = U[:, :rank] @ Vh[:rank]
    if rank == in_f == out_f and np.linalg.det(target) < 0:
        with pytest.raises(ValueError, match="determinant -1"):
            HouseholderProjector.from_linear(lin, rank)
        return
    proj = HouseholderProjector.from_linear(lin, rank)
    np.testing.assert_allclose(proj.weight.detach().numpy(), target, atol=1e-12)
    # the nearest partial isometry: no other rank-k partial isometry is closer (random competitors)
    best = np.linalg.norm(W - target)
    for _ in range(5):
        q1, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((out_f, rank)))
        q2, _ = np.linalg.qr(np.random.default_rng(seed + 9).standard_normal((in_f, rank)))
        assert np.linalg.norm(W - q1 @ q2.T) >= best
    np.testing.assert_array_equal(proj.bias.detach().numpy(), lin.bias.detach().numpy())
    assert proj.weight.dtype == torch.float64


def test_from_linear_learn_scale_is_truncated_svd():
    torch.manual_seed(3)
    lin = torch.nn.Linear(12, 9, bias=False).double()
    proj = HouseholderProjector.from_linear(lin, 4, learn_scale=True)
    U, s, Vh = np.linalg.svd(lin.weight.detach().numpy())
    np.testing.assert_allclose(proj.weight.detach().numpy(), (U[:, :4] * s[:4]) @ Vh[:4], atol=1e-12)
    np.testing.assert_allclose(proj.scales().detach().numpy(), s[:4], rtol=1e-12)
    # directions ordered by decreasing singular value: the SVD's right singular vectors up to sign
    D = proj.directions().numpy()
    np.testing.assert_allclose(np.abs(np.sum(D * Vh[:4], axis=1)), 1.0, atol=1e-10)
    assert proj.bias is None


def test_training_keeps_partial_isometry_and_fits_target():
    torch.manual_seed(4)
    q1, _ = torch.linalg.qr(torch.randn(10, 3, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(8, 3, dtype=torch.float64))
    target = q1 @ q2.T
    layer = HouseholderProjector(8, 10, 3, bias=False, dtype=torch.float64)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    first = float((layer.weight - target).pow(2).sum().detach())
    for _ in range(150):
        loss = (layer.weight - target).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05 * first
    s = torch.linalg.svdvals(layer.weight.detach())
    torch.testing.assert_close(s[:3], torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_state_dict_round_trips_exactly(tmp_path):
    torch.manual_seed(9)
    layer = HouseholderProjector(9, 7, 4, learn_scale=True)
    with torch.no_grad():
        layer.log_scale.copy_(torch.randn(4))
    torch.save(layer.state_dict(), tmp_path / "proj.pt")
    clone = HouseholderProjector(9, 7, 4, learn_scale=True)
    clone.load_state_dict(torch.load(tmp_path / "proj.pt"))
    assert torch.equal(clone.weight, layer.weight) and torch.equal(clone.directions(), layer.directions())


def test_projector_bad_input():
    with pytest.raises(ValueError, match="rank"):
        HouseholderProjector(4, 3, 4)
    with pytest.raises(ValueError, match="rank"):
        HouseholderProjector(4, 3, 0)
    with pytest.raises(TypeError, match="in_features"):
        HouseholderProjector(4.0, 3, 1)
    with pytest.raises(TypeError, match="weight"):
        HouseholderProjector.from_linear(torch.nn.ReLU(), 1)
    lin = torch.nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        HouseholderProjector.from_linear(lin, 2)
    with pytest.raises(ValueError, match="rank"):
        HouseholderProjector.from_linear(torch.nn.Linear(3, 2), 3)


def test_closed_form_directions_matches_eigh():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((30, 12))
    D = closed_form_directions(W, 4)
    evals, evecs = np.linalg.eigh(W.T @ W)  # SeFa's definition: eigenvectors of W^T W
    top = evecs[:, ::-1][:, :4].T
    np.testing.assert_allclose(np.abs(np.sum(D * top, axis=1)), 1.0, atol=1e-10)
    # deterministic signs: the largest-|.| entry of each direction is positive
    assert np.all(D[np.arange(4), np.argmax(np.abs(D), axis=1)] > 0)
    Dt = closed_form_directions(torch.tensor(W, dtype=torch.float32), 4)
    assert isinstance(Dt, torch.Tensor) and Dt.dtype == torch.float32
    np.testing.assert_allclose(Dt.numpy(), D, atol=1e-5)
    lin = torch.nn.Linear(12, 30)
    np.testing.assert_allclose(closed_form_directions(lin, 2).numpy(),
                               closed_form_directions(lin.weight.detach().numpy(), 2), atol=1e-6)


def test_closed_form_directions_bad_input():
    with pytest.raises(ValueError, match="k"):
        closed_form_directions(np.ones((3, 2)), 3)
    with pytest.raises(TypeError, match="k"):
        closed_form_directions(np.ones((3, 2)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        closed_form_directions(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(TypeError, match="2-D"):
        closed_form_directions(np.ones(3), 1)


def test_traverse_linear_generator():
    A = torch.randn(5, 3)
    z = torch.randn(2, 3)
    d = torch.tensor([0.0, 1.0, 0.0])
    out = traverse(lambda x: x @ A.T, z, d, [-2.0, 0.0, 1.5])
    assert out.shape == (3, 2, 5)
    for i, t in enumerate([-2.0, 0.0, 1.5]):
        torch.testing.assert_close(out[i], (z + t * d) @ A.T)
    with pytest.raises(ValueError, match="direction"):
        traverse(lambda x: x, z, torch.ones(4), [1.0])
    with pytest.raises(ValueError, match="degrees"):
        traverse(lambda x: x, z, d, [])
    with pytest.raises(ValueError, match="degrees"):
        traverse(lambda x: x, z, d, [np.inf])
    with pytest.raises(TypeError, match="callable"):
        traverse(None, z, d, [1.0])
    with pytest.raises(TypeError, match="z"):
        traverse(lambda x: x, np.ones((2, 3)), d, [1.0])


@pytest.mark.gpu
def test_projector_on_cuda():
    torch.manual_seed(6)
    lin = torch.nn.Linear(32, 24).cuda()
    proj = HouseholderProjector.from_linear(lin, 6)
    assert proj.u_vectors.is_cuda
    s = torch.linalg.svdvals(proj.weight.detach().double())
    assert torch.all((s[:6] - 1).abs() <= 1e-5) and torch.all(s[6:] <= 1e-5)
    proj(torch.randn(8, 32, device="cuda")).sum().backward()
    assert proj.v_vectors.grad is not None


# ---------------------------------------------------------------------------- demo pipeline and CLI
def _read_png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + 3 * w)
    return h, w


def test_householder_demo_cli(tmp_path):
    from lowrank.cli import main

    rc = main(["householder-demo", "--model", "vae", "--out", str(tmp_path), "--pretrain-steps", "15", "--finetune-steps", "5",
               "--feature-steps", "5", "--n-train", "400", "--device", "cpu"])
    assert rc == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    methods = [r["method"] for r in result["rows"]]
    assert methods == ["SeFa (pre-trained)", "SeFa (fine-tuned)", "Householder projector",
                       "Householder projector (learned scales)", "latent axes (reference)"]
    for r in result["rows"]:
        assert 0 <= r["mig"] <= 1 and 0 <= r["dci_disentanglement"] <= 1 + 1e-9
        assert 0 <= r["dci_informativeness"] <= 1 and r["recon_mse"] >= 0 and np.isfinite(r["frechet"])
    pngs = sorted(tmp_path.glob("traversal_*.png"))
    assert len(pngs) == 5
    rank, image = result["config"]["rank"], result["config"]["image_size"]
    assert _read_png_size(pngs[0]) == (2 * (rank * (image + 1) + 1), 2 * (7 * (image + 1) + 1))
    assert "| method |" in (tmp_path / "metrics.md").read_text()


def test_demo_projector_stays_partial_isometry_after_finetuning():
    from lowrank.vision._shapes_vae import ShapesVAE, train_vae

    torch.manual_seed(7)
    vae = ShapesVAE(8, 4, 16).double()
    vae.style = HouseholderProjector.from_linear(vae.style, 3)
    x = torch.rand(64, 3, 8, 8, dtype=torch.float64)
    train_vae(vae, x, steps=10, batch_size=16, lr=1e-2, beta=1.0, seed=0)
    s = torch.linalg.svdvals(vae.style.weight.detach())
    torch.testing.assert_close(s[:3], torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert s[3] < 1e-12


def test_frechet_distance_gaussians():
    from lowrank.vision._shapes_vae import frechet_distance

    rng = np.random.default_rng(8)
    a = rng.standard_normal((20000, 3))
    b = 2.0 * rng.standard_normal((20000, 3)) + 1.0
    # closed form for N(0, I) vs N(1, 4I): ||1||^2 + tr(I + 4I - 2*2I) = 3 + 3
    assert abs(frechet_distance(a, b) - 6.0) < 0.15
    assert abs(frechet_distance(a, a)) < 1e-4


def test_cli_demo_rows():
    from lowrank.cli.householder import demo

    rows = demo()
    assert len(rows) == 2 and all(r.seconds >= 0 for r in rows)
    # the reported errors against the independent references (torch.linalg, the truncated SVD) are at rounding level
    q_err = float(re.search(r"max \|Q - Q_ref\| = (\S+)", rows[0].quality).group(1))
    w_err, sv7, sv8 = (float(g) for g in re.search(r"= (\S+), sv\[7\], sv\[8\] = (\S+), (\S+)$", rows[1].quality).groups())
    assert q_err < 1e-12 and w_err < 1e-12
    assert sv7 == 1.0 and sv8 < 1e-12
