"""Choosing the Dask client a computation runs on."""

import sys

from lowrank._utils.optional import import_optional


def resolve_client(client=None):
    """Return the ``distributed.Client`` to use.

    ``client`` given: used as is. ``client=None``: the active default client if
    one exists, else None (callers then use Dask's local scheduler or plain numpy).
    Raises an ImportError naming the ``distributed`` extra when Dask is missing.
    """
    distributed = import_optional("distributed", purpose="Dask execution (client=...)")
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"`client` must be a distributed.Client, got {type(client).__name__}")
        return client
    try:
        return distributed.default_client()
    except ValueError:
        return None


def active_client(client=None, *, purpose="this computation"):
    """The client a synchronous computation should use, or None to run locally.

    ``client`` given: validated (a synchronous ``distributed.Client``). ``client=None``: the active
    default client, if ``distributed`` has already been imported (a plain call never pays for
    importing Dask) and that client is synchronous; otherwise None.

    Parameters
    ----------
    client : distributed.Client, optional
    purpose : str
        Named in the error for an asynchronous ``client``.

    Returns
    -------
    distributed.Client or None

    Raises
    ------
    TypeError
        If ``client`` is not a ``distributed.Client``.
    ValueError
        If ``client`` is asynchronous (these calls block until Dask is done).
    """
    if client is None and "distributed" not in sys.modules:
        return None
    resolved = resolve_client(client)
    if resolved is not None and getattr(resolved, "asynchronous", False):
        if client is not None:
            raise ValueError(f"`client` must be a synchronous distributed.Client ({purpose} blocks until it is done)")
        return None  # an asynchronous default client cannot be driven from a synchronous call
    return resolved
