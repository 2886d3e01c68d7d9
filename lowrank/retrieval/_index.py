"""CURIndex: k-NN search for a black-box scorer within a budget of exact calls (ANNCUR)."""

import time

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lowrank._utils.backend import to_numpy
from lowrank._utils.io import load_npz, save_npz
from lowrank._utils.progress import progress
from lowrank._utils.ranking import top_k_rows
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int, check_matrix
from lowrank.linalg import select_columns
from lowrank.retrieval._adaptive import GrowingMinNorm
from lowrank.retrieval._build import build_anchor_scores
from lowrank.retrieval._guided import PriorGuidedFit
from lowrank.retrieval._items import ScorerCalls, check_collection, fingerprint, take

_KIND = "lowrank.retrieval.CURIndex"
_SELECTIONS = ("rrqr", "leverage", "random")


class CURIndex(BaseEstimator):
    """k-nearest-neighbour search for an expensive black-box scorer by CUR matrix factorization.

    Offline (:meth:`fit`), ``n_anchor_queries`` anchor queries are scored exactly against every
    item, giving ``R`` (``n_anchor_queries x n_items``), and ``n_anchor_items`` columns of ``R`` are
    chosen as anchor items. Online (:meth:`search`), a query is scored exactly against the anchor
    items only (``c_q``); its scores for all items are approximated by the CUR product
    ``c_q @ pinv(R[:, anchors]) @ R``; the best unscored items by that approximation are scored
    exactly, and the top ``k`` exactly scored items are returned. Every query uses exactly
    ``budget`` scorer calls (one call = one (query, item) pair).

    With ``n_rounds > 1`` the re-ranking budget is spent in rounds, as in adaptive anchor
    selection (Yadav et al. 2023): after each round the items just scored join the query's
    anchor set, and the approximation is refitted by least squares on all exactly scored
    items, ``w = s_A @ pinv(R[:, A])``, before choosing the next round's items by ``w @ R``.

    Parameters
    ----------
    scorer : callable
        ``scorer(queries, items)`` returning the ``(len(queries), len(items))`` matrix of exact
        scores (numpy array or torch tensor). Queries and items are sub-collections of what
        is passed to :meth:`fit` / :meth:`search` (lists stay lists, arrays stay arrays).
    n_anchor_queries : int, optional
        Anchor queries drawn (uniformly, with ``random_state``) from the pool given to
        :meth:`fit`; default uses the whole pool.
    n_anchor_items : int, default=50
        Items every query is scored against first; also the rank of the CUR approximation
        (effective rank at most ``min(n_anchor_items, n_anchor_queries)``).
    anchor_selection : {"rrqr", "leverage", "random"}, default="rrqr"
        How anchor items are chosen from the columns of ``R``: column-pivoted QR, leverage
        score sampling (both via :func:`lowrank.linalg.select_columns`) or uniformly.
    n_rounds : int, default=1
        Re-ranking rounds; 1 is ANNCUR, more adapts the anchors to each query.
    batch_size : int, default=256
        Items per scorer call while building ``R`` (one checkpoint block), and queries per call
        when scoring anchor items during search.
    rcond : float, optional
        Singular values of ``R[:, anchors]`` below ``rcond * largest`` are cut in the
        pseudo-inverse; default numpy's ``max(shape) * eps``.
    verbose : bool, default=False
        Progress bars while building ``R`` and searching.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the anchor-query subset and randomized anchor selection.

    Attributes
    ----------
    anchor_scores_ : ndarray of shape (n_anchor_queries, n_items)
        ``R``: exact scores of the anchor queries against every item.
    anchor_query_indices_ : ndarray of int, shape (n_anchor_queries,)
        Positions of the anchor queries in the pool given to :meth:`fit`.
    anchor_item_indices_ : ndarray of int, shape (n_anchor_items,)
        The anchor items.
    item_factors_ : ndarray of shape (n_anchor_items, n_items)
        ``pinv(R[:, anchors]) @ R``; approximate scores are ``c_q @ item_factors_``.
    items_ : list, tuple, ndarray or torch tensor
        The indexed items (kept by reference: :meth:`search` scores them).
    n_items_ : int
    n_fit_scorer_calls_ : int
        Exact calls made by the last :meth:`fit` (blocks restored from a checkpoint cost none).
    n_scorer_calls_ : int
        Exact calls made by the last :meth:`search` (``n_queries * budget``).
    scorer_seconds_, algebra_seconds_ : float
        Time of the last :meth:`search` spent inside the scorer, and in everything else
        (the CUR algebra and candidate selection).

    References
    ----------
    N. Yadav, N. Monath, R. Angell, M. Zaheer, A. McCallum, "Efficient Nearest Neighbor Search
    for Cross-Encoder Models using Matrix Factorization", EMNLP 2022, arXiv:2210.12579.
    N. Yadav, N. Monath, M. Zaheer, A. McCallum, "Adaptive Selection of Anchor Items for
    CUR-based k-NN search with Cross-Encoders", EMNLP 2023, arXiv:2305.02996.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank.retrieval import CURIndex, exact_search
    >>> rng = np.random.default_rng(0)
    >>> items, queries = rng.standard_normal((500, 8)), rng.standard_normal((40, 8))
    >>> scorer = lambda q, x: np.tanh(q @ x.T)          # non-linear, so not exactly low rank
    >>> index = CURIndex(scorer, n_anchor_items=20, random_state=0).fit(items, queries[:30])
    >>> idx, scores = index.search(queries[30:], k=5, budget=60)
    >>> index.n_scorer_calls_
    600
    >>> ref, _ = exact_search(scorer, queries[30:], items, k=5)
    >>> bool((idx[:, 0] == ref[:, 0]).mean() >= 0.8)
    True
    """

    _sklearn_skip_checks = "CURIndex indexes items for a black-box scorer callable; it takes no X array"

    def __init__(
        self,
        scorer,
        *,
        n_anchor_queries=None,
        n_anchor_items=50,
        anchor_selection="rrqr",
        n_rounds=1,
        batch_size=256,
        rcond=None,
        verbose=False,
        random_state=None,
    ):
        self.scorer = scorer
        self.n_anchor_queries = n_anchor_queries
        self.n_anchor_items = n_anchor_items
        self.anchor_selection = anchor_selection
        self.n_rounds = n_rounds
        self.batch_size = batch_size
        self.rcond = rcond
        self.verbose = verbose
        self.random_state = random_state

    def _validate_params_(self, n_pool, n_items):
        if not callable(self.scorer):
            raise TypeError(f"`scorer` must be callable, got {type(self.scorer).__name__}")
        n_q = n_pool if self.n_anchor_queries is None else check_int(self.n_anchor_queries, "n_anchor_queries", low=1, high=n_pool)
        n_i = check_int(self.n_anchor_items, "n_anchor_items", low=1, high=n_items)
        check_choice(self.anchor_selection, "anchor_selection", _SELECTIONS)
        check_int(self.n_rounds, "n_rounds", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        if self.rcond is not None:
            check_float(self.rcond, "rcond", low=0.0, high=1.0, high_inclusive=False)
        return n_q, n_i

    def fit(self, items, anchor_queries, *, checkpoint=None, client=None):
        """Score the anchor queries against every item and choose the anchor items.

        Parameters
        ----------
        items : list, tuple, ndarray or torch tensor
            The collection to search (whatever the scorer accepts), indexed along axis 0.
        anchor_queries : list, tuple, ndarray or torch tensor
            Pool of representative queries (e.g. training queries); ``n_anchor_queries`` of
            them are used.
        checkpoint : str or path, optional
            Folder for resumable building: every finished block of ``R`` is written there
            atomically, and a rerun with the same queries, items and ``batch_size`` scores only
            the missing blocks. The folder is kept after a successful fit. When only part of the
            pool is used (``n_anchor_queries``), give an int ``random_state`` so that a rerun draws
            the same anchor queries (otherwise the checkpoint is rejected as written for other data).
        client : distributed.Client, optional
            Score blocks of items as Dask tasks on this client (the scorer must pickle). Default:
            the active Dask client when ``distributed`` is imported and one exists, else serial.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            On bad containers or parameters, a scorer output of the wrong shape or with
            NaN/inf, or a checkpoint written for different data.
        """
        n_items = check_collection(items, "items")
        n_pool = check_collection(anchor_queries, "anchor_queries")
        n_q, n_i = self._validate_params_(n_pool, n_items)
        gen = as_generator(self.random_state, name="random_state")
        q_idx = np.arange(n_pool) if n_q == n_pool else np.sort(gen.choice(n_pool, size=n_q, replace=False))
        queries = anchor_queries if n_q == n_pool else take(anchor_queries, q_idx)
        fp = None
        if checkpoint is not None:
            fp = [fingerprint(queries), fingerprint(items)]
        R, n_calls = build_anchor_scores(
            self.scorer,
            queries,
            items,
            n_q,
            n_items,
            block_size=self.batch_size,
            checkpoint=checkpoint,
            client=client,
            fingerprint=fp,
            verbose=self.verbose,
        )
        if self.anchor_selection == "random":
            item_idx = np.sort(gen.choice(n_items, size=n_i, replace=False))
        else:
            item_idx = np.asarray(select_columns(R, n_i, method=self.anchor_selection, rng=gen), dtype=np.int64)
        self.items_ = items
        self.n_items_ = n_items
        self.anchor_query_indices_ = q_idx
        self._set_factors(R, item_idx)
        self.n_fit_scorer_calls_ = n_calls
        return self

    def _set_factors(self, R, item_idx):
        # Column-major: the adaptive rounds gather columns R[:, scored] for every query.
        self.anchor_scores_ = np.asfortranarray(R)
        self.anchor_item_indices_ = np.asarray(item_idx, dtype=np.int64)
        self.item_factors_ = _pinv(R[:, self.anchor_item_indices_], self.rcond) @ R

    def search(self, queries, k, *, budget, prior_scores=None):
        """Top-``k`` items of each query, using exactly ``budget`` exact scorer calls per query.

        Parameters
        ----------
        queries : list, tuple, ndarray or torch tensor
            New queries (whatever the scorer accepts).
        k : int
            Neighbours to return, ``1 <= k <= budget``.
        budget : int
            Exact scorer calls per query, ``max(k, n_anchor_items) <= budget <= n_items_``:
            ``n_anchor_items`` for the anchors, the rest to re-rank CUR's best candidates.
        prior_scores : array_like of shape (n_queries, n_items), optional
            Cheap approximate scores of every item for every query, e.g. a dual encoder's
            similarities (:meth:`DualEncoderRetriever.similarities
            <lowrank.retrieval.DualEncoderRetriever.similarities>`). When given, each query's
            ``n_anchor_items`` anchors are its best items by prior score instead of the shared
            anchors, and every refit predicts a query's scores as ``a + b * prior + w @ R``:
            an affine calibration of the prior on the exactly scored items, plus a ridge CUR
            correction ``w`` of what the prior gets wrong, its penalty chosen by leave-one-out
            error on the scored items (no correction when it does not predict them). The
            remaining budget is spent in ``n_rounds`` rounds (small rounds of 2-5 items work
            best).

        Returns
        -------
        indices : ndarray of int, shape (n_queries, k)
            Best first, by exact score.
        scores : ndarray of float64, shape (n_queries, k)
            Their exact scores.

        Raises
        ------
        TypeError, ValueError
            On bad containers, ``k`` or ``budget`` out of range, ``prior_scores`` of the wrong
            shape or with NaN/inf, or a bad scorer output.
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.

        Notes
        -----
        Starting the adaptive rounds from a dual encoder's best items follows Yadav et al. (2023),
        who pick the first-round anchors with a dual encoder. Keeping the prior in the model
        (``a + b * prior``) and shrinking the CUR correction by leave-one-out ridge, rather than
        refitting pure CUR after the first round, is lowrank's own choice: with few exactly
        scored items a pure CUR refit is poorly determined, while the prior already ranks well.
        """
        check_is_fitted(self, "item_factors_")
        n_queries = check_collection(queries, "queries")
        n_anchor = self.anchor_item_indices_.size
        budget = check_int(budget, "budget", low=n_anchor, high=self.n_items_)
        k = check_int(k, "k", low=1, high=budget)
        n_rounds = check_int(self.n_rounds, "n_rounds", low=1)
        if prior_scores is not None:
            prior_scores = _check_prior_scores(prior_scores, n_queries, self.n_items_)
        start_time = time.perf_counter()
        calls = ScorerCalls(self.scorer)
        round_sizes = [len(a) for a in np.array_split(np.arange(budget - n_anchor), n_rounds)]
        if prior_scores is None:
            indices, scores = self._search_shared_anchors(queries, n_queries, k, round_sizes, calls)
        else:
            indices, scores = self._search_prior_anchors(queries, n_queries, k, round_sizes, prior_scores, calls)
        self.n_scorer_calls_ = calls.n_pairs
        self.scorer_seconds_ = calls.seconds
        self.algebra_seconds_ = time.perf_counter() - start_time - calls.seconds
        return indices, scores

    def _search_shared_anchors(self, queries, n_queries, k, round_sizes, calls):
        """ANNCUR (and its adaptive rounds) from the anchor items chosen at fit time."""
        n_anchor = self.anchor_item_indices_.size
        anchor_items = take(self.items_, self.anchor_item_indices_)
        C = np.empty((n_queries, n_anchor))
        for s in range(0, n_queries, self.batch_size):
            e = min(s + self.batch_size, n_queries)
            C[s:e] = calls(take(queries, slice(s, e)), anchor_items, e - s, n_anchor)
        first = round_sizes[0]
        R = self.anchor_scores_
        indices = np.empty((n_queries, k), dtype=np.int64)
        scores = np.empty((n_queries, k))
        # The first round is the same algebra for every query: one GEMM per chunk of queries,
        # with the chunk bounded so the approximate scores stay ~16M floats.
        chunk = max(1, min(self.batch_size, 2**24 // self.n_items_))
        adaptive = any(round_sizes[1:])
        if adaptive:  # the anchors' QR is shared by every query; each query extends a copy
            capacity = sum(round_sizes[:-1]) + n_anchor
            base = GrowingMinNorm(R, capacity, self.rcond)
            base.add(self.anchor_item_indices_)
        bar = progress(total=n_queries, desc="search", verbose=self.verbose, unit="query")
        for s in range(0, n_queries, chunk):
            e = min(s + chunk, n_queries)
            if first:
                approx = C[s:e] @ self.item_factors_
                approx[:, self.anchor_item_indices_] = -np.inf
                candidates = np.argpartition(-approx, first - 1, axis=1)[:, :first]
            for q in range(s, e):
                query = take(queries, [q])
                scored, exact = [self.anchor_item_indices_], [C[q]]
                if first:
                    scored.append(candidates[q - s])
                    exact.append(calls(query, take(self.items_, candidates[q - s]), 1, first)[0])
                if adaptive:
                    solver = base.copy(capacity)
                    solver.add(scored[-1] if first else [])
                    self._adaptive_rounds(query, solver, scored, exact, round_sizes[1:], calls)
                indices[q], scores[q] = _best_scored(scored, exact, k)
            bar.update(e - s)
        bar.close()
        return indices, scores

    def _search_prior_anchors(self, queries, n_queries, k, round_sizes, prior, calls):
        """Adaptive rounds from each query's best items by ``prior`` (e.g. a dual encoder)."""
        n_anchor = self.anchor_item_indices_.size
        anchors, _ = top_k_rows(prior, n_anchor)
        capacity = sum(round_sizes[:-1]) + n_anchor
        indices = np.empty((n_queries, k), dtype=np.int64)
        scores = np.empty((n_queries, k))
        bar = progress(total=n_queries, desc="search", verbose=self.verbose, unit="query")
        for q in range(n_queries):
            query = take(queries, [q])
            scored = [anchors[q]]
            exact = [calls(query, take(self.items_, anchors[q]), 1, n_anchor)[0]]
            solver = PriorGuidedFit(self.anchor_scores_, prior[q], capacity)
            solver.add(anchors[q])
            self._adaptive_rounds(query, solver, scored, exact, round_sizes, calls)
            indices[q], scores[q] = _best_scored(scored, exact, k)
            bar.update(1)
        bar.close()
        return indices, scores

    def _adaptive_rounds(self, query, solver, scored, exact, round_sizes, calls):
        """Spend ``round_sizes`` exact calls on one query, refitting after every round.

        ``scored``/``exact`` (lists of index/score arrays) are extended in place; ``solver``
        (a GrowingMinNorm or a PriorGuidedFit) already holds the columns of everything scored.
        """
        last = max((i for i, size in enumerate(round_sizes) if size), default=-1)
        for r, size in enumerate(round_sizes):
            if size == 0:
                continue
            done = np.concatenate(scored)
            approx = solver.predict(np.concatenate(exact))
            approx[done] = -np.inf
            new = np.argpartition(-approx, size - 1)[:size]
            scored.append(new)
            exact.append(calls(query, take(self.items_, new), 1, size)[0])
            if r < last:
                solver.add(new)

    def approximate_scores(self, anchor_item_scores):
        """CUR approximation of all item scores from the exact scores against the anchor items.

        Parameters
        ----------
        anchor_item_scores : array_like of shape (n_queries, n_anchor_items)
            Exact scores of some queries against ``items_[anchor_item_indices_]``.

        Returns
        -------
        ndarray of shape (n_queries, n_items)
        """
        check_is_fitted(self, "item_factors_")
        C = np.asarray(anchor_item_scores, dtype=np.float64)
        if C.ndim != 2 or C.shape[1] != self.anchor_item_indices_.size:
            raise ValueError(
                f"`anchor_item_scores` must have shape (n_queries, {self.anchor_item_indices_.size}), got {C.shape}"
            )
        if not np.isfinite(C).all():
            raise ValueError("`anchor_item_scores` must not contain NaN or infinity")
        return C @ self.item_factors_

    def save(self, path):
        """Write the fitted index to ``path`` (one ``.npz`` file, written atomically).

        The scorer and the items are not saved: pass them again to :meth:`load`.
        """
        check_is_fitted(self, "item_factors_")
        params = self.get_params(deep=False)
        params.pop("scorer")
        if not (params["random_state"] is None or isinstance(params["random_state"], (int, np.integer))):
            params["random_state"] = None  # a Generator has no JSON form; the fitted state is saved anyway
        else:
            params["random_state"] = None if params["random_state"] is None else int(params["random_state"])
        meta = {
            "params": params,
            "n_items": self.n_items_,
            "items_fingerprint": fingerprint(self.items_),
            "n_fit_scorer_calls": int(self.n_fit_scorer_calls_),
        }
        arrays = {
            "anchor_scores": self.anchor_scores_,
            "anchor_query_indices": self.anchor_query_indices_,
            "anchor_item_indices": self.anchor_item_indices_,
            "item_factors": self.item_factors_,
        }
        save_npz(path, arrays, kind=_KIND, meta=meta)

    @classmethod
    def load(cls, path, scorer, items):
        """Read an index written by :meth:`save`.

        Parameters
        ----------
        path : str or path
        scorer : callable
            The scorer the index was built with.
        items : list, tuple, ndarray or torch tensor
            The same items as at fit time (checked by length, and by content hash for arrays
            and lists of strings).

        Returns
        -------
        CURIndex
            Fitted; searches exactly like the saved one.

        Raises
        ------
        ValueError
            If the file is not a saved CURIndex or ``items`` differ from the indexed ones.
        """
        arrays, meta = load_npz(path, kind=_KIND)
        n_items = check_collection(items, "items")
        if n_items != meta["n_items"]:
            raise ValueError(f"`items` has {n_items} entries but the index was built on {meta['n_items']}")
        saved_fp = meta["items_fingerprint"]
        if saved_fp is not None and fingerprint(items) != saved_fp:
            raise ValueError("`items` differ from the items the index was built on (content hash mismatch)")
        index = cls(scorer, **meta["params"])
        index.items_ = items
        index.n_items_ = n_items
        index.anchor_query_indices_ = arrays["anchor_query_indices"]
        index.anchor_scores_ = arrays["anchor_scores"]
        index.anchor_item_indices_ = arrays["anchor_item_indices"]
        index.item_factors_ = arrays["item_factors"]
        index.n_fit_scorer_calls_ = meta["n_fit_scorer_calls"]
        return index


def _best_scored(scored, exact, k):
    """The ``k`` best exactly scored items (stable on ties) and their scores."""
    values = np.concatenate(exact)
    best = np.argsort(-values, kind="stable")[:k]
    return np.concatenate(scored)[best], values[best]


def _check_prior_scores(prior_scores, n_queries, n_items):
    prior = check_matrix(to_numpy(prior_scores), "prior_scores", accept_sparse=False)
    if prior.shape != (n_queries, n_items):
        raise ValueError(f"`prior_scores` must have shape (n_queries, n_items) = ({n_queries}, {n_items}), got {prior.shape}")
    return prior.astype(np.float64, copy=False)


def _pinv(A, rcond):
    if rcond is None:
        return scipy.linalg.pinv(A, check_finite=False)
    return scipy.linalg.pinv(A, rtol=rcond, check_finite=False)
