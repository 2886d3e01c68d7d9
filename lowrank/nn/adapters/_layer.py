"""The wrapper that holds a frozen layer and its named adapters, and the layer's functional form.

``AdaptedLayer`` replaces a target module in the model. Its forward is the frozen layer plus the
active adapter's delta: in weight space, ``spec.apply(x, W + delta_weight())``, or in activation
space, ``base(x) + delta_output(x)`` when the method offers it and the layer is linear in its
weight. Merging writes ``W + delta_weight()`` into the frozen weight and keeps a copy of ``W`` so
that unmerging restores it bit for bit.
"""

import dataclasses
import math

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn
F = nn.functional

__all__ = ["LayerSpec", "AdaptedLayer", "SUPPORTED", "check_structure"]

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.EmbeddingBag)
_CONV = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}
_BASE_FORWARD = {cls: cls.forward for cls in SUPPORTED}


def _base_class(module):
    for cls in SUPPORTED:
        if isinstance(module, cls):
            return cls
    raise TypeError(f"unsupported layer {type(module).__name__}")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What a method needs to know of its layer: kind, weight shape and the functional forward.

    Attributes
    ----------
    kind : {"linear", "conv", "embedding", "embedding_bag"}
    layer_type : str
        Class name of the layer (``"Conv2d"``).
    weight_shape : tuple of int
        ``(out, in)`` for Linear, ``(out, in, *kernel)`` for ConvNd, ``(num, dim)`` for embeddings.
    options : tuple of (str, object)
        The layer's functional hyperparameters (stride, padding, mode, ...).
    """

    kind: str
    layer_type: str
    weight_shape: tuple
    options: tuple = ()

    @classmethod
    def from_module(cls, module):
        base = _base_class(module)
        shape = tuple(module.weight.shape)
        if base is nn.Linear:
            return cls("linear", type(module).__name__, shape)
        if base in _CONV:
            options = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
                           padding_mode=module.padding_mode,
                           reversed_padding=tuple(module._reversed_padding_repeated_twice))
            return cls("conv", base.__name__, shape, tuple(options.items()))
        if base is nn.Embedding:
            options = dict(padding_idx=module.padding_idx, norm_type=module.norm_type,
                           scale_grad_by_freq=module.scale_grad_by_freq)
            return cls("embedding", type(module).__name__, shape, tuple(options.items()))
        options = dict(mode=module.mode, norm_type=module.norm_type, scale_grad_by_freq=module.scale_grad_by_freq,
                       include_last_offset=module.include_last_offset, padding_idx=module.padding_idx)
        return cls("embedding_bag", type(module).__name__, shape, tuple(options.items()))

    def option(self, name):
        return dict(self.options)[name]

    @property
    def out_axis(self):
        """Axis of ``weight_shape`` that indexes the layer's output features (1 for embeddings)."""
        return 1 if self.kind in ("embedding", "embedding_bag") else 0

    @property
    def out_features(self):
        return self.weight_shape[self.out_axis]

    @property
    def in_features(self):
        """Size of the input side: ``in * prod(kernel)`` for convs, ``num_embeddings`` for embeddings."""
        if self.out_axis == 1:
            return self.weight_shape[0]
        return math.prod(self.weight_shape[1:])

    @property
    def max_rank(self):
        """The largest rank of a weight delta: ``min(out_features, in_features)``."""
        return min(self.out_features, self.in_features)

    @property
    def linear_in_weight(self):
        """True when ``apply(x, W1 + W2) == apply(x, W1) + apply(x, W2)`` (not for a max-bag)."""
        return not (self.kind == "embedding_bag" and self.option("mode") == "max")

    def describe(self):
        if self.kind == "linear":
            return f"Linear {self.weight_shape[1]}->{self.weight_shape[0]}"
        if self.kind == "conv":
            return f"{self.layer_type} {self.weight_shape[1]}->{self.weight_shape[0]}, kernel {self.weight_shape[2:]}"
        return f"{self.layer_type} {self.weight_shape[0]}x{self.weight_shape[1]}"

    def apply(self, x, weight, bias=None, offsets=None, per_sample_weights=None):
        """The layer's forward with ``weight`` (any number of output features) and ``bias``.

        A convolution with an ``(r, in, *kernel)`` weight gives ``r`` output channels; an embedding
        with a ``(num, r)`` table gives ``r`` features: methods use this for their first factor.
        """
        kind, opt = self.kind, dict(self.options)
        if kind == "linear":
            return F.linear(x, weight, bias)
        if kind == "conv":
            conv = _CONV[getattr(nn, self.layer_type)]
            padding = opt["padding"]
            if opt["padding_mode"] != "zeros":
                # as torch's _ConvNd._conv_forward: pad explicitly, then convolve without padding
                x = F.pad(x, opt["reversed_padding"], mode=opt["padding_mode"])
                padding = 0
            return conv(x, weight, bias, opt["stride"], padding, opt["dilation"], 1)
        if kind == "embedding":
            # sparse=False: adapter tensors train with dense optimizers; the base has no gradient
            return F.embedding(x, weight, opt["padding_idx"], None, opt["norm_type"], opt["scale_grad_by_freq"], False)
        return F.embedding_bag(x, weight, offsets, None, opt["norm_type"], opt["scale_grad_by_freq"], opt["mode"],
                               False, per_sample_weights, opt["include_last_offset"], opt["padding_idx"])


def check_structure(name, module):
    """Raise a ValueError naming ``name`` for a supported-type layer the core cannot adapt exactly."""
    base = _base_class(module)
    if type(module).forward is not _BASE_FORWARD[base]:
        raise ValueError(f"`targets`: layer {name!r} ({type(module).__name__}) overrides forward(); the adapter "
                         f"core reproduces only {base.__name__}'s own forward")
    if isinstance(module.weight, nn.parameter.UninitializedParameter):
        raise ValueError(f"`targets`: layer {name!r} is a lazy module that is not initialized yet; run one "
                         f"forward before adapting it")
    if type(module).__name__ == "NonDynamicallyQuantizableLinear":
        raise ValueError(f"`targets`: layer {name!r} is the out_proj of an nn.MultiheadAttention, which reads its "
                         f"weight directly instead of calling it; an adapter there would have no effect")
    if base in _CONV and module.groups != 1:
        raise ValueError(f"`targets`: layer {name!r} is a grouped {base.__name__} (groups={module.groups}); "
                         f"adapters support groups=1 only")
    if base in (nn.Embedding, nn.EmbeddingBag) and module.max_norm is not None:
        raise ValueError(f"`targets`: layer {name!r} has max_norm={module.max_norm}, which renormalizes the "
                         f"weight in place during forward; an additive adapter cannot follow that")


class AdaptedLayer(nn.Module):
    """A frozen layer (``base_layer``) plus named adapters (``adapters``), one of them active.

    Attributes of the base layer (``weight``, ``in_features``, ...) read through the wrapper.
    """

    def __init__(self, base_layer):
        super().__init__()
        self.base_layer = base_layer
        self.spec = LayerSpec.from_module(base_layer)
        self.adapters = nn.ModuleDict()
        self.active = None
        self.merged = None
        self.disabled = False

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("base_layer", "adapters"):
                raise
            return getattr(self.base_layer, name)

    def _bias(self):
        return self.base_layer.bias if self.spec.kind in ("linear", "conv") else None

    def forward(self, x, *args, **kwargs):
        if self.merged is not None:
            if self.disabled:
                return self.spec.apply(x, self.unmerged_weight, self._bias(), *args, **kwargs)
            return self.base_layer(x, *args, **kwargs)
        if self.active is None or self.disabled:
            return self.base_layer(x, *args, **kwargs)
        method = self.adapters[self.active]
        if self.spec.linear_in_weight and type(method).overrides_delta_output():
            return self.base_layer(x, *args, **kwargs) + method.delta_output(x, *args, **kwargs)
        weight = self.base_layer.weight + method.delta_weight()
        return self.spec.apply(x, weight, self._bias(), *args, **kwargs)

    @torch.no_grad()
    def merge(self, name):
        """``W <- W + delta_weight()`` of adapter ``name``, keeping ``W`` to restore it."""
        weight = self.base_layer.weight
        self.register_buffer("unmerged_weight", weight.detach().clone(), persistent=False)
        weight.add_(self.adapters[name].delta_weight().to(weight.dtype))
        self.merged = name

    @torch.no_grad()
    def unmerge(self):
        """Restore the weight saved by :meth:`merge` (bit-exact)."""
        self.base_layer.weight.copy_(self.unmerged_weight)
        del self._buffers["unmerged_weight"]
        self.merged = None

    def extra_repr(self):
        return f"active={self.active!r}, merged={self.merged!r}"
