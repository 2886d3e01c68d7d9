"""Record what ``lowrank.ctr.compress_afm`` / ``compress_weight_svd`` returned before the compressor
core moved to ``lowrank.nn.compress`` (written at commit 4f9cacc, the last one with the old
``lowrank/ctr/afm.py``), so the refactor can be checked against the code it replaced.

Run from the repository root (single thread, so BLAS takes one summation order)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python tests/nn/data/make_afm_reference.py

It writes ``afm_reference.npz`` beside this file: for every case, the compressed model's outputs
on held-out rows and its report (ranks, parameter counts, energy kept, output error, flags).
The models and data are rebuilt by :func:`build` from seeds, in this file and in the test.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "afm_reference.npz")


def build(kind):
    """``(model, calibration, held_out)`` for a case family, from fixed seeds."""
    import torch

    from lowrank.ctr import MLPCTR
    from lowrank.datasets import synthetic_ctr

    if kind in ("ctr64", "ctr32"):
        dtype = torch.float64 if kind == "ctr64" else torch.float32
        data = synthetic_ctr(1200, n_dense=5, n_categorical=4, cardinality=40, rng=0)
        torch.manual_seed(0)
        model = MLPCTR(data.cardinalities, n_dense=5, embedding_dim=8, hidden=(32, 16)).to(dtype)
        dense = torch.as_tensor(data.dense, dtype=dtype)
        cat = torch.as_tensor(data.categorical)
        return model, (dense[:1000], cat[:1000]), (dense[1000:], cat[1000:])
    if kind == "bag":
        torch.manual_seed(1)
        model = _BagModel()
        g = torch.Generator().manual_seed(2)
        idx = torch.randint(0, 30, (600, 4), generator=g)
        return model, (idx[:500],), (idx[500:],)
    raise ValueError(kind)


def _bag_model_class():
    import torch

    class BagModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bag_sum = torch.nn.EmbeddingBag(30, 6, mode="sum", dtype=torch.float64)
            self.bag_mean = torch.nn.EmbeddingBag(30, 6, mode="mean", dtype=torch.float64)
            self.fc = torch.nn.Linear(12, 10, dtype=torch.float64)
            self.out = torch.nn.Linear(10, 3, dtype=torch.float64)

        def forward(self, idx):
            h = torch.cat([self.bag_sum(idx), self.bag_mean(idx)], dim=1)
            return self.out(torch.relu(self.fc(h)))

    return BagModel


def _BagModel():
    return _bag_model_class()()


PER_LAYER = {"mlp.0": 6, "fields.embeddings.1": 2, "mlp.2": 3, "head": 1}

# name -> (model family, method, keyword arguments)
CASES = {
    "afm_rank": ("ctr64", "afm", dict(rank=3)),
    "afm_rank_dict": ("ctr64", "afm", dict(rank=PER_LAYER)),
    "afm_energy": ("ctr64", "afm", dict(energy=0.9)),
    "afm_budget_params": ("ctr64", "afm", dict(budget=0.4)),
    "afm_budget_flops": ("ctr64", "afm", dict(budget=0.3, budget_metric="flops")),
    "afm_targets": ("ctr64", "afm", dict(rank=4, targets=["mlp.*"])),
    "afm_batches": ("ctr64", "afm", dict(energy=0.95, batch_size=256, max_batches=2)),
    "svd_rank": ("ctr64", "svd", dict(rank=3)),
    "svd_rank_dict": ("ctr64", "svd", dict(rank=PER_LAYER)),
    "svd_energy": ("ctr64", "svd", dict(energy=0.9)),
    "svd_budget_params": ("ctr64", "svd", dict(budget=0.4)),
    "svd_budget_flops": ("ctr64", "svd", dict(budget=0.3, budget_metric="flops")),
    "afm_bag": ("bag", "afm", dict(rank=2)),
    "afm_bag_budget": ("bag", "afm", dict(budget=0.5)),
    "svd_bag": ("bag", "svd", dict(rank=2)),
    "afm_f32_budget": ("ctr32", "afm", dict(budget=0.4)),
    "svd_f32_budget": ("ctr32", "svd", dict(budget=0.4)),
}

REPORT_FIELDS = ("rank", "full_rank", "params_before", "params_after", "energy_kept", "output_relative_error",
                 "compressed")


def run_case(name, compress_afm, compress_weight_svd):
    """Run one case with the given functions: ``(outputs, report)``."""
    import torch

    family, method, kwargs = CASES[name]
    model, calib, held_out = build(family)
    if method == "afm":
        small, report = compress_afm(model, calib, **kwargs)
    else:
        small, report = compress_weight_svd(model, **kwargs)
    with torch.no_grad():
        out = small(*held_out)
    return out.numpy(), report


def report_arrays(report):
    arrays = {f: np.array([getattr(r, f) for r in report.layers]) for f in REPORT_FIELDS}
    arrays["model_params"] = np.array([report.model_params_before, report.model_params_after])
    return arrays


def main():
    import torch

    from lowrank._utils.io import save_npz
    from lowrank.ctr import compress_afm, compress_weight_svd

    torch.set_num_threads(1)
    arrays, meta = {}, {}
    for name in CASES:
        out, report = run_case(name, compress_afm, compress_weight_svd)
        arrays[f"{name}/output"] = out
        for key, value in report_arrays(report).items():
            arrays[f"{name}/{key}"] = value
        meta[name] = {"method": report.method, "layers": [r.name for r in report.layers],
                      "kinds": [r.kind for r in report.layers]}
    save_npz(REFERENCE, arrays, kind="afm_reference", meta=meta)
    size = os.path.getsize(REFERENCE)
    sys.stdout.write(f"wrote {REFERENCE} ({size} bytes, {len(CASES)} cases)\n")


if __name__ == "__main__":
    main()
