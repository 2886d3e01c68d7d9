"""Dask fits of the graph methods: repeated and concurrent calls on one client, and a worker *process*
killed mid-fit (LocalCluster with nannies); every result bit-identical to the in-process fit."""

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from lowrank.datasets import planted_partition
from lowrank.graphs import PowerWalk, fastrp

distributed = pytest.importorskip("distributed")
from distributed.utils_test import gen_cluster  # noqa: E402

WEIGHTS = (0.5, 1.0, 2.0)


def _graph(n=600, seed=0):
    A, _ = planted_partition(n, 4, average_degree=8, rng=seed)
    return A


def _repeated_and_concurrent(address, A):
    with distributed.Client(address, set_as_default=False) as client:
        serial = [fastrp(A, 16, iteration_weights=WEIGHTS, rng=3, client=client) for _ in range(8)]
        results = [None] * 4

        def call(k):
            try:
                results[k] = fastrp(A, 16, iteration_weights=WEIGHTS, rng=3, client=client, n_partitions=3)
            except Exception as exc:  # reported below: a failure must not pass as a missing value
                results[k] = exc

        threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fits = [PowerWalk(n_walks=3, random_state=1).fit(A, client=client, n_blocks=4) for _ in range(3)]
        return serial, results, fits


@gen_cluster(client=False, nthreads=[("127.0.0.1", 1)] * 2, timeout=180)
async def test_repeated_and_concurrent_calls_on_one_client(s, a, b):
    A = _graph()
    local = fastrp(A, 16, iteration_weights=WEIGHTS, rng=3)
    serial, concurrent, fits = await asyncio.get_running_loop().run_in_executor(
        None, _repeated_and_concurrent, s.address, A
    )
    for E in serial + concurrent:
        assert not isinstance(E, Exception), repr(E)
        np.testing.assert_array_equal(E, local)
    ref = PowerWalk(n_walks=3, random_state=1).fit(A)
    for pw in fits:
        np.testing.assert_array_equal(pw.fingerprint_counts_, ref.fingerprint_counts_)
        np.testing.assert_array_equal(pw.fingerprint_indices_, ref.fingerprint_indices_)
    # nothing of the finished calls is left on the cluster
    for _ in range(100):
        if not s.tasks:
            break
        await asyncio.sleep(0.05)
    assert not s.tasks


def _kill_a_worker_mid_fit(client, fit, marker):
    """Run ``fit()`` in a thread; SIGKILL the worker process holding the most results once a task whose
    key contains ``marker`` has finished. Returns (result, killed worker address)."""
    pids = client.run(os.getpid)
    out = {}

    def run():
        try:
            out["result"] = fit()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    while thread.is_alive() and killed is None:
        held = client.has_what()
        busy = [(len(keys), w) for w, keys in held.items() if any(marker in str(k) for k in keys)]
        if busy:
            killed = max(busy)[1]
            os.kill(pids[killed], signal.SIGKILL)
        time.sleep(0.002)
    thread.join()
    assert killed is not None, "the fit ended before a worker could be killed: make it longer"
    if "error" in out:
        raise out["error"]
    return out["result"], killed


@pytest.mark.slow
def test_fits_survive_a_killed_worker_process():
    A = _graph(n=20_000)
    weights = (1.0,) * 12
    local_e = fastrp(A, 32, iteration_weights=weights, rng=0)
    local_pw = PowerWalk(n_walks=20, random_state=2).fit(A)
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        E, killed = _kill_a_worker_mid_fit(
            client, lambda: fastrp(A, 32, iteration_weights=weights, rng=0, client=client), "_dask_step"
        )
        np.testing.assert_array_equal(E, local_e)
        assert killed not in client.scheduler_info()["workers"]
        client.wait_for_workers(3, timeout=60)  # the nanny restarts the killed process
        pw, _ = _kill_a_worker_mid_fit(
            client, lambda: PowerWalk(n_walks=20, random_state=2).fit(A, client=client, n_blocks=48),
            "fingerprint_block",
        )
        np.testing.assert_array_equal(pw.fingerprint_indices_, local_pw.fingerprint_indices_)
        np.testing.assert_array_equal(pw.fingerprint_counts_, local_pw.fingerprint_counts_)
