"""Building the anchor-score matrix R = scorer(anchor_queries, items) block by block.

Each finished block of columns is written to its own file in the checkpoint folder with an
atomic rename, so a crash loses at most the blocks in flight and a rerun computes only the
missing ones. Blocks run serially or as Dask tasks (``client=...``).
"""

import logging
import re
from pathlib import Path

import numpy as np

from lowrank._utils.io import load_npz, save_npz
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
    if checkpoint is not None:
        folder = Path(checkpoint)
        done = _resume(folder, R, blocks, n_queries, n_items, block_size, fingerprint)
        if done:
            logger.info("resuming from %s: %d of %d blocks already scored", folder, len(done), len(blocks))
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
    return R, n_queries * sum(stop - start for start, stop in todo)


def _client_or_none(client):
    from lowrank.distributed import active_client

    return active_client(client, purpose="CURIndex.fit")


def _run_on_dask(client, scorer, queries, items, todo, finish):
    from distributed import as_completed

    # Wrapping in a list stops scatter from splitting a list of queries into one future per query.
    scorer_f, queries_f = client.scatter([scorer, queries], broadcast=True)
    futures = {
        client.submit(_score_block, scorer_f, queries_f, take(items, slice(*block)), pure=False): block for block in todo
    }
    for fut, scores in as_completed(futures, with_results=True):
        finish(futures[fut], scores)


def _score_block(scorer, queries, items_block):
    return scorer(queries, items_block)


def _resume(folder, R, blocks, n_queries, n_items, block_size, fingerprint):
    meta = {"n_queries": n_queries, "n_items": n_items, "block_size": block_size, "fingerprint": fingerprint}
    header = folder / _HEADER
    if header.exists():
        _, saved = load_npz(header, kind=_HEADER_KIND)
        if saved != meta:
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
        arrays, _ = load_npz(path, kind=_BLOCK_KIND)
        scores = arrays["scores"]
        if scores.shape != (n_queries, block[1] - block[0]):
            continue
        R[:, block[0] : block[1]] = scores
        done.add(block)
    return done
