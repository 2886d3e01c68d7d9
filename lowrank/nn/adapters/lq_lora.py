"""LQ-LoRA: a frozen quantized weight ``Q`` plus a trainable low-rank ``L1 L2`` initialized so that ``Q + L1 L2 ~ W``.

The layer's weight (as a matrix, see :mod:`lowrank.nn.adapters._matrix`) is decomposed once by
:func:`lowrank.nn.quant.lq_decompose`. The core keeps the dense ``W`` frozen, so the method's delta
is ``(Q - W) + L1 L2``: the adapted layer computes exactly ``Q + L1 L2``, only ``L1`` and ``L2``
train, and merging writes the dense ``Q + L1 L2``. Unlike the other methods the adapter is not a
no-op at init: it starts at the decomposition's error (``exact_at_init = False``).
"""

import dataclasses

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_int
from lowrank.nn.adapters._matrix import as_matrix, factor_source, to_weight
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["LQLoRA", "LQLoRAConfig"]


@dataclasses.dataclass(frozen=True)
class LQLoRAConfig:
    """Options of :class:`LQLoRA`.

    Attributes
    ----------
    rank : int
        Rank of ``L1 L2``.
    bits, group_size, kind
        The quantization of ``Q`` (:func:`lowrank.nn.quant.quantize`).
    n_iter : int
        Most alternation rounds of the decomposition.
    """

    rank: int = 8
    bits: int = 4
    group_size: int = 64
    kind: str = "nf"
    n_iter: int = 20


@register_method("lq_lora")
class LQLoRA(AdapterMethod):
    """Quantized frozen weight plus a trainable low-rank part, initialized by LQ-LoRA's decomposition.

    Built by :func:`lowrank.nn.adapt` (``method="lq_lora"``).

    Parameters
    ----------
    rank : int, default=8
        ``0 < rank <= min`` of the weight matrix's sides.
    bits : int, default=4
        Bits of ``Q``, 2..8.
    group_size : int, default=64
        Weights per scale.
    kind : {"nf", "int"}, default="nf"
        NormalFloat (as LQ-LoRA and QLoRA) or uniform integers.
    n_iter : int, default=20
        Most rounds of the ``SVD_r(W - Q)`` / ``Q = quant(W - L1 L2)`` alternation (it stops when
        the error stops decreasing).

    Attributes
    ----------
    L1, L2 : torch.nn.Parameter
        ``(m, r)`` and ``(r, n)`` factors of the weight matrix's low-rank part.
    quant_error : buffer
        ``Q - W`` in the weight's shape (saved with the adapter).
    errors : list of float
        The decomposition's Frobenius error per accepted round (``errors[0]``: ``Q`` alone).

    References
    ----------
    Guo, Greengard, Xing & Kim, "LQ-LoRA: Low-rank Plus Quantized Matrix Decomposition for Efficient
    Language Model Finetuning", ICLR 2024, arXiv:2311.12023.

    Examples
    --------
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    >>> adapter = adapt(model, "lq_lora", targets="0", rank=4, bits=3, rng=0)
    >>> adapter.num_trainable  # 4 * (64 + 32)
    384
    >>> m = adapter.methods()["0"]
    >>> m.errors[-1] < m.errors[0]  # Q + L1 L2 is closer to W than 3-bit Q alone
    True
    """

    config_class = LQLoRAConfig
    #: the adapted layer starts at Q + L1 L2, not at W (the core's no-op-at-init invariant does not apply)
    exact_at_init = False

    @classmethod
    def _iv(cls, rank=8, bits=4, group_size=64, kind="nf", n_iter=20):
        from lowrank.nn.quant import QuantConfig

        config = QuantConfig.make(bits, group_size, kind)
        return LQLoRAConfig(rank=check_int(rank, "rank", low=1), bits=config.bits, group_size=config.group_size,
                            kind=check_choice(kind, "kind", ("nf", "int")), n_iter=check_int(n_iter, "n_iter", low=0))

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        from lowrank.nn.quant._fake import QuantConfig
        from lowrank.nn.quant._lq import _lq_body

        W = as_matrix(factor_source(base), spec)
        qc = QuantConfig(bits=config.bits, group_size=config.group_size, kind=config.kind)
        Q, L1, L2, errors = _lq_body(W, config.rank, qc, config.n_iter, None, "auto", 0)
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.register_buffer("quant_error", to_weight(Q - W, spec).to(**like).contiguous())
        self.L1 = nn.Parameter(L1.to(**like).contiguous())
        self.L2 = nn.Parameter(L2.to(**like).contiguous())
        self.errors = errors

    def delta_weight(self):
        return self.quant_error + to_weight(self.L1 @ self.L2, self.spec)

    def delta_output(self, x, *args, **kwargs):
        if self.spec.kind != "linear":
            return super().delta_output(x, *args, **kwargs)
        return F.linear(x, self.quant_error) + F.linear(F.linear(x, self.L2), self.L1)
