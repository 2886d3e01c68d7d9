"""The base class every adapter method derives from, and the registry ``adapt`` looks methods up in.

A method is a small ``nn.Module`` built for one frozen layer. It owns its trainable tensors and says
how they form a weight delta ``delta_weight()`` in the layer's own weight shape; the core
(:mod:`lowrank.nn.adapters._layer`) adds that delta to the frozen weight, so merging, unmerging,
disabling, saving and device/dtype moves are written once for every method.
"""

import dataclasses

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["AdapterMethod", "SharedModules", "register_method", "list_methods", "get_method"]

_REGISTRY = {}


class SharedModules(nn.Module):
    """Modules and tensors shared by every layer of one adapter (one instance per adapter).

    A method that keeps something for the whole adapter (Block-LoRA's shared blocks, TeRA's random
    factors) creates it on the first layer with :meth:`setdefault` and finds it on the next ones.
    Parameters and persistent buffers are saved once with the adapter (under ``shared.``);
    non-persistent buffers (for tensors regenerated from a seed) are not saved.
    """

    def setdefault(self, name, factory):
        """The parameter or module ``name``, created by ``factory()`` the first time it is asked for."""
        if not hasattr(self, name):
            setattr(self, name, factory())
        return getattr(self, name)

    def setdefault_buffer(self, name, factory, *, persistent=True):
        """The buffer ``name``, created by ``factory()`` the first time (``persistent=False``: not saved)."""
        if name not in self._buffers:
            self.register_buffer(name, factory(), persistent=persistent)
        return self._buffers[name]


class AdapterMethod(nn.Module):
    """Base class of adapter methods: a weight delta for one frozen layer.

    Subclasses set ``config_class`` (a frozen dataclass of the method's options), implement the
    classmethod ``_iv(**options) -> config`` (validates and normalizes every option once; ``adapt``
    passes ``rank`` and ``alpha`` when the config has those fields) and :meth:`delta_weight`; they
    may override :meth:`delta_output` with a cheaper activation-space forward,
    :meth:`check_layer` with their own limits and :meth:`prepare_state` when their shapes change
    in training. Trainable tensors are parameters; fixed ones are buffers (persistent ones are
    saved with the adapter), since activating an adapter sets ``requires_grad`` on all its
    parameters. Register the class with :func:`register_method`.

    Parameters
    ----------
    base : torch.nn.Module
        The frozen layer (Linear, Conv1d/2d/3d, Embedding or EmbeddingBag); read it to initialize
        from the weight (SVD, LU, ...), but do not keep it as a submodule.
    spec : LayerSpec
        Shape, kind and functional form of the layer (``spec.apply(x, weight)``).
    config : dataclass
        The validated options (an instance of ``config_class``).
    generator : torch.Generator
        CPU generator seeding this layer's initialization (derived from ``adapt``'s ``rng``).
    shared : SharedModules
        The adapter-wide namespace (see :class:`SharedModules`); register it as an attribute only
        when the method uses it.

    Notes
    -----
    The core computes the adapted layer as ``spec.apply(x, W + delta_weight())`` or, when the method
    overrides :meth:`delta_output` and the layer is linear in its weight (every layer but an
    EmbeddingBag in ``"max"`` mode), as ``base(x) + delta_output(x)``. Both must agree (the shared
    test suite checks it for every registered method), so merged and unmerged outputs are equal.
    """

    config_class = None

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__()
        self.spec = spec
        self.config = config

    @classmethod
    def _iv(cls, **options):
        raise NotImplementedError(f"{cls.__name__} must implement the classmethod _iv(**options) -> config")

    @classmethod
    def check_layer(cls, name, base, spec, config):
        """Raise a ValueError naming ``name`` if the method cannot adapt this layer with ``config``.

        The default checks ``config.rank`` (when the config has one) against ``spec.max_rank``.
        """
        rank = getattr(config, "rank", None)
        if rank is not None and rank > spec.max_rank:
            raise ValueError(f"`rank`={rank} is above what layer {name!r} ({spec.describe()}) allows: "
                             f"rank <= {spec.max_rank}")

    def delta_weight(self):
        """The weight delta, in the frozen layer's weight shape (``spec.weight_shape``)."""
        raise NotImplementedError

    def delta_output(self, x, *args, **kwargs):
        """The delta of the layer's output for input ``x``: ``spec.apply(x, delta_weight())`` (no bias).

        Extra arguments are those of the layer's forward (``offsets``, ``per_sample_weights`` of an
        EmbeddingBag).
        """
        return self.spec.apply(x, self.delta_weight(), None, *args, **kwargs)

    def prepare_state(self, tensors):
        """Called with this layer's saved tensors (state-dict key -> tensor) before they are copied in.

        A method whose tensor shapes change during training (a growing rank) resizes its tensors to
        the saved shapes here; by default nothing changes, so a shape mismatch is an error.
        """

    @classmethod
    def overrides_delta_output(cls):
        return cls.delta_output is not AdapterMethod.delta_output

    def extra_repr(self):
        fields = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))
        return f"{self.spec.describe()}, {fields}"


def register_method(name, cls=None, *, overwrite=False):
    """Register an adapter method under ``name`` (usable as a class decorator).

    Parameters
    ----------
    name : str
        The name ``adapt(model, method=name)`` takes.
    cls : type, optional
        An :class:`AdapterMethod` subclass whose ``config_class`` is a frozen dataclass. Without it,
        returns a decorator.
    overwrite : bool, default=False
        Replace a method already registered under ``name`` (otherwise that is an error).

    Returns
    -------
    type or callable
        ``cls``, or the decorator.

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``cls`` is not a proper method class.
    ValueError
        If ``name`` is empty or taken and ``overwrite`` is False.

    Examples
    --------
    >>> import dataclasses
    >>> from lowrank.nn import AdapterMethod, register_method, list_methods
    >>> @dataclasses.dataclass(frozen=True)
    ... class ScaleConfig:
    ...     init: float = 0.0
    >>> @register_method("scale_demo")
    ... class Scale(AdapterMethod):
    ...     '''delta W = s * W: one trainable scalar per layer.'''
    ...     config_class = ScaleConfig
    ...     @classmethod
    ...     def _iv(cls, init=0.0):
    ...         return ScaleConfig(float(init))
    ...     def __init__(self, base, spec, config, *, generator, shared):
    ...         super().__init__(base, spec, config, generator=generator, shared=shared)
    ...         self.register_buffer("w", base.weight.detach().clone(), persistent=False)
    ...         self.s = torch.nn.Parameter(torch.full((), config.init, dtype=base.weight.dtype))
    ...     def delta_weight(self):
    ...         return self.s * self.w
    >>> "scale_demo" in list_methods()
    True
    """
    if cls is None:
        return lambda c: register_method(name, c, overwrite=overwrite)
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("`name` must be a non-empty string")
    if not (isinstance(cls, type) and issubclass(cls, AdapterMethod)):
        raise TypeError(f"`cls` must be a subclass of lowrank.nn.AdapterMethod, got {cls!r}")
    config = cls.config_class
    if not (dataclasses.is_dataclass(config) and isinstance(config, type) and config.__dataclass_params__.frozen):
        raise TypeError(f"`cls`: {cls.__name__}.config_class must be a frozen dataclass, got {config!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls and not overwrite:
        raise ValueError(f"`name`: an adapter method {name!r} is registered already "
                         f"({_REGISTRY[name].__name__}); pass overwrite=True to replace it")
    _REGISTRY[name] = cls
    return cls


def list_methods():
    """Names of the registered adapter methods, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from lowrank.nn import list_methods
    >>> "lora" in list_methods()
    True
    """
    return sorted(_REGISTRY)


def get_method(name, *, argument="method"):
    """The class registered under ``name``; an unknown name is an error listing the registered ones."""
    if not isinstance(name, str) or name not in _REGISTRY:
        known = ", ".join(repr(n) for n in list_methods())
        raise ValueError(f"`{argument}` must be one of the registered adapter methods ({known}); got {name!r}")
    return _REGISTRY[name]


def method_name(cls):
    """The name ``cls`` is registered under."""
    for name, registered in _REGISTRY.items():
        if registered is cls:
            return name
    raise ValueError(f"adapter method class {cls.__name__} is not registered (use register_method)")

