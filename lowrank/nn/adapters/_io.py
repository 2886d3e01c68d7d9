"""Adapter-only state: ``state_dict`` / ``load_state_dict``, ``save`` and :func:`load_adapter`.

A file holds the method's name, its config (JSON), the adapted layers with their types and weight
shapes, and the adapter's tensors, bit for bit (bfloat16 and other dtypes numpy lacks are stored
as same-width integers). It goes through :mod:`lowrank._utils.io`: atomic write, checksums, and
a ``CorruptFileError`` (a ValueError naming the path) for a damaged file.
"""

import dataclasses

import numpy as np

from lowrank._utils.io import CorruptFileError, load_npz, save_npz
from lowrank._utils.optional import import_optional
from lowrank.nn.adapters._adapter import Adapter, AdaptedLayer, adapter_names, build_adapter
from lowrank.nn.adapters._layer import SUPPORTED, LayerSpec
from lowrank.nn.adapters._method import SharedModules, get_method

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["load_adapter"]

KIND = "lowrank.nn.Adapter"
_INT_OF_WIDTH = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _shared_prefixes(method, shared_ids):
    return tuple(f"{n}." for n, m in method.named_modules() if id(m) in shared_ids and n)


def adapter_state(adapter):
    methods = adapter.methods()
    # the adapter's SharedModules (if any method registered it): saved once, under "shared"
    shared = list({id(m): m for method in methods.values() for m in method.modules()
                   if isinstance(m, SharedModules)}.values())
    shared_ids = {id(m) for m in shared}
    tensors, layers = {}, {}
    for path, method in methods.items():
        prefixes = _shared_prefixes(method, shared_ids)
        own = method.state_dict()
        tensors[path] = {k: v.detach() for k, v in own.items() if not k.startswith(prefixes)}
        layers[path] = {"type": method.spec.layer_type, "weight_shape": list(method.spec.weight_shape)}
    shared_state = {k: v.detach() for k, v in shared[0].state_dict().items()} if shared else {}
    return {
        "method": adapter.method,
        "config": dataclasses.asdict(adapter.config),
        "layers": layers,
        "tensors": tensors,
        "shared": shared_state,
    }


def _check_state(state, source):
    keys = {"method", "config", "layers", "tensors", "shared"}
    if not isinstance(state, dict) or set(state) != keys:
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{source} must be an adapter state dict with keys {sorted(keys)}, got {got}")


def _config_of(cls, config, source):
    try:
        return cls._iv(**config)
    except TypeError as exc:
        raise ValueError(f"{source}: config {config!r} does not fit method {cls.__name__} ({exc})") from None


def load_adapter_state(adapter, state, *, source):
    _check_state(state, source)
    if adapter.merged:
        raise ValueError(f"adapter {adapter.name!r} is merged; unmerge() it before loading {source}")
    if state["method"] != adapter.method:
        raise ValueError(f"{source} holds a {state['method']!r} adapter; adapter {adapter.name!r} is "
                         f"{adapter.method!r}")
    config = _config_of(type(next(iter(adapter.methods().values()))), state["config"], source)
    if config != adapter.config:
        diff = [f"{f.name}={getattr(config, f.name)!r} there, {getattr(adapter.config, f.name)!r} here"
                for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(adapter.config, f.name)]
        raise ValueError(f"{source}: the config differs from adapter {adapter.name!r}'s: {'; '.join(diff)}")
    if set(state["layers"]) != set(adapter.targets):
        missing = sorted(set(state["layers"]) - set(adapter.targets))
        extra = sorted(set(adapter.targets) - set(state["layers"]))
        raise ValueError(f"{source} adapts other layers than adapter {adapter.name!r}: only in {source}: "
                         f"{missing}; only in the model: {extra}")
    for path, method in adapter.methods().items():
        method.prepare_state(state["tensors"].get(path, {}))
    mine = adapter_state(adapter)
    pairs = []
    for path in adapter.targets:
        pairs += _pairs(mine["tensors"][path], state["tensors"].get(path, {}), f"{source}, layer {path!r}")
    pairs += _pairs(mine["shared"], state["shared"], f"{source}, shared")
    with torch.no_grad():
        for target, value in pairs:
            target.copy_(value)


def _pairs(mine, theirs, where):
    if set(mine) != set(theirs):
        raise ValueError(f"{where}: tensors {sorted(theirs)} do not match the adapter's {sorted(mine)}")
    out = []
    for key, value in theirs.items():
        if tuple(value.shape) != tuple(mine[key].shape):
            raise ValueError(f"{where}: tensor {key!r} has shape {tuple(value.shape)}, the adapter's "
                             f"{tuple(mine[key].shape)}")
        out.append((mine[key], value))
    return out


def _to_numpy(t):
    t = t.detach().cpu().contiguous()
    try:
        return t.numpy(), str(t.dtype)
    except TypeError:  # bfloat16, float8...: keep the bits
        return t.view(_INT_OF_WIDTH[t.element_size()]).numpy(), str(t.dtype)


def _from_numpy(array, dtype_name):
    dtype = getattr(torch, dtype_name.removeprefix("torch."))
    # np.ascontiguousarray would turn a 0-d array into 1-d
    t = torch.from_numpy(array if array.flags.c_contiguous else array.copy())
    return t if t.dtype == dtype else t.view(dtype)


def save_adapter(adapter, path):
    state = adapter_state(adapter)
    arrays, index = {}, []
    entries = [(p, k, v) for p, ts in state["tensors"].items() for k, v in ts.items()]
    entries += [(None, k, v) for k, v in state["shared"].items()]
    for i, (layer, key, value) in enumerate(entries):
        arrays[f"t{i}"], dtype = _to_numpy(value)
        index.append([layer, key, dtype])
    meta = {"name": adapter.name, "method": state["method"], "config": state["config"],
            "layers": state["layers"], "index": index}
    save_npz(path, arrays, kind=KIND, meta=meta)


def read_adapter_file(path):
    """``(name, state)`` from a file written by :meth:`Adapter.save`."""
    arrays, meta = load_npz(path, kind=KIND)
    try:
        state = {"method": meta["method"], "config": dict(meta["config"]), "layers": dict(meta["layers"]),
                 "tensors": {p: {} for p in meta["layers"]}, "shared": {}}
        for i, (layer, key, dtype) in enumerate(meta["index"]):
            value = _from_numpy(arrays[f"t{i}"], dtype)
            (state["shared"] if layer is None else state["tensors"][layer])[key] = value
        name = meta["name"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptFileError(path, f"unreadable adapter header ({exc.__class__.__name__}: {exc})") from None
    return name, state


def _check_model_layers(model, state, source):
    modules = dict(model.named_modules())
    for path, info in state["layers"].items():
        module = modules.get(path)
        if isinstance(module, AdaptedLayer):
            module = module.base_layer
        if module is None or not isinstance(module, SUPPORTED):
            raise ValueError(f"`model` has no adaptable layer {path!r}, which {source} adapts "
                             f"(layers there: {sorted(state['layers'])})")
        spec = LayerSpec.from_module(module)
        if spec.layer_type != info["type"] or list(spec.weight_shape) != list(info["weight_shape"]):
            raise ValueError(f"`model`: layer {path!r} is a {spec.layer_type} of weight shape "
                             f"{tuple(spec.weight_shape)}, but {source} was saved from a {info['type']} of "
                             f"weight shape {tuple(info['weight_shape'])}")


def load_adapter(model, path, *, name=None):
    """Put an adapter saved by :meth:`Adapter.save` on ``model`` (in place).

    When ``model`` already has an adapter of that name, its tensors are loaded into it (method,
    config and layers must match); otherwise the adapter is built on the saved layers first.

    Parameters
    ----------
    model : torch.nn.Module
        A model with the layers the adapter was saved from (same names and weight shapes).
    path : str or path-like
        File written by :meth:`Adapter.save`.
    name : str, optional
        Name to give the adapter on ``model``; default the saved name.

    Returns
    -------
    Adapter
        The loaded adapter, active.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    lowrank._utils.io.CorruptFileError
        (a ValueError) If the file is truncated, damaged or not an adapter file.
    ValueError
        If the file's method is not registered or differs from the existing adapter's, or ``model``
        lacks a saved layer or has it with another type or shape.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> from lowrank.nn import adapt, load_adapter
    >>> make = lambda: torch.nn.Sequential(torch.nn.Linear(4, 4))
    >>> model = make()
    >>> adapter = adapt(model, rank=2, init="gaussian", rng=0)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "adapter.npz"
    >>> adapter.save(path)
    >>> other = make()
    >>> other.load_state_dict({k.replace("base_layer.", ""): v for k, v in model.state_dict().items()
    ...                        if "adapters" not in k})
    <All keys matched successfully>
    >>> loaded = load_adapter(other, path)
    >>> x = torch.randn(3, 4)
    >>> bool(torch.equal(other(x), model(x)))
    True
    """
    saved_name, state = read_adapter_file(path)
    name = saved_name if name is None else name
    source = str(path)
    cls = get_method(state["method"], argument=f"{source}: method")
    if name in adapter_names(model):
        adapter = Adapter(model, name)
        load_adapter_state(adapter, state, source=source)
        return adapter.set_active(name)
    _check_model_layers(model, state, source)
    config = _config_of(cls, state["config"], source)
    wanted = set(state["layers"])
    adapter = build_adapter(model, cls, config, lambda n, m: n in wanted, name, rng=0)
    load_adapter_state(adapter, state, source=source)
    return adapter
