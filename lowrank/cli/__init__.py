"""The ``lowrank`` command line.

Every module in this package is one area's command-line face and may define

* ``register(subparsers)`` adding its subcommands (each sets ``func`` via
  ``set_defaults(func=...)``; ``func(args)`` returns an exit code), and
* ``demo()`` returning a list of :class:`DemoRow` computed on embedded data.

Modules are found automatically, so a new area adds a file here and edits nothing else.

User errors never print a traceback: :func:`main` turns a :class:`UserError`, an unreadable or missing
input file (``OSError``, ``UnicodeDecodeError``, a truncated archive), a bad value rejected by the
library (``ValueError``, ``TypeError``) and every argparse error into one line
``lowrank CMD: error: ...`` on standard error and exit status 2, naming the command-line argument when
it can tell which one (the file a failing reader was reading, an option with the library argument's
name). ``--debug`` re-raises instead, so bugs keep their traceback; other exceptions always show it.
Every subcommand also takes ``--quiet`` (no progress bars; bars otherwise appear when standard error
is a terminal).
"""

import argparse
import importlib
import os
import pickle
import pkgutil
import re
import sys
import time
import zipfile
from dataclasses import dataclass

_CLI_DIR = os.path.dirname(os.path.abspath(__file__))


class UserError(Exception):
    """A mistake in the command line or its inputs: printed as one ``error:`` line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other user error (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@dataclass
class DemoRow:
    """One line of ``lowrank demo``: a method run on embedded data, checked against an independent reference."""

    method: str
    data: str
    quality: str
    reference: str
    seconds: float


def _area_modules():
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"{__name__}.{info.name}")


def timed(fn, *args, **kwargs):
    """Run ``fn`` and return ``(result, seconds)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _run_demo(args):
    known = [name for name, module in _area_modules() if hasattr(module, "demo")]
    unknown = [name for name in args.only or () if name not in known]
    if unknown:
        raise UserError(f"argument --only: unknown area {unknown[0]!r} (choose from {', '.join(known)})")
    rows, failures = [], []
    for name, module in _area_modules():
        demo = getattr(module, "demo", None)
        if demo is None or (args.only and name not in args.only):
            continue
        try:
            rows.extend(demo())
        except ImportError as exc:  # an optional extra is missing: say so, keep going
            failures.append(f"{name}: skipped ({exc})")
    _print_table(rows)
    for line in failures:
        print(line)
    from lowrank._utils.jit import cache_root

    print(f"(numba kernels are cached in {cache_root()}; `python -m lowrank warmup` compiles them all ahead)")
    return 0


def _print_table(rows):
    header = ("method", "data", "quality", "reference", "time (s)")
    table = [header] + [(r.method, r.data, r.quality, r.reference, f"{r.seconds:.2f}") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def build_parser():
    parser = _Parser(
        prog="lowrank",
        description="Low-rank and tensor numerics: run the demo or a method on your files.",
    )
    parser.add_argument("--version", action="version", version=_version())
    _add_common_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run every method on embedded data and print a quality/time table")
    demo.add_argument("--only", nargs="*", metavar="AREA", help="restrict to these areas (module names in lowrank.cli)")
    demo.set_defaults(func=_run_demo)
    for _, module in _area_modules():
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for subparser in _subparsers(parser):
        _add_common_options(subparser, default=argparse.SUPPRESS)
        names = {a.dest: _display_name(a) for a in subparser._actions if a.dest not in (argparse.SUPPRESS, "help")}
        defaults = {a.dest: a.default for a in subparser._actions}
        subparser.set_defaults(_prog=subparser.prog, _argument_names=names, _argument_defaults=defaults)
    return parser


def _subparsers(parser):
    """Every subcommand parser below ``parser`` (nested ones included)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield subparser
                yield from _subparsers(subparser)


def _add_common_options(parser, default):
    # on subcommands the default is SUPPRESS, so that `lowrank --debug ppr ...` is not reset by ppr's own
    taken = {s for a in parser._actions for s in a.option_strings}
    if "--debug" not in taken:
        parser.add_argument("--debug", action="store_true", default=default,
                            help="show the full traceback of an error instead of one line")
    if "--quiet" not in taken:
        flags = ["--quiet"] if "-q" in taken else ["-q", "--quiet"]
        parser.add_argument(*flags, action="store_true", default=default,
                            help="no progress bars (they are shown only on a terminal anyway)")


def _display_name(action):
    # the way argparse names an argument in its own errors: "-o/--output", or the positional's metavar
    if action.option_strings:
        return "/".join(action.option_strings)
    return action.metavar if isinstance(action.metavar, str) else action.dest


def _version():
    from lowrank import __version__

    return f"lowrank {__version__}"


def main(argv=None):
    """Entry point of ``python -m lowrank`` and the ``lowrank`` console script.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 on a user error (one ``error:`` line on standard error).

    Raises
    ------
    SystemExit
        From argparse: code 0 after ``--help``/``--version``, 2 after a command-line syntax error
        (printed as one line).
    """
    from lowrank._utils.progress import progress_mode

    parser = build_parser()
    # argparse exits itself: SystemExit(0) after --help / --version, SystemExit(2) after its one-line error
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    prog = getattr(args, "_prog", "lowrank")
    try:
        with progress_mode(not args.quiet):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = None if args.debug else user_error_message(exc, args)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


# what reading a user's file raises when the file is missing, unreadable or malformed
_INPUT_ERRORS = (OSError, UnicodeDecodeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError)


def user_error_message(exc, args):
    """The one-line message for a user error, or ``None`` when ``exc`` looks like a bug.

    User errors: :class:`UserError`, :data:`_INPUT_ERRORS` (a missing, unreadable or malformed input
    file) and ``ValueError``/``TypeError`` (the library rejecting a value, with a message naming it).
    The message names the command-line argument when it can: the argument holding the file a failing
    reader was reading (``exc.filename``, or a reader's local variable in the traceback), or the option
    whose name matches a library argument quoted in the message.
    """
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, ImportError) and 'pip install "lowrank[' in str(exc):  # an optional extra is missing
        return " ".join(str(exc).split())
    if not isinstance(exc, _INPUT_ERRORS + (ValueError, TypeError)):
        return None
    names = getattr(args, "_argument_names", {})
    values = _string_arguments(args)
    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    if filename is not None:
        dest = _argument_of_file(os.fspath(filename), values)
        reason = exc.strerror or type(exc).__name__
        label = f"argument {names.get(dest, dest)}: " if dest else ""
        return f"{label}{reason}: {os.fspath(filename)!r}"
    for dest, value in values.items():  # an input named on the command line that does not exist
        if dest in names and not names[dest].startswith("-") and not os.path.exists(value):
            return f"argument {names[dest]}: no such file or directory: {value!r}"
    text = _describe(exc)
    dest = _argument_being_read(exc, {d: v for d, v in values.items() if os.path.exists(v)})
    if dest is not None:
        where = "" if values[dest] in text else f"cannot read {values[dest]!r}: "
        return f"argument {names.get(dest, dest)}: {where}{text}"
    for dest, name in names.items():  # "`top_k` must be ..." -> "`top_k` (--top-k) must be ..."
        if name.startswith("-") and f"`{dest}`" in text:
            return text.replace(f"`{dest}`", f"`{dest}` ({name})", 1)
    quoted = re.match(r"`(\w+)`", text)
    got = re.search(r"\bgot (\S+?)[.)]?$", text)
    if quoted and got:  # "`n_components` must satisfy 1 <= n_components, got 0" where --dim is 0
        defaults = getattr(args, "_argument_defaults", {})
        same = [names[d] for d, v in vars(args).items() if names.get(d, "").startswith("-") and v != defaults.get(d)
                and isinstance(v, (int, float)) and not isinstance(v, bool) and got.group(1) in (str(v), repr(v))]
        if len(same) == 1:
            return text.replace(quoted.group(0), f"{quoted.group(0)} ({same[0]})", 1)
    # "could not convert string to float: 'abc'" where --density is 'abc'; "x.npz: no such file"
    quoting = [d for d, v in values.items()
               if d in names and (repr(v) in text or (not os.path.exists(v) and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)))]
    if len(quoting) == 1:
        return f"argument {names[quoting[0]]}: {text}"
    return text


def _describe(exc):
    if isinstance(exc, UnicodeDecodeError):
        return f"not {exc.encoding} text (byte {exc.object[exc.start:exc.start + 1]!r} at offset {exc.start})"
    text = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the message
    if isinstance(exc, (EOFError, zipfile.BadZipFile, pickle.UnpicklingError)):
        text = f"truncated or not the expected format ({type(exc).__name__}: {text})"
    return text


def _string_arguments(args):
    """``{dest: value}`` for the parsed arguments that are strings or paths (in declaration order)."""
    return {dest: os.fspath(value) for dest, value in vars(args).items()
            if not dest.startswith("_") and isinstance(value, (str, os.PathLike)) and os.fspath(value)}


def _argument_of_file(filename, values):
    for dest, value in values.items():
        if os.path.abspath(value) == os.path.abspath(filename):
            return dest
    return None


def _argument_being_read(exc, paths):
    """The argument whose file a library frame of the traceback holds (a path or an open file)."""
    if not paths:
        return None
    by_path = {os.path.abspath(p): dest for dest, p in paths.items()}
    tb = exc.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if not os.path.abspath(frame.f_code.co_filename).startswith(_CLI_DIR + os.sep):
            for value in list(frame.f_locals.values()):
                name = getattr(value, "name", None) if hasattr(value, "read") else value
                if isinstance(name, (str, os.PathLike)) and not isinstance(name, bytes):
                    try:
                        dest = by_path.get(os.path.abspath(os.fspath(name)))
                    except (TypeError, ValueError):
                        dest = None
                    if dest is not None:
                        found = dest
        tb = tb.tb_next
    return found
