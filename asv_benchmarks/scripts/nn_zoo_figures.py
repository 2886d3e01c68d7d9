"""Figures for the model-zoo note.

``OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_zoo_figures.py build [task ...]``: per task,
build time (1 thread, empty memo) and base metric, mean of 3 seeds. Wall time depends on machine
load; process CPU time is printed beside it (on a shared machine it is the better estimate of the
unloaded single-thread time).

``... nn_zoo_figures.py transfer``: for the two transfer tasks, test accuracy of head-only and full
fine-tuning of the returned model, and of head-only training on a re-initialized body (random
features: the control that says how much the pretrained features help), 3 seeds.
"""

import copy
import sys
import time

import numpy as np
import torch

from lowrank.nn import zoo


def build(names):
    print(f"{'task':22s} {'metric':15s} {'base (mean +- sd, 3 seeds)':28s} {'wall s':>7s} {'cpu s':>7s}")
    for name in names:
        scores, walls, cpus = [], [], []
        for seed in range(3):
            zoo.clear_cache()
            wall, cpu = time.perf_counter(), time.process_time()
            task = getattr(zoo, name)(seed)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            scores.append(task.info["base_metric"])
        print(f"{name:22s} {task.metric_name:15s} {np.mean(scores):.4f} +- {np.std(scores):.4f}{'':12s} "
              f"{np.mean(walls):7.2f} {np.mean(cpus):7.2f}  seeds: {', '.join(f'{s:.4f}' for s in scores)}",
              flush=True)


def _tuned(task, seed, *, head_only, random_body=False, epochs=60):
    model = copy.deepcopy(task.model)
    if random_body:
        zoo.init_parameters(model, zoo.torch_generator(seed + 1000))
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head") or not head_only
    zoo.fit_classifier(model, task.train, epochs=epochs, lr=1e-2 if head_only else 1e-3, rng=seed)
    return task.score(model)


def transfer():
    for name in ("digits_transfer", "shapes_transfer"):
        rows = {"head only": [], "full fine-tuning": [], "head only, random body": []}
        for seed in range(3):
            task = getattr(zoo, name)(seed)
            rows["head only"].append(_tuned(task, seed, head_only=True))
            rows["full fine-tuning"].append(_tuned(task, seed, head_only=False))
            rows["head only, random body"].append(_tuned(task, seed, head_only=True, random_body=True))
        for label, scores in rows.items():
            print(f"{name:16s} {label:24s} {np.mean(scores):.3f} +- {np.std(scores):.3f}  "
                  f"seeds: {', '.join(f'{s:.3f}' for s in scores)}", flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, names = (sys.argv[1:2] or ["build"])[0], sys.argv[2:]
    if mode == "transfer":
        transfer()
    else:
        build(names or list(zoo.list_tasks()))
