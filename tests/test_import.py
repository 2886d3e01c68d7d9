"""`import lowrank` stays light, subpackages load lazily, and missing extras are named."""

import subprocess
import sys

import pytest

import lowrank
from lowrank._utils.optional import import_optional

HEAVY = ("torch", "numba", "dask", "distributed", "tensorly", "sklearn")


def test_import_lowrank_loads_no_heavy_dependency():
    code = (
        "import sys, lowrank; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_subpackages_load_lazily():
    code = "import sys, lowrank; assert 'lowrank.linalg' not in sys.modules; lowrank.linalg.randomized_svd; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lowrank.nope


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(ImportError, match=r'pip install "lowrank\[distributed\]"'):
        import_optional("dask.this_module_does_not_exist", purpose="a test")


OPTIONAL_TOP_LEVEL = {"torch", "dask", "distributed", "sentence_transformers", "skimage", "colour", "vega_datasets"}


@pytest.mark.parametrize("package", lowrank._SUBMODULES)
def test_every_public_name_resolves(package):
    """Each name a subpackage lists in __all__ exists, unless an optional extra is missing."""
    import importlib

    module = importlib.import_module(f"lowrank.{package}")
    for name in getattr(module, "__all__", ()):
        try:
            getattr(module, name)
        except ModuleNotFoundError as exc:
            assert exc.name and exc.name.split(".")[0] in OPTIONAL_TOP_LEVEL, f"lowrank.{package}.{name}: {exc}"
        except ImportError as exc:
            assert "pip install" in str(exc), f"lowrank.{package}.{name}: {exc}"
