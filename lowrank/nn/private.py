"""Differentially private training of the trainable tensors of a model (DP-SGD through Opacus).

Opacus clips each example's gradient and adds Gaussian noise to the sum, for the parameters that
require grad and no others. With an adapter, that is the adapter's trained tensors (and whatever
else the user unfroze, such as a new head): for FFA-LoRA the noise lands on ``B`` alone, because
its ``A`` is a frozen buffer; for LoRA on both factors, whose product then carries the noise twice
(the case the FFA-LoRA paper makes against LoRA under DP).

Opacus is an optional extra (``pip install opacus``); per-example gradients are computed with
``torch.func`` (a vmap of the gradient over the batch), which works through lowrank's adapted layers.
"""

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.nn.private")

__all__ = ["private_fit"]


def private_fit(model, train, *, epochs, lr, batch_size, max_grad_norm, noise_multiplier=None, target_epsilon=None,
                delta=1e-5, loss="cross_entropy", poisson_sampling=True, rng=None):
    """Train ``model``'s trainable parameters with DP-SGD; returns the privacy spent, ``epsilon``.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; only parameters with ``requires_grad`` are updated (and privatized).
    train : tuple of (X, y) torch tensors
    epochs : int
    lr : float
        SGD learning rate (DP-SGD is SGD on noisy clipped gradients).
    batch_size : int
        Expected batch size (with Poisson sampling each example joins a batch with probability
        ``batch_size / n``).
    max_grad_norm : float
        Per-example gradient clipping norm ``C``.
    noise_multiplier : float, optional
        Noise standard deviation over ``C``. Give this or ``target_epsilon``.
    target_epsilon : float, optional
        Calibrate the noise so that training spends this epsilon at ``delta`` (Opacus's RDP accountant).
    delta : float, default=1e-5
    loss : {"cross_entropy", "mse"}, default="cross_entropy"
    poisson_sampling : bool, default=True
        Opacus's privacy accounting assumes it; ``False`` gives fixed shuffled batches (for tests).
    rng : None or int, default=None
        Seeds the batch sampling and the noise.

    Returns
    -------
    float
        ``epsilon`` spent at ``delta``.

    Raises
    ------
    ImportError
        If Opacus is not installed.
    ValueError
        If neither or both of ``noise_multiplier`` and ``target_epsilon`` are given, or an argument is
        out of range.

    References
    ----------
    Abadi et al., "Deep Learning with Differential Privacy", CCS 2016, arXiv:1607.00133; Sun et al.,
    "Improving LoRA in Privacy-preserving Federated Learning", ICLR 2024, arXiv:2403.12313.

    Examples
    --------
    >>> import torch
    >>> from lowrank.nn import adapt
    >>> from lowrank.nn.private import private_fit
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    >>> adapter = adapt(model, "ffa_lora", rank=2, rng=0)
    >>> X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    >>> eps = private_fit(model, (X, y), epochs=1, lr=0.1, batch_size=16, max_grad_norm=1.0,
    ...                   noise_multiplier=1.0, rng=0)
    >>> 0 < eps < 100
    True
    """
    opacus = import_optional("opacus", extra="opacus", purpose="differentially private training")
    epochs = check_int(epochs, "epochs", low=1)
    lr = check_float(lr, "lr", low=0.0, low_inclusive=False)
    batch_size = check_int(batch_size, "batch_size", low=1)
    max_grad_norm = check_float(max_grad_norm, "max_grad_norm", low=0.0, low_inclusive=False)
    delta = check_float(delta, "delta", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ValueError("give exactly one of `noise_multiplier` or `target_epsilon`")
    if noise_multiplier is not None:
        noise_multiplier = check_float(noise_multiplier, "noise_multiplier", low=0.0)
    else:
        target_epsilon = check_float(target_epsilon, "target_epsilon", low=0.0, low_inclusive=False)
    if loss not in ("cross_entropy", "mse"):
        raise ValueError(f"`loss` must be 'cross_entropy' or 'mse', got {loss!r}")
    X, y = train
    if not (torch.is_tensor(X) and torch.is_tensor(y)) or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError("`train` must be an (X, y) pair of torch tensors with the same non-zero number of rows")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("`model` has no trainable parameter: adapt it or unfreeze what should train")

    for name, module in model.named_modules():
        if getattr(module, "track_running_stats", False):
            raise ValueError(f"`model`: module {name!r} ({type(module).__name__}) keeps running statistics of the "
                             "data, which DP-SGD does not privatize; replace it (e.g. GroupNorm) first")
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.data_loader import DPDataLoader
    from opacus.optimizers import DPOptimizer

    seed = 0 if rng is None else check_int(rng, "rng", low=0)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size,
                                         shuffle=True, generator=gen)
    sample_rate = min(1.0, batch_size / X.shape[0])
    if poisson_sampling:
        loader = DPDataLoader.from_data_loader(loader, generator=gen)
    if noise_multiplier is None:
        noise_multiplier = get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                                sample_rate=sample_rate, epochs=epochs, accountant="rdp")
    # Per-example gradients of the whole model through torch.func (vmap of grad over the batch):
    # Opacus's own layer hooks need the trained tensors inside layers whose forward takes the
    # input, which adapter factors are not. Opacus's DPOptimizer then clips, adds noise and averages,
    # and its RDP accountant counts the privacy spent.
    optimizer = DPOptimizer(torch.optim.SGD(params, lr=lr), noise_multiplier=noise_multiplier,
                            max_grad_norm=max_grad_norm, expected_batch_size=batch_size, loss_reduction="mean",
                            generator=gen)
    accountant = RDPAccountant()
    optimizer.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    loss_fn = torch.nn.functional.cross_entropy if loss == "cross_entropy" else torch.nn.functional.mse_loss
    per_example = _per_example_gradients(model, loss_fn)
    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    was_training = model.training
    model.train()
    try:
        for _ in range(epochs):
            for xb, yb in loader:
                if xb.shape[0] == 0:  # Poisson sampling can draw an empty batch
                    continue
                optimizer.zero_grad(set_to_none=True)
                grads = per_example(xb, yb)
                for name, p in trained.items():
                    p.grad_sample = grads[name]
                optimizer.step()
    finally:
        for p in trained.values():
            p.grad_sample = None
        model.train(was_training)
    return float(accountant.get_epsilon(delta))


def _per_example_gradients(model, loss_fn):
    """``(X, y) -> {name: (batch, *shape) gradient}`` for the trainable parameters of ``model``."""
    from torch.func import functional_call, grad, vmap

    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def loss_one(params, x, y):
        out = functional_call(model, ({**frozen, **params}, buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    batched = vmap(grad(loss_one), in_dims=(None, 0, 0), randomness="different")

    def per_example(X, y):
        return batched({n: p.detach() for n, p in trained.items()}, X, y)

    return per_example
