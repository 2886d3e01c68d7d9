"""Saving fitted state: atomic writes, checksummed contents, and one clear error for a damaged file.

Every persistable object of lowrank goes through :func:`save_npz` / :func:`load_npz`:

* the file is written to a temporary file beside the target, fsynced, then renamed over it, so a
  save killed mid-write never replaces a good file; temporaries left by a killed process (their
  name carries the writer's pid) are removed by the next save of the same path;
* a JSON header records the object's ``kind``, the format version and a SHA-256 digest of every
  array, so a truncated file, a flipped byte, a missing array or a file of another kind raises
  :class:`CorruptFileError` (a ``ValueError``) naming the path and what is wrong, never a raw
  ``BadZipFile`` / ``EOFError`` / ``KeyError`` / ``JSONDecodeError`` from the layers below.
"""

import errno
import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT_KEY = "__lowrank_format__"
FORMAT_VERSION = 1


class CorruptFileError(ValueError):
    """A saved lowrank file that cannot be read back as what was asked for.

    Raised by every ``load`` of lowrank for a truncated or damaged file, a checksum mismatch, a
    missing array, a file of another kind, or one written by a newer format version. The message
    names the path and the reason; ``path`` and ``reason`` are kept as attributes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.npz"
    >>> _ = path.write_bytes(b"not a zip file")
    >>> try:
    ...     load_npz(path, kind="thing")
    ... except CorruptFileError as err:
    ...     print(err.reason)
    not a lowrank file (truncated or not a zip archive)
    """

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _remove_stale_temporaries(path):
    """Delete temporaries of ``path`` whose writer process no longer exists (a killed save)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\..*\.tmp$")
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            try:
                entry.unlink()
            except OSError:  # another saver cleaned it first, or it is not ours to remove
                pass


def atomic_write_bytes(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


def _digest(array):
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}|{array.shape}|".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def save_npz(path, arrays, *, kind, meta=None):
    """Atomically save ``arrays`` (name -> ndarray) plus JSON ``meta`` tagged with ``kind``.

    ``np.savez`` appends ``.npz`` to names without it; we write exactly ``path``.
    """
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    header = json.dumps({
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "meta": meta or {},
        "arrays": {name: _digest(value) for name, value in arrays.items()},
    })
    payload = dict(arrays)
    payload[FORMAT_KEY] = np.frombuffer(header.encode(), dtype=np.uint8)
    atomic_write_bytes(path, lambda f: np.savez(f, **payload))


def _read_header(path, data):
    if FORMAT_KEY not in data.files:
        raise CorruptFileError(path, "not written by lowrank (no format header)")
    try:
        header = json.loads(bytes(data[FORMAT_KEY]).decode())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptFileError(path, f"unreadable format header ({exc.__class__.__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise CorruptFileError(path, "unreadable format header (no kind)")
    return header


def load_npz(path, *, kind):
    """Load what :func:`save_npz` wrote; checks the ``kind`` tag and every checksum.

    Returns
    -------
    arrays : dict of str to ndarray
    meta : dict

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CorruptFileError
        If the file is truncated or damaged, fails its checksum, misses an array, holds another
        kind, or was written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            header = _read_header(path, data)
            if header["kind"] != kind:
                raise CorruptFileError(path, f"holds a {header['kind']!r}, not a {kind!r}")
            version = header.get("format_version", 0)
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise CorruptFileError(path, f"written by a newer version of lowrank (format {version!r}, "
                                             f"this one reads up to {FORMAT_VERSION}); upgrade lowrank")
            arrays = {k: data[k] for k in data.files if k != FORMAT_KEY}
    except CorruptFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError) as exc:
        # numpy/zipfile report truncation, bad CRCs and pickled objects in many ways; say it once.
        if "CRC" in str(exc):
            raise CorruptFileError(path, "checksum mismatch (the file was modified or damaged)") from None
        # np.load reads a file that is not a zip archive as a pickle and refuses it
        not_zip = isinstance(exc, (zipfile.BadZipFile, EOFError)) or "pickled" in str(exc)
        detail = "truncated or not a zip archive" if not_zip else f"damaged ({exc.__class__.__name__}: {exc})"
        raise CorruptFileError(path, f"not a lowrank file ({detail})") from None
    digests = header.get("arrays")
    if digests is not None:  # files written before format 1 carry no digests
        missing = sorted(set(digests) - set(arrays))
        if missing:
            raise CorruptFileError(path, f"missing array(s) {', '.join(missing)}")
        for name, digest in digests.items():
            if _digest(arrays[name]) != digest:
                raise CorruptFileError(path, f"checksum mismatch in array {name!r} (the file was modified or damaged)")
    return arrays, header["meta"]
