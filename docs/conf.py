"""Sphinx configuration of the lowrank documentation.

Build (warnings are errors)::

    pip install -e ".[torch,docs]"
    python -m sphinx -W -b html docs docs/_build/html

``LOWRANK_GALLERY`` (a regular expression, default: every example) restricts which gallery scripts run;
CI runs them all. ``LOWRANK_GALLERY=none`` renders the gallery without running it.
"""

import os
import sys
from pathlib import Path

import lowrank

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "api"))
import _apigen  # noqa: E402  (the generator lives beside the API index it fills)

# -- project ----------------------------------------------------------------------------------------
project = "lowrank"
author = "the lowrank developers"
copyright = "2026, the lowrank developers"
release = version = lowrank.__version__

# -- extensions -------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json"]
templates_path = ["_templates"]

# Every cross-reference must resolve ...
nitpicky = True
# ... except into projects whose inventories we cannot fetch (the build runs offline, so no intersphinx):
# their names are shown as code, not links.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sklearn|torch|tensorly|tl|dask|distributed|networkx|nx|pandas|numba|"
               r"matplotlib|sentence_transformers|collections|typing|os|pathlib|dataclasses|abc|enum|"
               r"concurrent|io|logging|builtins)(\..*)?"),
    # Names of public-named modules that docstrings mention but that are not in any `__all__` (so they
    # have no page): helpers, result containers and the HIR-Diff priors. Reported to their owners; a
    # name that joins an `__all__` gets its page and its links resolve without editing this list.
    (r"py:.*", r"(lowrank\.vision\.prior\..*|lowrank\.vision\._hsi_tv\..*|Adjacency|CrossLayer|HyperspectralCube|"
               r"DEFAULT_MODULES|render_shapes|fidelity_lipschitz|estimate_noise_level|rank_residual_noise|"
               r"edge_weights|forward|lowrank\.nn\.zoo\.models\..*|sequence_data)"),
    # Private objects (a dotted path with a component starting with "_") never have a page, by design.
    (r"py:.*", r"(.*\.)?_[A-Za-z].*"),
]

# -- API reference ----------------------------------------------------------------------------------
API_PACKAGES = _apigen.write_pages(HERE / "api" / "generated")

# autosummary cuts a docstring's first sentence at a period followed by a space, so the ellipsis in
# ``fc1 -> ... -> head`` ended the sentence inside a literal (an -W error). Not after ``..``:
import re  # noqa: E402

import sphinx.ext.autosummary  # noqa: E402

sphinx.ext.autosummary.periods_re = re.compile(r"(?<!\.\.)\.(?:\s+)")

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_inherit_docstrings = False  # else torch's generic `Module.forward` text lands on our layers
autodoc_typehints = "none"  # the numpydoc sections say the types; signatures keep the defaults
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True


def _fill_api_index(app, docname, source):
    # The API index lists the generated package pages; the list comes from __all__ at build time.
    if docname == "api/index":
        entries = "\n   ".join(f"generated/{p}" for p in API_PACKAGES)
        source[0] = source[0].replace("@PACKAGES@", entries)


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn adds `set_<method>_request` (metadata routing) to every estimator class; their
    # docstrings point into sklearn's own glossary. They are sklearn's API, documented there.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


GUIDE_ORDER = ["linalg", "pagerank", "fastrp", "completion", "streaming", "tensors", "hirdiff",
               "householder", "retrieval", "ctr", "nn"]


def _fill_guides(app, docname, source):
    # Every docs/*.md is a guide: the known ones in area order, any new one after them.
    if docname == "guides":
        found = sorted(p.stem for p in HERE.glob("*.md"))
        ordered = [g for g in GUIDE_ORDER if g in found] + [g for g in found if g not in GUIDE_ORDER]
        source[0] = source[0].replace("@GUIDES@", "\n   ".join(ordered))


def _resolve_by_suffix(app, env, node, contnode):
    # A docstring may name an object by the path it is written at (``Adapter`` inside
    # lowrank.nn.adapters) while its page lives at its home (lowrank.nn.Adapter): resolve a missing
    # Python reference to the one documented object whose name ends with it, if there is exactly one.
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    if not target:
        return None
    objects = {name: entry for name, entry in env.get_domain("py").objects.items() if not entry.aliased}
    matches = [name for name in objects if name == target or name.endswith("." + target)]
    if not matches and target.startswith("lowrank."):  # a full path other than the home's
        short = target.rsplit(".", 1)[-1]
        matches = [name for name in objects if name.startswith("lowrank.") and name.endswith("." + short)]
    if len(matches) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    entry = objects[matches[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0])


def setup(app):
    app.connect("source-read", _fill_api_index)
    app.connect("source-read", _fill_guides)
    app.connect("missing-reference", _resolve_by_suffix)
    app.connect("autodoc-skip-member", _skip_member)


# -- guides (Markdown, rendered as they are) --------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# -- gallery ----------------------------------------------------------------------------------------
_pattern = os.environ.get("LOWRANK_GALLERY", "")
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": "^$" if _pattern == "none" else (_pattern or r"/plot_"),
    "doc_module": ("lowrank",),
    "backreferences_dir": str(HERE / "api" / "generated" / "backreferences"),
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
}

# -- HTML -------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"lowrank {version}"
html_static_path = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
