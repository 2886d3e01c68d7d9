"""Helpers shared by the benchmark files."""

import os
from pathlib import Path


def shared_data_path(name):
    """Path of a benchmark-only data file, or raise NotImplementedError (asv's skip) when absent.

    Looks in $LOWRANK_DATA_DIR, then ../shared/data next to the repository.
    """
    candidates = []
    if os.environ.get("LOWRANK_DATA_DIR"):
        candidates.append(Path(os.environ["LOWRANK_DATA_DIR"]) / name)
    repo = Path(__file__).resolve().parents[2]
    candidates.append(repo.parent / "shared" / "data" / name)
    for path in candidates:
        if path.exists():
            return path
    raise NotImplementedError(f"benchmark data {name} not found (set LOWRANK_DATA_DIR)")


def best_of(fn, repeat=3):
    """Best wall time of ``repeat`` calls of ``fn`` (for ratio benchmarks measured in one process)."""
    import time

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
