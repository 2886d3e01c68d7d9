"""LowRankAttention (DR-RL): exact at full rank against torch's MultiheadAttention and the zoo's
SelfAttention, the rank-r scores against a dense truncated SVD, the FLOP count against a hand count,
and the REINFORCE policy on a planted input distribution (rank-2 vs rank-16 sequences)."""

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank.nn.allocation import LowRankAttention, attention_flops  # noqa: E402
from lowrank.nn.zoo.models import SelfAttention  # noqa: E402


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_full_rank_equals_multihead_attention(dtype, tol):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 2, batch_first=True).to(dtype)
    with torch.no_grad():
        mha.out_proj.bias.normal_()
        mha.in_proj_bias.normal_()
    attn = LowRankAttention.from_module(mha, ranks=(2, 8), segment=6)
    x = torch.randn(3, 12, 16, dtype=dtype)
    with torch.no_grad():
        ref = mha(x, x, x, need_weights=False)[0]
        assert (attn(x, rank=8) - ref).abs().max() <= tol
        assert (attn.exact(x) - ref).abs().max() <= tol


def test_full_rank_equals_zoo_self_attention():
    torch.manual_seed(1)
    sa = SelfAttention(16, 4)
    attn = LowRankAttention.from_module(sa, ranks=(1, 4))
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        assert (attn(x, rank=4) - sa(x)).abs().max() <= 1e-5


def test_rank_r_scores_are_the_truncated_svd():
    # reference: the dense per-head score matrix, truncated by torch.linalg.svd, then softmax(.) V
    torch.manual_seed(2)
    attn = LowRankAttention(8, 1, ranks=(2, 8)).double()
    x = torch.randn(1, 10, 8, dtype=torch.float64)
    with torch.no_grad():
        q, k, v = attn.q(x)[0], attn.k(x)[0], attn.v(x)[0]
        S = q @ k.T / math.sqrt(8)
        U, s, Vh = torch.linalg.svd(S)
        S2 = U[:, :2] @ torch.diag(s[:2]) @ Vh[:2]
        ref = attn.o(torch.softmax(S2, -1) @ v)
        assert (attn(x, rank=2)[0] - ref).abs().max() <= 1e-10


def _qr(a, b):
    big, small = max(a, b), min(a, b)
    return 2 * big * small ** 2 - 2 * small ** 3 / 3


def test_flop_count_matches_a_hand_count():
    # L = 32, d_h = 8, segments of 16 rows, ranks 2 and 4 (p = q = m = 8)
    L, dh, s = 32, 8, 16
    per_segment = {r: _qr(16, 8) + 2 * 8 * 8 * 8 + 22 * 8 * 8 * 8 + 2 * 16 * 8 * r + 2 * 32 * 8 * r
                   + 2 * 16 * 32 * r + 2 * 16 * 32 * 8 for r in (2, 4)}
    hand = _qr(32, 8) + per_segment[2] + per_segment[4]
    assert attention_flops(L, dh, [2, 4], segment=s) == pytest.approx(hand)
    assert attention_flops(L, dh) == 4 * 32 * 32 * 8
    # the module counts every head and sequence with its chosen ranks
    attn = LowRankAttention(16, 2, ranks=(2, 4, 8), segment=16)
    attn(torch.randn(3, 32, 16), rank=2)
    assert attn.last_flops == pytest.approx(2 * 3 * attention_flops(32, 8, [2, 2], segment=16))
    # short sequences: the factorization costs more than it saves; long ones: it saves
    assert attention_flops(12, 16, 2) > attention_flops(12, 16)
    assert attention_flops(512, 16, 2) < attention_flops(512, 16)


def _planted(n, gen, d=16, length=16):
    """Half the sequences live in a 2-dim subspace (scores of rank 2), half are generic (rank 16)."""
    low = torch.randn(n // 2, length, 2, generator=gen) @ torch.randn(2, d, generator=gen) * 1.5
    high = torch.randn(n - n // 2, length, d, generator=gen)
    return torch.cat([low, high]), torch.arange(n) < n // 2


def test_policy_learns_low_rank_for_rank_2_and_high_rank_for_rank_16_sequences(steps=120):
    # Rank 2 is exact on the rank-2 sequences, so the FLOP cost makes it the best choice there. On the
    # generic ones rank 8 already has cosine ~0.995, and under this FLOP model the reward alone would
    # prefer it; the perturbation mask (safety: sigma_9 > 0.1 is unsafe) is what leaves only rank 16.
    torch.manual_seed(0)
    attn = LowRankAttention(16, 1, ranks=(2, 4, 8, 16), flop_cost=0.05, epsilon=0.2, safety=0.1,
                            rng=0)
    with torch.no_grad():  # identity projections: the scores' rank is the input's rank
        for lin in (attn.q, attn.k, attn.v, attn.o):
            lin.weight.copy_(torch.eye(16))
            lin.bias.zero_()
    opt = torch.optim.Adam(attn.policy.parameters(), lr=3e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, _ = _planted(32, gen)
        attn.reinforce_step(x, opt)
    x, is_low = _planted(64, gen)
    with torch.no_grad():
        attn(x)
    ranks = attn.last_ranks[:, 0]
    assert (ranks[is_low] <= 4).all(), ranks[is_low]
    assert (ranks[~is_low] >= 16).all(), ranks[~is_low]


def test_bad_input():
    with pytest.raises(ValueError, match="n_heads"):
        LowRankAttention(10, 3)
    with pytest.raises(ValueError, match="epsilon"):
        LowRankAttention(8, 2, ranks=(1, 2), epsilon=2.0)
    with pytest.raises(TypeError, match="ranks"):
        LowRankAttention(8, 2, ranks=("a",))
    with pytest.raises(TypeError, match="module"):
        LowRankAttention.from_module(nn.Linear(4, 4))
    attn = LowRankAttention(8, 2, ranks=(1, 2), segment=5)
    with pytest.raises(ValueError, match="segment"):
        attn(torch.randn(1, 12, 8))
