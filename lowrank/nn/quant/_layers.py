"""Layers holding a fake-quantized weight: ``QuantLayer`` (QAT, STE) and ``LQLinear`` (frozen Q + trainable L1 L2)."""

from lowrank._utils.optional import import_optional
from lowrank.nn.quant._fake import QuantConfig, fake_quantize_config

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["QuantLayer", "LQLinear"]


class QuantLayer(nn.Module):
    """A Linear or ConvNd whose forward uses ``fake_quantize(weight)`` (straight-through gradients).

    The full-precision ``weight`` is the trained parameter (quantization-aware training); the layer
    computes exactly the original layer's functional form with the quantized weight.

    Parameters
    ----------
    layer : torch.nn.Linear or torch.nn.Conv1d/2d/3d
        Copied (weight and bias become this module's parameters); ``groups`` must be 1.
    config : QuantConfig
        Checked quantization options (``QuantConfig.make``).

    Attributes
    ----------
    weight, bias : torch.nn.Parameter
    config : QuantConfig

    Examples
    --------
    >>> from lowrank.nn.quant import QuantConfig
    >>> layer = QuantLayer(torch.nn.Linear(8, 4), QuantConfig.make(bits=3, group_size=8))
    >>> len(torch.unique(layer.quantized_weight()[0])) <= 8  # one group per row: at most 2^3 values
    True
    """

    def __init__(self, layer, config):
        super().__init__()
        from lowrank.nn.adapters._layer import LayerSpec

        if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise TypeError(f"`layer` must be a Linear or Conv1d/2d/3d, got {type(layer).__name__}")
        if getattr(layer, "groups", 1) != 1:
            raise ValueError("`layer`: only groups=1 convolutions are supported")
        if not isinstance(config, QuantConfig):
            raise TypeError("`config` must be a lowrank.nn.quant.QuantConfig")
        self.spec = LayerSpec.from_module(layer)
        self.config = config
        self.weight = nn.Parameter(layer.weight.detach().clone())
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone())

    def quantized_weight(self):
        """The fake-quantized weight (differentiable through the straight-through estimator)."""
        return fake_quantize_config(self.weight, self.config)

    def forward(self, x):
        return self.spec.apply(x, self.quantized_weight(), self.bias)

    def extra_repr(self):
        return f"{self.spec.describe()}, bits={self.config.bits}, group_size={self.config.group_size}, " \
               f"kind={self.config.kind!r}"


class LQLinear(nn.Module):
    """``y = x (Q + L1 L2)^T + b``: a frozen fake-quantized ``Q`` (buffer) and a trainable low-rank part.

    Built by ``compress(model, "lq", ...)``; fine-tuning trains ``L1``, ``L2`` (and the bias), and
    :meth:`merged` gives the dense ``nn.Linear`` with ``W = Q + L1 L2``.

    Parameters
    ----------
    q_weight : torch.Tensor (out, in)
    L1 : torch.Tensor (out, r)
    L2 : torch.Tensor (r, in)
    bias : torch.Tensor (out,) or None
    config : QuantConfig
        The configuration ``Q`` was quantized with (kept for reports).

    Examples
    --------
    >>> from lowrank.nn.quant import QuantConfig
    >>> layer = LQLinear(torch.zeros(3, 4), torch.ones(3, 1), torch.ones(1, 4), None, QuantConfig())
    >>> layer.merged().weight
    Parameter containing:
    tensor([[1., 1., 1., 1.],
            [1., 1., 1., 1.],
            [1., 1., 1., 1.]], requires_grad=True)
    """

    def __init__(self, q_weight, L1, L2, bias, config):
        super().__init__()
        self.register_buffer("q_weight", q_weight.detach().clone())
        self.L1 = nn.Parameter(L1.detach().clone())
        self.L2 = nn.Parameter(L2.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.config = config

    @property
    def in_features(self):
        return self.q_weight.shape[1]

    @property
    def out_features(self):
        return self.q_weight.shape[0]

    @property
    def rank(self):
        return self.L1.shape[1]

    def forward(self, x):
        # Q x + L1 (L2 x): never forms the dense sum
        return F.linear(x, self.q_weight, self.bias) + F.linear(F.linear(x, self.L2), self.L1)

    @torch.no_grad()
    def merged(self):
        """The dense ``nn.Linear`` with weight ``Q + L1 L2`` and the same bias."""
        w = self.q_weight
        layer = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device=w.device,
                          dtype=w.dtype)
        layer.weight.copy_(w + self.L1 @ self.L2)
        if self.bias is not None:
            layer.bias.copy_(self.bias)
        return layer

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}, bits={self.config.bits}, " \
               f"group_size={self.config.group_size}, kind={self.config.kind!r}"
