"""Damaged saved files: every ``load`` of lowrank raises CorruptFileError naming the path and the reason."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from lowrank._utils.io import FORMAT_KEY, CorruptFileError, load_npz, save_npz


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "state.npz"
    save_npz(path, {"a": np.arange(500.0), "b": np.eye(3, dtype=np.float32)}, kind="thing", meta={"x": 1})
    return path


def _rewrite(src, dst, *, drop=(), replace=None):
    """Copy the zip members of ``src`` to ``dst``, dropping or replacing some (a valid zip, wrong contents)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if replace and info.filename in replace:
                data = replace[info.filename](data)
            zout.writestr(info, data)


def _reason(path, kind="thing"):
    with pytest.raises(CorruptFileError) as err:
        load_npz(path, kind=kind)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)
    return err.value.reason


def test_round_trip_is_exact(saved):
    arrays, meta = load_npz(saved, kind="thing")
    np.testing.assert_array_equal(arrays["a"], np.arange(500.0))
    assert arrays["b"].dtype == np.float32 and meta == {"x": 1}


def test_truncated_empty_and_garbage_files(saved, tmp_path):
    raw = saved.read_bytes()
    for name, data in [("half", raw[: len(raw) // 2]), ("empty", b""), ("text", b"hello world\n" * 10),
                       ("tail", raw[:-30])]:
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        assert "truncated" in _reason(path) or "damaged" in _reason(path)


def test_flipped_byte_in_data_is_a_checksum_error(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    offset = raw.index(np.arange(500.0)[100:101].tobytes())  # a byte inside array "a"
    raw[offset] ^= 0x10
    path = tmp_path / "flip.npz"
    path.write_bytes(bytes(raw))
    assert "checksum" in _reason(path)


def test_modified_array_in_a_valid_zip_fails_our_digest(saved, tmp_path):
    # a re-zipped file has fresh zip CRCs: only our own digest can see the change
    def bump(data):
        arr = bytearray(data)
        arr[-1] ^= 0x01
        return bytes(arr)

    path = tmp_path / "edited.npz"
    _rewrite(saved, path, replace={"a.npy": bump})
    assert "checksum mismatch in array 'a'" in _reason(path)


def test_missing_array(saved, tmp_path):
    path = tmp_path / "missing.npz"
    _rewrite(saved, path, drop={"b.npy"})
    assert _reason(path) == "missing array(s) b"


def test_unreadable_header_and_no_header(saved, tmp_path):
    path = tmp_path / "header.npz"
    _rewrite(saved, path, replace={f"{FORMAT_KEY}.npy": lambda d: d[:-5] + b"\xff\xff\xff\xff\xff"})
    assert "header" in _reason(path)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(2))
    assert "no format header" in _reason(plain)


def test_wrong_kind_and_newer_version(saved, tmp_path):
    assert _reason(saved, kind="other") == "holds a 'thing', not a 'other'"
    newer = tmp_path / "newer.npz"

    def future(data):
        arr = np.lib.format.read_array(__import__("io").BytesIO(data))
        header = json.loads(bytes(arr).decode())
        header["format_version"] = 99
        buf = __import__("io").BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        return buf.getvalue()

    _rewrite(saved, newer, replace={f"{FORMAT_KEY}.npy": future})
    assert "newer version" in _reason(newer)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "absent.npz", kind="thing")


def test_stale_temporaries_of_dead_writers_are_removed(saved, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".{saved.name}.{dead_pid}.abc123.tmp"
    live = tmp_path / f".{saved.name}.1.def456.tmp"  # pid 1 is alive: a concurrent writer, keep it
    other = tmp_path / f".other.npz.{dead_pid}.x.tmp"  # another target's temporary: not ours to touch
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    save_npz(saved, {"a": np.zeros(2)}, kind="thing")
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([saved.name, live.name, other.name])


def test_legacy_file_without_digests_still_loads(tmp_path):
    path = tmp_path / "legacy.npz"
    header = json.dumps({"kind": "thing", "meta": {"v": 0}})
    np.savez(path, a=np.arange(3.0), **{FORMAT_KEY: np.frombuffer(header.encode(), dtype=np.uint8)})
    arrays, meta = load_npz(path, kind="thing")
    np.testing.assert_array_equal(arrays["a"], np.arange(3.0)) and meta == {"v": 0}


def _loaders():
    """Every public ``load`` of lowrank, with the arguments it needs besides the path."""
    from lowrank.completion import CompletionResult
    from lowrank.graphs import FastRP, PowerWalk
    from lowrank.streaming import OjaTopEigenvector, RandomOrderTopEigenvector
    loaders = [CompletionResult.load, FastRP.load, PowerWalk.load, RandomOrderTopEigenvector.load,
               OjaTopEigenvector.load]
    try:
        from lowrank.vision.prior import load_unet
        loaders.append(load_unet)
    except ImportError:
        pass
    return loaders


@pytest.mark.parametrize("load", _loaders(), ids=lambda f: f.__qualname__)
def test_every_public_load_reports_a_truncated_file(load, saved, tmp_path):
    path = tmp_path / "truncated.npz"
    path.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="truncated"):
        load(path)
    with pytest.raises(CorruptFileError, match="holds a 'thing'"):
        load(saved)
