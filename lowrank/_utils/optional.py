"""Import optional dependencies with an error that says which extra to install."""

import importlib
import sys
import types

import numpy as np

# module name -> the lowrank extra that provides it
_EXTRA_FOR = {
    "torch": "torch",
    "dask": "distributed",
    "distributed": "distributed",
    "sentence_transformers": "retrieval",
    "skimage": "data",
    "colour": "data",
    "vega_datasets": "data",
    "igraph": "bench",
    "sknetwork": "bench",
}


def import_optional(name, *, extra=None, purpose=None):
    """Import module ``name`` or raise an ImportError naming the extra to install.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"torch"`` or ``"dask.array"``.
    extra : str, optional
        The ``lowrank`` extra providing it; guessed from the top-level name when omitted.
    purpose : str, optional
        What the module is needed for, quoted in the error message.

    Returns
    -------
    module
    """
    before = set(sys.modules)
    print_options = np.get_printoptions()
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = extra or _EXTRA_FOR.get(top)
        need = f" for {purpose}" if purpose else ""
        hint = f'pip install "lowrank[{extra}]"' if extra else f"pip install {top}"
        raise ImportError(f"`{top}` is required{need} but is not installed; install it with: {hint}") from exc
    _drop_stand_in_modules(before)
    # colour-science switches numpy to legacy='1.13' printing on import: a library we load on the
    # user's behalf must not change how their arrays print
    if np.get_printoptions() != print_options:
        np.set_printoptions(**print_options)
    return module


def _drop_stand_in_modules(before):
    """Remove stand-in objects an import left in ``sys.modules``.

    colour-science registers MagicMock objects as ``matplotlib`` when matplotlib is absent; a
    later ``import igraph`` (or anything probing for matplotlib) then breaks with a metaclass
    error. The importing library keeps its own references, so removing those entries is safe.
    """
    for key in set(sys.modules) - before:
        # Only matplotlib stand-ins: other libraries (colour itself) register lazy non-module objects
        # that must stay. issubclass on the type, because a mock may fake __class__.
        if key.split(".")[0] in ("matplotlib", "mpl_toolkits") and not issubclass(
            type(sys.modules[key]), types.ModuleType
        ):
            del sys.modules[key]


def has_module(name):
    """True when ``name`` can be imported (without raising on absence)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
