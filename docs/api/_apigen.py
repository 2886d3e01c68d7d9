"""Write one reST page per public lowrank subpackage from its ``__all__`` (run by ``docs/conf.py``).

The pages are generated at every build, so a name added to a subpackage's ``__all__`` appears in the
API reference without editing the docs; autosummary then writes one page per name beside them.
``tests/test_docs_api.py`` checks the result against ``__all__``.
"""

import importlib
import inspect
import pkgutil
import shutil
from pathlib import Path

# Public packages that are not part of the library's API reference, with the reason.
EXCLUDED = {
    # The command line is documented by `python -m lowrank --help`; its modules hold argparse plumbing.
    "lowrank.cli",
}


def public_packages():
    """Every public (sub)package of lowrank that declares ``__all__``, in a stable order (and every
    public module a package lists in its ``__all__``).

    The top-level subpackages come from ``lowrank._SUBMODULES`` (the lazy-import list, so a new one is
    picked up), nested public packages (e.g. ``lowrank.nn.zoo``) from a walk of each one's ``__path__``.
    """
    import lowrank

    found = []

    def visit(name):
        if name in found or name in EXCLUDED or any(part.startswith("_") for part in name.split(".")[1:]):
            return
        module = importlib.import_module(name)
        if getattr(module, "__all__", None) is not None:
            found.append(name)
        children = {info.name for info in pkgutil.iter_modules(getattr(module, "__path__", [])) if info.ispkg}
        # a plain module that the package lists in its __all__ (``lowrank.nn.federated``) counts too
        children |= {entry for entry in getattr(module, "__all__", ()) if inspect.ismodule(getattr(module, entry))}
        for child in sorted(children):
            visit(f"{name}.{child}")

    for sub in lowrank._SUBMODULES:
        visit(f"lowrank.{sub}")
    return found


def _exports(package):
    module = importlib.import_module(package)
    return {name: getattr(module, name) for name in module.__all__}


def homes(packages=None):
    """``{id(obj): qualified name}``: where each class or function exported by several packages is
    documented. Its home is the highest package on the path of its defining module that exports it
    (``lowrank.nn.adapt`` rather than ``lowrank.nn.adapters.adapt``), else the first exporter."""
    packages = public_packages() if packages is None else packages
    found = {}
    for package in packages:
        for name, obj in _exports(package).items():
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            module = getattr(obj, "__module__", "") or ""
            on_path = module == package or module.startswith(package + ".")
            best = found.get(id(obj))
            if best is None:
                found[id(obj)] = (on_path, len(package), f"{package}.{name}")
            elif on_path and (not best[0] or len(package) < best[1]):
                found[id(obj)] = (on_path, len(package), f"{package}.{name}")
    return {key: value[2] for key, value in found.items()}


def reexported(package, home=None):
    """``{name: qualified name}`` for the entries of ``__all__`` of ``package`` documented under
    another package (the same object exported from several places gets one page, at its home)."""
    home = homes() if home is None else home
    out = {}
    for name, obj in _exports(package).items():
        target = home.get(id(obj))
        if target is not None and target != f"{package}.{name}":
            out[name] = target
    return out


def public_names(package, home=None):
    """The entries of ``__all__`` of ``package`` that get a page under it: not subpackages (they get
    their own page) and not objects documented at another home (see :func:`reexported`)."""
    skip = reexported(package, home)
    return [name for name, obj in _exports(package).items() if name not in skip and not inspect.ismodule(obj)]


def _table(title, names):
    if not names:
        return []
    lines = [title, "-" * len(title), "", ".. autosummary::", "   :toctree: .", "   :nosignatures:", ""]
    lines += [f"   {name}" for name in names]
    return lines + [""]


def package_page(package, home=None):
    """The reST text of the page of ``package``: its docstring, then tables of classes, functions
    and other objects, then links to the names it re-exports."""
    home = homes() if home is None else home
    module = importlib.import_module(package)
    names = public_names(package, home)
    classes = [n for n in names if inspect.isclass(getattr(module, n))]
    functions = [n for n in names if n not in classes and callable(getattr(module, n))]
    data = [n for n in names if n not in classes and n not in functions]
    lines = [f"``{package}``", "=" * (len(package) + 4), "", f".. automodule:: {package}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {package}", ""]
    lines += _table("Classes", classes) + _table("Functions", functions) + _table("Other objects", data)
    again = reexported(package, home)
    if again:
        links = ", ".join(f":obj:`~{target}`" for target in again.values())
        lines += ["Also exported here", "------------------", "", f"Documented at their home page: {links}.", ""]
    return "\n".join(lines)


def write_pages(outdir):
    """Empty ``outdir`` and write ``<outdir>/<package>.rst`` for every public package; return their names.

    The folder is rebuilt from scratch so that a name removed from ``__all__`` leaves no stale page
    (autosummary writes the per-name pages into the same folder afterwards).
    """
    outdir = Path(outdir)
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    packages = public_packages()
    home = homes(packages)
    for package in packages:
        (outdir / f"{package}.rst").write_text(package_page(package, home))
    return packages
