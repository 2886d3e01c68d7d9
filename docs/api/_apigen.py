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
    """Every public (sub)package of lowrank that declares ``__all__``, in a stable order.

    The top-level subpackages come from ``lowrank._SUBMODULES`` (the lazy-import list, so a new one is
    picked up), nested public packages (e.g. ``lowrank.nn.zoo``) from a walk of each one's ``__path__``.
    """
    import lowrank

    found = []

    def visit(name):
        if name in EXCLUDED or any(part.startswith("_") for part in name.split(".")[1:]):
            return
        module = importlib.import_module(name)
        if getattr(module, "__all__", None) is not None:
            found.append(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if info.ispkg:
                visit(f"{name}.{info.name}")

    for sub in lowrank._SUBMODULES:
        visit(f"lowrank.{sub}")
    return found


def _ancestors(package):
    parts = package.split(".")
    return [".".join(parts[:k]) for k in range(len(parts) - 1, 1, -1)]


def reexported(package):
    """``{name: qualified name in an ancestor package}`` for the entries of ``__all__`` of ``package``
    that an enclosing package already exports (the same object): they are documented there once."""
    module = importlib.import_module(package)
    found = {}
    for ancestor in _ancestors(package):
        parent = importlib.import_module(ancestor)
        for name in module.__all__:
            if name not in found and name in getattr(parent, "__all__", ()):
                if getattr(parent, name) is getattr(module, name):
                    found[name] = f"{ancestor}.{name}"
    return found


def public_names(package):
    """The entries of ``__all__`` of ``package`` that get a page under it: not subpackages (they
    get their own page) and not names an enclosing package already exports (see :func:`reexported`)."""
    module = importlib.import_module(package)
    skip = reexported(package)
    return [name for name in module.__all__
            if name not in skip and not inspect.ismodule(getattr(module, name))]


def _table(title, names):
    if not names:
        return []
    lines = [title, "-" * len(title), "", ".. autosummary::", "   :toctree: .", "   :nosignatures:", ""]
    lines += [f"   {name}" for name in names]
    return lines + [""]


def package_page(package):
    """The reST text of the page of ``package``: its docstring, then tables of classes and functions."""
    module = importlib.import_module(package)
    names = public_names(package)
    classes = [n for n in names if inspect.isclass(getattr(module, n))]
    functions = [n for n in names if n not in classes]
    lines = [f"``{package}``", "=" * (len(package) + 4), "", f".. automodule:: {package}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {package}", ""]
    lines += _table("Classes", classes) + _table("Functions", functions)
    again = reexported(package)
    if again:
        links = ", ".join(f":obj:`~{target}`" for target in again.values())
        lines += ["Also exported here", "------------------", "", f"Documented where they are exported first: {links}.", ""]
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
    for package in packages:
        (outdir / f"{package}.rst").write_text(package_page(package))
    return packages
