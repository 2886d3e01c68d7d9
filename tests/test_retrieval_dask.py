"""CURIndex.fit on Dask: repeated and concurrent fits on one client, and a worker process killed mid-fit
(LocalCluster with nannies); the anchor scores equal the serial fit's exactly."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from lowrank.retrieval import CURIndex

distributed = pytest.importorskip("distributed")


def _problem(n_items=120, dim=6, n_queries=30, seed=0):
    gen = np.random.default_rng(seed)
    items = gen.standard_normal((n_items, dim))
    queries = gen.standard_normal((n_queries, dim))
    return items, queries


def _scorers():
    """A non-linear pairwise scorer and a slow copy of it, built as closures so that worker processes
    receive them by value (this test module is not importable there)."""

    def score(queries, items):
        return np.tanh(np.asarray(queries) @ np.asarray(items).T) + 0.1 * np.cos(np.asarray(queries)[:, :1] * 3)

    def slow_score(queries, items):
        time.sleep(0.05)  # long enough to kill a worker while blocks are in flight
        return score(queries, items)

    return score, slow_score


def test_repeated_and_concurrent_fits_on_one_client():
    items, queries = _problem()
    score, _ = _scorers()
    serial = CURIndex(score, n_anchor_items=8, batch_size=16, random_state=0).fit(items, queries)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            fits = [
                CURIndex(score, n_anchor_items=8, batch_size=16, random_state=0).fit(items, queries, client=client)
                for _ in range(6)
            ]
            out = [None] * 3

            def fit(k):
                try:
                    out[k] = CURIndex(score, n_anchor_items=8, batch_size=16, random_state=0).fit(
                        items, queries, client=client
                    )
                except Exception as exc:
                    out[k] = exc

            threads = [threading.Thread(target=fit, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    for est in fits + out:
        assert not isinstance(est, Exception), repr(est)
        np.testing.assert_array_equal(est.anchor_scores_, serial.anchor_scores_)


@pytest.mark.slow
def test_fit_survives_a_killed_worker_process():
    items, queries = _problem(n_items=400)
    score, slow_score = _scorers()
    serial = CURIndex(score, n_anchor_items=8, batch_size=10, random_state=0).fit(items, queries)
    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            pids = client.run(os.getpid)
            result = {}

            def fit():
                try:
                    result["est"] = CURIndex(slow_score, n_anchor_items=8, batch_size=10, random_state=0).fit(
                        items, queries, client=client
                    )
                except Exception as exc:
                    result["error"] = exc

            thread = threading.Thread(target=fit)
            thread.start()
            killed = None
            while thread.is_alive() and killed is None:
                held = client.has_what()
                busy = [(len(k), w) for w, k in held.items() if any("_unbox" in str(x) for x in k)]
                done = sum(any("_score_block" in str(x) for x in k) for k in held.values())
                if busy and done:
                    killed = max(busy)[1]
                    os.kill(pids[killed], signal.SIGKILL)
                time.sleep(0.002)
            thread.join()
    assert killed is not None, "the fit ended before a worker could be killed"
    assert "error" not in result, repr(result.get("error"))
    np.testing.assert_array_equal(result["est"].anchor_scores_, serial.anchor_scores_)
