"""Streaming top eigenvector of A^T A against scikit-learn's IncrementalPCA and the floor of reading the stream.

The stream is the issue's: gap R = sigma_1^2 / sigma_2^2 = 2 with one very heavy row (first, the
adversarial place for decaying-rate methods), read in batches of 5,000 rows. "small" is
50,000 x 200, "large" 200,000 x 500.
"""

import os
import tempfile

import numpy as np
from sklearn.decomposition import IncrementalPCA

from lowrank.datasets import planted_gap_stream
from lowrank.streaming import ExactTopEigenvector, OjaTopEigenvector, RandomOrderTopEigenvector, top_eigenvector_stream

from ._common import best_of

BATCH = 5_000
SIZES = {"small": (50_000, 200), "large": (200_000, 500)}
_CACHE = {}


def stream_data(size):
    """``(A, v1)``: the rows and the exact top eigenvector (eigh of A^T A); cached per process."""
    if size not in _CACHE:
        n, d = SIZES[size]
        A = planted_gap_stream(n, d, gap=2.0, n_heavy=1, heavy_position="start", rng=0).to_array()
        v1 = np.linalg.eigh(A.T @ A)[1][:, -1]
        _CACHE[size] = (A, v1)
    return _CACHE[size]


def _batches(A):
    return [A[i : i + BATCH] for i in range(0, A.shape[0], BATCH)]


def _warm():
    X = np.random.default_rng(0).standard_normal((300, 20))
    for cls in (RandomOrderTopEigenvector, OjaTopEigenvector):
        cls(random_state=0).fit(X)
        cls(random_state=0).fit(X.astype(np.float32))


def run_ours(batches, cls=RandomOrderTopEigenvector):
    est = cls(random_state=0)
    for b in batches:
        est.partial_fit(b)
    return est.components_[0]


def run_ipca(batches, n_components):
    ipca = IncrementalPCA(n_components=n_components)
    for b in batches:
        ipca.partial_fit(b)
    return ipca.components_[0]


def run_dot(batches, v):
    """The floor: read every batch once (one matrix-vector product per batch)."""
    total = 0.0
    for b in batches:
        total += float(np.dot(b, v)[0])
    return total


class TopEigenvector:
    """time_/peakmem_ per method at two sizes (partial_fit over batches of 5,000 rows)."""

    params = (["random_order", "oja", "exact"], ["small", "large"])
    param_names = ["method", "size"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, method, size):
        A, _ = stream_data(size)
        self.batches = _batches(A)
        self.cls = {"random_order": RandomOrderTopEigenvector, "oja": OjaTopEigenvector, "exact": ExactTopEigenvector}[method]
        _warm()

    def time_partial_fit(self, method, size):
        run_ours(self.batches, self.cls)

    def peakmem_partial_fit(self, method, size):
        run_ours(self.batches, self.cls)


class PlantedStream:
    """Generating the planted stream batch by batch (the test data itself)."""

    params = ["small", "large"]
    param_names = ["size"]
    timeout = 600
    number = 1
    repeat = 3

    def time_generate_batches(self, size):
        n, d = SIZES[size]
        for _ in planted_gap_stream(n, d, gap=2.0, n_heavy=1, heavy_position="start", rng=0).batches(BATCH):
            pass


class IncrementalPCAPeer:
    """scikit-learn's IncrementalPCA on the same batches (the peer the issue names)."""

    params = ([1, 10], ["small", "large"])
    param_names = ["n_components", "size"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, n_components, size):
        self.batches = _batches(stream_data(size)[0])

    def time_partial_fit(self, n_components, size):
        run_ipca(self.batches, n_components)


class TopEigenvectorRatios:
    """Quality and speed ratios measured in one process."""

    params = ["small", "large"]
    param_names = ["size"]
    timeout = 1200
    number = 1
    repeat = 1

    def setup(self, size):
        A, self.v1 = stream_data(size)
        self.batches = _batches(A)
        _warm()

    def track_correlation_random_order(self, size):
        return abs(float(run_ours(self.batches) @ self.v1))

    def track_correlation_oja(self, size):
        return abs(float(run_ours(self.batches, OjaTopEigenvector) @ self.v1))

    def track_correlation_incremental_pca10(self, size):
        return abs(float(run_ipca(self.batches, 10) @ self.v1))

    def track_speedup_vs_incremental_pca10(self, size):
        ours = best_of(lambda: run_ours(self.batches))
        ref = best_of(lambda: run_ipca(self.batches, 10), repeat=1)
        return ref / ours

    def track_time_over_dot_floor(self, size):
        """Seconds of the method / seconds of one np.dot per batch (the goal is <= 3)."""
        ours = best_of(lambda: run_ours(self.batches))
        floor = best_of(lambda: run_dot(self.batches, self.v1))
        return ours / floor


class MemmapFile:
    """One pass over a .npy file (float32, 400,000 x 500 = 800 MB): peak memory is one batch plus O(h d)."""

    timeout = 1200
    number = 1
    repeat = 1

    def setup_cache(self):
        path = os.path.join(tempfile.gettempdir(), "lowrank_bench_stream_400k_500.npy")
        if not os.path.exists(path):
            stream = planted_gap_stream(400_000, 500, gap=2.0, n_heavy=1, dtype=np.float32, rng=1)
            stream.save_npy(path)
        return path

    def setup(self, path):
        _warm()

    def time_stream_file(self, path):
        top_eigenvector_stream(path, batch_rows=10_000, rng=0)

    def peakmem_stream_file(self, path):
        top_eigenvector_stream(path, batch_rows=10_000, rng=0)
