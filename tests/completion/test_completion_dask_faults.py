"""Dask reliability of ``complete_matrix(..., client=c)``: repeated and concurrent calls on one
client, and a worker process killed in the middle of a fit (issue #26 section 1). Every result
must equal the local one bit for bit."""

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lowrank.completion import _engine, complete_matrix
from lowrank.datasets import planted_low_rank

distributed = pytest.importorskip("distributed")

KWARGS = dict(method="robust_altmin", alpha=0.1, max_iter=3, rng=3)


@pytest.fixture(scope="module")
def planted():
    return planted_low_rank(90, 70, 3, 0.3, noise=0.01, rng=2)


def _assert_same(result, reference):
    np.testing.assert_array_equal(result.U, reference.U)
    np.testing.assert_array_equal(result.V, reference.V)
    assert result.history["train_rmse"] == reference.history["train_rmse"]


def test_repeated_and_concurrent_calls_on_one_client(planted):
    # identical inputs give identical blocks: with content-hashed keys, one call's cleanup used to
    # cancel the blocks the next (or a concurrent) call had just scattered under the same keys
    import time

    local = complete_matrix(planted.observed, 3, **KWARGS)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        for _ in range(8):
            _assert_same(complete_matrix(planted.observed, 3, client=client, **KWARGS), local)
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(complete_matrix, planted.observed, 3, client=client, **KWARGS) for _ in range(3)]
            results = [f.result(timeout=300) for f in futures]
        for result in results:
            _assert_same(result, local)
        # nothing of ours stays on the cluster: every future was released (releases are asynchronous)
        deadline = time.monotonic() + 30
        while client.who_has() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.who_has()


def _kill_worker_process(client, future):
    """SIGKILL the worker process that holds ``future`` (no cleanup, as an out-of-memory kill or a
    crash); its nanny then starts a fresh, empty worker under a new address."""
    holder = next(iter(client.who_has([future])[future.key]))
    pid = client.run(os.getpid, workers=[holder])[holder]
    os.kill(pid, signal.SIGKILL)
    return holder


@pytest.mark.slow
def test_fit_survives_a_killed_worker_process(planted, monkeypatch):
    local = complete_matrix(planted.observed, 3, **dict(KWARGS, max_iter=5))
    killed = []
    original = _engine.DaskEngine._gather

    def gather_after_a_kill(self, futures):
        # on the 5th gather (sweep 3, a U-update): the tasks are submitted, blocks live on the
        # workers; kill the process holding the first block while the half-step runs
        calls = getattr(self, "_test_calls", 0) + 1
        self._test_calls = calls
        if calls == 5 and not killed:
            killed.append(_kill_worker_process(self.client, self.blocks["rows"][0][2]))
        return original(self, futures)

    monkeypatch.setattr(_engine.DaskEngine, "_gather", gather_after_a_kill)
    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        before = set(client.scheduler_info()["workers"])
        remote = complete_matrix(planted.observed, 3, client=client, **dict(KWARGS, max_iter=5))
        assert killed and killed[0] in before
        assert killed[0] not in client.scheduler_info()["workers"]  # that process is gone
    _assert_same(remote, local)
