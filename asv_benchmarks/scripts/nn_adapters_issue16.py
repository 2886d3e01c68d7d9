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
]
SWEEP = [3e-3, 1e-2, 3e-2]


def run(method, seed, options, lr):
    from lowrank.nn import adapt
    from lowrank.nn.zoo import digits_transfer, fit_classifier

    task = digits_transfer(seed=seed)
    model, train, test, metric = task
    if method == "peft_pissa":
        import peft

        config = peft.LoraConfig(r=options["rank"], lora_alpha=options["rank"], target_modules=task.info["targets"],
                                 init_lora_weights="pissa", modules_to_save=[task.info["head"]])
        model = peft.get_peft_model(model, config)
    elif method is not None:
        adapt(model, method, targets=task.info["targets"], rng=seed, **options)
    for name, p in model.named_parameters():
        if name.startswith(task.info["head"] + ".") or (method == "peft_pissa" and "modules_to_save" in name):
            p.requires_grad_(True)
        elif method is None:
            p.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fit_classifier(model, train, epochs=EPOCHS, lr=lr, batch_size=32, rng=seed)
    return metric(model, test), trainable


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
