"""Row/column blocks on Dask give exactly the local answer for the same seed."""

import numpy as np
import pytest

from lowrank.completion import complete_matrix
from lowrank.datasets import planted_low_rank

pytest.importorskip("distributed")
from distributed.utils_test import gen_cluster  # noqa: E402

CASES = (
    dict(method="robust_altmin", rng=3, max_iter=6),
    dict(method="robust_altmin", preconditioner="sketch", rng=4, max_iter=4, alpha=0.1),
    dict(method="altmin", rng=5, max_iter=4, bias=True, validation_fraction=0.1),
)


def _on_cluster(address, observed, kwargs):
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return complete_matrix(observed, 3, client=client, **kwargs)


@gen_cluster(client=False, nthreads=[("127.0.0.1", 1), ("127.0.0.1", 1)], timeout=180)
async def test_dask_blocks_equal_local(s, a, b):
    import asyncio

    planted = planted_low_rank(160, 120, 3, 0.3, noise=0.01, rng=2)
    for kwargs in CASES:
        local = complete_matrix(planted.observed, 3, **kwargs)
        # complete_matrix drives Dask synchronously: run it in a thread while this loop serves the cluster
        loop = asyncio.get_running_loop()
        remote = await loop.run_in_executor(None, _on_cluster, s.address, planted.observed, kwargs)
        np.testing.assert_array_equal(remote.U, local.U)
        np.testing.assert_array_equal(remote.V, local.V)
        assert remote.history["train_rmse"] == local.history["train_rmse"]


def test_client_must_be_a_client():
    planted = planted_low_rank(30, 20, 2, 0.5, rng=0)
    with pytest.raises(TypeError, match="client"):
        complete_matrix(planted.observed, 2, client="tcp://localhost:8786")


def test_active_default_client_is_used(monkeypatch):
    """DESIGN: client=None runs on the active default client when Dask is in use; the answer is unchanged."""
    from distributed import Client, LocalCluster

    from lowrank.completion import _engine

    used = []
    original = _engine.DaskEngine.__init__

    def spy(self, sides, client, n_blocks=None):
        used.append(client)
        original(self, sides, client, n_blocks)

    monkeypatch.setattr(_engine.DaskEngine, "__init__", spy)
    planted = planted_low_rank(80, 60, 2, 0.4, noise=0.01, rng=1)
    kwargs = dict(method="altmin", rng=5, max_iter=3)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            remote = complete_matrix(planted.observed, 2, **kwargs)
            n_engines = len(used)  # the alpha="auto" search and the final fit each hold their blocks
            soft = complete_matrix(planted.observed, 2, method="softimpute", max_iter=3)  # no Dask path: runs here
            assert n_engines >= 1 and len(used) == n_engines and all(c is client for c in used)
    local = complete_matrix(planted.observed, 2, **kwargs)
    assert len(used) == n_engines  # the client is closed: back to local
    np.testing.assert_array_equal(remote.U, local.U)
    np.testing.assert_array_equal(remote.V, local.V)
    assert np.isfinite(soft.U).all()
