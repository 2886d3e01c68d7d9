"""Progress reporting for long work: a tqdm bar when asked for, silence otherwise."""

import logging

logger = logging.getLogger("lowrank")


def progress(iterable=None, *, total=None, desc=None, verbose=False, unit="it"):
    """Wrap ``iterable`` in a tqdm bar when ``verbose`` is true; otherwise return it unchanged.

    With ``iterable=None`` returns an object with ``update(n)`` and ``close()`` (a bar or a no-op).
    """
    if verbose:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False)
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
