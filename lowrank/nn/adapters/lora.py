"""LoRA: a rank-``r`` weight delta ``(alpha / r) B A`` on a frozen layer (Hu et al. 2021).

For a Linear ``(out, in)`` weight, ``A`` is ``(r, in)`` and ``B`` ``(out, r)``. For a ConvNd,
``A`` is an ``(r, in, *kernel)`` convolution (same stride, padding and dilation as the layer) and
``B`` a 1x1 convolution ``(out, r)``. For an Embedding / EmbeddingBag ``(num, dim)`` table, ``A``
is an ``(num, r)`` table and ``B`` ``(dim, r)``, so ``delta W = (alpha / r) A B^T``. These are HF
PEFT's parametrizations (with its embedding factors stored transposed), and the same
initializations, so a LoRA adapter here and a PEFT one start from and train to the same weights.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_float, check_int
from lowrank.nn.adapters._method import AdapterMethod, register_method

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["LoRA", "LoRAConfig"]


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """Options of :class:`LoRA` (built and checked by ``LoRA._iv``).

    Attributes
    ----------
    rank : int
        Rank ``r`` of the delta.
    alpha : float
        Scale numerator: the delta is ``(alpha / r) B A``.
    init : {"kaiming", "gaussian"}
        How the non-zero factor starts (the other one is zero, so the adapter starts as a no-op).
    dropout : float
        Dropout on the layer input of the adapter branch (Linear and Conv layers only).
    """

    rank: int = 8
    alpha: float = 8.0
    init: str = "kaiming"
    dropout: float = 0.0


@register_method("lora")
class LoRA(AdapterMethod):
    """Low-rank adaptation: ``W + (alpha / r) B A`` with ``A``, ``B`` trained and ``W`` frozen.

    Built by :func:`lowrank.nn.adapt` (``method="lora"``), not directly.

    Parameters
    ----------
    rank : int, default=8
        ``0 < rank <= min(out_features, in_features)`` of each layer (``in * prod(kernel)`` for a
        convolution, ``num_embeddings`` for an embedding).
    alpha : float, optional
        Scale numerator; default ``rank`` (scale 1).
    init : {"kaiming", "gaussian"}, default="kaiming"
        ``"kaiming"``: for Linear/Conv, ``A`` is Kaiming-uniform (torch's default layer init,
        a = sqrt(5)) and ``B = 0``; for embeddings ``A = 0`` and ``B ~ N(0, 1)`` (as PEFT).
        ``"gaussian"``: the non-zero factor is ``N(0, 1/r^2)`` instead.
    dropout : float, default=0.0
        Dropout probability on the adapter branch's input, ``0 <= dropout < 1``; only for Linear and
        Conv layers (an embedding's input is indices). With dropout the training-mode output is
        stochastic; eval-mode outputs still equal the merged layer.

    Attributes
    ----------
    A, B : torch.nn.Parameter
        The factors (shapes above).
    scaling : float
        ``alpha / rank``.

    Raises
    ------
    ValueError
        If ``rank`` exceeds a layer's limit, ``init`` is unknown, ``dropout`` is out of range or is
        asked for on an embedding.

    References
    ----------
    Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang & Chen, "LoRA: Low-Rank Adaptation of Large Language
    Models", ICLR 2022, arXiv:2106.09685.

    Examples
    --------
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    >>> adapter = adapt(model, "lora", targets="0", rank=2, rng=0)
    >>> adapter.num_trainable  # 2 * (16 + 32)
    96
    >>> model[0].adapters["default"].delta_weight().abs().max().item()  # B = 0 at init
    0.0
    """

    config_class = LoRAConfig

    @classmethod
    def _iv(cls, rank=8, alpha=None, init="kaiming", dropout=0.0):
        rank = check_int(rank, "rank", low=1)
        alpha = float(rank) if alpha is None else check_float(alpha, "alpha")
        init = check_choice(init, "init", ("kaiming", "gaussian"))
        dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        return LoRAConfig(rank=rank, alpha=alpha, init=init, dropout=dropout)

    @classmethod
    def check_layer(cls, name, base, spec, config):
        super().check_layer(name, base, spec, config)
        if config.dropout > 0 and spec.out_axis == 1:
            raise ValueError(f"`dropout`: layer {name!r} is an {spec.layer_type}, whose input is indices; LoRA "
                             f"dropout applies to Linear and Conv layers only")

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        r = config.rank
        shape = spec.weight_shape
        if spec.out_axis == 1:  # embedding (num, dim): A (num, r), B (dim, r)
            a_shape, b_shape = (shape[0], r), (shape[1], r)
        else:  # linear / conv (out, in, *kernel): A (r, in, *kernel), B (out, r)
            a_shape, b_shape = (r, *shape[1:]), (shape[0], r)
        A = torch.zeros(a_shape, dtype=torch.float64)
        B = torch.zeros(b_shape, dtype=torch.float64)
        # draw in float64 on the CPU generator, then cast: the same seed gives the same factors on
        # every device and dtype
        if spec.out_axis == 1:
            nn.init.normal_(B, std=1.0 if config.init == "kaiming" else 1.0 / r, generator=generator)
        elif config.init == "kaiming":
            nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
        else:
            nn.init.normal_(A, std=1.0 / r, generator=generator)
        weight = base.weight
        self.A = nn.Parameter(A.to(device=weight.device, dtype=weight.dtype))
        self.B = nn.Parameter(B.to(device=weight.device, dtype=weight.dtype))
        self.scaling = config.alpha / r
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def delta_weight(self):
        if self.spec.out_axis == 1:
            return (self.A @ self.B.T) * self.scaling
        return (self.B @ self.A.flatten(1)).reshape(self.spec.weight_shape) * self.scaling

    def delta_output(self, x, *args, **kwargs):
        # B(A x): never forms the (out, in) delta, r * (in + out) work per input instead of in * out;
        # the scale goes on the small B, not on the (batch, out) result
        spec = self.spec
        B = self.B * self.scaling
        if spec.kind == "conv":
            z = spec.apply(self.dropout(x), self.A, None)
            kernel = B.reshape(*B.shape, *([1] * (len(spec.weight_shape) - 2)))
            conv = (F.conv1d, F.conv2d, F.conv3d)[len(spec.weight_shape) - 3]
            return conv(z, kernel)
        if spec.kind == "linear":
            x = self.dropout(x)
        z = spec.apply(x, self.A, None, *args, **kwargs)
        return F.linear(z, B)
