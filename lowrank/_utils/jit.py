"""The one way lowrank compiles numba kernels: :func:`njit`, lazy and cached on disk across processes.

Every kernel module writes ``from lowrank._utils.jit import njit`` and decorates with ``@njit`` /
``@njit(parallel=True, ...)`` exactly as with :func:`numba.njit`. What this adds:

* **Lazy, no signatures.** A kernel compiles on its first call, for the argument types of that call
  (the dtypes and layouts actually used); passing an eager signature list is refused, since it would
  compile every combination at import.
* **An on-disk cache that never makes an install fail.** Compiled machine code is stored by numba's own
  cache machinery (index + data files, loaded in later processes), but in one place chosen here:

  1. ``$NUMBA_CACHE_DIR/lowrank`` when ``NUMBA_CACHE_DIR`` (numba's setting) is set;
  2. otherwise the per-user cache folder ``platformdirs.user_cache_dir("lowrank")/numba``
     (``$XDG_CACHE_HOME/lowrank/numba``, by default ``~/.cache/lowrank/numba`` on Linux).

  The package folder itself is never written, so a read-only install (site-packages owned by root, a
  wheel baked into a container image) imports, runs and caches like an editable checkout. If no folder
  can be created or written (no home, read-only home), kernels compile in memory as without a cache:
  nothing is raised, the reason is logged at DEBUG on the ``lowrank`` logger. A cache folder that exists
  but is read-only (filled by ``python -m lowrank warmup`` at image build time) is still read. Nothing
  touches the file system at import: the cache is opened on a kernel's first call.
* **Invalidation that is right.** A cached binary is used only when all of these match the process
  loading it: the Python version (file names), the numba, llvmlite and numpy versions (folder name),
  the target CPU name and features (numba's index key), the kernel's own bytecode and closure (numba's
  index key), its decorator options (file names: the same Python function compiled with ``parallel=True``
  and without gets two entries), and the content of the kernel's module **and of every lowrank module it
  imports, transitively** (the source stamp). numba's own stamp covers the kernel's file only, but a
  kernel inlines jitted helpers and freezes constants that it imports from other modules: their edits
  must invalidate it too. The imports are read statically (``ast``), including imports inside
  functions; a module importing names from a package's ``__init__`` takes every module of that package,
  since ``__init__`` may attach names lazily. Edits elsewhere in the package keep the cache. Several
  installs (virtual environments, checkouts) share the user folder without clashing: each package
  folder has its own sub-folder.

This overrides the earlier design rule "no ``cache=True`` by default", which was there because plain
``numba.njit(cache=True)`` raises ``RuntimeError: cannot cache function ...: no locator available``
at import on read-only installs (numba issues #5566, #4908).

Switches: ``LOWRANK_KERNEL_CACHE=0`` disables the disk cache (kernels compile in memory);
``njit(cache=False)`` does it for one kernel. ``python -m lowrank warmup`` compiles every kernel once.
"""

import ast
import functools
import hashlib
import inspect
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("lowrank")

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: every dispatcher made by :func:`njit`, in creation order (``python -m lowrank warmup`` reports them)
KERNELS = []


def njit(func=None, /, *, cache=True, **options):
    """Compile ``func`` lazily with :func:`numba.njit`, with lowrank's cross-process disk cache.

    Parameters
    ----------
    func : callable, optional
        The Python function. Omitted, ``njit(**options)`` returns a decorator.
    cache : bool, default=True
        Store and reuse compiled code on disk (see the module docstring for where and when it is
        invalidated). ``False`` compiles in memory only.
    **options
        Passed to :func:`numba.njit` (``parallel``, ``nogil``, ``fastmath``, ``inline``, ...).

    Returns
    -------
    numba.core.registry.CPUDispatcher
        The numba dispatcher (``.py_func``, ``.signatures``, ``.stats`` as usual).

    Raises
    ------
    TypeError
        If ``func`` is a signature (a string, a numba type or a list of them): lowrank's kernels are
        compiled for the types of their first call, never eagerly.

    Examples
    --------
    >>> from lowrank._utils.jit import njit
    >>> @njit
    ... def add(a, b):
    ...     return a + b
    >>> add(1, 2)
    3
    """
    if func is None:
        return functools.partial(njit, cache=cache, **options)
    if not inspect.isfunction(func):
        raise TypeError(
            "`func` must be a Python function: lowrank kernels compile lazily for the types of their "
            f"first call, so eager signatures are not accepted (got {type(func).__name__})"
        )
    import numba

    dispatcher = numba.njit(**options)(func)
    if not hasattr(dispatcher, "_cache"):  # NUMBA_DISABLE_JIT=1: numba hands back the Python function
        return dispatcher
    if cache and os.environ.get("LOWRANK_KERNEL_CACHE", "1").strip().lower() not in ("0", "false", "no", "off"):
        dispatcher._cache = _LazyKernelCache(dispatcher.py_func, _options_tag(options))
    KERNELS.append(dispatcher)
    return dispatcher


def __getattr__(name):
    # built on first access: defining a numba intrinsic imports numba, and this module must stay light
    if name == "num_threads":
        fn = globals()["num_threads"] = _make_num_threads()
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_num_threads():
    """``num_threads()``: numba's current thread count, callable from a kernel that is cached.

    ``numba.get_num_threads()`` inside a kernel calls the threading layer through a ctypes pointer
    baked into the machine code, which numba refuses to cache ("uses dynamic globals"). This
    intrinsic calls the same C function by its symbol name, resolved when the code is loaded.
    """
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic
    from numba.np.ufunc.parallel import _launch_threads

    @intrinsic
    def num_threads(typingctx):
        _launch_threads()  # registers the threading layer's symbols with LLVM

        def codegen(context, builder, signature, args):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []),
                                                "get_num_threads")
            return builder.sext(builder.call(fn, []), cgutils.intp_t)

        return types.intp(), codegen

    return num_threads


def cache_root():
    """The folder holding lowrank's compiled kernels (it may not exist yet).

    ``$NUMBA_CACHE_DIR/lowrank`` when numba's cache folder is set, else
    ``platformdirs.user_cache_dir("lowrank")/numba``.
    """
    import numba

    if numba.config.CACHE_DIR:
        return Path(numba.config.CACHE_DIR) / "lowrank"
    import platformdirs

    return Path(platformdirs.user_cache_dir("lowrank", appauthor=False)) / "numba"


def build_tag():
    """Name of the cache sub-folder: the versions a compiled binary depends on."""
    import llvmlite
    import numba
    import numpy

    return f"{sys.implementation.cache_tag}-numba{numba.__version__}-llvmlite{llvmlite.__version__}-numpy{numpy.__version__}"


def cache_size(root=None):
    """Total bytes of the files under ``root`` (default :func:`cache_root`); 0 if it does not exist."""
    root = Path(cache_root() if root is None else root)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def _canonical(value):
    # sets (fastmath flags) iterate in a per-process hash order: sort them so the tag is stable
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(_canonical(v) for v in value))
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return repr(value)


def _options_tag(options):
    return hashlib.sha256(repr(_canonical(options)).encode()).hexdigest()[:8]


def _module_files(name):
    """The files of module ``name`` if it belongs to this package (a module, or a package's ``__init__``)."""
    parts = name.split(".")
    if parts[0] != _PACKAGE_DIR.name:
        return []
    base = _PACKAGE_DIR.parent.joinpath(*parts)
    if (base / "__init__.py").is_file():  # a package: its __init__ may attach any of its modules lazily
        return [base / "__init__.py", *sorted(base.glob("*.py"))]
    module = base.with_name(base.name + ".py")
    return [module] if module.is_file() else []


def _imported_modules(path, source):
    """Dotted names that ``path`` imports anywhere (top level or inside functions), relative ones resolved."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # a file being edited: its bytes are still in the digest
        return
    try:
        package = list(path.parent.relative_to(_PACKAGE_DIR.parent).parts)
    except ValueError:
        package = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # names may be submodules


@functools.lru_cache(maxsize=None)
def _sources_digest(py_file):
    """sha256 over the content of ``py_file`` and of every lowrank module it imports, transitively."""
    seen, todo = {}, [Path(py_file).resolve()]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen[path], names = _read_module(path)
            todo.extend(f.resolve() for name in names for f in _module_files(name))
    digest = hashlib.sha256()
    for path in sorted(seen):
        digest.update(os.path.relpath(path, _PACKAGE_DIR.parent).encode() + b"\0" + seen[path] + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _read_module(path):
    """``(content, imported names)`` of one file, read and parsed once a process (shared by the kernels)."""
    source = path.read_bytes()
    return source, tuple(_imported_modules(path, source))


def _numba_caching():
    from numba.core import caching

    return caching


@functools.lru_cache(maxsize=None)
def _classes():
    """numba's cache classes, subclassed (built on first use so that importing this module stays light)."""
    caching = _numba_caching()

    class KernelLocator(caching._CacheLocator):
        """Cache folder ``cache_root()/build_tag()/<package folder>_<hash of its path>``."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(cache_root() / build_tag() / self.get_suitable_cache_subpath(py_file))
            self.read_only = False

        def ensure_cache_path(self):
            try:
                super().ensure_cache_path()
            except OSError:
                path = self._cache_path
                if not (os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)):
                    raise
                self.read_only = True  # a prebuilt cache on a read-only file system: load, never save

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            return _sources_digest(self._py_file)

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.isfile(py_file):
                return None
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError as exc:
                logger.debug("no kernel cache for %s: %s", py_func.__qualname__, exc)
                return None
            return self

    class KernelCacheImpl(caching.CompileResultCacheImpl):
        _locator_classes = [KernelLocator]

        def __init__(self, py_func, options_tag):
            self._options_tag = options_tag
            super().__init__(py_func)

        def get_filename_base(self, fullname, abiflags):
            return super().get_filename_base(f"{fullname}-{self._options_tag}", abiflags)

    class KernelCache(caching.FunctionCache):
        def __init__(self, py_func, options_tag):
            self._impl_class = functools.partial(KernelCacheImpl, options_tag=options_tag)
            super().__init__(py_func)

        def load_overload(self, sig, target_context):
            # cached code may call the threading layer by symbol (num_threads() below), and loading it
            # does not run the typing that registers those symbols: without this a serial kernel loaded
            # in a fresh process dies with "LLVM ERROR: Symbol not found: get_num_threads"
            _launch_threads()
            try:
                return super().load_overload(sig, target_context)
            except Exception as exc:  # a truncated or foreign file must cost a compile, never a crash
                logger.warning("ignoring unreadable kernel cache in %s (%s: %s)", self.cache_path,
                               type(exc).__name__, exc)
                return None

        def save_overload(self, sig, data):
            if self._impl.locator.read_only:
                return
            try:
                super().save_overload(sig, data)
            except OSError as exc:  # disk full, folder removed or made read-only meanwhile
                logger.debug("could not save a kernel to %s: %s", self.cache_path, exc)
            except Exception as exc:  # saving reads the index first: an unreadable one is started afresh
                logger.warning("replacing unreadable kernel cache index in %s (%s: %s)", self.cache_path,
                               type(exc).__name__, exc)
                try:
                    self._cache_file.flush()
                    super().save_overload(sig, data)
                except Exception as exc:
                    logger.debug("could not save a kernel to %s: %s", self.cache_path, exc)

    return KernelLocator, KernelCacheImpl, KernelCache


def _launch_threads():
    from numba.np.ufunc.parallel import _launch_threads as launch

    launch()  # idempotent: loads the threading layer once a process and registers its symbols


class _LazyKernelCache:
    """Stands in for numba's cache on a dispatcher and opens the real one on the first compile.

    Opening it locates (and creates) the folder and hashes the sources, so doing it at decoration time
    would cost every import file-system work; any failure leaves the kernel uncached.
    """

    def __init__(self, py_func, options_tag):
        self._py_func = py_func
        self._options_tag = options_tag
        self._cache = None

    def _get(self):
        if self._cache is None:
            try:
                self._cache = _classes()[2](self._py_func, self._options_tag)
            except Exception as exc:  # numba's RuntimeError "no locator available", or an OSError
                logger.debug("kernel %s compiles in memory only: %s", self._py_func.__qualname__, exc)
                self._cache = _numba_caching().NullCache()
        return self._cache

    @property
    def cache_path(self):
        return self._get().cache_path

    def load_overload(self, sig, target_context):
        return self._get().load_overload(sig, target_context)

    def save_overload(self, sig, data):
        return self._get().save_overload(sig, data)

    def enable(self):
        self._get().enable()

    def disable(self):
        self._get().disable()

    def flush(self):
        self._get().flush()
