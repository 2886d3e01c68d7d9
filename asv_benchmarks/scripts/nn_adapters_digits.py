"""Figures of lowrank.nn.adapt on the digits-transfer task (lowrank.nn.zoo.digits_transfer): test
accuracy and trainable parameters of head-only fine-tuning, full fine-tuning and LoRA r1 / r4 on
fc1 and fc2 (the new head always trains), mean and spread over seeds; plus the same runs at every
learning rate of a small sweep, so the fixed protocol's choice of lr is visible.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_adapters_digits.py --out docs/img/nn_adapters_digits.json

One thread. The protocol and training loop are those of asv_benchmarks/benchmarks/nn_adapters.py.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.nn_adapters import LR, digits_transfer_run  # noqa: E402

SETTINGS = [("head-only", "head", None), ("full fine-tuning", "full", None), ("LoRA r1", "lora", 1),
            ("LoRA r4", "lora", 4)]
SWEEP = [1e-3, 3e-3, 1e-2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    rows = []
    for label, setting, rank in SETTINGS:
        lrs = [LR[setting]] if args.no_sweep else SWEEP
        for lr in lrs:
            start = time.perf_counter()
            runs = [digits_transfer_run(setting, s, rank=rank or 4, lr=lr) for s in seeds]
            acc = [a for a, _ in runs]
            rows.append({"setting": label, "lr": lr, "protocol": lr == LR[setting],
                         "accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
                         "accuracies": acc, "trainable": runs[0][1],
                         "seconds_per_run": (time.perf_counter() - start) / len(seeds)})
    print(f"digits transfer, mean of {len(seeds)} seeds (protocol rows marked *)")
    print(f"{'setting':18s} {'lr':>7s} {'accuracy':>15s} {'trainable':>10s} {'s/run':>6s}")
    for r in rows:
        mark = "*" if r["protocol"] else " "
        print(f"{r['setting']:18s}{mark}{r['lr']:7.0e} {r['accuracy_mean']:8.4f} +- {r['accuracy_std']:.3f} "
              f"{r['trainable']:10d} {r['seconds_per_run']:6.2f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seeds": seeds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
