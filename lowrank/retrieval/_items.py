"""Item/query containers (lists, arrays, tensors) and checked calls of a black-box scorer."""

import hashlib
import time

import numpy as np

from lowrank._utils.backend import is_torch, to_numpy


def check_collection(x, name):
    """Check that ``x`` is a non-empty indexable collection; return its length."""
    if is_torch(x) or isinstance(x, np.ndarray):
        if x.ndim == 0:
            raise ValueError(f"`{name}` must be a collection of queries/items, got a 0-d array")
        n = int(x.shape[0])
    elif isinstance(x, (list, tuple)):
        n = len(x)
    else:
        raise TypeError(f"`{name}` must be a list, tuple, numpy array or torch tensor, got {type(x).__name__}")
    if n == 0:
        raise ValueError(f"`{name}` must not be empty")
    return n


def take(x, idx):
    """``x[idx]`` for an int array or a slice, keeping the container's type (lists stay lists)."""
    if isinstance(idx, slice):
        return x[idx]
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(x, np.ndarray):
        return x[idx]
    if is_torch(x):
        import torch

        return x[torch.as_tensor(idx, device=x.device)]
    return [x[i] for i in idx]


def fingerprint(x):
    """A short hash of a collection's content, or None when its type has no stable bytes."""
    h = hashlib.sha1()
    if is_torch(x) or isinstance(x, np.ndarray):
        a = np.ascontiguousarray(to_numpy(x))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(x, (list, tuple)) and all(isinstance(s, str) for s in x):
        h.update(f"str{len(x)}".encode())
        for s in x:
            h.update(s.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
    else:
        return None
    return h.hexdigest()


class ScorerCalls:
    """Calls ``scorer(queries, items)``, checks the returned matrix, and counts pairs and seconds."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.n_pairs = 0
        self.seconds = 0.0

    def __call__(self, queries, items, n_queries, n_items):
        start = time.perf_counter()
        out = self.scorer(queries, items)
        self.seconds += time.perf_counter() - start
        self.n_pairs += n_queries * n_items
        return check_scores(out, n_queries, n_items)


def check_scores(out, n_queries, n_items):
    """The scorer's output as a float64 ``(n_queries, n_items)`` array, or a clear error."""
    scores = np.asarray(to_numpy(out), dtype=np.float64)
    if scores.shape != (n_queries, n_items):
        if scores.size == n_queries * n_items and scores.ndim == 1:
            scores = scores.reshape(n_queries, n_items)
        else:
            raise ValueError(
                f"`scorer(queries, items)` must return a ({n_queries}, {n_items}) score matrix, got shape {scores.shape}"
            )
    if not np.isfinite(scores).all():
        raise ValueError("`scorer` returned NaN or infinite scores")
    return scores
