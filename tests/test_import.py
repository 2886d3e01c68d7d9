"""`import lowrank` stays light, subpackages load lazily, and missing extras are named."""

import subprocess
import sys

import numpy as np
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


def test_optional_import_keeps_numpy_print_options(tmp_path, monkeypatch):
    # colour-science sets legacy='1.13' printing when imported; a stand-in module does the same here
    (tmp_path / "lowrank_fake_legacy_printer.py").write_text("import numpy\nnumpy.set_printoptions(legacy='1.13')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = np.get_printoptions()
    import_optional("lowrank_fake_legacy_printer")
    assert np.get_printoptions() == before
    assert repr(np.array([0.5, 0.0])) == "array([0.5, 0. ])"
