"""Digits transfer (lowrank.nn.zoo.digits_transfer) for the adapters of issue 16 beside their baselines
and PEFT relatives, all in one process with one protocol: test accuracy and trainable parameters,
mean of 3 seeds, plus the same runs at the other learning rates of a small sweep.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_adapters_issue16.py [--seeds 3] [--no-sweep] [--dp]

``--dp``: FFA-LoRA r8 vs LoRA r8 under DP-SGD (lowrank.nn.private.private_fit, Opacus) at the same
epsilon (delta 1e-3, the 100 training images; SGD lr 0.5, clip 1.0, batch 25, 40 epochs, head trained
privately too), the FFA-LoRA paper's claim.

Protocol (that of asv_benchmarks/benchmarks/nn_adapters.py, fixed before measuring): Adam, batch 32,
60 epochs over the 100 training images, the new head always trains, adapters on the task's targets
(fc1, fc2); lr 1e-2 for the head and the adapters.
"""

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.nn_adapters import EPOCHS, LR  # noqa: E402

SETTINGS = [
    ("head-only", None, {}),
    ("LoRA r4", "lora", {"rank": 4}),
    ("FFA-LoRA r8", "ffa_lora", {"rank": 8}),
    ("SVFit all sigma", "svfit", {"energy": 1.0}),
    ("SVFit 99% energy", "svfit", {}),
    ("LoLDU all D", "loldu", {}),
    ("PEFT PiSSA r4 (SVFit's relative)", "peft_pissa", {"rank": 4}),
    ("TeRA (full mode ranks)", "tera", {}),
    ("PEFT VeRA r256 (TeRA's relative)", "peft_vera", {"rank": 256}),
    ("Block-LoRA r4, 2 blocks", "block_lora", {"rank": 4, "blocks": 2}),
    ("Block-LoRA r2, 2 blocks", "block_lora", {"rank": 2, "blocks": 2}),
    ("SNELL r8 keep 0.1", "snell", {"rank": 8, "keep": 0.1}),
    ("SNELL r8 keep 0.3", "snell", {"rank": 8, "keep": 0.3}),
]
CONV_SETTINGS = [
    ("head-only", None, {}),
    ("LoRA r4 on conv", "lora", {"rank": 4}),
    ("FLoRA r4 (spatial 2) on conv", "flora", {"rank": 4}),
    ("FLoRA r8 (spatial 2) on conv", "flora", {"rank": 8}),
]
SWEEP = [3e-3, 1e-2, 3e-2]


def run(method, seed, options, lr):
    from lowrank.nn import adapt
    from lowrank.nn.zoo import digits_transfer, fit_classifier

    task = digits_transfer(seed=seed)
    model, train, test, metric = task
    if method == "peft_vera":
        import peft

        config = peft.VeraConfig(r=options["rank"], target_modules=task.info["targets"],
                                 modules_to_save=[task.info["head"]], projection_prng_key=seed)
        model = peft.get_peft_model(model, config)
    elif method == "peft_pissa":
        import peft

        config = peft.LoraConfig(r=options["rank"], lora_alpha=options["rank"], target_modules=task.info["targets"],
                                 init_lora_weights="pissa", modules_to_save=[task.info["head"]])
        model = peft.get_peft_model(model, config)
    elif method is not None:
        adapt(model, method, targets=task.info["targets"], rng=seed, **options)
    for name, p in model.named_parameters():
        if name.startswith(task.info["head"] + ".") or (method in ("peft_pissa", "peft_vera") and "modules_to_save" in name):
            p.requires_grad_(True)
        elif method is None:
            p.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit_classifier(model, train, epochs=EPOCHS, lr=lr, batch_size=32, rng=seed)
    return metric(model, test), trainable


def run_conv(method, seed, options, lr):
    """``shapes_transfer``: the zoo ConvNet pretrained on shape, adapted to pos_x; adapters on the convs."""
    from lowrank.nn import adapt
    from lowrank.nn.zoo import fit_classifier, shapes_transfer

    task = shapes_transfer(seed=seed)
    model, train, test, metric = task
    if method is not None:
        adapt(model, method, targets=task.info["conv_targets"], rng=seed, **options)
    for name, p in model.named_parameters():
        if name.startswith(task.info["head"] + "."):
            p.requires_grad_(True)
        elif method is None:
            p.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit_classifier(model, train, epochs=EPOCHS // 2, lr=lr, batch_size=32, rng=seed)
    return metric(model, test), trainable


def peak_training_memory(method, options, steps=3):
    """Peak bytes of live CPU tensors over a few training steps (torch profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile

    from lowrank.nn import adapt
    from lowrank.nn.zoo import digits_transfer

    task = digits_transfer(seed=0)
    model, (X, y), _, _ = task
    adapt(model, method, targets=task.info["targets"], rng=0, **options)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[:32]), y[:32]).backward()
            opt.step()
    # self (not inclusive) memory of each op: a parent's inclusive figure counts its children again
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def run_private(method, seed, epsilon):
    from lowrank.nn import adapt
    from lowrank.nn.private import private_fit
    from lowrank.nn.zoo import digits_transfer

    task = digits_transfer(seed=seed)
    model, train, test, metric = task
    adapt(model, method, targets=task.info["targets"], rank=8, rng=seed)
    for name, p in model.named_parameters():
        if name.startswith(task.info["head"] + "."):
            p.requires_grad_(True)
    spent = private_fit(model, train, epochs=40, lr=0.5, batch_size=25, max_grad_norm=1.0, target_epsilon=epsilon,
                        delta=1e-3, rng=seed)
    return metric(model, test), spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--dp", action="store_true")
    parser.add_argument("--conv", action="store_true", help="FLoRA vs LoRA on the zoo ConvNet")
    parser.add_argument("--memory", action="store_true", help="peak training memory, SNELL vs LoRA r4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.dp:
        print(f"DP-SGD digits transfer, mean of {args.seeds} seeds, delta 1e-3")
        for epsilon in (3.0, 8.0):
            for method in ("lora", "ffa_lora"):
                runs = [run_private(method, s, epsilon) for s in range(args.seeds)]
                acc = [a for a, _ in runs]
                print(f"epsilon {epsilon:4.1f} {method:9s} accuracy {np.mean(acc):.4f} +- {np.std(acc):.3f} "
                      f"(spent {max(e for _, e in runs):.2f})", flush=True)
        return
    print(f"digits transfer, mean of {args.seeds} seeds; * = the fixed protocol's lr {LR['lora']:.0e}")
    print(f"{'setting':34s} {'lr':>7s} {'accuracy':>16s} {'trainable':>10s} {'s/run':>6s}")
    if args.conv:
        print(f"shapes transfer (ConvNet, shape -> pos_x), adapters on conv1-3, mean of {args.seeds} seeds")
        for label, method, options in CONV_SETTINGS:
            runs = [run_conv(method, s, options, LR["lora"]) for s in range(args.seeds)]
            acc = [a for a, _ in runs]
            print(f"{label:34s} {np.mean(acc):8.4f} +- {np.std(acc):.3f} {runs[0][1]:10d}", flush=True)
        return
    if args.memory:
        print("peak live CPU tensor bytes over 3 Adam steps (batch 32), digits transfer")
        for label, method, options in [("LoRA r4", "lora", {"rank": 4}), ("SNELL r8 keep 0.1", "snell",
                                       {"rank": 8, "keep": 0.1}), ("SNELL r8 keep 0.3", "snell", {"rank": 8, "keep": 0.3})]:
            print(f"{label:20s} {peak_training_memory(method, options) / 1024:9.1f} KiB", flush=True)
        return
    for label, method, options in SETTINGS:
        for lr in ([LR["lora"]] if args.no_sweep else SWEEP):
            start = time.perf_counter()
            runs = [run(method, s, options, lr) for s in range(args.seeds)]
            acc = [a for a, _ in runs]
            mark = "*" if lr == LR["lora"] else " "
            print(f"{label:34s}{mark}{lr:7.0e} {np.mean(acc):8.4f} +- {np.std(acc):.3f} {runs[0][1]:10d} "
                  f"{(time.perf_counter() - start) / args.seeds:6.2f}", flush=True)


if __name__ == "__main__":
    main()
