"""Federated averaging of adapter states (FedAvg over what :meth:`Adapter.state_dict` returns).

For adapters whose delta is linear in the trained tensors with the rest frozen and shared (FFA-LoRA),
the averaged state is exactly the average of the clients' weight deltas. For LoRA, whose delta
``B A`` is bilinear, averaging ``A`` and ``B`` separately is not the average of the deltas.
"""

import numpy as np

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn.federated")

__all__ = ["fedavg"]


def fedavg(states, weights=None):
    """Weighted average of several clients' adapter states of one adapter.

    Parameters
    ----------
    states : sequence of dict
        ``Adapter.state_dict()`` of each client: same method, config, layers and tensor shapes.
    weights : sequence of float, optional
        Non-negative client weights (e.g. their numbers of examples), normalized to sum to 1;
        default equal weights.

    Returns
    -------
    dict
        A state of the same structure, loadable with ``Adapter.load_state_dict``. A tensor equal in
        every state (a frozen factor regenerated from one seed) is copied exactly; the others are
        averaged in float64 and cast back to their dtype.

    Raises
    ------
    ValueError
        If ``states`` is empty, the states differ in method, config, layers or shapes, or
        ``weights`` has the wrong length, a negative entry or sums to zero.
    TypeError
        If an entry of ``states`` is not an adapter state.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> from lowrank.nn.federated import fedavg
    >>> def client(seed):
    ...     torch.manual_seed(seed)
    ...     model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    ...     adapter = adapt(model, "ffa_lora", rank=2, rng=0)  # one seed: the same frozen A everywhere
    ...     with torch.no_grad():
    ...         adapter.trainable_parameters()[0].fill_(float(seed))
    ...     return adapter.state_dict()
    >>> avg = fedavg([client(1), client(3)])
    >>> avg["tensors"]["0"]["B"].unique().tolist()
    [2.0]
    """
    states = list(states) if not isinstance(states, dict) else None
    if states is None:
        raise TypeError("`states` must be a sequence of adapter state dicts, got one dict")
    if not states:
        raise ValueError("`states` is empty: give at least one client's adapter state")
    for i, state in enumerate(states):
        if not isinstance(state, dict) or not {"method", "config", "layers", "tensors", "shared"} <= set(state):
            raise TypeError(f"`states[{i}]` is not an Adapter.state_dict() (keys method, config, layers, tensors, "
                            "shared)")
    first = states[0]
    for i, state in enumerate(states[1:], 1):
        for key in ("method", "config", "layers"):
            if state[key] != first[key]:
                raise ValueError(f"`states[{i}]` has another {key} than `states[0]`: {state[key]!r} != {first[key]!r}")
    w = _weights(weights, len(states))

    def average(tensors, where):
        ref = tensors[0]
        if any(t.shape != ref.shape or t.dtype != ref.dtype for t in tensors):
            raise ValueError(f"`states`: tensor {where} differs in shape or dtype between clients")
        if all(torch.equal(t, ref) for t in tensors[1:]):
            return ref.clone()
        acc = sum(float(wi) * t.detach().to(device="cpu", dtype=torch.float64) for wi, t in zip(w, tensors))
        return acc.to(device=ref.device, dtype=ref.dtype)

    def keys_of(mapping, where):
        keys = set(mapping[0])
        if any(set(m) != keys for m in mapping):
            raise ValueError(f"`states`: the clients' tensors of {where} have different names")
        return sorted(keys)

    tensors = {}
    for path in first["tensors"]:
        per_client = [s["tensors"][path] for s in states]
        tensors[path] = {k: average([m[k] for m in per_client], f"{path}.{k}") for k in keys_of(per_client, path)}
    shared_per_client = [s["shared"] for s in states]
    shared = {k: average([m[k] for m in shared_per_client], f"shared.{k}") for k in keys_of(shared_per_client, "shared")}
    return {"method": first["method"], "config": dict(first["config"]), "layers": dict(first["layers"]),
            "tensors": tensors, "shared": shared}


def _weights(weights, n):
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"`weights` must have one entry per state ({n}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() == 0:
        raise ValueError("`weights` must be finite, non-negative and not all zero")
    return w / w.sum()
