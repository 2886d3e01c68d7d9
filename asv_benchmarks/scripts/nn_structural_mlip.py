"""A small equivariant message-passing potential on ASE-EMT copper clusters: exact (e3nn) vs CP tensor product.

Run: ``OMP_NUM_THREADS=1 python asv_benchmarks/scripts/nn_structural_mlip.py [--seeds 1] [--steps 300]``. Prints the test
energy/force MAE of both models (same architecture, data, seed, steps) and the tensor-product op time.
"""

import sys
import time

import numpy as np
import torch
from e3nn import o3

from lowrank.nn import CPTensorProduct
from lowrank.nn.zoo import emt_molecules, energy_force_errors

torch.set_num_threads(1)
IRREPS = o3.Irreps("0e+1o+2e")


class Potential(torch.nn.Module):
    """Features ``0e+1o+2e`` per atom; each layer: ``h_i += sum_j gate_l(r_ij) TP(h_j, Y(r_ij_hat))``."""

    def __init__(self, tp_kind, n_layers=2, n_basis=8, cutoff=6.0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.cutoff, self.n_basis = cutoff, n_basis
        self.tps = torch.nn.ModuleList()
        for _ in range(n_layers):
            if tp_kind == "exact":
                self.tps.append(o3.FullyConnectedTensorProduct(IRREPS, IRREPS, IRREPS))
            else:
                self.tps.append(CPTensorProduct(IRREPS, IRREPS, IRREPS, n_restarts=0))
        self.radial = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(n_basis, 16), torch.nn.SiLU(),
                                                              torch.nn.Linear(16, 3)) for _ in range(n_layers))
        self.readout = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))
        self.shift = torch.nn.Parameter(torch.zeros(()))
        self.blocks = [slice(0, 1), slice(1, 4), slice(4, 9)]

    def forward(self, positions, numbers):
        b, n, _ = positions.shape
        rel = positions[:, None, :, :] - positions[:, :, None, :]  # (b, i, j, 3): r_j - r_i
        mask = ~torch.eye(n, dtype=torch.bool)
        rel = rel[:, mask].reshape(b, n, n - 1, 3)
        dist = rel.norm(dim=-1, keepdim=True)
        Y = o3.spherical_harmonics(IRREPS, rel, normalize=True, normalization="component")
        centres = torch.linspace(0.0, self.cutoff, self.n_basis)
        envelope = 0.5 * (torch.cos(np.pi * (dist / self.cutoff).clamp(max=1.0)) + 1.0)
        basis = torch.exp(-((dist - centres) ** 2) / 0.5) * envelope
        h = torch.zeros(b, n, IRREPS.dim)
        h[..., 0] = 1.0
        j_index = torch.arange(n)[None, :].expand(n, n)[mask].reshape(n, n - 1)
        for tp, radial in zip(self.tps, self.radial):
            hj = h[:, j_index]  # (b, i, j, D)
            m = tp(hj.reshape(-1, IRREPS.dim), Y.reshape(-1, IRREPS.dim)).reshape(b, n, n - 1, IRREPS.dim)
            gates = radial(basis)  # (b, i, j, 3): one per output degree, invariant
            m = torch.cat([m[..., s] * gates[..., k:k + 1] for k, s in enumerate(self.blocks)], dim=-1)
            h = h + m.sum(2) / (n - 1)
        invariants = torch.stack([h[..., 0], h[..., 1:4].norm(dim=-1), h[..., 4:9].norm(dim=-1)], dim=-1)
        return self.readout(invariants).squeeze(-1).sum(1) + self.shift


def train(model, data, info, steps, seed, batch=16, lr=3e-3, force_weight=10.0):
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    with torch.no_grad():
        model.shift.fill_(info["energy_mean"])
    for _ in range(steps):
        idx = torch.randint(data.positions.shape[0], (batch,), generator=gen)
        pos = data.positions[idx].clone().requires_grad_(True)
        energy = model(pos, data.numbers[idx])
        (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=True)
        loss = ((energy - data.energy[idx]) ** 2).mean() + force_weight * ((-grad - data.forces[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def op_time(tp, n=4096, repeat=20):
    x, y = torch.randn(n, 9), torch.randn(n, 9)
    with torch.no_grad():
        tp(x, y)
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            tp(x, y)
            ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(seeds, steps):
    task = emt_molecules(seed=0)
    rows = {"exact": [], "cp": []}
    for seed in seeds:
        for kind in rows:
            t = time.perf_counter()
            model = train(Potential(kind, seed=seed), task.train, task.info, steps, seed)
            errors = energy_force_errors(model, task.test)
            rows[kind].append((errors["energy_mae"], errors["force_mae"], time.perf_counter() - t))
            print(seed, kind, {k: round(v, 4) for k, v in errors.items()}, f"{rows[kind][-1][2]:.1f} s", flush=True)
    print(f"\n| EMT Cu13, {len(seeds)} seed(s), {steps} steps | energy MAE (eV) | force MAE (eV/A) | train s |")
    print("|---|---|---|---|")
    print(f"| predict zero force | - | {task.info['base_metric']:.4f} | - |")
    for kind, v in rows.items():
        a = np.array(v)
        print(f"| {kind} TP | {a[:, 0].mean():.4f} | {a[:, 1].mean():.4f} +- {a[:, 1].std():.4f} | {a[:, 2].mean():.1f} |")
    cp = CPTensorProduct(IRREPS, IRREPS, IRREPS, n_restarts=0)
    t_cp, t_exact = op_time(cp), op_time(cp.reference)
    print(f"\nTP op at L=2, batch 4096, 1 thread: CP rank {cp.rank} {t_cp * 1e3:.3f} ms, e3nn {t_exact * 1e3:.3f} ms, "
          f"speed-up {t_exact / t_cp:.1f}x")


if __name__ == "__main__":
    args = sys.argv[1:]
    n_seeds = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 1
    n_steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 300
    main(list(range(n_seeds)), n_steps)
