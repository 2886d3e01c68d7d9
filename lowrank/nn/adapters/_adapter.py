"""``adapt`` and the ``Adapter`` handle: wrap targets, freeze the base, merge, disable, switch adapters.

An ``Adapter`` holds only the model and the adapter's name; everything else (which layers, the
method, its config, whether it is merged) is read from the model's ``AdaptedLayer`` modules, so a
deep copy of the model can be handled with ``Adapter(copy, name)`` and nothing goes stale.
"""

import contextlib
import dataclasses
import itertools
import logging

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.rng import as_seed
from lowrank.nn._targets import replace_module, select_modules
from lowrank.nn.adapters._layer import SUPPORTED, AdaptedLayer, LayerSpec, check_structure
from lowrank.nn.adapters._method import SharedModules, get_method, method_name

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["adapt", "Adapter"]

logger = logging.getLogger(__name__)

# orders a model's adapters by creation (each layer's ModuleDict only orders its own)
_CREATED = itertools.count()


def _config_from_options(cls, rank, alpha, options):
    """``cls._iv`` applied to ``rank``, ``alpha`` (when the config has them) and the other options."""
    fields = [f.name for f in dataclasses.fields(cls.config_class)]
    for key in options:
        if key not in fields or key in ("rank", "alpha"):
            known = ", ".join(fields)
            raise TypeError(f"unknown option `{key}` for adapter method {method_name(cls)!r}; its options are {known}")
    if "rank" in fields:
        if rank is not None:
            options["rank"] = rank
    elif rank is not None:
        raise TypeError(f"unknown option `rank` for adapter method {method_name(cls)!r}; its options are "
                        f"{', '.join(fields)}")
    if "alpha" in fields:
        options["alpha"] = alpha
    elif alpha is not None:
        raise TypeError(f"unknown option `alpha` for adapter method {method_name(cls)!r}; its options are "
                        f"{', '.join(fields)}")
    return cls._iv(**options)


def _check_name(model, name):
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {type(name).__name__}")
    if not name or "." in name or hasattr(nn.ModuleDict(), name):
        raise ValueError(f"`name` must be a non-empty module-key string without '.', got {name!r}")
    if name in adapter_names(model):
        raise ValueError(f"`name`: the model has an adapter {name!r} already; pick another name or delete it")
    return name


def adapted_layers(model):
    """``[(path, AdaptedLayer)]`` of ``model``, in model order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdaptedLayer)]


def adapter_names(model):
    """Names of the adapters on ``model``, in the order they were added."""
    order = {}
    for _, layer in adapted_layers(model):
        for name, method in layer.adapters.items():
            order[name] = min(order.get(name, float("inf")), getattr(method, "adapter_index", 0))
    return sorted(order, key=order.get)


def _select(model, targets, cls, config):
    """Paths of the layers ``targets`` selects, as if the model had no adapter wrappers."""
    wrappers = adapted_layers(model)
    merged = [(n, w.merged) for n, w in wrappers if w.merged is not None]
    if merged:
        raise ValueError(f"adapter {merged[0][1]!r} is merged into layer {merged[0][0]!r}; unmerge() it before "
                         f"adding another adapter")

    def check(name, module):
        check_structure(name, module)
        cls.check_layer(name, module, LayerSpec.from_module(module), config)

    if targets is None:
        def targets(name, module):
            if not isinstance(module, SUPPORTED):
                return False
            try:
                check_structure(name, module)
            except ValueError as exc:  # "every supported layer": these are not supported
                logger.info("targets=None skips %s", exc)
                return False
            return True

    # Show select_modules the model as the user built it: names and types of the original layers,
    # not the wrappers or the adapters' own submodules.
    for name, wrapper in wrappers:
        replace_module(model, name, wrapper.base_layer)
    try:
        return select_modules(model, targets, SUPPORTED, check=check)
    finally:
        for name, wrapper in wrappers:
            replace_module(model, name, wrapper)


def _check_not_aliased(model, paths):
    """One module reachable under two names would be adapted under one only: refuse it."""
    where = {}
    for path, module in model.named_modules(remove_duplicate=False):
        where.setdefault(id(module), []).append(path)
    for path in paths:
        others = [p for p in where[id(model.get_submodule(path))] if p != path]
        if others:
            raise ValueError(f"`targets`: layer {path!r} is the same module as {others[0]!r} (one module used "
                             f"twice); wrapping it under one name would leave the other use unadapted")


def _tied_weight_owners(model):
    """``id(parameter) -> [(path, module)]`` of every module holding it directly."""
    owners = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for p in module._parameters.values():
            if p is not None:
                owners.setdefault(id(p), []).append((path, module))
    return owners


def _layer_generators(seed, n):
    """One CPU ``torch.Generator`` per layer, independent streams spawned from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(n)
    return [torch.Generator().manual_seed(int(c.generate_state(1, np.uint64)[0])) for c in children]


def build_adapter(model, cls, config, targets, name, rng):
    """Install adapter ``name`` of method ``cls`` with ``config`` (validated) on the selected layers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    seed = as_seed(rng)
    name = _check_name(model, name)
    paths = _select(model, targets, cls, config)
    _check_not_aliased(model, paths)
    shared = SharedModules()
    built = []
    # Build every method before touching the model, so that an error leaves it as it was.
    for path, generator in zip(paths, _layer_generators(seed, len(paths))):
        module = model.get_submodule(path)
        wrapper = module if isinstance(module, AdaptedLayer) else None
        base = module.base_layer if wrapper is not None else module
        spec = wrapper.spec if wrapper is not None else LayerSpec.from_module(base)
        built.append((path, wrapper, cls(base, spec, config, generator=generator, shared=shared)))
    index = next(_CREATED)
    for path, wrapper, method in built:
        method.adapter_index = index
        if wrapper is None:
            wrapper = AdaptedLayer(model.get_submodule(path))
            replace_module(model, path, wrapper)
        wrapper.adapters[name] = method
    adapter_ids = {id(p) for _, layer in adapted_layers(model) for p in layer.adapters.parameters()}
    for p in model.parameters():
        if id(p) not in adapter_ids:
            p.requires_grad_(False)
    adapter = Adapter(model, name)
    adapter.set_active(name)
    return adapter


def adapt(model, method="lora", *, targets=None, rank=None, alpha=None, name="default", rng=None, **options):
    """Add a trainable adapter to the layers of ``model`` selected by ``targets`` (in place).

    Each target layer is wrapped so that its output is that of the frozen layer with weight
    ``W + delta W``, ``delta W`` given by the adapter method. Every parameter of the model that
    does not belong to an adapter is frozen (``requires_grad=False``); unfreeze afterwards what
    should train fully (a new head). The new adapter becomes the active one.

    Parameters
    ----------
    model : torch.nn.Module
        Modified in place (target layers are replaced by wrappers).
    method : str, default="lora"
        A registered method (:func:`list_methods`).
    targets : None, str, type, callable or list, default=None
        Which layers: an fnmatch pattern on qualified module names (or a list of them), a module
        type, or ``(name, module) -> bool``; None: every Linear, Conv1d/2d/3d (groups=1), Embedding
        and EmbeddingBag (MultiheadAttention's out_proj, grouped convs and max_norm embeddings are
        skipped; naming one explicitly is an error).
    rank : int, optional
        Rank of the delta, for methods whose config has a ``rank``; None: the method's default
        (LoRA: 8; SVFit: the rank holding 99% of each layer's spectral energy).
    alpha : float, optional
        Scale numerator, for methods whose config has an ``alpha`` (LoRA: default ``rank``).
    name : str, default="default"
        Name of the adapter (several can live on one model).
    rng : None, int or numpy Generator, default=None
        Seeds the adapter's initialization (each layer gets its own stream).
    **options
        Further options of the method (LoRA: ``init``, ``dropout``).

    Returns
    -------
    Adapter

    Raises
    ------
    TypeError
        If ``model`` is not a module, a target is of an unsupported type, or an option is unknown.
    ValueError
        If ``method`` is not registered, a pattern matches nothing, ``rank`` exceeds what a layer
        allows, a layer cannot be adapted (grouped conv, ...), or ``name`` is taken.

    See Also
    --------
    load_adapter : rebuild a saved adapter on a model.

    References
    ----------
    Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022, arXiv:2106.09685.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    >>> x = torch.randn(5, 8)
    >>> before = model(x)
    >>> adapter = adapt(model, targets=["0", "2"], rank=2, rng=0)
    >>> adapter.num_trainable, sum(p.requires_grad for p in model.parameters())
    (86, 4)
    >>> bool(torch.equal(model(x), before))  # B = 0: a no-op until trained
    True
    """
    cls = get_method(method)
    config = _config_from_options(cls, rank, alpha, dict(options))
    return build_adapter(model, cls, config, targets, name, rng)


class Adapter:
    """Handle of one named adapter on a model (returned by :func:`adapt` and :func:`load_adapter`).

    Parameters
    ----------
    model : torch.nn.Module
        The adapted model.
    name : str, default="default"
        Which adapter of the model.

    Attributes
    ----------
    model : torch.nn.Module
    name : str

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    >>> a = adapt(model, rank=1, rng=0)
    >>> b = a.add("second", rank=2, rng=1)
    >>> a.names, a.active
    (['default', 'second'], 'second')
    >>> a.set_active("default").active
    'default'
    """

    def __init__(self, model, name="default"):
        self.model = model
        self.name = name

    # -- what the adapter is -----------------------------------------------------------------
    def _layers(self):
        layers = [(p, layer) for p, layer in adapted_layers(self.model) if self.name in layer.adapters]
        if not layers:
            raise ValueError(f"the model has no adapter {self.name!r} (adapters: {adapter_names(self.model)})")
        return layers

    def methods(self):
        """``{layer path: method module}`` of this adapter."""
        return {p: layer.adapters[self.name] for p, layer in self._layers()}

    @property
    def targets(self):
        """Qualified names of the adapted layers."""
        return [p for p, _ in self._layers()]

    @property
    def method(self):
        """Registered name of the adapter's method."""
        return method_name(type(self._layers()[0][1].adapters[self.name]))

    @property
    def config(self):
        """The method's options (a frozen dataclass)."""
        return self._layers()[0][1].adapters[self.name].config

    @property
    def names(self):
        """Names of every adapter on the model."""
        return adapter_names(self.model)

    @property
    def active(self):
        """Name of the model's active adapter, or None."""
        for _, layer in adapted_layers(self.model):
            if layer.active is not None:
                return layer.active
        return None

    @property
    def merged(self):
        """True when this adapter is merged into the base weights."""
        return any(layer.merged == self.name for _, layer in self._layers())

    def trainable_parameters(self):
        """The adapter's parameters (shared ones once), in model order.

        Returns
        -------
        list of torch.nn.Parameter
        """
        seen, params = set(), []
        for method in self.methods().values():
            for p in method.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    @property
    def num_trainable(self):
        """Number of trainable adapter weights."""
        return sum(p.numel() for p in self.trainable_parameters())

    def __repr__(self):
        return (f"Adapter(name={self.name!r}, method={self.method!r}, layers={len(self.targets)}, "
                f"trainable={self.num_trainable}, active={self.active == self.name}, merged={self.merged})")

    # -- switching -----------------------------------------------------------------------------
    def add(self, name, method="lora", *, targets=None, rank=None, alpha=None, rng=None, **options):
        """Add another adapter to the same model (``adapt(self.model, ..., name=name)``); it becomes active.

        Returns
        -------
        Adapter
            The new adapter's handle.
        """
        return adapt(self.model, method, targets=targets, rank=rank, alpha=alpha, name=name, rng=rng, **options)

    def set_active(self, name):
        """Make adapter ``name`` the active one (None: no adapter); only its parameters require grad.

        Returns
        -------
        Adapter or None
            The handle of the now active adapter.

        Raises
        ------
        ValueError
            If ``name`` is not an adapter of the model, or another adapter is merged.
        """
        layers = adapted_layers(self.model)
        if name is not None and name not in adapter_names(self.model):
            raise ValueError(f"`name` must be one of the model's adapters {adapter_names(self.model)} or None; "
                             f"got {name!r}")
        for path, layer in layers:
            if layer.merged is not None and layer.merged != name:
                raise ValueError(f"adapter {layer.merged!r} is merged into layer {path!r}; unmerge() it before "
                                 f"switching adapters")
        for _, layer in layers:
            layer.active = name if name in layer.adapters else None
        for _, layer in layers:
            layer.adapters.requires_grad_(False)
        for _, layer in layers:
            if name in layer.adapters:
                layer.adapters[name].requires_grad_(True)
        return None if name is None else Adapter(self.model, name)

    def delete(self, name=None):
        """Remove adapter ``name`` (default: this one) from the model, unmerging it first if merged.

        Layers left without adapters get their original module back.
        """
        name = self.name if name is None else name
        handle = Adapter(self.model, name)
        layers = handle._layers()
        handle.unmerge()
        for path, layer in layers:
            del layer.adapters[name]
            if layer.active == name:
                layer.active = None
            if not len(layer.adapters):
                replace_module(self.model, path, layer.base_layer)

    # -- merging ---------------------------------------------------------------------------------
    def merge(self):
        """Write ``W + delta W`` into the base weights (this adapter becomes active); forward then
        runs the plain layers. Returns self."""
        owners = _tied_weight_owners(self.model)
        for path, layer in self._layers():
            others = [p for p, m in owners[id(layer.base_layer.weight)] if m is not layer.base_layer]
            if layer.merged is None and others:
                raise ValueError(f"layer {path!r} shares its weight with {others[0]!r} (tied weights); merging "
                                 f"in place would change both, so keep this adapter unmerged")
        self.set_active(self.name)
        for _, layer in self._layers():
            if layer.merged is None:
                layer.merge(self.name)
        return self

    def unmerge(self):
        """Restore the base weights saved by :meth:`merge`, bit-exactly (no-op when not merged).
        Returns self."""
        for _, layer in self._layers():
            if layer.merged == self.name:
                layer.unmerge()
        return self

    def merge_and_unload(self):
        """Merge this adapter, then remove every adapter and wrapper: a plain model with the merged weights.

        Returns
        -------
        torch.nn.Module
            ``self.model`` (modified in place).
        """
        self.merge()
        for path, layer in adapted_layers(self.model):
            replace_module(self.model, path, layer.base_layer)
        return self.model

    @contextlib.contextmanager
    def disabled(self):
        """Context in which the model computes the base model's outputs (every adapter off, merged or not)."""
        layers = [layer for _, layer in adapted_layers(self.model)]
        before = [layer.disabled for layer in layers]
        for layer in layers:
            layer.disabled = True
        try:
            yield self
        finally:
            for layer, flag in zip(layers, before):
                layer.disabled = flag

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self):
        """The adapter alone: method, config, layer shapes and tensors (no base weights).

        Returns
        -------
        dict
            ``{"method": str, "config": dict, "layers": {path: {"type", "weight_shape"}},
            "tensors": {path: {key: Tensor}}, "shared": {key: Tensor}}`` (tensors detached, not copied).
        """
        from lowrank.nn.adapters._io import adapter_state

        return adapter_state(self)

    def load_state_dict(self, state):
        """Load what :meth:`state_dict` returned (same method, config, layers and shapes), in place.

        Raises
        ------
        ValueError
            If ``state`` is of another method or config, or its layers or shapes differ.
        """
        from lowrank.nn.adapters._io import load_adapter_state

        load_adapter_state(self, state, source="`state`")
        return self

    def save(self, path):
        """Save the adapter alone to ``path`` (an npz file, written atomically).

        Parameters
        ----------
        path : str or path-like
        """
        from lowrank.nn.adapters._io import save_adapter

        save_adapter(self, path)
