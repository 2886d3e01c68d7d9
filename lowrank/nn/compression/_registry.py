"""The compressor registry: ``compress(model, method)`` looks ``method`` up here."""

import importlib

from lowrank._utils.validation import check_choice

_COMPRESSORS = {}
_BUILTIN = ("svd", "afm", "lq", "fwsvd", "welore", "cospadi")


def _load_builtins():
    # The built-in compressors register themselves when their modules are imported.
    for name in _BUILTIN:
        importlib.import_module(f"lowrank.nn.compression.{name}")


def register_compressor(name, cls, *, replace=False):
    """Register a compressor class under ``name`` for :func:`lowrank.nn.compress`.

    Parameters
    ----------
    name : str
        The ``method`` name users pass to ``compress``.
    cls : type
        A subclass of :class:`lowrank.nn.compression.Compressor`.
    replace : bool, default=False
        Allow replacing a compressor already registered under ``name``.

    Returns
    -------
    cls
        Unchanged.

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``cls`` is not a Compressor subclass.
    ValueError
        If ``name`` is empty or already registered (and ``replace`` is False), or ``cls.statistics``
        is not None, ``"outputs"`` or ``"custom"``.

    Examples
    --------
    >>> from lowrank.nn.compression import Compressor
    >>> from lowrank.nn.compression.svd import SVDCompressor
    >>> class MySVD(SVDCompressor):
    ...     pass
    >>> _ = register_compressor("my-svd", MySVD)
    >>> "my-svd" in list_compressors()
    True
    """
    from lowrank.nn.compression._base import Compressor

    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("`name` must be a non-empty string")
    if not (isinstance(cls, type) and issubclass(cls, Compressor)):
        raise TypeError(f"`cls` must be a subclass of lowrank.nn.compression.Compressor, got {cls!r}")
    if cls.statistics not in (None, "outputs", "custom"):
        raise ValueError(f"`cls`: statistics={cls.statistics!r} is not one the core knows (None, 'outputs' or "
                         "'custom')")
    if name in _COMPRESSORS and _COMPRESSORS[name] is not cls and not replace:
        raise ValueError(f"`name`: a compressor {name!r} is already registered ({_COMPRESSORS[name].__name__}); "
                         "pass replace=True to replace it")
    _COMPRESSORS[name] = cls
    return cls


def list_compressors():
    """Names of the registered compressors, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> {"afm", "svd"} <= set(list_compressors())
    True
    """
    _load_builtins()
    return sorted(_COMPRESSORS)


def get_compressor(method):
    """The compressor class registered as ``method``.

    Raises
    ------
    ValueError
        If nothing is registered under ``method``.

    Examples
    --------
    >>> get_compressor("afm").__name__
    'AFMCompressor'
    """
    check_choice(method, "method", list_compressors())
    return _COMPRESSORS[method]
