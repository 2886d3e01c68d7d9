"""Personalized PageRank on Barabasi-Albert graphs: the exact batched solver and PowerWalk.

Graphs: BA with m=5 and n=100,000 ("1M" arcs) or n=1,000,000 ("10M" arcs), damping 0.85.
Peers measured in the same process: a scipy power loop (one CSR matvec per seed per iteration,
the same stopping rule), a scipy block loop (CSR @ (n, k) dense), igraph's PRPACK.
``python asv_benchmarks/benchmarks/pagerank.py`` prints every figure once.
"""

import time

import numba
import numpy as np
import scipy.sparse as sp

from lowrank.graphs import PowerWalk, personalized_pagerank
from lowrank.graphs._ppr_common import Transition

from ._common import best_of

ALPHA = 0.85
SIZES = {"1M": 100_000, "10M": 1_000_000}
N_SEEDS = {"1M": 100, "10M": 16}  # 16 keeps the 10M-arc (n, k) block near 128 MB
_GRAPHS = {}


@numba.njit
def _ba_arcs(n, m, seed):
    """Degree-preferential attachment: each new vertex links to m distinct earlier vertices drawn
    with probability proportional to their degree (uniform picks from the list of arc endpoints)."""
    np.random.seed(seed)
    repeated = np.empty(2 * (n - m) * m + m, dtype=np.int64)
    repeated[:m] = np.arange(m)
    size = m
    src = np.empty((n - m) * m, dtype=np.int64)
    dst = np.empty((n - m) * m, dtype=np.int64)
    chosen = np.empty(m, dtype=np.int64)
    e = 0
    for t in range(m, n):
        k = 0
        while k < m:
            v = repeated[np.random.randint(0, size)]
            fresh = True
            for q in range(k):
                if chosen[q] == v:
                    fresh = False
                    break
            if fresh:
                chosen[k] = v
                k += 1
        for q in range(m):
            src[e] = t
            dst[e] = chosen[q]
            e += 1
            repeated[size] = chosen[q]
            repeated[size + 1] = t
            size += 2
    return src, dst


def barabasi_albert(n, m=5, seed=0):
    """Symmetric CSR adjacency (2 (n - m) m arcs) of a Barabasi-Albert graph."""
    key = (n, m, seed)
    if key not in _GRAPHS:
        s, d = _ba_arcs(n, m, seed)
        A = sp.csr_matrix((np.ones(2 * s.size), (np.concatenate([s, d]), np.concatenate([d, s]))), shape=(n, n))
        _GRAPHS[key] = A
    return _GRAPHS[key]


def ring_with_dangling(n, seed=0, chords=2, span=50, dangling=0.03):
    """Directed ring-like graph: arcs i -> i+1 and ``chords`` short forward chords (length 2..span-1)
    per vertex, then ``dangling`` of the vertices lose their out-arcs. Slow mixing, local PPR: the
    kind of graph where a fixed decomposition depth was least accurate (issue 24)."""
    key = ("ring", n, seed)
    if key not in _GRAPHS:
        rng = np.random.default_rng(seed)
        src = np.tile(np.arange(n), chords + 1)
        dst = np.concatenate([np.arange(1, n + 1)] + [np.arange(n) + rng.integers(2, span, n) for _ in range(chords)])
        dead = rng.choice(n, int(dangling * n), replace=False)
        keep = ~np.isin(src, dead)
        A = sp.csr_matrix((np.ones(keep.sum()), (src[keep], dst[keep] % n)), shape=(n, n))
        A.data[:] = 1.0
        _GRAPHS[key] = A
    return _GRAPHS[key]


def _seeds(n, k):
    return np.random.default_rng(1).choice(n, k, replace=False)


def _warm():
    A = barabasi_albert(2000)
    personalized_pagerank(A, [0, 1])
    PowerWalk(n_walks=2, random_state=0).fit(A).query([0, 1])


def scipy_power_loop(A, seeds, tol=1e-6, max_iter=100):
    """The peer: one scipy CSR matvec per seed per iteration, same personalization, dangling rule and stop."""
    tr = Transition(A)
    MT = tr.matrix().T.tocsr()
    out = np.empty((len(seeds), A.shape[0]))
    for i, s in enumerate(seeds):
        x = np.zeros(A.shape[0])
        x[s] = 1.0
        for _ in range(max_iter):
            y = ALPHA * (MT @ x)
            y[s] += 1 - ALPHA + ALPHA * x[tr.dangling].sum()
            done = ALPHA / (1 - ALPHA) * np.abs(y - x).sum() <= tol
            x = y
            if done:
                break
        out[i] = x
    return out


def scipy_block_loop(A, seeds, tol=1e-6, max_iter=100):
    """Peer: scipy CSR @ dense (n, k) block per iteration."""
    tr = Transition(A)
    MT = tr.matrix().T.tocsr()
    k = len(seeds)
    X = np.zeros((A.shape[0], k))
    X[seeds, np.arange(k)] = 1.0
    for _ in range(max_iter):
        Y = ALPHA * (MT @ X)
        Y[seeds, np.arange(k)] += 1 - ALPHA + ALPHA * X[tr.dangling].sum(axis=0)
        done = ALPHA / (1 - ALPHA) * np.abs(Y - X).sum(axis=0).max() <= tol
        X = Y
        if done:
            break
    return X.T


def igraph_prpack(A, seeds):
    import igraph as ig

    C = sp.triu(A).tocoo()
    g = ig.Graph(n=A.shape[0], edges=np.column_stack([C.row, C.col]).tolist(), directed=False)
    return np.array(
        [g.personalized_pagerank(damping=ALPHA, reset_vertices=[int(s)], implementation="prpack") for s in seeds]
    )


def _precision_at(approx, exact, k=100):
    return float(
        np.mean([np.intersect1d(np.argsort(-a)[:k], np.argsort(-e)[:k]).size / k for a, e in zip(approx, exact)])
    )


class _OnBA:
    """Shared by the benchmarks at two graph sizes: the BA graph ``A`` and its ``seeds``."""

    params = ["1M", "10M"]
    param_names = ["arcs"]
    timeout = 600

    def setup(self, arcs):
        _warm()
        self.A = barabasi_albert(SIZES[arcs])
        self.seeds = _seeds(self.A.shape[0], N_SEEDS[arcs])


class ExactPPR(_OnBA):
    """The exact batched solver (L1 <= 1e-6 per seed) at two graph sizes."""

    def time_power(self, arcs):
        personalized_pagerank(self.A, self.seeds, tol=1e-6)

    def peakmem_power(self, arcs):
        personalized_pagerank(self.A, self.seeds, tol=1e-6)


class PushPPR:
    """Forward push (``method="push"``, L1 <= 1e-2 per seed), 4 seeds on 1M arcs.

    Few seeds: on this expander-like graph push touches most vertices (about 0.3 s a seed with one
    thread, ten times the batched power solver's time per seed at L1 <= 1e-6).
    """

    number = 1
    repeat = 3
    timeout = 600

    def setup(self):
        _warm()
        self.A = barabasi_albert(SIZES["1M"])
        self.seeds = _seeds(self.A.shape[0], 4)
        personalized_pagerank(self.A, self.seeds[:1], method="push", tol=1e-1)

    def time_push(self):
        personalized_pagerank(self.A, self.seeds, method="push", tol=1e-2)


class ExactPPRRatios:
    """Speed ratios (> 1: lowrank faster), 1M arcs, 100 seeds, all at L1 <= 1e-6, one process."""

    number = 1
    repeat = 1
    timeout = 900

    def setup(self):
        _warm()
        self.A = barabasi_albert(SIZES["1M"])
        self.seeds = _seeds(self.A.shape[0], 100)
        self.ours = best_of(repeat=1, fn=lambda: personalized_pagerank(self.A, self.seeds, tol=1e-6))

    def track_speedup_vs_scipy_power_loop(self):
        return best_of(repeat=1, fn=lambda: scipy_power_loop(self.A, self.seeds)) / self.ours

    def track_speedup_vs_scipy_block(self):
        return best_of(repeat=1, fn=lambda: scipy_block_loop(self.A, self.seeds)) / self.ours

    def track_speedup_vs_igraph_prpack(self):
        from importlib.util import find_spec

        if find_spec("igraph") is None:
            raise NotImplementedError("igraph not installed")
        few = self.seeds[:5]  # PRPACK solves one seed at a time (~0.7 s each here): time 5, scale to 100
        return best_of(repeat=1, fn=lambda: igraph_prpack(self.A, few)) * (len(self.seeds) / len(few)) / self.ours


class PowerWalkIndex(_OnBA):
    """PowerWalk (R=10 walks, L=10): index build time/memory, 100-seed query (T=10) time at two sizes."""

    def setup(self, arcs):
        super().setup(arcs)
        self.pw = PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(self.A)
        self.pw.query(self.seeds[:2])

    def time_fit(self, arcs):
        PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(self.A)

    def peakmem_fit(self, arcs):
        PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(self.A)

    def time_query(self, arcs):
        self.pw.query(self.seeds, n_decomp=10)

    def peakmem_query(self, arcs):
        self.pw.query(self.seeds, n_decomp=10)

    def track_index_megabytes(self, arcs):
        return self.pw.nbytes_ / 1e6

    def track_fingerprint_megabytes(self, arcs):
        pw = self.pw
        return (pw.fingerprint_indptr_.nbytes + pw.fingerprint_indices_.nbytes + pw.fingerprint_counts_.nbytes) / 1e6

    track_index_megabytes.unit = "MB"
    track_fingerprint_megabytes.unit = "MB"


class PowerWalkQuality:
    """PowerWalk (R=10, L=10, T=10) on 1M arcs, 100 seeds, against the exact answer (L1 <= 1e-9)."""

    number = 1
    repeat = 1
    timeout = 600

    def setup(self):
        _warm()
        self.A = barabasi_albert(SIZES["1M"])
        self.seeds = _seeds(self.A.shape[0], 100)
        self.exact = personalized_pagerank(self.A, self.seeds, tol=1e-9)
        self.pw = PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(self.A)
        t = time.perf_counter()
        self.approx = self.pw.query(self.seeds, n_decomp=10)
        self.query_s = time.perf_counter() - t

    def track_mean_l1(self):
        return float(np.abs(self.approx - self.exact).sum(axis=1).mean())

    def track_precision_at_100(self):
        return _precision_at(self.approx, self.exact, 100)

    def track_query_speedup_vs_exact(self):
        return best_of(repeat=1, fn=lambda: personalized_pagerank(self.A, self.seeds, tol=1e-6)) / self.query_s


class TorchPPR(_OnBA):
    """The torch solver (``device=``: CUDA when available, else CPU torch), same seeds and tol 1e-6,
    against the numba kernel in the same process (track_: numba time / torch time)."""

    number = 1
    repeat = 3

    def setup(self, arcs):
        import torch

        super().setup(arcs)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        personalized_pagerank(self.A, self.seeds[:2], device=self.device)  # CUDA context, kernels

    def _run(self):
        X = personalized_pagerank(self.A, self.seeds, tol=1e-6, device=self.device)
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        return X

    def time_torch(self, arcs):
        self._run()

    def track_speedup_vs_numba(self, arcs):
        numba_s = best_of(repeat=1, fn=lambda: personalized_pagerank(self.A, self.seeds, tol=1e-6))
        return numba_s / best_of(repeat=1, fn=self._run)


class PowerWalkTolerance:
    """``query(tol=...)`` (steps chosen from the flow left: the default tol 0.04 gives T = 25) against a
    fixed ``n_decomp`` on both graph kinds, n = 100,000, 100 seeds: query time, and mean L1 error
    against the exact solver (L1 <= 1e-9)."""

    params = (["barabasi_albert", "ring_with_dangling"], ["default_tol", "tol_0.01", "n_decomp_10"])
    param_names = ["graph", "query"]
    number = 1
    repeat = 3
    timeout = 900
    _cache = {}

    @staticmethod
    def _kwargs(query):
        return {"default_tol": {}, "tol_0.01": {"tol": 0.01}, "n_decomp_10": {"n_decomp": 10}}[query]

    def setup(self, graph, query):
        _warm()
        if graph not in self._cache:
            A = barabasi_albert(SIZES["1M"]) if graph == "barabasi_albert" else ring_with_dangling(SIZES["1M"])
            seeds = _seeds(A.shape[0], 100)
            exact = personalized_pagerank(A, seeds, tol=1e-9, max_iter=1000)
            pw = PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(A)
            self._cache[graph] = (A, seeds, exact, pw)
        self.A, self.seeds, self.exact, self.pw = self._cache[graph]
        self.kwargs = self._kwargs(query)

    def time_query(self, graph, query):
        self.pw.query(self.seeds, **self.kwargs)

    def track_mean_l1(self, graph, query):
        return float(np.abs(self.pw.query(self.seeds, **self.kwargs) - self.exact).sum(axis=1).mean())

    def track_max_l1(self, graph, query):
        return float(np.abs(self.pw.query(self.seeds, **self.kwargs) - self.exact).sum(axis=1).max())


def _main():
    def cpu_wall(fn):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t, time.process_time() - c

    t = time.perf_counter()
    A = barabasi_albert(SIZES["1M"])
    print(f"BA n=100,000 m=5: {A.nnz} arcs, generated in {time.perf_counter() - t:.1f} s (incl. numba compile)")
    _warm()
    seeds = _seeds(A.shape[0], 100)
    X, w, c = cpu_wall(lambda: personalized_pagerank(A, seeds, tol=1e-6))
    print(f"exact batch solver, 100 seeds: wall {w:.2f} s, CPU {c:.2f} s")
    ref, w2, c2 = cpu_wall(lambda: scipy_power_loop(A, seeds))
    print(f"scipy power loop: wall {w2:.2f} s, CPU {c2:.2f} s; max L1 vs ours {np.abs(X - ref).sum(1).max():.1e}")
    _, w3, c3 = cpu_wall(lambda: scipy_block_loop(A, seeds))
    print(f"scipy block loop: wall {w3:.2f} s, CPU {c3:.2f} s")
    try:
        ig, w4, c4 = cpu_wall(lambda: igraph_prpack(A, seeds[:5]))
        print(f"igraph PRPACK, 5 seeds: wall {w4:.2f} s, CPU {c4:.2f} s (x20 -> {20 * w4:.1f} s wall for 100);"
              f" max L1 vs ours {np.abs(X[:5] - ig).sum(1).max():.1e}")
    except ImportError:
        pass
    exact = personalized_pagerank(A, seeds, tol=1e-9)
    pw = PowerWalk(n_walks=10, walk_length=10, random_state=0)
    _, w, c = cpu_wall(lambda: pw.fit(A))
    fp_mb = (pw.fingerprint_indptr_.nbytes + pw.fingerprint_indices_.nbytes + pw.fingerprint_counts_.nbytes) / 1e6
    print(f"PowerWalk fit R=10 L=10: wall {w:.2f} s, CPU {c:.2f} s; fingerprints {fp_mb:.1f} MB, "
          f"index incl. graph {pw.nbytes_ / 1e6:.1f} MB")
    for T in (5, 10, 15):
        Q, w, c = cpu_wall(lambda: pw.query(seeds, n_decomp=T))
        l1 = np.abs(Q - exact).sum(1).mean()
        print(f"PowerWalk query 100 seeds T={T}: wall {w:.2f} s, CPU {c:.2f} s, mean L1 {l1:.4f}, "
              f"precision@100 {_precision_at(Q, exact):.4f}")
    for name, G in (("BA", A), ("ring, 3% dangling", ring_with_dangling(SIZES["1M"]))):
        ex = exact if G is A else personalized_pagerank(G, seeds, tol=1e-9, max_iter=1000)
        index = pw if G is A else PowerWalk(n_walks=10, walk_length=10, random_state=0).fit(G)
        for label, kwargs in (("default tol=0.04", {}), ("tol=0.01", {"tol": 0.01}), ("n_decomp=10", {"n_decomp": 10})):
            Q, w, c = cpu_wall(lambda: index.query(seeds, **kwargs))
            err = np.abs(Q - ex).sum(1)
            print(f"PowerWalk query on {name}, {label}: wall {w:.2f} s, CPU {c:.2f} s, "
                  f"mean L1 {err.mean():.4f}, max L1 {err.max():.4f}")


if __name__ == "__main__":
    _main()
