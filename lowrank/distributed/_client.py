"""Choosing the Dask client a computation runs on."""

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
