"""
CUR search for a black-box scorer: recall@10 against the scoring budget
=======================================================================

:class:`~lowrank.retrieval.CURIndex` answers a k-nearest-neighbour query for an expensive scorer
``s(q, x)`` that has no embeddings (a cross-encoder, say) with a fixed budget of exact calls: a few
anchor items are scored exactly, the CUR approximation of the query's scores against every item
(from anchor queries scored offline) picks candidates, and the rest of the budget re-ranks them.
The baseline is the paper's: :class:`~lowrank.retrieval.DualEncoderRetriever`, which spends the same
budget re-ranking the nearest items of a cheap embedding. The reference is exhaustive exact search
(:func:`~lowrank.retrieval.exact_search`), recall 1 by definition.

The all-MiniLM model of the retrieval extra takes minutes on two CPU cores, so the scorer here is
synthetic: ``s(q, x) = (q.x)**2 + 0.3 q.x`` on 8-D features, a non-linear interaction that a dual
encoder on the raw features (cosine of ``q`` and ``x``) ranks wrongly for the items strongly
anti-aligned with the query (about half of the true top 10), while the score matrix has rank at
most 8 + 36 = 44, which 60 anchor items capture. Real cross-encoder score matrices are only
approximately low-rank, so recall there grows more slowly with the budget (see the retrieval guide
for the docstring-corpus figures).
"""

import matplotlib.pyplot as plt
import numpy as np

from lowrank.retrieval import CURIndex, DualEncoderRetriever, exact_search, recall_at_k

rng = np.random.default_rng(0)
items = rng.standard_normal((3000, 8))
anchor_queries = rng.standard_normal((400, 8))
test_queries = rng.standard_normal((100, 8))


def scorer(queries, candidates):
    dot = np.asarray(queries) @ np.asarray(candidates).T
    return dot**2 + 0.3 * dot


reference, _ = exact_search(scorer, test_queries, items, 10)
budgets = [70, 80, 100, 200, 400]
index = CURIndex(scorer, n_anchor_queries=400, n_anchor_items=60, random_state=0)
index.fit(items, anchor_queries)
dual = DualEncoderRetriever(lambda x: np.asarray(x), scorer).fit(items)
recall = {"CUR": [], "dual encoder": []}
for budget in budgets:
    found, _ = index.search(test_queries, 10, budget=budget)
    assert index.n_scorer_calls_ == budget * len(test_queries)  # the budget is exact
    recall["CUR"].append(recall_at_k(found, reference, 10))
    found, _ = dual.search(test_queries, 10, budget=budget)
    recall["dual encoder"].append(recall_at_k(found, reference, 10))
for name, values in recall.items():
    print(f"{name:12s} recall@10 " + "  ".join(f"{b}:{r:.2f}" for b, r in zip(budgets, values)))

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in recall.items():
    ax.plot(budgets, values, "o-", label=name)
ax.axhline(1.0, color="k", lw=0.8, ls="--", label=f"exhaustive ({len(items)} calls)")
ax.set_xscale("log")
ax.set_xticks(budgets, [str(b) for b in budgets])
ax.set_xlabel("exact scorer calls per query")
ax.set_ylabel("recall@10")
ax.set_ylim(0, 1.05)
ax.set_title("3,000 items, 100 test queries, 400 anchor queries")
ax.legend()
fig.tight_layout()

# %%
# The claim, checked: CUR's recall does not fall with the budget, beats the dual encoder at every
# budget, and reaches 0.95 with 100 calls (3 % of the items); the dual encoder stays below 0.8 even
# at 400 calls, since re-ranking its neighbours never reaches the anti-aligned items.
assert np.all(np.diff(recall["CUR"]) >= -0.01), recall
assert np.all(np.array(recall["CUR"]) > np.array(recall["dual encoder"])), recall
assert recall["CUR"][budgets.index(100)] >= 0.95, recall
assert recall["dual encoder"][-1] < 0.8, recall
