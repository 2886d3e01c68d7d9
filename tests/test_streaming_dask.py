"""The streaming top eigenvector over a dask array: each row chunk is computed from its task graph, so a
repeated call, and a call whose worker process is killed mid-stream, give the in-memory result bit for bit."""

import os
import signal
import threading
import time

import numpy as np
import pytest

from lowrank.streaming import RandomOrderTopEigenvector, top_eigenvector_stream

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


def _rows(n=4000, d=30, chunk=500):
    """A planted-gap matrix as a dask array generated on the workers (no data shipped from here)."""
    gen = da.random.default_rng(0)
    X = gen.standard_normal((n, d), chunks=(chunk, d))
    scale = np.linspace(3.0, 1.0, d)
    return X * scale


def test_dask_source_equals_the_in_memory_stream_on_repeated_calls():
    X = _rows()
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None):
        dense = X.compute()
        ref = top_eigenvector_stream(dense, batch_rows=500, rng=0)
        for _ in range(3):
            got = top_eigenvector_stream(X, batch_rows=500, rng=0)
            np.testing.assert_array_equal(got.vector, ref.vector)
        est = RandomOrderTopEigenvector(random_state=0).fit(X, batch_rows=500)
        np.testing.assert_array_equal(est.components_[0], RandomOrderTopEigenvector(random_state=0).fit(
            dense, batch_rows=500).components_[0])


def _slow_identity(block):
    time.sleep(0.2)
    return block


@pytest.mark.slow
def test_stream_survives_a_killed_worker_process():
    # each chunk is made slow on purpose, so a worker is busy computing one when it is killed
    X = _rows(n=12_000, chunk=500).map_blocks(_slow_identity, dtype=float)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        ref = top_eigenvector_stream(X.compute(), batch_rows=500, rng=0)
        pids = client.run(os.getpid)
        out = {}
        thread = threading.Thread(target=lambda: out.update(result=top_eigenvector_stream(X, batch_rows=500, rng=0)))
        thread.start()
        killed = None
        while thread.is_alive() and killed is None:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                time.sleep(0.2)
                killed = busy[0]
                os.kill(pids[killed], signal.SIGKILL)
            time.sleep(0.01)
        thread.join()
        assert killed is not None, "the stream ended before a worker could be killed"
        np.testing.assert_array_equal(out["result"].vector, ref.vector)
