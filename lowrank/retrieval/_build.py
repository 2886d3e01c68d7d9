"""Building the anchor-score matrix R = scorer(anchor_queries, items) block by block.

Each finished block of columns is written to its own file in the checkpoint folder with an
atomic rename, so a crash loses at most the blocks in flight and a rerun computes only the
missing ones. Blocks run serially or as Dask tasks (``client=...``).
"""

import logging
import re
from pathlib import Path

import numpy as np

from lowrank._utils.io import CorruptFileError, load_npz, save_npz
from lowrank._utils.progress import progress
from lowrank.retrieval._items import check_scores, take

logger = logging.getLogger("lowrank.retrieval")

_HEADER = "header.npz"
_HEADER_KIND = "lowrank.retrieval.checkpoint"
_BLOCK_KIND = "lowrank.retrieval.checkpoint.block"
_BLOCK_NAME = re.compile(r"^block-(\d+)-(\d+)\.npz$")


def build_anchor_scores(scorer, queries, items, n_queries, n_items, *, block_size, checkpoint, client, fingerprint, verbose):
    """Return ``(R, n_pairs_scored_now)`` with ``R`` of shape ``(n_queries, n_items)``."""
    R = np.empty((n_queries, n_items), order="F")  # column blocks land contiguously
    blocks = [(s, min(s + block_size, n_items)) for s in range(0, n_items, block_size)]
    done = set()
    folder = None
    n_probe_pairs = 0
    if checkpoint is not None:
        folder = Path(checkpoint)
        meta = {"n_queries": n_queries, "n_items": n_items, "block_size": block_size, "fingerprint": fingerprint,
                "scorer": scorer_identity(scorer)}
        done = _resume(folder, R, blocks, n_queries, meta)
        if done:
            logger.info("resuming from %s: %d of %d blocks already scored", folder, len(done), len(blocks))
            n_probe_pairs = _probe_scorer(folder, scorer, queries, items, R, min(done))
    todo = [b for b in blocks if b not in done]
    bar = progress(total=n_items, desc="scoring anchor queries", verbose=verbose, unit="item")
    bar.update(sum(stop - start for start, stop in done))

    def finish(block, scores):
        start, stop = block
        scores = check_scores(scores, n_queries, stop - start)
        R[:, start:stop] = scores
        if folder is not None:
            save_npz(folder / f"block-{start}-{stop}.npz", {"scores": scores}, kind=_BLOCK_KIND)
        bar.update(stop - start)

    client = _client_or_none(client)
    try:
        if client is None:
            for block in todo:
                finish(block, scorer(queries, take(items, slice(*block))))
        else:
            _run_on_dask(client, scorer, queries, items, todo, finish)
    finally:
        bar.close()
    return R, n_queries * sum(stop - start for start, stop in todo) + n_probe_pairs


def _client_or_none(client):
    from lowrank.distributed import active_client

    return active_client(client, purpose="CURIndex.fit")


def _run_on_dask(client, scorer, queries, items, todo, finish):
    from distributed import as_completed

    from lowrank.distributed import submit_value

    # The scorer, the queries and the item blocks go on the cluster as tasks, not through `scatter`:
    # a task is rerun when the worker holding its result is lost, scattered data is not (the fit
    # would be cancelled), and keys unique to the call keep concurrent fits on one client apart.
    # submit_value also keeps Dask from looking inside user objects (a list of queries stays one).
    scorer_f = submit_value(client, scorer)
    queries_f = submit_value(client, queries)
    futures = {
        client.submit(_score_block, scorer_f, queries_f, submit_value(client, take(items, slice(*block))), pure=False):
        block
        for block in todo
    }
    for fut, scores in as_completed(futures, with_results=True):
        finish(futures[fut], scores)


def _score_block(scorer, queries, items_block):
    return scorer(queries, items_block)


def scorer_identity(scorer):
    """What names a scorer across processes: its type, its ``version`` and its parameters where it has them.

    A user whose scorer changes without changing type (new weights in the same class) sets a
    ``version`` attribute; the score probe on resume catches the rest.
    """
    kind = type(scorer)
    name = getattr(scorer, "__qualname__", None) if callable(scorer) and kind.__name__ == "function" else None
    identity = {"type": f"{kind.__module__}.{kind.__qualname__}", "function": name,
                "version": str(getattr(scorer, "version", None))}
    get_params = getattr(scorer, "get_params", None)
    if callable(get_params):
        try:
            identity["params"] = {k: repr(v) for k, v in sorted(get_params().items())}
        except Exception:  # a get_params that needs arguments is not sklearn's: ignore it
            pass
    return identity


def _probe_scorer(folder, scorer, queries, items, R, block, n_probe=2):
    """Rescore a few restored pairs; a different scorer behind the same folder is refused, not reused."""
    start, stop = block
    q = min(n_probe, R.shape[0])
    width = min(n_probe, stop - start)
    fresh = check_scores(scorer(take(queries, np.arange(q)), take(items, slice(start, start + width))), q, width)
    if not np.allclose(fresh, R[:q, start:start + width], rtol=1e-6, atol=1e-9):
        raise ValueError(
            f"`checkpoint` {folder} was written with a different scorer: rescoring {q * width} saved pairs gives "
            "other values; delete it or pass another folder"
        )
    return q * width


def _resume(folder, R, blocks, n_queries, meta):
    header = folder / _HEADER
    if header.exists():
        _, saved = load_npz(header, kind=_HEADER_KIND)
        if saved.get("scorer", meta["scorer"]) != meta["scorer"]:
            raise ValueError(
                f"`checkpoint` {folder} was written with a different scorer ({saved['scorer']} != {meta['scorer']}); "
                "delete it or pass another folder"
            )
        saved = {k: v for k, v in saved.items() if k != "scorer"}
        if saved != {k: v for k, v in meta.items() if k != "scorer"}:
            raise ValueError(
                f"`checkpoint` {folder} was written for different anchor queries/items/batch_size "
                f"({saved} != {meta}); delete it or pass another folder"
            )
    else:
        save_npz(header, {}, kind=_HEADER_KIND, meta=meta)
    wanted = set(blocks)
    done = set()
    for path in folder.iterdir():
        match = _BLOCK_NAME.match(path.name)
        if match is None:
            continue
        block = (int(match.group(1)), int(match.group(2)))
        if block not in wanted:
            continue
        try:
            arrays, _ = load_npz(path, kind=_BLOCK_KIND)
        except CorruptFileError as exc:  # a damaged block is scored again, not trusted
            logger.warning("checkpoint block %s is damaged (%s): scoring it again", path, exc.reason)
            continue
        scores = arrays["scores"]
        if scores.shape != (n_queries, block[1] - block[0]) or not np.isfinite(scores).all():
            continue
        R[:, block[0] : block[1]] = scores
        done.add(block)
    return done
