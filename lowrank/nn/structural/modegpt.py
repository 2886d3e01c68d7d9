"""MoDeGPT as the compressor ``"modegpt"``: module pairs shrink their hidden width by output reconstruction.

Targets are whole modules, not single matrices:

* an MLP pair (the zoo's :class:`~lowrank.nn.zoo.FeedForward`: ``fc2(act(fc1(x)))``, any elementwise
  activation): the hidden width keeps ``k`` neurons chosen by column-pivoted QR on the square root
  of the activation correlation ``C = sum_x a a^T`` (``a = act(fc1(x))``, a Nystrom column selection
  of ``C``; :func:`lowrank.linalg.select_columns`); ``fc1`` keeps those rows and ``fc2`` becomes the
  least-squares map ``W_2 C[:, S] C[S, S]^+`` (the Nystrom reconstruction);
* an attention module with separate ``q``, ``k``, ``v``, ``o`` Linears (the zoo's
  :class:`~lowrank.nn.zoo.SelfAttention`): per head, the ``k`` query/key dimensions with the largest
  ``||Q_h[:, i]|| ||K_h[:, i]||`` (column-row selection for the product ``Q_h K_h^T``) and, for the value-output
  pair, the rank-``k`` truncated SVD of ``C^{1/2} W_v^T W_o^T`` (``C`` the input correlation, bias
  appended as a constant input) mapped back by ``C^{-1/2}``. The softmax keeps the original
  ``1/sqrt(d_head)`` scale. ``nn.MultiheadAttention`` (packed weights) is not supported.

``rank`` is the MLP hidden width kept, or the per-head query/key and value width kept. ``budget``
spreads a parameter sparsity over the targets by MoDeGPT's global rule ``phi_l ∝ softmax(-s_l / T)``
with ``s_l = 1 - mean cos(x, x + f_l(x))`` (the module's residual update, on calibration data), scaled
so that the kept parameters meet the budget. Everything runs under ``torch.no_grad()``.
"""

import math
from dataclasses import dataclass

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float
from lowrank.linalg import select_columns
from lowrank.nn.compression._base import Compressor, LayerSpectrum
from lowrank.nn.compression._ranks import rank_for_energy
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.compression._statistics import calibration_batches, call_model
from lowrank.nn.layers import count_parameters
from lowrank.nn.zoo.models import FeedForward, SelfAttention

torch = import_optional("torch", purpose="lowrank.nn (modegpt)")
nn = torch.nn
F = torch.nn.functional

__all__ = ["MoDeGPTCompressor", "MoDeGPTOptions", "PrunedSelfAttention"]


@dataclass(frozen=True)
class MoDeGPTOptions:
    """Options of ``compress(..., "modegpt")``.

    Attributes
    ----------
    temperature : float, default=0.5
        ``T`` of the global allocation ``softmax(-s_l / T)`` (large: uniform sparsity).
    ridge : float, default=1e-8
        Relative eigenvalue floor of the correlation matrices' pseudo-inverses.
    """

    temperature: float = 0.5
    ridge: float = 1e-8

    def __post_init__(self):
        check_float(self.temperature, "temperature", low=0, low_inclusive=False)
        check_float(self.ridge, "ridge", low=0)


class PrunedSelfAttention(nn.Module):
    """Self-attention with narrower heads: ``qk_dim`` query/key and ``v_dim`` value dimensions per head.

    ``o(concat_h softmax(q_h k_h^T * scale) v_h)``; ``scale`` stays the original model's.

    Parameters
    ----------
    d_model, n_heads, qk_dim, v_dim : int
        Model width, heads, per-head query/key width and per-head value width.
    scale : float
        Logit scale (``1/sqrt(original d_head)``).

    Examples
    --------
    >>> import torch
    >>> PrunedSelfAttention(16, 4, 2, 3, 0.5)(torch.zeros(2, 5, 16)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, n_heads, qk_dim, v_dim, scale, *, dtype=None, device=None):
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.n_heads, self.qk_dim, self.v_dim, self.scale = n_heads, qk_dim, v_dim, scale
        self.q = nn.Linear(d_model, n_heads * qk_dim, **kw)
        self.k = nn.Linear(d_model, n_heads * qk_dim, **kw)
        self.v = nn.Linear(d_model, n_heads * v_dim, **kw)
        self.o = nn.Linear(n_heads * v_dim, d_model, **kw)

    def _heads(self, x, width):
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, width).transpose(1, 2)

    def attention_logits(self, x):
        """``q_h k_h^T * scale`` of every head: shape ``(batch, n_heads, length, length)``."""
        q, k = self._heads(self.q(x), self.qk_dim), self._heads(self.k(x), self.qk_dim)
        return q @ k.transpose(-2, -1) * self.scale

    def forward(self, x):
        batch, length, _ = x.shape
        heads = torch.softmax(self.attention_logits(x), dim=-1) @ self._heads(self.v(x), self.v_dim)
        return self.o(heads.transpose(1, 2).reshape(batch, length, self.n_heads * self.v_dim))


def _augmented(W, b):
    """``[W, b]``: the weight acting on the input with a constant 1 appended (float64)."""
    b = torch.zeros(W.shape[0], dtype=torch.float64) if b is None else b.detach().double()
    return torch.cat([W.detach().double(), b[:, None]], dim=1)


def _sqrt_and_pinv_sqrt(C, ridge):
    vals, vecs = torch.linalg.eigh(C)
    floor = ridge * max(float(vals.max()), 0.0)
    keep = vals > floor
    root = vals.clamp_min(0).sqrt()
    inv = torch.where(keep, 1.0 / root.clamp_min(1e-300), torch.zeros_like(root))
    return (vecs * root) @ vecs.T, (vecs * inv) @ vecs.T


class MoDeGPTCompressor(Compressor):
    """MoDeGPT module-pair compression (MLP by Nystrom selection, QK by CR selection, VO by SVD).

    References
    ----------
    .. [1] Lin et al., "MoDeGPT: Modular Decomposition for Large Language Model Compression",
       ICLR 2025, arXiv:2408.09632.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import compress
    >>> from lowrank.nn.zoo import FeedForward
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(FeedForward(8, 32))
    >>> small, report = compress(model, "modegpt", torch.randn(256, 8), rank=16)
    >>> small[0].fc1.out_features, small[0].fc2.in_features
    (16, 16)
    """

    supported = (FeedForward, SelfAttention)
    statistics = "custom"
    error_basis = "selection scores"
    Options = MoDeGPTOptions

    def check(self, name, module):
        pass

    def full_rank(self, module):
        return module.fc1.out_features if isinstance(module, FeedForward) else module.d_head

    def cost(self, module, metric):
        if isinstance(module, FeedForward):
            unit, fixed = module.fc1.in_features + 1 + module.fc2.out_features, module.fc2.out_features
        else:
            d = module.q.in_features
            unit, fixed = module.n_heads * (3 * (d + 1) + d), d
        return unit, fixed, count_parameters(module)

    @torch.no_grad()
    def collect(self, model, targets, calibration, options):
        stats = {name: {"C": None, "cos": 0.0, "n": 0} for name in targets}
        hooks = [m.register_forward_hook(self._hook(stats[name], m)) for name, m in targets.items()]
        try:
            for i, batch in enumerate(calibration_batches(calibration, options.batch_size)):
                if options.max_batches is not None and i >= options.max_batches:
                    break
                call_model(model, batch)
        finally:
            for h in hooks:
                h.remove()
        if any(s["n"] == 0 for s in stats.values()):
            raise ValueError("`calibration` did not reach every target module (empty calibration?)")
        return stats

    @staticmethod
    def _hook(stat, module):
        def hook(mod, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1])
            if isinstance(module, FeedForward):
                z = module.act(module.fc1(x)).double()
            else:
                z = torch.cat([x.double(), torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1)
            C = z.T @ z
            stat["C"] = C if stat["C"] is None else stat["C"] + C
            y = output.detach().reshape(-1, output.shape[-1]).double()
            stat["cos"] += float(F.cosine_similarity(x.double(), x.double() + y, dim=1, eps=1e-30).sum())
            stat["n"] += x.shape[0]
        return hook

    def spectrum(self, name, module, statistics):
        C, ridge = statistics["C"], self.options.ridge
        importance = 1.0 - statistics["cos"] / statistics["n"]
        if not hasattr(self, "_importance"):
            self._importance = {}
        self._importance[name] = importance  # read by the global allocation in choose_ranks
        root, inv_root = _sqrt_and_pinv_sqrt(C, ridge)
        if isinstance(module, FeedForward):
            energies = torch.linalg.eigvalsh(C).flip(0).clamp_min(0)
            state = {"root": root.numpy(), "C": C}
        else:
            h, dh = module.n_heads, module.d_head
            Wq, Wk = _augmented(module.q.weight, module.q.bias), _augmented(module.k.weight, module.k.bias)
            Wv, Wo = _augmented(module.v.weight, module.v.bias), module.o.weight.detach().double()
            qk, svds, energies = [], [], torch.zeros(dh, dtype=torch.float64)
            for head in range(h):
                rows = slice(head * dh, (head + 1) * dh)
                score = (root @ Wq[rows].T).norm(dim=0) * (root @ Wk[rows].T).norm(dim=0)
                order = torch.argsort(score, descending=True, stable=True)
                qk.append(order)
                U, s, Vh = torch.linalg.svd(root @ Wv[rows].T @ Wo[:, rows].T, full_matrices=False)
                svds.append((inv_root @ U[:, :dh] * s[:dh], Vh[:dh]))
                # one rank unit keeps a QK dimension and a VO direction: both shares, summed over heads
                energies += score[order] / score.sum().clamp_min(1e-300) + s[:dh] ** 2 / (s**2).sum().clamp_min(1e-300)
            state = {"qk": qk, "vo": svds}
        return LayerSpectrum(energies=energies, total=float(energies.sum()), state=(state, importance))

    def build(self, module, spectrum, rank):
        state, _ = spectrum.state
        if isinstance(module, FeedForward):
            return self._build_mlp(module, state, rank)
        return self._build_attention(module, state, rank)

    def _build_mlp(self, module, state, rank):
        S = np.sort(select_columns(state["root"], rank, method="rrqr", rng=0))
        C = state["C"]
        idx = torch.as_tensor(S, dtype=torch.long)
        map_ = C[:, idx] @ torch.linalg.pinv(C[idx][:, idx], hermitian=True, rtol=self.options.ridge)
        fc1, fc2 = module.fc1, module.fc2
        dtype, device = fc1.weight.dtype, fc1.weight.device
        new = FeedForward(fc1.in_features, rank, fc2.out_features)
        new.act = module.act
        new = new.to(dtype=dtype, device=device)
        with torch.no_grad():
            new.fc1.weight.copy_(fc1.weight[idx])
            if fc1.bias is None:
                new.fc1.bias = None
            else:
                new.fc1.bias.copy_(fc1.bias[idx])
            new.fc2.weight.copy_((fc2.weight.double() @ map_).to(dtype))
            if fc2.bias is None:
                new.fc2.bias = None
            else:
                new.fc2.bias.copy_(fc2.bias)
        new.selected_ = idx
        return new

    def _build_attention(self, module, state, rank):
        h, dh, d = module.n_heads, module.d_head, module.q.in_features
        dtype, device = module.q.weight.dtype, module.q.weight.device
        new = PrunedSelfAttention(d, h, rank, rank, 1.0 / math.sqrt(dh), dtype=dtype, device=device)
        Wq, Wk = _augmented(module.q.weight, module.q.bias), _augmented(module.k.weight, module.k.bias)
        q_rows, k_rows, v_rows, o_cols = [], [], [], []
        for head in range(h):
            keep = torch.sort(state["qk"][head][:rank]).values + head * dh
            q_rows.append(Wq[keep])
            k_rows.append(Wk[keep])
            left, right = state["vo"][head]  # (d+1, dh), (dh, d)
            v_rows.append(left[:, :rank].T)
            o_cols.append(right[:rank].T)
        with torch.no_grad():
            for layer, rows in ((new.q, q_rows), (new.k, k_rows), (new.v, v_rows)):
                rows = torch.cat(rows)
                layer.weight.copy_(rows[:, :d].to(dtype))
                layer.bias.copy_(rows[:, d].to(dtype))
            new.o.weight.copy_(torch.cat(o_cols, dim=1).to(dtype))
            if module.o.bias is None:
                new.o.bias = None
            else:
                new.o.bias.copy_(module.o.bias)
        return new

    def choose_ranks(self, layers, rank, energy, budget, metric, explicit):
        ranks = {}
        for name, (m, energies) in layers.items():
            full = self.full_rank(m)
            if rank is not None:
                ranks[name] = min(rank.get(name, full) if isinstance(rank, dict) else rank, full)
            elif energy is not None:
                ranks[name] = rank_for_energy(energies, energy, full)
        if budget is None:
            return ranks
        return self._allocate(layers, budget)

    def _allocate(self, layers, budget):
        names = list(layers)
        full = np.array([self.full_rank(layers[n][0]) for n in names], dtype=float)
        dense = np.array([self.cost(layers[n][0], "params")[2] for n in names], dtype=float)
        scores = np.array([self._importance[n] for n in names])
        z = -(scores - scores.min()) / self.options.temperature
        share = np.exp(z - z.max())
        share /= share.sum()
        target = (1.0 - budget) * dense.sum()

        def sparsity(c):
            return np.clip(c * share, 0.0, 1.0 - 1.0 / full)

        lo, hi = 0.0, 1.0
        while (sparsity(hi) * dense).sum() < target and hi < 1e9:
            hi *= 2
        for _ in range(100):  # bisection on the scale of the softmax shares
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if (sparsity(mid) * dense).sum() < target else (lo, mid)
        kept = np.maximum(1, np.round((1.0 - sparsity(hi)) * full)).astype(int)
        return {n: int(k) for n, k in zip(names, kept)}


register_compressor("modegpt", MoDeGPTCompressor)
