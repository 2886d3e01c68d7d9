"""The on-disk kernel cache of lowrank._utils.jit, checked in fresh interpreters.

Every test runs a snapshot copy of the package (so edits in a working tree during the run cannot
change the source stamp between two processes) and a small real kernel: the sparse random projection,
which inlines the counter RNG of another module. Cache behaviour is read from the dispatcher's
``stats`` (cache hits and misses), never from timings; the kernel's output is compared with the plain
numpy twin every time, so a binary loaded from the cache is also checked to compute the right thing.

Read-only installs: these tests may run as root, and root ignores file permissions, so ``chmod`` alone
proves nothing. The child process installs an audit hook (``sys.addaudithook``) that refuses, with
``PermissionError``, every write, folder creation, rename or removal under the package copy -- a
read-only file system as seen from Python, for root too. numba's own in-tree locator is checked to
fail under it, and plain ``numba.njit(cache=True)`` is checked to raise numba's "no locator available"
error when the home folder is unusable too (issues #5566 / #4908), while lowrank's kernels run.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import lowrank

CHILD = r"""
import json, os, sys
root = os.environ["PKG_ROOT"]
if os.environ.get("READ_ONLY"):
    import re
    pkg = os.path.join(root, "lowrank")
    write = re.compile(r"[wax+]")

    def _inside(path):
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(pkg)
        except (TypeError, ValueError):
            return False

    def hook(event, args):
        if event == "open" and args and _inside(args[0]):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            if (isinstance(mode, str) and write.search(mode)) or (
                    isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
                raise PermissionError(13, "Read-only file system (test)", os.fsdecode(args[0]))
        elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir") and args and _inside(args[0]):
            raise PermissionError(13, "Read-only file system (test)", os.fsdecode(args[0]))

    sys.addaudithook(hook)
if os.environ.get("FAKE_NUMPY_VERSION"):  # after the imports that check it; the cache reads it at first call
    import numba, numpy, scipy.sparse
    numpy.__version__ = os.environ["FAKE_NUMPY_VERSION"]
import numpy as np
import lowrank
assert lowrank.__file__.startswith(root), lowrank.__file__
from lowrank.linalg._sparse_projection import _projection_rows_numpy
from lowrank.linalg._sparse_projection_kernels import projection_rows_csr as kernel

rows = np.arange(7, dtype=np.int64)
indptr, indices, data = kernel(rows, 16, 0.3, 12345, 1.0 / np.sqrt(0.3 * 16))
ref = _projection_rows_numpy(rows, 16, 0.3, 12345, np.float64)
out = {
    "ok": bool(np.array_equal(indptr, ref.indptr) and np.array_equal(indices, ref.indices)
               and np.allclose(data, ref.data, rtol=0, atol=1e-15)),
    "hits": sum(kernel.stats.cache_hits.values()),
    "misses": sum(kernel.stats.cache_misses.values()),
    "path": kernel.stats.cache_path,
}
if os.environ.get("SERIAL_THREADS"):  # a serial kernel calling the threading layer, loaded from the cache
    import numba
    from lowrank.graphs._ppr_kernels import _n_chunks
    out["n_chunks_ok"] = _n_chunks(1000, 4) == min(1000, numba.get_num_threads() * 4)
    out["n_chunks_hits"] = sum(_n_chunks.stats.cache_hits.values())
if os.environ.get("OTHER_OPTIONS"):
    from lowrank._utils.jit import njit
    other = njit(nogil=True, boundscheck=False)(kernel.py_func)
    other(rows, 16, 0.3, 12345, 1.0)
    out["other_hits"] = sum(other.stats.cache_hits.values())
if os.environ.get("READ_ONLY"):
    from numba.core import caching
    locator = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator
    out["numba_in_tree"] = locator.from_function(kernel.py_func, kernel.py_func.__code__.co_filename) is not None
    import numba
    try:
        numba.njit(cache=True)(kernel.py_func)
        out["plain_numba"] = "ok"
    except RuntimeError as exc:
        out["plain_numba"] = str(exc)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def package_copy(tmp_path):
    src = Path(lowrank.__file__).parent
    root = tmp_path / "site"
    shutil.copytree(src, root / "lowrank", ignore=shutil.ignore_patterns("__pycache__", "*.pt", "*.npz"))
    yield root
    for path in [root, *root.rglob("*")]:  # undo chmod a-w so that tmp_path can be removed
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _run(root, tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "LOWRANK_"))}
    full.update(PKG_ROOT=str(root), PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1",
                HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), OMP_NUM_THREADS="1")
    full.update({k: v for k, v in env.items() if v is not None})
    for key in [k for k, v in env.items() if v is None]:
        full.pop(key, None)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=full, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), proc.stderr


def test_second_process_loads_the_cache_and_sources_invalidate_it(package_copy, tmp_path):
    cache = tmp_path / "numba-cache"
    env = dict(NUMBA_CACHE_DIR=str(cache))
    first, _ = _run(package_copy, tmp_path, SERIAL_THREADS="1", **env)
    assert (first["ok"], first["hits"], first["misses"]) == (True, 0, 1)
    assert (first["n_chunks_ok"], first["n_chunks_hits"]) == (True, 0)
    assert Path(first["path"]).is_relative_to(cache / "lowrank")
    assert list(Path(first["path"]).glob("_sparse_projection_kernels.projection_rows_csr-*.nbi"))

    # a fresh process finds it; the same Python function under other options is a separate entry
    second, _ = _run(package_copy, tmp_path, OTHER_OPTIONS="1", SERIAL_THREADS="1", **env)
    assert (second["ok"], second["hits"], second["misses"], second["other_hits"]) == (True, 1, 0, 0)
    assert (second["n_chunks_ok"], second["n_chunks_hits"]) == (True, 1)  # no "Symbol not found" abort
    assert second["path"] == first["path"]

    # an edit of a module the kernel does not import (its caller) keeps the cache
    caller = package_copy / "lowrank" / "linalg" / "_sparse_projection.py"
    caller.write_text(caller.read_text() + "\n# edited\n")
    assert _run(package_copy, tmp_path, **env)[0]["hits"] == 1

    # an edit of ANOTHER module that the kernel imports and inlines (the counter RNG) invalidates it
    dep = package_copy / "lowrank" / "_utils" / "_counter_rng_numba.py"
    dep.write_text(dep.read_text() + "\n# edited\n")
    edited, _ = _run(package_copy, tmp_path, **env)
    assert (edited["ok"], edited["hits"], edited["misses"]) == (True, 0, 1)


@pytest.mark.slow
def test_other_numpy_other_cpu_and_a_corrupt_index_recompile(package_copy, tmp_path):
    env = dict(NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    first, _ = _run(package_copy, tmp_path, **env)
    assert (first["ok"], first["misses"]) == (True, 1)

    # another numpy version: another folder, so a compile
    numpy_other, _ = _run(package_copy, tmp_path, FAKE_NUMPY_VERSION="9.9.9", **env)
    assert (numpy_other["ok"], numpy_other["hits"], numpy_other["misses"]) == (True, 0, 1)
    assert "numpy9.9.9" in numpy_other["path"] and numpy_other["path"] != first["path"]

    # another CPU (numba's target CPU name is part of the index key): a compile, then both coexist
    cpu_other, _ = _run(package_copy, tmp_path, NUMBA_CPU_NAME="generic", **env)
    assert (cpu_other["ok"], cpu_other["hits"], cpu_other["misses"]) == (True, 0, 1)
    assert _run(package_copy, tmp_path, **env)[0]["hits"] == 1

    # a corrupt index costs a compile, not a crash
    for index in Path(first["path"]).glob("_sparse_projection_kernels.projection_rows_csr-*.nbi"):
        index.write_bytes(index.read_bytes()[:20])
    corrupt, _ = _run(package_copy, tmp_path, **env)
    assert (corrupt["ok"], corrupt["misses"]) == (True, 1)
    assert _run(package_copy, tmp_path, **env)[0]["hits"] == 1  # and it was rewritten


def test_read_only_package_caches_in_the_user_folder(package_copy, tmp_path):
    before = sorted(str(p) for p in package_copy.rglob("*"))
    for path in package_copy.rglob("*"):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = dict(NUMBA_CACHE_DIR=None, READ_ONLY="1")
    first, _ = _run(package_copy, tmp_path, **env)
    assert first["numba_in_tree"] is False  # the emulation works: numba sees an unwritable package folder
    assert first["plain_numba"] == "ok"  # numba itself falls back to its user-wide folder here
    assert (first["ok"], first["hits"], first["misses"]) == (True, 0, 1)
    assert Path(first["path"]).is_relative_to(tmp_path / "xdg" / "lowrank" / "numba")
    second, _ = _run(package_copy, tmp_path, **env)
    assert (second["ok"], second["hits"], second["misses"]) == (True, 1, 0)
    assert sorted(str(p) for p in package_copy.rglob("*")) == before  # nothing written into the package


def test_no_writable_folder_anywhere_still_runs(package_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder below a regular file cannot be created, not even by root
    env = dict(NUMBA_CACHE_DIR=None, READ_ONLY="1", HOME=str(blocker / "home"), XDG_CACHE_HOME=str(blocker / "xdg"))
    result, _ = _run(package_copy, tmp_path, **env)
    assert (result["ok"], result["hits"], result["misses"], result["path"]) == (True, 0, 1, None)
    # the pitfall this avoids: plain cache=True raises at decoration time in the same situation
    assert "no locator available" in result["plain_numba"]


def test_disabled_by_environment(package_copy, tmp_path):
    result, _ = _run(package_copy, tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "c"), LOWRANK_KERNEL_CACHE="0")
    assert (result["ok"], result["path"]) == (True, None)
    assert not (tmp_path / "c").exists()


def test_signatures_are_refused_and_options_tag_is_stable():
    from lowrank._utils import jit

    with pytest.raises(TypeError, match="eager signatures"):
        jit.njit("float64(float64)")
    # fastmath flags are a set: the file-name tag must not depend on the process's hash seed
    assert jit._options_tag({"fastmath": {"reassoc", "contract"}}) == jit._options_tag({"fastmath": {"contract", "reassoc"}})
    assert jit._options_tag({"nogil": True}) != jit._options_tag({"parallel": True})


def test_warmup_command_fills_the_cache(package_copy, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "LOWRANK_"))}
    env.update(PYTHONPATH=str(package_copy), NUMBA_CACHE_DIR=str(tmp_path / "c"), OMP_NUM_THREADS="1")
    runs = [subprocess.run([sys.executable, "-m", "lowrank", "warmup", "linalg"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    first, second = (r.stdout.splitlines() for r in runs)
    assert first[0].split()[:2] == ["linalg", "1"] and "(0 from the cache)" in first[0]
    assert second[0].split()[:2] == ["linalg", "1"] and "(1 from the cache)" in second[0]
    assert first[-1].startswith(f"kernel cache: {tmp_path / 'c' / 'lowrank'} (")
    assert list((tmp_path / "c" / "lowrank").rglob("*.nbc"))
