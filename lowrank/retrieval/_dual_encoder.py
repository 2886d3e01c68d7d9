"""The baseline ANNCUR is compared with: dual-encoder retrieval, then exact re-ranking."""

import time

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.backend import to_numpy
from lowrank._utils.ranking import top_k_rows
from lowrank._utils.validation import check_choice, check_int
from lowrank.retrieval._items import ScorerCalls, check_collection, take


class DualEncoderRetriever(BaseEstimator):
    """Retrieve ``budget`` candidates by embedding similarity, then re-rank them with the exact scorer.

    Items are embedded once (:meth:`fit`); a query is embedded, its ``budget`` nearest items by
    cosine (or dot-product) similarity are scored with the exact scorer, and the top ``k`` by
    exact score are returned: exactly ``budget`` scorer calls per query, like
    :meth:`CURIndex.search <lowrank.retrieval.CURIndex.search>`.

    Parameters
    ----------
    encoder : callable
        ``encoder(texts_or_items) -> (n, dim)`` embeddings (numpy array or torch tensor).
    scorer : callable
        ``scorer(queries, items)`` returning the exact ``(len(queries), len(items))`` scores.
    metric : {"cosine", "dot"}, default="cosine"
    batch_size : int, default=256
        Items per encoder call.

    Attributes
    ----------
    item_embeddings_ : ndarray of shape (n_items, dim)
        Normalized to unit length when ``metric="cosine"``.
    items_ : the indexed items
    n_items_ : int
    n_scorer_calls_ : int
        Exact calls made by the last :meth:`search`.
    scorer_seconds_, algebra_seconds_ : float
        Time of the last search inside the scorer / everywhere else (including query encoding).

    References
    ----------
    N. Yadav et al., "Efficient Nearest Neighbor Search for Cross-Encoder Models using Matrix
    Factorization", EMNLP 2022, arXiv:2210.12579 (the "DE + re-rank" baseline).

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.retrieval import DualEncoderRetriever
    >>> items = np.eye(4)
    >>> de = DualEncoderRetriever(lambda x: np.asarray(x), lambda q, x: -((q[:, None] - x[None]) ** 2).sum(-1))
    >>> idx, _ = de.fit(items).search(np.array([[0.0, 0.9, 0.1, 0.0]]), k=1, budget=2)
    >>> idx.tolist(), de.n_scorer_calls_
    ([[1]], 2)
    """

    _sklearn_skip_checks = "DualEncoderRetriever wraps black-box encoder/scorer callables; it takes no X array"

    def __init__(self, encoder, scorer, *, metric="cosine", batch_size=256):
        self.encoder = encoder
        self.scorer = scorer
        self.metric = metric
        self.batch_size = batch_size

    def _embed(self, x, n):
        parts = []
        for s in range(0, n, self.batch_size):
            e = min(s + self.batch_size, n)
            emb = np.asarray(to_numpy(self.encoder(take(x, slice(s, e)))), dtype=np.float64)
            if emb.ndim != 2 or emb.shape[0] != e - s:
                raise ValueError(f"`encoder` must return a ({e - s}, dim) array, got shape {emb.shape}")
            parts.append(emb)
        emb = np.concatenate(parts)
        if not np.isfinite(emb).all():
            raise ValueError("`encoder` returned NaN or infinite embeddings")
        if self.metric == "cosine":
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        return emb

    def fit(self, items):
        """Embed every item.

        Parameters
        ----------
        items : list, tuple, ndarray or torch tensor

        Returns
        -------
        self
        """
        for name, f in (("encoder", self.encoder), ("scorer", self.scorer)):
            if not callable(f):
                raise TypeError(f"`{name}` must be callable, got {type(f).__name__}")
        check_choice(self.metric, "metric", ("cosine", "dot"))
        check_int(self.batch_size, "batch_size", low=1)
        n = check_collection(items, "items")
        self.item_embeddings_ = self._embed(items, n)
        self.items_ = items
        self.n_items_ = n
        return self

    def similarities(self, queries):
        """Embedding similarity of every query to every indexed item (no exact scorer calls).

        Use it as ``prior_scores`` of :meth:`CURIndex.search <lowrank.retrieval.CURIndex.search>`
        to start CUR's adaptive rounds from the dual encoder's best items.

        Parameters
        ----------
        queries : list, tuple, ndarray or torch tensor

        Returns
        -------
        ndarray of float64, shape (n_queries, n_items)
            Cosine or dot-product similarities, by ``metric``.
        """
        check_is_fitted(self, "item_embeddings_")
        n_queries = check_collection(queries, "queries")
        return self._embed(queries, n_queries) @ self.item_embeddings_.T

    def search(self, queries, k, *, budget):
        """Top-``k`` items per query after exactly re-ranking the ``budget`` nearest by embedding.

        Parameters
        ----------
        queries : list, tuple, ndarray or torch tensor
        k : int
            ``1 <= k <= budget``.
        budget : int
            Exact scorer calls per query, ``1 <= budget <= n_items_``.

        Returns
        -------
        indices : ndarray of int, shape (n_queries, k)
        scores : ndarray of float64, shape (n_queries, k)
            Exact scores, best first.
        """
        check_is_fitted(self, "item_embeddings_")
        n_queries = check_collection(queries, "queries")
        budget = check_int(budget, "budget", low=1, high=self.n_items_)
        k = check_int(k, "k", low=1, high=budget)
        start = time.perf_counter()
        calls = ScorerCalls(self.scorer)
        candidates, _ = top_k_rows(self.similarities(queries), budget)
        indices = np.empty((n_queries, k), dtype=np.int64)
        scores = np.empty((n_queries, k))
        for q in range(n_queries):
            exact = calls(take(queries, [q]), take(self.items_, candidates[q]), 1, budget)
            found, vals = top_k_rows(exact, k)
            indices[q] = candidates[q][found[0]]
            scores[q] = vals[0]
        self.n_scorer_calls_ = calls.n_pairs
        self.scorer_seconds_ = calls.seconds
        self.algebra_seconds_ = time.perf_counter() - start - calls.seconds
        return indices, scores
