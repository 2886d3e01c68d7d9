import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn import compress  # noqa: E402
from lowrank.nn.layers import count_parameters  # noqa: E402
from lowrank.nn.structural.modegpt import MoDeGPTCompressor, MoDeGPTOptions  # noqa: E402
from lowrank.nn.zoo import TransformerBlock  # noqa: E402


def _block(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(TransformerBlock(16, 4, 32), TransformerBlock(16, 4, 32)).double()
    return model, torch.randn(64, 6, 16, dtype=torch.float64)


def _prepared(model, X, name):
    compressor = MoDeGPTCompressor(MoDeGPTOptions())
    module = model.get_submodule(name)

    class _Opts:
        batch_size, max_batches = 4096, None

    stats = compressor.collect(model, {name: module}, X, _Opts)
    return compressor, module, compressor.spectrum(name, module, stats[name])


def _inputs(model, X, name):
    seen = []
    handle = model.get_submodule(name).register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    with torch.no_grad():
        model(X)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("name", ["0.mlp", "0.attn", "1.attn"])
def test_full_width_reproduces_outputs(name):
    model, X = _block()
    compressor, module, spectrum = _prepared(model, X, name)
    new = compressor.build(module, spectrum, compressor.full_rank(module))
    H = _inputs(model, X, name)
    with torch.no_grad():
        torch.testing.assert_close(new(H), module(H), atol=1e-5, rtol=0)


def test_reduced_mlp_equals_dense_least_squares():
    model, X = _block(1)
    compressor, module, spectrum = _prepared(model, X, "0.mlp")
    new = compressor.build(module, spectrum, 12)
    H = _inputs(model, X, "0.mlp").reshape(-1, 16)
    with torch.no_grad():
        A = module.act(module.fc1(H)).numpy()
        S = new.selected_.numpy()
        target = A @ module.fc2.weight.numpy().T
        M = np.linalg.lstsq(A[:, S], target, rcond=None)[0].T  # dense solve of the same selection problem
        np.testing.assert_allclose(new.fc1.weight.numpy(), module.fc1.weight.numpy()[S])
        np.testing.assert_allclose(new.fc2.weight.numpy(), M, atol=1e-7)
        # the Nystrom reconstruction is the best fit given S: no other map does better on calibration
        err = np.linalg.norm(new(H).numpy() - module(H).numpy())
        other = np.linalg.norm(A[:, S] @ (M + 1e-3).T + module.fc2.bias.numpy() - module(H).numpy())
        assert err < other


def test_reduced_qk_and_vo_equal_dense_references():
    model, X = _block(2)
    compressor, module, spectrum = _prepared(model, X, "0.attn")
    k = 2
    new = compressor.build(module, spectrum, k)
    H = _inputs(model, X, "0.attn")
    n, L, d = H.shape
    with torch.no_grad():
        Q, K = module.q(H).numpy(), module.k(H).numpy()
        logits = new.attention_logits(H).numpy()
        flat = H.reshape(-1, d).numpy()
        Xa = np.hstack([flat, np.ones((flat.shape[0], 1))])
        vo_new = np.zeros((flat.shape[0], d))
        for h in range(4):
            cols = slice(4 * h, 4 * h + 4)
            Qh, Kh = Q[..., cols], K[..., cols]
            score = np.linalg.norm(Qh.reshape(-1, 4), axis=0) * np.linalg.norm(Kh.reshape(-1, 4), axis=0)
            keep = np.sort(np.argsort(-score, kind="stable")[:k])
            ref = np.einsum("bid,bjd->bij", Qh[..., keep], Kh[..., keep]) / math.sqrt(4)
            np.testing.assert_allclose(logits[:, h], ref, atol=1e-10)
            # V O pair: the best rank-k fit of the head's value-output map on the calibration inputs
            Wv = np.hstack([module.v.weight.numpy()[cols], module.v.bias.numpy()[cols, None]])
            target = Xa @ Wv.T @ module.o.weight.numpy()[:, cols].T
            U, s, Vt = np.linalg.svd(target, full_matrices=False)
            best = (U[:, :k] * s[:k]) @ Vt[:k]
            Wv_new = np.hstack([new.v.weight.numpy()[k * h:k * h + k], new.v.bias.numpy()[k * h:k * h + k, None]])
            got = Xa @ Wv_new.T @ new.o.weight.numpy()[:, k * h:k * h + k].T
            np.testing.assert_allclose(got, best, atol=1e-8)
            vo_new += got
    assert vo_new.shape == (n * L, d)


def test_compress_needs_no_gradient_and_meets_budget():
    model, X = _block(3)
    model = model.float()
    X = X.float()
    small, report = compress(model, "modegpt", X, budget=0.7)
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is None for p in small.parameters())
    targets = sum(count_parameters(model.get_submodule(name)) for name in ("0.attn", "0.mlp", "1.attn", "1.mlp"))
    kept = sum(count_parameters(small.get_submodule(name)) for name in ("0.attn", "0.mlp", "1.attn", "1.mlp"))
    assert kept <= 0.75 * targets and kept >= 0.6 * targets
    with torch.no_grad():
        rel = float((small(X) - model(X)).norm() / model(X).norm())
    assert rel < 0.5
    uniform, _ = compress(model, "modegpt", X, budget=0.7, temperature=1e6)
    ranks = {layer.name: layer.rank / layer.full_rank for layer in _.layers}
    assert max(ranks.values()) - min(ranks.values()) < 0.1  # a flat softmax: the same fraction everywhere


def test_bad_options():
    model, X = _block()
    with pytest.raises(ValueError, match="temperature"):
        compress(model, "modegpt", X, budget=0.5, temperature=0)
    with pytest.raises(TypeError, match="unknown option"):
        compress(model, "modegpt", X, budget=0.5, tau=1)
    with pytest.raises(ValueError, match="calibration"):
        compress(model, "modegpt", None, budget=0.5)


def test_explicit_targets_with_a_fixed_rank():
    # the core bounds ranks of plain layers itself; a whole module's bound comes from its compressor
    model, X = _block(3)
    small, report = compress(model, "modegpt", X, rank=4, targets=["0.mlp", "1.mlp"])
    assert [layer.rank for layer in report.layers] == [4, 4]
    assert small.get_submodule("0.mlp") is not model.get_submodule("0.mlp")
