"""PEP 562 lazy attribute loading for subpackages: ``name -> submodule`` maps."""

import importlib


def attach(package_name, mapping):
    """Return ``(__getattr__, __dir__, __all__)`` that import ``mapping[name]`` on first access.

    ``mapping`` maps each public name to the module (relative to ``package_name``) defining it.
    """

    def __getattr__(name):
        if name not in mapping:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package_name}.{mapping[name]}")
        return getattr(module, name)

    def __dir__():
        return sorted(mapping)

    return __getattr__, __dir__, sorted(mapping)
