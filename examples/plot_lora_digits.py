"""
LoRA on a digits transfer task: accuracy against trainable parameters
=====================================================================

:func:`~lowrank.nn.adapt` wraps the hidden layers of a model with a low-rank weight delta
``W + B A`` (LoRA) and freezes everything else. The task is :func:`~lowrank.nn.zoo.digits_transfer`:
an MLP ``64 -> 256 -> 256`` pretrained on the digits 0-4 of scikit-learn's digits, a fresh head for
the digits 5-9, and only 100 labelled examples of them. The references, trained in the same script
with the same optimizer and steps: the head alone (the fewest parameters) and full fine-tuning
(every parameter). LoRA at rank ``r`` trains the head plus ``r (in + out)`` numbers per hidden layer;
the curve shows what each extra trainable parameter buys.
"""

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch

from lowrank.nn import adapt
from lowrank.nn.zoo import digits_transfer, fit_classifier

task = digits_transfer(seed=0)
base, train, test, metric = task
head = task.info["head"]


def finetune(model):
    trainable = [p for p in model.parameters() if p.requires_grad]
    fit_classifier(model, train, steps=300, lr=3e-3, params=trainable, rng=0)
    return sum(p.numel() for p in trainable), metric(model, test)


results = {}
model = copy.deepcopy(base)
for p in model.parameters():
    p.requires_grad_(False)
for p in getattr(model, head).parameters():
    p.requires_grad_(True)
results["head only"] = finetune(model)
results["full fine-tuning"] = finetune(copy.deepcopy(base).requires_grad_(True))
ranks = (1, 2, 4, 8, 16)
for rank in ranks:
    model = copy.deepcopy(base)
    adapt(model, "lora", targets=task.info["targets"], rank=rank, rng=0)
    for p in getattr(model, head).parameters():  # the new head always trains
        p.requires_grad_(True)
    results[f"LoRA r={rank}"] = finetune(model)
for name, (n_params, accuracy) in results.items():
    print(f"{name:18s} {n_params:7d} trainable parameters   test accuracy {accuracy:.3f}")

fig, ax = plt.subplots(figsize=(6.5, 4))
lora = np.array([results[f"LoRA r={r}"] for r in ranks])
ax.plot(lora[:, 0], lora[:, 1], "o-", label="LoRA on fc1, fc2 (+ head)")
for r, (n, acc) in zip(ranks, lora):
    ax.annotate(f"r={r}", (n, acc), textcoords="offset points", xytext=(4, -10), fontsize=8)
for name, marker in (("head only", "s"), ("full fine-tuning", "D")):
    ax.plot(*results[name], marker, ms=8, label=name)
ax.set_xscale("log")
ax.set_xlabel("trainable parameters")
ax.set_ylabel("test accuracy on digits 5-9")
ax.set_title(f"digits_transfer: {len(train[0])} training images, {len(test[0])} test images")
ax.legend(loc="lower right")
fig.tight_layout()

# %%
# The claim, checked: LoRA beats training the head alone at every rank, its best rank comes within
# 0.02 of full fine-tuning's accuracy, and ranks up to 8 train under 10 % of the parameters that
# full fine-tuning trains. (Accuracy is not monotone in the rank with 100 training images: rank 4
# was the best here, 8 and 16 slightly worse.)
n_full, acc_full = results["full fine-tuning"]
lora_acc = {rank: results[f"LoRA r={rank}"][1] for rank in ranks}
assert min(lora_acc.values()) > results["head only"][1], (lora_acc, results["head only"])
assert max(lora_acc.values()) >= acc_full - 0.02, (lora_acc, acc_full)
for rank in ranks:
    if rank <= 8:
        assert results[f"LoRA r={rank}"][0] < 0.1 * n_full, (rank, results[f"LoRA r={rank}"], n_full)
