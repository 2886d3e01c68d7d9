"""Fake quantization against a direct numpy reference, NF4 against QLoRA's published table, the STE,
and the ILP against brute force."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowrank.nn.quant import (QuantConfig, allocate_configs, fake_quantize, nf_code_points,  # noqa: E402
                              quantize, storage_bits)

# QLoRA's NF4 table (Dettmers et al. 2023, appendix E), as published
NF4_PUBLISHED = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141888428,
                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0]


def _groups_np(w, g):
    flat = w.reshape(-1)
    pad = (-flat.size) % g
    return np.concatenate([flat, np.repeat(flat[-1], pad)]).reshape(-1, g), pad


def _int_reference(w, bits, g, clip=1.0):
    out = []
    for row in _groups_np(w, g)[0]:
        lo, hi = row.min(), row.max()
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * clip
        lo, hi = mid - half, mid + half
        step = (hi - lo) / (2**bits - 1) if hi > lo else 1.0
        out.append(np.clip(np.round((row - lo) / step), 0, 2**bits - 1) * step + lo)
    return np.concatenate(out)[: w.size].reshape(w.shape)


def _nf_reference(w, bits, g):
    from scipy.stats import norm

    half = 2 ** (bits - 1)
    offset = 1 - 0.5 * (1 / 2 ** (bits + 1) + 1 / (2 * (2**bits - 1)))
    pts = np.sort(np.r_[norm.ppf(np.linspace(offset, 0.5, half + 1)[:-1]), 0.0,
                        -norm.ppf(np.linspace(offset, 0.5, half)[:-1])])
    pts = pts / pts.max()
    out = []
    for row in _groups_np(w, g)[0]:
        a = np.abs(row).max()
        out.append(pts[np.abs(row[:, None] / a - pts[None, :]).argmin(1)] * a)  # brute-force nearest point
    return np.concatenate(out)[: w.size].reshape(w.shape), pts


def test_nf4_code_points_are_qlora_table():
    np.testing.assert_allclose(nf_code_points(4), NF4_PUBLISHED, atol=2e-7)


@pytest.mark.parametrize("bits", [2, 3, 5])
def test_nf_code_points_are_normal_quantiles(bits):
    pts = nf_code_points(bits)
    assert len(pts) == 2**bits and pts[0] == -1 and pts[-1] == 1 and 0.0 in pts
    np.testing.assert_allclose(pts, _nf_reference(np.ones(4), bits, 4)[1], atol=1e-12)


@pytest.mark.parametrize("bits, group", [(2, 8), (3, 16), (4, 7), (8, 64)])
def test_int_matches_numpy(bits, group):
    w = np.random.default_rng(bits).standard_normal((9, 13))
    ours = quantize(torch.from_numpy(w), bits, group, "int").numpy()
    np.testing.assert_allclose(ours, _int_reference(w, bits, group), atol=1e-12)
    # round-trip error within half a step per group
    g, _ = _groups_np(w, group)
    step = (g.max(1) - g.min(1)) / (2**bits - 1)
    err = np.abs(_groups_np(ours, group)[0] - g)
    assert (err <= step[:, None] / 2 + 1e-12).all()


def test_int_clip_matches_numpy():
    w = np.random.default_rng(1).standard_normal((5, 16))
    np.testing.assert_allclose(quantize(torch.from_numpy(w), 3, 16, "int", clip=0.7).numpy(),
                               _int_reference(w, 3, 16, 0.7), atol=1e-12)


@pytest.mark.parametrize("bits, group", [(2, 8), (3, 16), (4, 64), (4, 10)])
def test_nf_matches_numpy(bits, group):
    w = np.random.default_rng(bits).standard_normal((12, 20))
    ours = quantize(torch.from_numpy(w), bits, group, "nf").numpy()
    np.testing.assert_allclose(ours, _nf_reference(w, bits, group)[0], atol=1e-12)


def test_error_falls_with_bits_and_smaller_groups():
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errs = [float((quantize(w, b, 64) - w).norm()) for b in (2, 3, 4, 5)]
    assert errs == sorted(errs, reverse=True)
    assert float((quantize(w, 3, 16) - w).norm()) < errs[1]


def test_float32_and_shape_kept():
    w = torch.randn(4, 3, 3, dtype=torch.float32)
    q = quantize(w, 4, 8)
    assert q.dtype == torch.float32 and q.shape == w.shape


def test_ste_is_identity_inside_clip_range_and_zero_outside():
    w = torch.randn(6, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(6, 16, dtype=torch.float64)
    (fake_quantize(w, 3, 16, "int", clip=0.6) * upstream).sum().backward()
    wd = w.detach().numpy()
    lo, hi = wd.min(1, keepdims=True), wd.max(1, keepdims=True)
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * 0.6
    inside = (wd >= mid - half) & (wd <= mid + half)
    assert 0 < inside.sum() < inside.size
    np.testing.assert_array_equal(w.grad.numpy(), np.where(inside, upstream.numpy(), 0.0))
    w.grad = None
    (fake_quantize(w, 4, 16, "nf") * upstream).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), upstream.numpy())


def test_storage_bits():
    assert storage_bits(QuantConfig(bits=3, group_size=32, kind="int")) == 3 + 32 / 32
    assert storage_bits(QuantConfig(bits=4, group_size=64, scale_bits=8)) == 4.125


@pytest.mark.parametrize("bad, exc", [(dict(bits=1), ValueError), (dict(bits=9), ValueError),
                                      (dict(bits=2.5), TypeError), (dict(group_size=0), ValueError),
                                      (dict(kind="fp"), ValueError), (dict(clip=0.0), ValueError)])
def test_bad_options(bad, exc):
    with pytest.raises(exc, match=next(iter(bad))):
        quantize(torch.ones(4), **bad)


def test_bad_weight():
    with pytest.raises(TypeError, match="weight"):
        quantize(np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        quantize(torch.tensor([1.0, float("nan")]))


class TestILP:
    def _brute(self, E, bits, sizes, budget):
        best, arg = np.inf, None
        for combo in itertools.product(range(E.shape[1]), repeat=E.shape[0]):
            avg = sum(bits[c] * s for c, s in zip(combo, sizes)) / sum(sizes)
            total = sum(E[i, c] for i, c in enumerate(combo))
            if avg <= budget + 1e-12 and total < best:
                best, arg = total, combo
        return best, arg

    @pytest.mark.parametrize("seed", range(4))
    def test_matches_brute_force(self, seed):
        rng = np.random.default_rng(seed)
        bits = np.array([2.25, 3.25, 4.25, 8.25])
        sizes = rng.integers(50, 500, 5)
        # planted errors: each matrix's error falls with bits at its own rate
        E = rng.uniform(0.5, 5, (5, 1)) * 2.0 ** (-rng.uniform(0.5, 1.5, (5, 1)) * bits[None, :])
        budget = rng.uniform(2.6, 5.0)
        choice = allocate_configs(E, bits, sizes, budget)
        best, _ = self._brute(E, bits, sizes, budget)
        assert (bits[choice] * sizes).sum() / sizes.sum() <= budget + 1e-12
        assert E[np.arange(5), choice].sum() == pytest.approx(best, rel=1e-9)

    def test_infeasible_budget(self):
        with pytest.raises(ValueError, match="budget"):
            allocate_configs([[1.0, 0.5]], [3, 4], [10], 2.0)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="bits"):
            allocate_configs([[1.0, 0.5]], [3, 4, 5], [10], 4.0)
        with pytest.raises(ValueError, match="sizes"):
            allocate_configs([[1.0, 0.5]], [3, 4], [0], 4.0)
