"""search_modules (DiffoRA-style) top-k vs random-k (5 draws) vs all-module LoRA, one process, one protocol.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_module_search.py [--seeds 3] [--k 2]

Task: ``shapes_transfer`` (the zoo ConvNet pretrained on shape, adapted to pos_x), candidates its four
targets (conv1, conv2, conv3, fc). Protocol, fixed before measuring: the search runs on the 200
training images split in half (adapter weights on the first 100, gates on the other 100; LoRA r4,
200 alternations, head trains with the weights). Every final model is then a fresh copy of the
pretrained ConvNet with LoRA r4 on the chosen layers and the new head, trained on all 200 images
(Adam lr 1e-2, batch 32, 30 epochs, the same seeded batch order) and scored on the test images.
Random-k: 5 draws of k layers (numpy seed 100 + draw). Prints mean test accuracy over the seeds
and the trainable parameters.
"""

import argparse
import copy
import math
import time

import numpy as np
import torch


def finetune(task, targets, seed, epochs=30, lr=1e-2):
    from lowrank.nn import adapt

    model = copy.deepcopy(task.model)
    X, y = task.train
    adapter = adapt(model, "lora", targets=list(targets), rank=4, rng=seed)
    head = model.get_submodule(task.info["head"])
    head.requires_grad_(True)
    params = adapter.trainable_parameters() + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batches = math.ceil(len(X) / 32)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for b in range(batches):
            idx = order[b * 32:(b + 1) * 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return task.metric(model, task.test), adapter.num_trainable


def main(argv=None):
    from lowrank.nn import search_modules
    from lowrank.nn.zoo import shapes_transfer

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {"DiffoRA search top-k": [], "random-k (mean of 5 draws)": [], "all-module LoRA": []}
    params = {}
    chosen_all, search_time = [], []
    for seed in range(args.seeds):
        task = shapes_transfer(seed=seed)
        candidates = task.info["targets"]
        X, y = task.train
        half = len(X) // 2
        start = time.perf_counter()
        chosen = search_modules(task.model, (X[:half], y[:half]), (X[half:], y[half:]), k=args.k,
                                candidates=candidates, rank=4, steps=200, also_train=task.info["head"], rng=seed)
        search_time.append(time.perf_counter() - start)
        chosen_all.append((list(chosen), {n: round(g, 3) for n, g in chosen.gates.items()}))
        acc, n = finetune(task, chosen, seed)
        rows["DiffoRA search top-k"].append(acc)
        params["DiffoRA search top-k"] = n
        draws = np.random.default_rng(100 + seed)
        randoms = []
        for _ in range(5):
            pick = sorted(draws.choice(len(candidates), args.k, replace=False))
            acc, n = finetune(task, [candidates[i] for i in pick], seed)
            randoms.append(acc)
        rows["random-k (mean of 5 draws)"].append(float(np.mean(randoms)))
        params["random-k (mean of 5 draws)"] = n
        acc, n = finetune(task, candidates, seed)
        rows["all-module LoRA"].append(acc)
        params["all-module LoRA"] = n
    print(f"\n## shapes_transfer, k={args.k} of 4, mean +- std of {args.seeds} seeds")
    print("| selection | test accuracy | trainable (adapters) |")
    print("|---|---|---|")
    for name, accs in rows.items():
        print(f"| {name} | {np.mean(accs):.4f} +- {np.std(accs):.4f} | {params[name]} |")
    print("\nsearched (per seed):", chosen_all)
    print(f"search wall time per run: {np.mean(search_time):.1f} s")


if __name__ == "__main__":
    main()
