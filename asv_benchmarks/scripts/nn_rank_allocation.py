"""IncreLoRA (RankAllocator) vs fixed-rank LoRA at the same rank budget, one process, one protocol.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_rank_allocation.py [--seeds 3] [--tasks digits shapes]
        [--plot ranks.png]

Tasks: ``digits_transfer`` (MLP, adapters on fc1, fc2) and ``shapes_transfer`` (the zoo ConvNet,
adapters on conv1-3 and fc). Protocol, fixed before measuring: Adam lr 1e-2, batch 32, the new head
always trains, the same seeded batch order for every method; digits 60 epochs over 100 images
(240 steps), shapes 30 epochs over 200 images (210 steps). IncreLoRA starts at rank 1 (+1 reserved
term), warm-up 20% of the steps, then one module gains one rank every ``interval`` steps so that the
budget (average active rank 4) is reached by ~70% of training; orthogonality penalty 0.1.
Baselines: LoRA r4 (the same active rank), LoRA r5 (the same number of held terms as IncreLoRA's
4 active + 1 reserved) and "svdform r4": IncreLoRA's own B diag(E) A layer at a fixed rank 4 (+1
reserved) with the same orthogonality penalty and no allocator (separates the form from the allocation). Prints test accuracy (mean and std of the seeds), trainable parameters at
the end, and IncreLoRA's final rank per module.
"""

import argparse
import math
import sys
import time

import numpy as np
import torch

TARGET = 4


def build(task_name, seed):
    from lowrank.nn.zoo import digits_transfer, shapes_transfer

    if task_name == "digits":
        task = digits_transfer(seed=seed)
        return task, task.info["targets"], 60
    task = shapes_transfer(seed=seed)
    return task, task.info["targets"], 30


def train(task_name, method, seed, lr=1e-2):
    from lowrank.nn import RankAllocator, adapt

    task, targets, epochs = build(task_name, seed)
    model, (X, y), test, metric = task
    if method == "increlora":
        adapter = adapt(model, "increlora", targets=targets, rank=1, rng=seed)
    elif method == "svdform":  # IncreLoRA's B diag(E) A form at a fixed rank TARGET (+1 reserved), no allocator
        adapter = adapt(model, "increlora", targets=targets, rank=TARGET, rng=seed)
    else:
        adapter = adapt(model, "lora", targets=targets, rank=int(method[-1]), rng=seed)
    head = model.get_submodule(task.info["head"])
    head.requires_grad_(True)
    params = adapter.trainable_parameters() + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    batches = math.ceil(len(X) / 32)
    steps = epochs * batches
    allocator = None
    if method == "increlora":
        warmup = steps // 5
        growths = (TARGET - 1) * len(targets)
        interval = max(1, (steps * 7 // 10 - warmup) // growths)
        allocator = RankAllocator(adapter, opt, target_rank=TARGET, warmup=warmup, interval=interval, rng=seed)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for b in range(batches):
            idx = order[b * 32:(b + 1) * 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            if allocator is not None:
                loss = loss + allocator.regularization()
            elif method == "svdform":
                methods = list(adapter.methods().values())
                loss = loss + 0.1 * sum(m.orthogonal_penalty() for m in methods) / len(methods)
            loss.backward()
            opt.step()
            if allocator is not None:
                allocator.step(model)
    model.eval()
    trainable = sum(p.numel() for p in adapter.trainable_parameters())
    if method in ("increlora", "svdform"):
        ranks = {p: m.active_rank for p, m in adapter.methods().items()}
    else:
        ranks = {t: int(method[-1]) for t in targets}
    return metric(model, test), trainable, ranks


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="+", default=["digits", "shapes"])
    parser.add_argument("--plot", default=None, help="save a bar plot of IncreLoRA's final ranks here")
    parser.add_argument("--methods", nargs="+", default=["lora r4", "lora r5", "svdform r4", "increlora"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    all_ranks = {}
    for task_name in args.tasks:
        print(f"\n## {task_name}: test accuracy, mean +- std of {args.seeds} seeds")
        print("| method | accuracy | trainable | final ranks (per module) | time/run s |")
        print("|---|---|---|---|---|")
        for method in args.methods:
            accs, ranks_seen = [], []
            start = time.perf_counter()
            for seed in range(args.seeds):
                acc, trainable, ranks = train(task_name, method.split(" ")[0] if not method.startswith("lora")
                                              else method.replace(" r", "r"), seed)
                accs.append(acc)
                ranks_seen.append(ranks)
            per_run = (time.perf_counter() - start) / args.seeds
            names = list(ranks_seen[0])
            mean_ranks = {n: float(np.mean([r[n] for r in ranks_seen])) for n in names}
            rank_text = ", ".join(f"{n} {'/'.join(str(r[n]) for r in ranks_seen)}" for n in names)
            print(f"| {method} | {np.mean(accs):.4f} +- {np.std(accs):.4f} | {trainable} | {rank_text} | "
                  f"{per_run:.1f} |")
            sys.stdout.flush()
            if method == "increlora":
                all_ranks[task_name] = mean_ranks
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(all_ranks), figsize=(4 * len(all_ranks), 3))
        for ax, (task_name, ranks) in zip(np.atleast_1d(axes), all_ranks.items()):
            ax.bar(list(ranks), list(ranks.values()))
            ax.axhline(TARGET, color="k", linestyle="--", linewidth=1)
            ax.set_title(f"IncreLoRA final rank, {task_name}")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
