"""FastRP: time/peak memory on planted-partition graphs (1M and 10M edges), BlogCatalog speed and F1,
the speed ratio against a plain scipy implementation of the same formula (one process), and the
graph generator and node-classification protocol."""


import numpy as np
import scipy.sparse as sp

from lowrank.datasets import load_blogcatalog, planted_partition
from lowrank.graphs import evaluate_node_classification, fastrp
from lowrank.linalg import sparse_random_projection

from ._common import best_of, shared_data_path

PAPER_WEIGHTS = (0.0, 0.0, 1.0, 6.67)
BETA = -0.64


def scipy_fastrp(A, dim, weights=PAPER_WEIGHTS, beta=BETA, seed=0, dtype=np.float32):
    """The paper's formula with plain scipy/numpy products (same projection routine, same dtype)."""
    A = sp.csr_matrix(A)
    degree = np.asarray(A.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    M = (sp.diags(inv) @ A).astype(dtype).tocsr()
    scale = np.power(degree, beta, out=np.ones_like(degree), where=degree > 0)
    R = (sp.diags(scale) @ sparse_random_projection(A.shape[0], dim, rng=seed)).astype(dtype).tocsr()
    U = (M @ R).toarray()
    E = np.zeros_like(U)
    for i, w in enumerate(weights):
        if i > 0:
            U = M @ U
        if w:
            norm = np.linalg.norm(U, axis=1, keepdims=True)
            E += dtype(w) * np.divide(U, norm, out=np.zeros_like(U), where=norm > 0)
    std = E.std(axis=0)
    return (E - E.mean(axis=0)) / np.where(std > 0, std, 1).astype(dtype)


def _warm():
    A, _ = planted_partition(200, 2, average_degree=5, rng=0)
    for dtype in (np.float32, np.float64):
        fastrp(A, 8, rng=0, dtype=dtype)


class FastRPPlanted:
    """Dimension 128, the paper's weights; average degree 20 (1M edges: 100k vertices; 10M: 1M vertices)."""

    params = [1_000_000, 10_000_000]
    param_names = ["n_edges"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, n_edges):
        _warm()
        self.A, self.labels = planted_partition(n_edges // 10, 50, average_degree=20, mixing=0.3, rng=0)

    def time_fastrp(self, n_edges):
        fastrp(self.A, 128, rng=0)

    def peakmem_fastrp(self, n_edges):
        fastrp(self.A, 128, rng=0)

    def time_scipy_formula(self, n_edges):
        scipy_fastrp(self.A, 128)


class FastRPRatios:
    """Speed ratio (scipy time / lowrank time, > 1 means lowrank is faster), one process, best of 3."""

    params = ["planted_1M", "blogcatalog"]
    param_names = ["graph"]
    timeout = 600

    def setup(self, graph):
        _warm()
        if graph == "blogcatalog":
            self.A, _ = load_blogcatalog(shared_data_path("blogcatalog.mat"))
            self.dim = 512
        else:
            self.A, _ = planted_partition(100_000, 50, average_degree=20, mixing=0.3, rng=0)
            self.dim = 128

    def track_speedup_vs_scipy(self, graph):
        ours = best_of(lambda: fastrp(self.A, self.dim, rng=0))
        peer = best_of(lambda: scipy_fastrp(self.A, self.dim, seed=0))
        return peer / ours

    track_speedup_vs_scipy.unit = "ratio"


class FastRPBlogCatalog:
    """The paper's BlogCatalog setting (dim 512, weights 0,0,1,6.67, beta -0.64): time, memory, F1."""

    timeout = 1800
    number = 1
    repeat = 3

    def setup_cache(self):
        A, Y = load_blogcatalog(shared_data_path("blogcatalog.mat"))
        E = fastrp(A, 512, rng=0)
        scores = {}
        for ratio in (0.1, 0.5):
            s = evaluate_node_classification(E, Y, train_ratio=ratio, C=0.1, n_repeats=3, rng=0)
            scores[ratio] = (s.micro_f1, s.macro_f1)
        return scores

    def setup(self, scores):
        _warm()
        self.A, self.Y = load_blogcatalog(shared_data_path("blogcatalog.mat"))

    def time_fastrp_dim512(self, scores):
        fastrp(self.A, 512, rng=0)

    def peakmem_fastrp_dim512(self, scores):
        fastrp(self.A, 512, rng=0)

    def track_micro_f1_10pct(self, scores):
        return scores[0.1][0]

    def track_macro_f1_10pct(self, scores):
        return scores[0.1][1]

    def track_micro_f1_50pct(self, scores):
        return scores[0.5][0]

    def track_macro_f1_50pct(self, scores):
        return scores[0.5][1]

    track_micro_f1_10pct.unit = track_macro_f1_10pct.unit = "F1"
    track_micro_f1_50pct.unit = track_macro_f1_50pct.unit = "F1"


class GraphTools:
    """The generator and the scoring protocol: planted partition of 1M edges, node classification
    (one repeat, 10 communities) of a dim-32 FastRP embedding of a 10k-vertex planted graph."""

    timeout = 300

    def setup(self):
        _warm()
        A, self.labels = planted_partition(10_000, 10, average_degree=10, mixing=0.3, rng=0)
        self.E = fastrp(A, 32, rng=0)

    def time_planted_partition_1M_edges(self):
        planted_partition(100_000, 50, average_degree=20, mixing=0.3, rng=0)

    def time_evaluate_node_classification(self):
        evaluate_node_classification(self.E, self.labels, n_repeats=1, rng=0)
