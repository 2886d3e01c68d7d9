"""DR-RL LowRankAttention on the zoo's tiny transformer (sequence_task, sort, length 12): learned
per-sequence ranks vs every fixed rank, in one process; then the FLOP saving vs sequence length
(counted) and the CPU wall time of the factored forward vs exact attention.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_dr_rl.py [--seeds 3] [--costs 0.1 0.5]

Protocol, fixed before measuring: each block's attention is replaced by
``LowRankAttention.from_module(attn, ranks=(1, 2, 4, 8, 16), flop_cost=c, epsilon=0.1)``; each
layer's policy trains by REINFORCE (Adam lr 3e-2, 150 steps, batches of 64) on that layer's inputs
from 1024 training sequences (captured with the exact model), then the model runs on the 1000 test
sequences with greedy policy ranks or one fixed rank everywhere. Reported: token accuracy, the mean
output cosine of the attention layers to exact attention, and the mean counted attention FLOPs per
sequence and layer (all heads) relative to exact attention.
"""

import argparse
import copy
import time

import numpy as np
import torch

GRID = (1, 2, 4, 8, 16)


class _Fixed(torch.nn.Module):
    def __init__(self, attn, rank):
        super().__init__()
        self.attn, self.rank = attn, rank

    def forward(self, x):
        return self.attn(x, rank=self.rank)


def _capture(model, X):
    inputs = {}
    hooks = [b.attn.register_forward_hook(lambda m, a, out, i=i: inputs.setdefault(i, a[0].detach()))
             for i, b in enumerate(model.blocks)]
    with torch.no_grad():
        model(X)
    for h in hooks:
        h.remove()
    return inputs


def evaluate(task, attns, mode):
    """Token accuracy, mean attention cosine, mean FLOPs ratio with each block's attention replaced."""
    from lowrank.nn.allocation import attention_flops

    model = copy.deepcopy(task.model)
    X_test = task.test[0]
    exact_in = _capture(model, X_test)
    cosines, ratios, used = [], [], []
    for i, block in enumerate(model.blocks):
        attn = attns[i]
        with torch.no_grad():
            x = exact_in[i]
            out = attn(x) if mode == "policy" else attn(x, rank=mode)
            ref = attn.exact(x)
            cosines.append(float(torch.nn.functional.cosine_similarity(out.flatten(1), ref.flatten(1)).mean()))
            full = attn.options.n_heads * attention_flops(x.shape[1], attn.d_head) * x.shape[0]
            ratios.append(attn.last_flops / full)
            if mode == "policy":
                grid = torch.tensor(GRID)
                used.append([int((attn.last_ranks == r).sum()) for r in grid])
        block.attn = attn if mode == "policy" else _Fixed(attn, mode)
    acc = task.metric(model, task.test)
    return (acc, float(np.mean(cosines)), float(np.mean(ratios))), used


def run(seed, cost):
    from lowrank.nn.allocation import LowRankAttention
    from lowrank.nn.zoo import sequence_task

    task = sequence_task(seed=seed)
    inputs = _capture(task.model, task.train[0][:1024])
    attns = []
    for i, block in enumerate(task.model.blocks):
        attn = LowRankAttention.from_module(block.attn, ranks=GRID, flop_cost=cost, epsilon=0.1, rng=seed)
        opt = torch.optim.Adam(attn.policy.parameters(), lr=3e-2)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(150):
            idx = torch.randint(0, len(inputs[i]), (64,), generator=gen)
            attn.reinforce_step(inputs[i][idx], opt)
        attns.append(attn)
    rows = {"exact": (task.metric(task.model, task.test), 1.0, 1.0)}
    rows["policy"], ranks = evaluate(task, attns, "policy")
    for r in GRID:
        rows[f"fixed r{r}"] = evaluate(task, attns, r)[0]
    return rows, ranks


def main(argv=None):
    from lowrank.nn.allocation import LowRankAttention, attention_flops

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--costs", type=float, nargs="+", default=[0.1, 0.5])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for cost in args.costs:
        table, rank_use = {}, []
        for seed in range(args.seeds):
            rows, ranks = run(seed, cost)
            rank_use.append(ranks)
            for k, v in rows.items():
                table.setdefault(k, []).append(v)
        print(f"\n## sequence_task sort L=12, flop_cost={cost}, mean of {args.seeds} seeds")
        print("| attention | token accuracy | mean cosine to exact | FLOPs / exact |")
        print("|---|---|---|---|")
        for k, vals in table.items():
            a = np.array(vals)
            print(f"| {k} | {a[:, 0].mean():.4f} | {a[:, 1].mean():.4f} | {a[:, 2].mean():.3f} |")
        print("policy rank histogram (per seed, per layer, over grid", GRID, "):", rank_use)
    print("\n## counted FLOPs of one head (d_h = 16, one segment), rank r / exact, by length L")
    lengths = [12, 32, 64, 128, 256, 512, 1024, 4096]
    print("| r | " + " | ".join(f"L={n}" for n in lengths) + " |")
    print("|---|" + "---|" * len(lengths))
    for r in (1, 2, 4, 8):
        print(f"| {r} | " + " | ".join(f"{attention_flops(n, 16, r) / attention_flops(n, 16):.3f}" for n in lengths)
              + " |")
    print("\n## CPU wall time (1 thread), batch 8, d_model 64, 4 heads: factored rank-4 forward / exact")
    torch.manual_seed(0)
    attn = LowRankAttention(64, 4, ranks=(4,))
    for n in (12, 128, 512):
        x = torch.randn(8, n, 64)
        with torch.no_grad():
            attn(x, rank=4)
            attn.exact(x)
            t0 = time.perf_counter()
            for _ in range(3):
                attn(x, rank=4)
            t1 = time.perf_counter()
            for _ in range(3):
                attn.exact(x)
            t2 = time.perf_counter()
        print(f"L={n}: factored {1e3 * (t1 - t0) / 3:.1f} ms, exact {1e3 * (t2 - t1) / 3:.1f} ms, "
              f"ratio {(t1 - t0) / (t2 - t1):.2f}")


if __name__ == "__main__":
    main()
