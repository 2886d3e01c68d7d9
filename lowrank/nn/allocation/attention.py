"""DR-RL-style low-rank self-attention: a REINFORCE policy picks, per input segment, the rank of each
head's score matrix ``Q K^T``, traded against counted FLOPs.

For a segment of ``s`` query rows against the ``L`` keys of its sequence, each head's scores are
``S = Q_s K^T / sqrt(d_h)``. They are factored without forming ``S``: reduced QRs ``Q_s = U_q R_q``
and ``K = U_k R_k``, then one batched ``torch.linalg.svd`` of the small core ``R_q R_k^T / sqrt(d_h)``
(``min(s, d_h) x min(L, d_h)``), so ``S_r = (U_q P_r) diag(sigma_r) (U_k W_r)^T`` is the exact rank-``r``
truncation (Eckart-Young) and the full rank is exact attention. ``softmax(S_r) V`` follows. Every
head, segment and sequence goes through one batched call (no Python loop over heads).

FLOPs are counted from the shapes (per head; ``p = min(s, d_h)``, ``q = min(L, d_h)``,
``m = min(p, q)``; QR of an ``a x b`` matrix ``2 max(a,b) min(a,b)^2 - 2/3 min(a,b)^3``; SVD of the
core counted as ``22 p q m``): exact attention ``4 s L d_h`` per segment; rank ``r``: ``QR(K)`` once per
sequence, plus per segment ``QR(Q_s) + 2 p q d_h + 22 p q m + 2 s p r + 2 L q r + 2 s L r + 2 s L d_h``.
The saving is on ``Q K^T`` only (``softmax(S_r)`` is not low rank), so it pays only for long
sequences: ``2 s L (d_h - r)`` must exceed the factorization's cost.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["LowRankAttention", "attention_flops"]


def _qr_flops(a, b):
    big, small = max(a, b), min(a, b)
    return 2 * big * small ** 2 - 2 * small ** 3 / 3


def attention_flops(length, d_head, rank=None, *, segment=None):
    """FLOPs of one head's attention over one sequence, exact (``rank=None``) or at ``rank`` per segment.

    Parameters
    ----------
    length : int
        Sequence length ``L``.
    d_head : int
        Head width ``d_h``.
    rank : None, int or sequence of int, default=None
        None: exact attention. An int: that rank on every segment; a sequence: one rank per segment.
    segment : int, optional
        Query rows per segment ``s`` (a divisor of ``length``); default the whole sequence.

    Returns
    -------
    float
        The count of the module docstring.

    Examples
    --------
    >>> from lowrank.nn.allocation.attention import attention_flops
    >>> attention_flops(12, 16)  # 4 L^2 d_h
    9216.0
    """
    s = length if segment is None else segment
    n_seg = length // s
    if rank is None:
        return float(4 * s * length * d_head * n_seg)
    ranks = [rank] * n_seg if isinstance(rank, int) else list(rank)
    p, q = min(s, d_head), min(length, d_head)
    m = min(p, q)
    total = _qr_flops(length, d_head)
    for r in ranks:
        total += (_qr_flops(s, d_head) + 2 * p * q * d_head + 22 * p * q * m + 2 * s * p * r + 2 * length * q * r
                  + 2 * s * length * r + 2 * s * length * d_head)
    return float(total)


@dataclasses.dataclass(frozen=True)
class _AttentionOptions:
    d_model: int
    n_heads: int
    ranks: tuple
    segment: object
    flop_cost: float
    epsilon: float
    safety: object
    hidden: int
    seed: int


def _iv(d_model, n_heads, ranks, segment, flop_cost, epsilon, safety, hidden, rng):
    d_model = check_int(d_model, "d_model", low=1)
    n_heads = check_int(n_heads, "n_heads", low=1)
    if d_model % n_heads:
        raise ValueError(f"`d_model` ({d_model}) must be a multiple of `n_heads` ({n_heads})")
    d_head = d_model // n_heads
    try:
        ranks = tuple(sorted({check_int(r, "ranks", low=1, high=d_head) for r in ranks}))
    except TypeError:
        raise TypeError(f"`ranks` must be a sequence of integers in [1, d_head={d_head}], got {ranks!r}") from None
    if not ranks:
        raise ValueError("`ranks` must hold at least one rank")
    segment = None if segment is None else check_int(segment, "segment", low=1)
    return _AttentionOptions(
        d_model=d_model, n_heads=n_heads, ranks=ranks, segment=segment,
        flop_cost=check_float(flop_cost, "flop_cost", low=0.0),
        epsilon=check_float(epsilon, "epsilon", low=0.0, high=1.0),
        safety=None if safety is None else check_float(safety, "safety", low=0.0, low_inclusive=False),
        hidden=check_int(hidden, "hidden", low=1), seed=as_seed(rng))


class LowRankAttention(nn.Module):
    """Multi-head self-attention whose score matrices are truncated to a rank chosen per segment.

    A drop-in for the zoo transformer's attention (``block.attn = LowRankAttention.from_module(block.attn)``:
    it takes ``(batch, length, d_model)`` and returns the same shape). The rank of every segment
    comes from a small policy over the rank grid, trained by :meth:`reinforce_step`; ``forward(x, rank=r)``
    forces one rank (``r = d_head``: exact attention).

    Parameters
    ----------
    d_model : int
        Model width.
    n_heads : int
        Heads (dividing ``d_model``).
    ranks : sequence of int, default=(1, 2, 4, 8, 16)
        The rank grid (clipped to ``d_head``; duplicates removed).
    segment : int, optional
        Query rows per segment (a divisor of each input's length); default one segment per sequence.
    flop_cost : float, default=0.5
        Reward = cosine(low-rank, exact output) - ``flop_cost`` * FLOPs(rank) / FLOPs(exact).
    epsilon : float, default=0.1
        Exploration: a uniformly drawn allowed rank with this probability, else a draw from the policy.
    safety : float, optional
        Perturbation mask: rank ``r`` is not allowed on a segment whose largest discarded singular
        value of the scores (over heads), ``sigma_{r+1}``, exceeds ``safety`` (Weyl: the score
        perturbation's spectral norm); the top grid rank is always allowed. None: no mask.
    hidden : int, default=32
        Hidden width of the policy (features: each segment's normalized score spectrum, mean over heads).
    rng : None, int or numpy Generator, default=None
        Seeds the policy's initialization and its draws.

    Attributes
    ----------
    q, k, v, o : torch.nn.Linear
        Projections.
    policy : torch.nn.Sequential
        ``d_head -> hidden -> len(ranks)`` logits.
    last_ranks : torch.Tensor or None
        ``(batch, n_segments)`` ranks used by the latest forward.
    last_flops : float or None
        Counted FLOPs of the latest forward's score/attention part (all heads, all sequences).

    Raises
    ------
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    References
    ----------
    Erden, "Dynamic Rank Reinforcement Learning for Adaptive Low-Rank Multi-Head Self Attention", 2025.
    Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
    learning", Machine Learning 8, 1992 (REINFORCE).

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn.allocation import LowRankAttention
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> mha = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    >>> attn = LowRankAttention.from_module(mha, ranks=(2, 8), rng=0)
    >>> x = torch.randn(3, 10, 16)
    >>> exact = mha(x, x, x, need_weights=False)[0]
    >>> bool(torch.allclose(attn(x, rank=8), exact, atol=1e-5))  # d_head = 8: full rank is exact
    True
    >>> attn(x).shape, attn.last_ranks.shape
    (torch.Size([3, 10, 16]), torch.Size([3, 1]))
    """

    def __init__(self, d_model, n_heads, *, ranks=(1, 2, 4, 8, 16), segment=None, flop_cost=0.5, epsilon=0.1,
                 safety=None, hidden=32, rng=None):
        super().__init__()
        d_head = d_model // n_heads if isinstance(d_model, int) and isinstance(n_heads, int) and n_heads else 1
        ranks = [min(r, d_head) if isinstance(r, int) and not isinstance(r, bool) else r for r in ranks]
        self.options = _iv(d_model, n_heads, ranks, segment, flop_cost, epsilon, safety, hidden, rng)
        o = self.options
        self.d_head = d_model // n_heads
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))
        gen = torch.Generator().manual_seed(o.seed)
        self.policy = nn.Sequential(nn.Linear(self.d_head, o.hidden), nn.Tanh(), nn.Linear(o.hidden, len(o.ranks)))
        with torch.no_grad():
            for layer in (self.policy[0], self.policy[2]):
                bound = 1 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.zero_()
        self._generator = gen
        self.register_buffer("baseline", torch.zeros(()))
        self.last_ranks = None
        self.last_flops = None

    @classmethod
    def from_module(cls, module, **options):
        """Build from an ``nn.MultiheadAttention`` (batch_first, self-attention) or a zoo ``SelfAttention``,
        copying its projections.

        Raises
        ------
        TypeError
            If ``module`` is neither.
        ValueError
            If the MultiheadAttention has separate key/value dims, bias_k/v or is not batch_first.
        """
        if isinstance(module, nn.MultiheadAttention):
            if not module._qkv_same_embed_dim or module.bias_k is not None or not module.batch_first:
                raise ValueError("`module`: only a batch_first nn.MultiheadAttention with one embed dim and no "
                                 "bias_k/bias_v can be converted")
            d = module.embed_dim
            new = cls(d, module.num_heads, **options).to(module.in_proj_weight.dtype)
            with torch.no_grad():
                for i, lin in enumerate((new.q, new.k, new.v)):
                    lin.weight.copy_(module.in_proj_weight[i * d:(i + 1) * d])
                    if module.in_proj_bias is not None:
                        lin.bias.copy_(module.in_proj_bias[i * d:(i + 1) * d])
                    else:
                        lin.bias.zero_()
                new.o.weight.copy_(module.out_proj.weight)
                if module.out_proj.bias is not None:
                    new.o.bias.copy_(module.out_proj.bias)
                else:
                    new.o.bias.zero_()
            return new
        if all(isinstance(getattr(module, n, None), nn.Linear) for n in "qkvo") and hasattr(module, "n_heads"):
            new = cls(module.q.in_features, module.n_heads, **options).to(module.q.weight.dtype)
            with torch.no_grad():
                for n in "qkvo":
                    getattr(new, n).load_state_dict(getattr(module, n).state_dict())
            return new
        raise TypeError(f"`module` must be an nn.MultiheadAttention or a zoo SelfAttention, got "
                        f"{type(module).__name__}")

    # -- the factored scores --------------------------------------------------------------------
    def _factor(self, x):
        """Per-head, per-segment factors of the scores, batched: everything forward needs."""
        batch, length, _ = x.shape
        s = length if self.options.segment is None else self.options.segment
        if length % s:
            raise ValueError(f"`x`: length {length} is not a multiple of `segment`={s}")
        n_seg, h, dh = length // s, self.options.n_heads, self.d_head

        def heads(t):
            return t.view(batch, length, h, dh).transpose(1, 2)  # (b, h, L, dh)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        uq, rq = torch.linalg.qr(q.reshape(batch, h, n_seg, s, dh))  # (b,h,n,s,p), (b,h,n,p,dh)
        uk, rk = torch.linalg.qr(k)  # (b,h,L,q), (b,h,q,dh)
        core = rq @ rk.unsqueeze(2).transpose(-2, -1) / math.sqrt(dh)  # (b,h,n,p,q)
        P, sig, Wh = torch.linalg.svd(core, full_matrices=False)  # one batched SVD of every small core
        left = uq @ P  # (b,h,n,s,m)
        right = uk.unsqueeze(2) @ Wh.transpose(-2, -1)  # (b,h,n,L,m)
        return left, sig, right, v, (batch, length, n_seg, s)

    def _attend(self, left, sig, right, v, ranks, shape):
        batch, length, n_seg, s = shape
        m = sig.shape[-1]
        keep = torch.arange(m, device=sig.device) < ranks.to(sig.device)[:, None, :, None]  # (b,1,n,m)
        scores = (left * (sig * keep).unsqueeze(-2)) @ right.transpose(-2, -1)  # (b,h,n,s,L)
        out = torch.softmax(scores, dim=-1) @ v.unsqueeze(2)  # (b,h,n,s,dh)
        return out.reshape(batch, self.options.n_heads, length, self.d_head)

    def _merge(self, heads):
        batch, _, length, _ = heads.shape
        return self.o(heads.transpose(1, 2).reshape(batch, length, self.options.d_model))

    def _features(self, sig):
        spec = sig / sig.sum(-1, keepdim=True).clamp_min(torch.finfo(sig.dtype).tiny)
        spec = spec.mean(1)  # (b, n, m): mean over heads
        return F.pad(spec, (0, self.d_head - spec.shape[-1])).to(self.policy[0].weight.dtype)

    def _allowed(self, sig):
        """``(b, n, len(ranks))`` mask of the ranks the perturbation bound allows (the top one always)."""
        grid = torch.tensor(self.options.ranks, device=sig.device)
        allowed = torch.ones(*sig.shape[:1], sig.shape[2], len(grid), dtype=torch.bool, device=sig.device)
        if self.options.safety is not None:
            worst = sig.amax(1)  # (b, n, m): largest over heads
            padded = F.pad(worst, (0, 1))  # sigma_{m+1} = 0
            discarded = padded[..., grid.clamp_max(worst.shape[-1])]  # sigma_{r+1}
            allowed = discarded <= self.options.safety
            allowed[..., -1] = True
        return allowed

    def _flops(self, ranks, length, s):
        per_seq = [attention_flops(length, self.d_head, [int(r) for r in row], segment=s) for row in ranks.tolist()]
        return self.options.n_heads * sum(per_seq)

    def forward(self, x, rank=None):
        """Self-attention of ``x`` ``(batch, length, d_model)``: the policy's greedy rank per segment, or ``rank``."""
        left, sig, right, v, shape = self._factor(x)
        batch, length, n_seg, s = shape
        if rank is None:
            with torch.no_grad():
                logits = self.policy(self._features(sig)).masked_fill(~self._allowed(sig), float("-inf"))
                choice = logits.argmax(-1)
            ranks = torch.tensor(self.options.ranks, device=x.device)[choice]
        else:
            ranks = torch.full((batch, n_seg), check_int(rank, "rank", low=1), device=x.device)
        self.last_ranks = ranks
        self.last_flops = self._flops(ranks, length, s)
        return self._merge(self._attend(left, sig, right, v, ranks, shape))

    def exact(self, x):
        """Exact softmax attention (no factorization), the fidelity reference."""
        batch, length, _ = x.shape
        h, dh = self.options.n_heads, self.d_head

        def heads(t):
            return t.view(batch, length, h, dh).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        return self._merge(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1) @ v)

    def reinforce_step(self, x, optimizer, *, momentum=0.9):
        """One REINFORCE update of the policy on a batch ``x``: epsilon-greedy draws, baseline subtracted.

        Parameters
        ----------
        x : torch.Tensor
            ``(batch, length, d_model)`` inputs of this attention layer.
        optimizer : torch.optim.Optimizer
            Over ``self.policy.parameters()``.
        momentum : float, default=0.9
            EMA factor of the reward baseline.

        Returns
        -------
        float
            Mean reward of the drawn ranks.
        """
        o = self.options
        with torch.no_grad():
            left, sig, right, v, shape = self._factor(x)
            batch, length, n_seg, s = shape
            full = self._attend(left, sig, right, v, torch.full((batch, n_seg), sig.shape[-1]), shape)
            allowed = self._allowed(sig)
        logits = self.policy(self._features(sig)).masked_fill(~allowed, float("-inf"))
        log_probs = torch.log_softmax(logits, -1)
        with torch.no_grad():
            probs = log_probs.exp()
            uniform = allowed.to(probs.dtype) / allowed.sum(-1, keepdim=True)
            explore = torch.rand(probs.shape[:-1], generator=self._generator) < o.epsilon
            mix = torch.where(explore.unsqueeze(-1), uniform, probs)
            choice = torch.multinomial(mix.reshape(-1, mix.shape[-1]), 1, generator=self._generator).view(batch, n_seg)
            ranks = torch.tensor(o.ranks)[choice]
            approx = self._attend(left, sig, right, v, ranks, shape)
            # fidelity per segment: cosine of the attention outputs over heads, rows and features
            a = approx.view(batch, o.n_heads, n_seg, s, self.d_head).transpose(1, 2).reshape(batch, n_seg, -1)
            b = full.view(batch, o.n_heads, n_seg, s, self.d_head).transpose(1, 2).reshape(batch, n_seg, -1)
            cosine = F.cosine_similarity(a, b, dim=-1)
            exact = attention_flops(length, self.d_head, segment=s) / n_seg
            cost = torch.tensor([[attention_flops(length, self.d_head, int(r), segment=s) - _qr_flops(length, self.d_head)
                                  for r in row] for row in ranks.tolist()]) / (n_seg * exact)
            reward = cosine - o.flop_cost * cost.to(cosine.dtype)
            advantage = reward - self.baseline
            self.baseline.mul_(momentum).add_((1 - momentum) * reward.mean())
        chosen = log_probs.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        loss = -(advantage.to(chosen.dtype) * chosen).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(reward.mean())
