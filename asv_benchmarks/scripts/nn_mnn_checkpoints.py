"""Matrix Nuclear-Norm across training checkpoints: Spearman correlation with test accuracy, and the
relative gap of the column-norm estimate to the exact value on hidden features.

A fresh digits MLP (64-256-256-10) is trained by ``lowrank.nn.zoo.fit_classifier`` in 10 short
stages (a checkpoint after each); at every checkpoint the test-set softmax probabilities and the
second hidden layer's features are scored. One thread.

    OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_mnn_checkpoints.py
"""

import torch
from scipy.stats import spearmanr

from lowrank.nn.metrics import matrix_nuclear_norm
from lowrank.nn.zoo import fit_classifier
from lowrank.nn.zoo.digits import digits_split


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, test = digits_split(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    rows = []
    for stage in range(10):
        fit_classifier(model, train, steps=15, lr=3e-4, rng=stage)
        with torch.no_grad():
            hidden = model[:4](test[0])
            logits = model[4](hidden)
        acc = float((logits.argmax(1) == test[1]).float().mean())
        probs = torch.softmax(logits, 1)
        mnn = matrix_nuclear_norm(probs) / probs.shape[0]
        h_approx, h_exact = matrix_nuclear_norm(hidden), matrix_nuclear_norm(hidden, exact=True)
        rows.append((stage, acc, mnn, h_approx / h_exact - 1))
        print(f"checkpoint {stage}: accuracy {acc:.4f}  MNN(probs)/n {mnn:.4f}  "
              f"hidden-feature gap {h_approx / h_exact - 1:.3f}", flush=True)
    rho = spearmanr([r[1] for r in rows], [r[2] for r in rows]).statistic
    print(f"Spearman(accuracy, MNN) over 10 checkpoints: {rho:.3f}")


if __name__ == "__main__":
    main()
