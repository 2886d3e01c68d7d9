"""Rank rules: a fixed rank, ranks per layer, an energy threshold, or one global budget.

The global budget spends rank units, best first, where the next unit of rank keeps the most
relative energy per unit of cost (parameters, or multiply-adds per output row / position). A
layer never grows to its break-even rank, where its two factors would cost as much as the dense
layer; and after the ranks are chosen the core keeps any layer dense whose replacement would not
hold fewer parameters.
"""

import math

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank.linalg import rank_by_energy
from lowrank.nn.layers import count_parameters

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def input_width(module):
    """Columns of the layer's weight matrix: in features, in channels x kernel size, or table rows."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, _CONV):
        return module.in_channels * math.prod(module.kernel_size)
    return module.num_embeddings


def output_dim(module):
    """Rows of the layer's weight matrix: out features, out channels, or the embedding width."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, _CONV):
        return module.out_channels
    return module.embedding_dim


def full_rank(module):
    return min(input_width(module), output_dim(module))


def rank_cost(module, metric):
    """``(unit, fixed, dense)``: a rank-k replacement costs ``k * unit + fixed``, the layer ``dense``.

    Parameters: a rank unit is one column of each factor plus the inner bias; ``fixed`` is the
    outer bias. FLOPs (multiply-adds per output row, per output position for a convolution): the
    same for Linear/Conv; an embedding lookup reads ``dim`` values where a factorized one reads
    ``k`` codes then multiplies by the ``k x dim`` basis.
    """
    out = output_dim(module)
    if isinstance(module, (nn.Linear,) + _CONV):
        unit = input_width(module) + out + 1
        dense = count_parameters(module) if metric == "params" else input_width(module) * out
        return unit, out, dense
    if metric == "flops":
        return module.embedding_dim + 1, out, module.embedding_dim
    return module.num_embeddings + module.embedding_dim, out, count_parameters(module)


def rank_for_energy(energies, energy, full):
    """Smallest rank keeping ``energy`` of the (descending) ``energies``, at most ``full``."""
    w = energies.cpu().numpy()
    return min(rank_by_energy(np.sqrt(w), energy), full)


def choose_ranks(layers, rank, energy, budget, metric, explicit):
    """Rank of every layer under one rule.

    Parameters
    ----------
    layers : dict
        ``name -> (module, energies)`` with ``energies`` the descending float64 spectrum of the
        layer (what each rank unit keeps) and ``module`` the dense layer (its shape gives the costs).
    rank : None, int or dict
        Already validated: every dict key names a layer; every value fits its layer.
    energy, budget : float or None
    metric : {"params", "flops"}
    explicit : bool
        Whether the layers were chosen by the user (then a rank wider than a layer was rejected
        earlier; a default-picked layer narrower than ``rank`` is left as it is).

    Returns
    -------
    dict name -> int
    """
    ranks = {}
    for name, (m, energies) in layers.items():
        full = full_rank(m)
        if rank is not None:
            k = rank.get(name, full) if isinstance(rank, dict) else rank
            ranks[name] = full if k > output_dim(m) else min(k, full)
        elif energy is not None:
            ranks[name] = rank_for_energy(energies, energy, full)
    if budget is None:
        return ranks
    increments = []
    spent = 0.0
    total = 0.0
    for name, (m, energies) in layers.items():
        w = energies.cpu().numpy()
        unit, fixed, dense = rank_cost(m, metric)
        total += dense
        spent += unit + fixed
        ranks[name] = 1
        share = w / w.sum() if w.sum() > 0 else np.zeros_like(w)
        k_max = min(full_rank(m), w.size)
        while k_max > 1 and k_max * unit + fixed >= dense:
            k_max -= 1
        for i in range(1, k_max):
            increments.append((share[i] / unit, unit, name))
    allowance = budget * total - spent
    # A stable sort: equal gains go to layers in model order, so the result is deterministic.
    for _, cost, name in sorted(increments, key=lambda t: -t[0]):
        if allowance < cost:
            continue
        ranks[name] += 1
        allowance -= cost
    return ranks
