"""The ``lowrank`` command line.

Every module in this package is one area's command-line face and may define

* ``register(subparsers)`` adding its subcommands (each sets ``func`` via
  ``set_defaults(func=...)``; ``func(args)`` returns an exit code), and
* ``demo()`` returning a list of :class:`DemoRow` computed on embedded data.

Modules are found automatically, so a new area adds a file here and edits nothing else.
"""

import argparse
import importlib
import pkgutil
import sys
import time
from dataclasses import dataclass


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
    parser = argparse.ArgumentParser(
        prog="lowrank",
        description="Low-rank and tensor numerics: run the demo or a method on your files.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run every method on embedded data and print a quality/time table")
    demo.add_argument("--only", nargs="*", metavar="AREA", help="restrict to these areas (module names in lowrank.cli)")
    demo.set_defaults(func=_run_demo)
    for _, module in _area_modules():
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def _version():
    from lowrank import __version__

    return f"lowrank {__version__}"


def main(argv=None):
    """Entry point of ``python -m lowrank`` and the ``lowrank`` console script."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)
