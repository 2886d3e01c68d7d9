"""Putting client-side data on a Dask cluster so that losing a worker never loses it."""

import warnings


class _Box:
    """An opaque holder: Dask does not look inside it, so the value reaches the task exactly as given
    (a list of queries stays one list, a tuple of arrays is not read as a task)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_Box, (self.value,))


def _unbox(box):
    return box.value


def submit_value(client, value):
    """A future holding ``value``, computed by a task that carries ``value`` in the task graph.

    Unlike ``client.scatter`` (whose data has no recipe: a worker lost while holding the only copy
    cancels every task depending on it, and the Active Memory Manager drops the extra copies of a
    broadcast), the scheduler can rerun this task on another worker whenever its result is lost, so
    the computations depending on it survive any worker loss. The key is unique to the call
    (``pure=False``): two computations on one client never share, and so never release, each other's
    data. The scheduler keeps one serialized copy of ``value`` while the future or its dependents live.

    Parameters
    ----------
    client : distributed.Client
        A synchronous client (an asynchronous one returns a future to await the same way).
    value : object
        Anything picklable.

    Returns
    -------
    distributed.Future

    Examples
    --------
    >>> from distributed import Client, LocalCluster                      # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, processes=False) as cl, Client(cl) as c:  # doctest: +SKIP
    ...     data = submit_value(c, [1, 2, 3])
    ...     c.submit(sum, data).result()
    6
    """
    with warnings.catch_warnings():
        # distributed warns about any graph above 10 MB and suggests futures; this *is* the one
        # future every later task shares, so the data crosses the wire once
        warnings.filterwarnings("ignore", message="Sending large graph")
        return client.submit(_unbox, _Box(value), pure=False)
