"""Progress reporting for long work: a tqdm bar when asked for, silence otherwise.

Library calls show a bar when their ``verbose`` argument is true. The command line switches to its own
rule with :func:`progress_mode`: every long loop shows a bar when standard error is a terminal, and none
when it is piped or redirected, or with ``--quiet`` (whatever ``verbose`` says).
"""

import contextlib
import logging
import sys

logger = logging.getLogger("lowrank")

# None: follow each call's `verbose`; True: bars exactly when stderr is a terminal; False: never
_mode = None


@contextlib.contextmanager
def progress_mode(enabled):
    """Within the block, show bars when ``enabled`` and standard error is a terminal, else none.

    Parameters
    ----------
    enabled : bool
        ``False`` silences every bar (``--quiet``); ``True`` shows them on a terminal only.

    Examples
    --------
    >>> from lowrank._utils.progress import progress, progress_mode
    >>> with progress_mode(False):
    ...     list(progress(range(3), verbose=True))
    [0, 1, 2]
    """
    global _mode
    previous, _mode = _mode, bool(enabled)
    try:
        yield
    finally:
        _mode = previous


def _stderr_is_terminal():
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _show(verbose):
    if _mode is None:
        return bool(verbose)
    return _mode and _stderr_is_terminal()


def progress(iterable=None, *, total=None, desc=None, verbose=False, unit="it"):
    """Wrap ``iterable`` in a tqdm bar when ``verbose`` is true; otherwise return it unchanged.

    With ``iterable=None`` returns an object with ``update(n)`` and ``close()`` (a bar or a no-op).
    Under :func:`progress_mode` (the command line) the terminal and ``--quiet`` decide instead of
    ``verbose``.
    """
    if _show(verbose):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
    if iterable is None:
        return _NullBar()
    return iterable


class _NullBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
