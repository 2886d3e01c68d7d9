"""User errors of every subcommand: exit status 2, one ``error:`` line on stderr naming the argument,
no traceback; ``--debug`` and real bugs keep their traceback; progress bars only on a terminal.

Run in-process through :func:`lowrank.cli.main` (each case fails before any heavy work); two real
``python -m lowrank`` runs check the process-level behaviour.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from lowrank.cli import build_parser, main


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edges.txt").write_text("a b\nb c\nc a\n")
    (tmp_path / "bad_edges.txt").write_text("0 1\n1 2\nx y z w\n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81garbage\n")
    (tmp_path / "text.npy").write_text("not a numpy file\n")
    (tmp_path / "ratings.csv").write_text("1,2,5\n2,3,4\n3,1,2\n")
    (tmp_path / "bad_ratings.txt").write_text("u i r\n1 2 five\n")
    (tmp_path / "folder").mkdir()
    np.save(tmp_path / "rows.npy", np.ones((4, 3)))
    return tmp_path


# (argv, a fragment the one-line message must contain: the argument's name)
CASES = [
    (["nosuch"], "argument COMMAND"),
    (["demo", "--only", "nosuch"], "argument --only"),
    (["warmup", "nosuch"], "argument AREA"),
    (["ppr", "missing.txt", "--seeds", "0"], "argument EDGES"),
    (["ppr", "folder", "--seeds", "0"], "argument EDGES"),
    (["ppr", "binary.txt", "--seeds", "0"], "argument EDGES"),
    (["ppr", "bad_edges.txt", "--seeds", "0"], "argument EDGES"),
    (["ppr", "edges.txt", "--seeds", "zz"], "seeds"),
    (["ppr", "edges.txt", "--seeds", "a", "--top-k", "x"], "argument --top-k"),
    (["ppr", "edges.txt", "--seeds", "a", "--damping", "1.5"], "damping"),
    (["ppr", "edges.txt", "--seeds", "a", "--method", "nope"], "argument --method"),
    (["fastrp", "missing.txt", "-o", "out.npy"], "argument EDGES"),
    (["fastrp", "edges.txt", "-o", "out.npy", "--dim", "0"], "--dim"),
    (["fastrp", "edges.txt", "-o", "out.npy", "--density", "abc"], "argument --density"),
    (["fastrp", "edges.txt"], "-o/--output"),
    (["complete", "missing.csv"], "argument ratings"),
    (["complete", "bad_ratings.txt"], "argument ratings"),
    (["complete", "binary.txt"], "argument ratings"),
    (["complete", "ratings.csv", "--rank", "0"], "--rank"),
    (["complete", "ratings.csv", "--rank", "two"], "argument --rank"),
    (["top-eigvec", "missing.npy"], "argument path"),
    (["top-eigvec", "text.npy"], "argument path"),
    (["top-eigvec", "rows.npy", "--batch-rows", "0"], "batch_rows"),
    (["decompose", "missing.npy", "--rank", "2"], "argument tensor"),
    (["decompose", "text.npy", "--rank", "2"], "argument tensor"),
    (["decompose", "rows.npy", "--rank", "2", "--method", "svd"], "argument --method"),
    (["funbat", "missing.csv"], "argument entries"),
    (["funbat", "binary.txt"], "argument entries"),
    (["funbat", "ratings.csv", "--kernel", "gauss"], "argument --kernel"),
    (["hsi-restore", "missing.npy"], "missing.npy"),
    (["hsi-restore", "rows.npy", "--task", "deblur"], "argument --task"),
    (["train-prior", "--out", "w.npz", "--images", "missing.npz"], "argument --images"),
    (["ctr-compress", "missing.pt", "missing.npz", "--rank", "2"], "argument model"),
    (["ctr-compress", "m.pt", "c.npz"], "--budget"),
    (["compress", "missing.pt", "--method", "svd", "--rank", "2"], "argument MODEL"),
    (["householder-demo", "--out", "hh", "--model", "vae", "--size", "medium"], "argument --size"),
    (["retrieval", "build", "--documents", "missing.txt", "--anchor-queries", "edges.txt", "--index", "i.npz"],
     "argument --documents"),
    (["retrieval", "search", "--index", "missing.npz", "--documents", "edges.txt", "--queries", "edges.txt"],
     "argument --index"),
    (["retrieval", "docstrings", "-k", "ten"], "argument -k"),
]


def _status(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit, as argparse always does
        return exc.code


@pytest.mark.parametrize("argv, fragment", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_user_error_is_one_line_and_status_2(files, capsys, argv, fragment):
    status = _status(argv)
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_every_subcommand_has_a_user_error_case():
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    assert commands <= {argv[0] for argv, _ in CASES}


def test_debug_reraises_the_user_error(files):
    with pytest.raises((OSError, ValueError)):
        main(["ppr", "missing.txt", "--seeds", "0", "--debug"])
    with pytest.raises((OSError, ValueError)):
        main(["--debug", "ppr", "missing.txt", "--seeds", "0"])  # before the subcommand too


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
    from lowrank.cli import warmup

    def broken():
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setitem(warmup.AREAS, "linalg", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["warmup", "linalg"])
    # a ValueError from a bug is shown as one line without --debug, and raised with it
    monkeypatch.setitem(warmup.AREAS, "linalg", lambda: int("not a number"))
    assert main(["warmup", "linalg"]) == 2
    with pytest.raises(ValueError):
        main(["warmup", "linalg", "--debug"])


def _python_m_lowrank(*argv, cwd):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "lowrank", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_process_exit_status_and_stderr(files):
    proc = _python_m_lowrank("ppr", "missing.txt", "--seeds", "0", cwd=files)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["lowrank ppr: error: argument EDGES: no such file or directory: 'missing.txt'"]
    debug = _python_m_lowrank("ppr", "missing.txt", "--seeds", "0", "--debug", cwd=files)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize("terminal, quiet, bar", [(True, False, True), (True, True, False), (False, False, False)])
def test_progress_bars_only_on_a_terminal_and_not_with_quiet(monkeypatch, terminal, quiet, bar):
    from tqdm import tqdm

    from lowrank._utils import progress as progress_module
    from lowrank.cli import warmup

    monkeypatch.setattr(progress_module, "_stderr_is_terminal", lambda: terminal)
    seen = []
    # a library loop with its default verbose=False: the command line decides
    monkeypatch.setitem(warmup.AREAS, "linalg", lambda: seen.append(progress_module.progress(range(2), verbose=False)))
    assert main(["warmup", "linalg"] + (["--quiet"] if quiet else [])) == 0
    assert isinstance(seen[0], tqdm) is bar
    if bar:
        seen[0].close()
    # outside the command line, `verbose` alone decides again
    assert not isinstance(progress_module.progress(range(2), verbose=False), tqdm)
