"""The API reference documents every public name: ``__all__`` of every subpackage against the
pages that ``docs/api/_apigen.py`` and autosummary generate, and against the built HTML.

The generator check needs no Sphinx and runs with the tests. The checks of the built site skip when
Sphinx is absent or the site has not been built; the CI docs step builds it and runs this file with
``LOWRANK_DOCS_HTML=docs/_build/html``, which turns a missing build into a failure.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lowrank

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _apigen():
    spec = importlib.util.spec_from_file_location("_lowrank_docs_apigen", DOCS / "api" / "_apigen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def apigen():
    return _apigen()


@pytest.fixture(scope="module")
def home(apigen):
    return apigen.homes()


@pytest.fixture(scope="module")
def expected(apigen, home):
    """``{package: set of qualified names documented under it}``, read from ``__all__`` now."""
    return {pkg: {f"{pkg}.{name}" for name in apigen.public_names(pkg, home)} for pkg in apigen.public_packages()}


def test_every_subpackage_is_covered(apigen):
    packages = set(apigen.public_packages())
    for sub in lowrank._SUBMODULES:
        assert f"lowrank.{sub}" in packages or f"lowrank.{sub}" in apigen.EXCLUDED, sub


def test_generated_pages_list_every_name(apigen, home, expected, tmp_path):
    apigen.write_pages(tmp_path)
    for pkg, names in expected.items():
        module = importlib.import_module(pkg)
        listed = set()
        for line in (tmp_path / f"{pkg}.rst").read_text().splitlines():
            if line.startswith("   ") and not line.strip().startswith(":"):
                listed.add(f"{pkg}.{line.strip()}")
        assert listed == names, (pkg, sorted(listed ^ names))
        # every entry of __all__ is listed, a subpackage with a page of its own, or the same object
        # as a name that an enclosing package exports and documents
        again = apigen.reexported(pkg, home)
        for name in module.__all__:
            qualified = f"{pkg}.{name}"
            if name in again:
                target = again[name]
                assert any(target in other for other in expected.values()), (qualified, target)
                assert f":obj:`~{target}`" in (tmp_path / f"{pkg}.rst").read_text(), qualified
            else:
                assert qualified in names or qualified in expected, qualified


def _built_html():
    pytest.importorskip("sphinx")
    required = os.environ.get("LOWRANK_DOCS_HTML")
    html = Path(required) if required else DOCS / "_build" / "html"
    if not html.is_absolute():
        html = ROOT / html
    if not (html / "index.html").is_file():
        if required:
            pytest.fail(f"LOWRANK_DOCS_HTML={required}: no built site there")
        pytest.skip("the documentation has not been built")
    return html


def test_autosummary_pages_match_all(expected):
    _built_html()
    generated = DOCS / "api" / "generated"
    stems = {path.stem for path in generated.glob("lowrank.*.rst")}
    for pkg, names in expected.items():
        own = {s for s in stems if s.startswith(pkg + ".") and "." not in s[len(pkg) + 1:] and s not in expected}
        assert own == names, (pkg, "missing:", sorted(names - own), "stale:", sorted(own - names))


def test_built_html_documents_every_name(expected):
    html = _built_html()
    for pkg, names in expected.items():
        page = (html / "api" / "generated" / f"{pkg}.html").read_text(encoding="utf-8")
        for qualified in names:
            assert f'href="{qualified}.html' in page, (pkg, qualified)  # linked from its package page
            text = (html / "api" / "generated" / f"{qualified}.html").read_text(encoding="utf-8")
            assert f'id="{qualified}"' in text, qualified  # the object itself is documented there


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_as_a_plain_script(script, tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
