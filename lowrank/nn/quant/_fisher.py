"""Diagonal empirical Fisher of layer weights: mean squared gradient over batches (LQ-LoRA's data-aware weights)."""

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["diagonal_fisher"]


def diagonal_fisher(model, batches, loss_fn, targets):
    """``F = mean_b (d loss_b / d W)^2`` for the weight of every layer in ``targets``.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated as ``loss_fn(model, batch)`` (its parameters are not changed).
    batches : iterable
        Each item is passed to ``loss_fn``; one item per gradient (batches of one example give
        the per-example empirical Fisher LQ-LoRA uses).
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``.
    targets : list of str
        Module names whose ``weight`` gets an estimate.

    Returns
    -------
    dict of str to torch.Tensor
        Weight-shaped, float64, non-negative: pass as ``compress(..., "lq", fisher=...)``.

    Raises
    ------
    ValueError
        No batches, or a target without a ``weight``.

    References
    ----------
    Guo et al., "LQ-LoRA", ICLR 2024, arXiv:2311.12023 (section 3.3, data-aware decomposition).

    Examples
    --------
    >>> layer = torch.nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(0.0)
    >>> data = [(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0]]))]
    >>> loss = lambda m, b: 0.5 * ((m[0](b[0]) - b[1]) ** 2).sum()
    >>> diagonal_fisher(torch.nn.Sequential(layer), data, loss, ["0"])["0"]  # ((y - t) x)^2
    tensor([[1., 4.]], dtype=torch.float64)
    """
    weights = {}
    for name in targets:
        w = getattr(model.get_submodule(name), "weight", None)
        if not isinstance(w, torch.Tensor):
            raise ValueError(f"`targets`: {name!r} has no weight")
        weights[name] = w
    sums = {name: torch.zeros(w.shape, dtype=torch.float64) for name, w in weights.items()}
    flags = {name: w.requires_grad for name, w in weights.items()}
    count = 0
    try:
        for w in weights.values():
            w.requires_grad_(True)
        for batch in batches:
            grads = torch.autograd.grad(loss_fn(model, batch), list(weights.values()), allow_unused=True)
            for (name, _), g in zip(weights.items(), grads):
                if g is not None:
                    sums[name] += g.detach().to(device="cpu", dtype=torch.float64) ** 2
            count += 1
    finally:
        for name, w in weights.items():
            w.requires_grad_(flags[name])
    if count == 0:
        raise ValueError("`batches` is empty")
    return {name: s / count for name, s in sums.items()}
