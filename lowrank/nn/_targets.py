"""Which modules of a model a method acts on, and how to swap one in place.

Shared by ``adapt`` (adapters), ``compress`` (compressors) and the low-rank training callbacks, so
that every entry point of ``lowrank.nn`` reads ``targets`` the same way:

* ``None``: every supported layer;
* an fnmatch pattern on the qualified module name (``"encoder.*.fc1"``) or a list of them;
* a module type (``nn.Conv2d``) or a list mixing types and patterns;
* a callable ``(name, module) -> bool``.

A pattern that matches nothing, or names only modules the method cannot handle, is an error
naming the pattern: silently adapting fewer layers than asked is the failure users hit with PEFT.
"""

import fnmatch

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn


def _type_names(supported):
    return ", ".join(t.__name__ for t in supported)


def select_modules(model, targets, supported, *, check=None, name="targets"):
    """Qualified names of the modules of ``model`` selected by ``targets``, in model order.

    Parameters
    ----------
    model : torch.nn.Module
    targets : None, str, type, callable or list of str/type
        See the module docstring.
    supported : tuple of type
        Module types the caller can handle; a selected module of another type is an error.
    check : callable, optional
        ``check(name, module)`` raising a ValueError/TypeError for a supported module the caller
        still cannot handle (e.g. a grouped convolution).
    name : str, default="targets"
        Argument name used in error messages.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``model`` is not a module, or a selected module is of an unsupported type.
    ValueError
        If a pattern or type matches no module, or nothing supported is selected.

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> select_modules(model, None, (nn.Linear,))
    ['0', '2']
    >>> select_modules(model, "2", (nn.Linear,))
    ['2']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, m) for n, m in model.named_modules() if n]
    modules = dict(named)
    if targets is None:
        chosen = [n for n, m in named if isinstance(m, supported)]
    elif callable(targets) and not isinstance(targets, type):
        chosen = [n for n, m in named if targets(n, m)]
    else:
        if isinstance(targets, (str, type)):
            targets = [targets]
        chosen = []
        for t in targets:
            if isinstance(t, str):
                hits = [n for n, _ in named if fnmatch.fnmatchcase(n, t)]
            elif isinstance(t, type):
                hits = [n for n, m in named if isinstance(m, t)]
            else:
                raise TypeError(f"`{name}` entries must be name patterns or module types, got {t!r}")
            if not hits:
                raise ValueError(f"`{name}`: {t!r} matches no module of the model")
            # A pattern such as "mlp.*" also matches activations: keep its supported layers; a
            # pattern that names only unsupported modules is an error (reported below).
            hits = [n for n in hits if isinstance(modules[n], supported)] or hits
            chosen += [h for h in hits if h not in chosen]
    for n in chosen:
        m = modules[n]
        if not isinstance(m, supported):
            raise TypeError(f"`{name}`: module {n!r} is a {type(m).__name__}; supported layers are "
                            f"{_type_names(supported)}")
        if check is not None:
            check(n, m)
    if not chosen:
        raise ValueError(f"`{name}` selects no {_type_names(supported)} layer")
    return chosen


def replace_module(model, name, new):
    """Put ``new`` where the submodule ``name`` of ``model`` is (in place).

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    >>> replace_module(model, "1", nn.Tanh())
    >>> type(model[1]).__name__
    'Tanh'
    """
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child] = new
