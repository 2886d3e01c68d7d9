"""Quality tables of lowrank.nn's structural compressors (Sub-MoE, FuseGPT) on the zoo, baselines in the same run.

Run: ``OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_structural_quality.py [moe] [fuse] [--seeds 3]``; prints markdown rows.
"""

import copy
import sys

import numpy as np
import torch

from lowrank.nn import merge_experts
from lowrank.nn.zoo import accuracy, moe_mlp

torch.set_num_threads(1)


def moe_inputs(model, X):
    with torch.no_grad():
        return model.act(model.embed(X))


def weighted_average(moe, groups, frequency):
    """Baseline: frequency-weighted average of the state dicts of each group's experts (no SVD)."""
    out = copy.deepcopy(moe)
    experts, rows, biases = [], [], []
    with torch.no_grad():
        for members in groups:
            w = torch.tensor([frequency[e] for e in members], dtype=torch.float32)
            w = w / w.sum()
            expert = copy.deepcopy(moe.experts[members[0]])
            states = [moe.experts[e].state_dict() for e in members]
            expert.load_state_dict({k: sum(wi * s[k] for wi, s in zip(w, states)) for k in states[0]})
            experts.append(expert)
            rows.append(w @ moe.router.weight[list(members)])
            biases.append(w @ moe.router.bias[list(members)])
        out.experts = torch.nn.ModuleList(experts)
        out.router = torch.nn.Linear(moe.router.in_features, len(groups))
        out.router.weight.copy_(torch.stack(rows))
        out.router.bias.copy_(torch.stack(biases))
    out.top_k = min(moe.top_k, len(groups))
    return out


def routing_agreement(moe, merged, groups, X):
    group_of = {e: g for g, m in enumerate(groups) for e in m}
    with torch.no_grad():
        top = moe.router(X).argmax(-1).tolist()
        new = merged.router(X).argmax(-1).tolist()
    return float(np.mean([group_of[a] == b for a, b in zip(top, new)]))


def moe_table(seeds):
    rows = {k: [] for k in ("base", "submoe", "submoe_r32", "freq_avg", "uniform_avg", "agree")}
    for seed in seeds:
        task = moe_mlp(seed=seed)
        model, (Xtr, _), test = task.model, task.train, task.test
        H = moe_inputs(model, Xtr)
        result = merge_experts(model.moe, 4, H, seed=seed)
        variants = {
            "submoe": result.moe,
            "submoe_r32": merge_experts(model.moe, 4, H, groups=result.groups, rank=32).moe,
            "freq_avg": weighted_average(model.moe, result.groups, result.frequency),
            "uniform_avg": weighted_average(model.moe, result.groups, np.ones(8)),
        }
        rows["base"].append(accuracy(model, test))
        for name, moe in variants.items():
            m = copy.deepcopy(model)
            m.moe = moe
            rows[name].append(accuracy(m, test))
        rows["agree"].append(routing_agreement(model.moe, result.moe, result.groups, H))
        print(f"seed {seed}: groups {result.groups}", {k: round(v[-1], 4) for k, v in rows.items()}, flush=True)
    print(f"\n| MoE 8 -> 4 experts (digits, {len(seeds)} seeds) | test accuracy (mean +- std) |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.4f} +- {np.std(v):.4f} |")


def fuse_table(seeds, n_remove=2, steps_per_removal=100):
    """6-block residual MLP on digits, ``n_remove`` blocks removed: plain removal vs FuseGPT (100 steps each)."""
    from lowrank.nn import fuse_blocks
    from lowrank.nn.zoo import residual_mlp_digits

    rows = {k: [] for k in ("base", "plain", "fuse_r1", "fuse_r4", "recovered_r1", "recovered_r4")}
    for seed in seeds:
        task = residual_mlp_digits(seed=seed)
        model, (Xtr, _), test = task.model, task.train, task.test
        base = accuracy(model, test)
        plain = fuse_blocks(model, "blocks", n_remove, Xtr, steps=0)
        rows["base"].append(base)
        rows["plain"].append(accuracy(plain.model, test))
        for r in (1, 4):
            fused = fuse_blocks(model, "blocks", n_remove, Xtr, steps=steps_per_removal, rank=r, seed=seed)
            acc = accuracy(fused.model, test)
            rows[f"fuse_r{r}"].append(acc)
            lost = base - rows["plain"][-1]
            rows[f"recovered_r{r}"].append((acc - rows["plain"][-1]) / lost if lost > 0 else float("nan"))
        print(f"seed {seed}: removed {plain.removed}", {k: round(v[-1], 4) for k, v in rows.items()}, flush=True)
    print(f"\n| residual MLP 6 -> {6 - n_remove} blocks (digits, {len(seeds)} seeds, {n_remove} x {steps_per_removal} steps) "
          "| test accuracy (mean +- std) |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {np.nanmean(v):.4f} +- {np.nanstd(v):.4f} |")


def modegpt_table(seeds, budget=0.7, n_calibration=512):
    """MoDeGPT vs per-matrix SVD and AFM at the same budget on the blocks' weights, no fine-tuning."""
    from lowrank.nn import compress
    from lowrank.nn.zoo import patch_vit_digits, sequence_task

    for task_fn in (patch_vit_digits, sequence_task):
        rows = {}
        for seed in seeds:
            task = task_fn(seed=seed)
            model, Xtr = task.model, task.train[0][:n_calibration]
            linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("blocks")]
            results = {"base": (model, None)}
            results["modegpt"] = compress(model, "modegpt", Xtr, budget=budget)
            results["svd"] = compress(model, "svd", budget=budget, targets=linears)
            results["afm"] = compress(model, "afm", Xtr, budget=budget, targets=linears)
            for name, (m, report) in results.items():
                params = sum(p.numel() for p in m.parameters())
                rows.setdefault(name, []).append((task.score(m), params))
            print(task.name, seed, {k: (round(v[-1][0], 4), v[-1][1]) for k, v in rows.items()}, flush=True)
        base = np.mean([a for a, _ in rows["base"]])
        print(f"\n| {task.name} ({len(seeds)} seeds, budget {budget} of block weights) | {task.metric_name} "
              "| params | kept accuracy |\n|---|---|---|---|")
        for k, v in rows.items():
            acc = np.array([a for a, _ in v])
            print(f"| {k} | {acc.mean():.4f} +- {acc.std():.4f} | {int(np.mean([p for _, p in v]))} "
                  f"| {acc.mean() / base:.3f} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    n_seeds = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 3
    seeds = list(range(n_seeds))
    if "moe" in args or not any(a in args for a in ("moe", "fuse", "modegpt")):
        moe_table(seeds)
    if "modegpt" in args or not any(a in args for a in ("moe", "fuse", "modegpt")):
        modegpt_table(seeds)
    if "fuse" in args or not any(a in args for a in ("moe", "fuse", "modegpt")):
        fuse_table(seeds, n_remove=2)
        fuse_table(seeds, n_remove=4, steps_per_removal=50)
