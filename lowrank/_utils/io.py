"""Saving fitted state: atomic writes, so a half-written file never replaces a good one."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT_KEY = "__lowrank_format__"


def atomic_write_bytes(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npz(path, arrays, *, kind, meta=None):
    """Atomically save ``arrays`` (name -> ndarray) plus JSON ``meta`` tagged with ``kind``.

    ``np.savez`` appends ``.npz`` to names without it; we write exactly ``path``.
    """
    header = json.dumps({"kind": kind, "meta": meta or {}})
    payload = dict(arrays)
    payload[FORMAT_KEY] = np.frombuffer(header.encode(), dtype=np.uint8)
    atomic_write_bytes(path, lambda f: np.savez(f, **payload))


def load_npz(path, *, kind):
    """Load what :func:`save_npz` wrote; checks the ``kind`` tag. Returns ``(arrays, meta)``."""
    with np.load(path, allow_pickle=False) as data:
        if FORMAT_KEY not in data.files:
            raise ValueError(f"{path} was not written by lowrank (no format header)")
        header = json.loads(bytes(data[FORMAT_KEY]).decode())
        if header["kind"] != kind:
            raise ValueError(f"{path} holds a {header['kind']!r}, not a {kind!r}")
        arrays = {k: data[k] for k in data.files if k != FORMAT_KEY}
    return arrays, header["meta"]
