"""Streaming output statistics of the target layers, gathered with forward hooks in one pass.

The core runs the calibration data through the model once per ``compress`` call; every target's
hook folds its outputs into an :class:`OutputStatistics` (float64 sums, nothing stored). Inputs
are checked at the boundary: a tuple of tensors once before the pass, an iterable of batches
through the accumulated sums once after it (a NaN anywhere reaches them), so the hot loop does no
validation of its own.
"""


from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.layers import _bag_weights

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class OutputStatistics:
    """Running mean and covariance of vectors fed in batches (never storing the vectors).

    Sums are kept in float64 on the vectors' device, so the result equals the dense
    ``torch.cov(Y.T, correction=0)`` of all rows up to float64 rounding.

    Parameters
    ----------
    dim : int
        Vector length.

    Raises
    ------
    TypeError, ValueError
        From :meth:`update` for a non-tensor, complex, wrongly shaped or non-finite batch.

    Examples
    --------
    >>> stats = OutputStatistics(3)
    >>> stats.update(torch.tensor([[1.0, 0, 0], [3.0, 0, 0]]))
    >>> stats.mean.tolist(), stats.covariance[0, 0].item()
    ([2.0, 0.0, 0.0], 1.0)
    """

    def __init__(self, dim):
        self.dim = check_int(dim, "dim", low=1)
        self.count = 0
        self.weight_total = 0.0  # total bag weight, for EmbeddingBag(mode="sum") outputs
        self._sum = None
        self._outer = None

    def update(self, Y, bag_weight=None):
        """Add the rows of ``Y`` (any leading shape, last dimension ``dim``).

        Parameters
        ----------
        Y : torch.Tensor
            Real tensor whose last dimension is ``dim``; NaN and inf are rejected.
        bag_weight : float, optional
            Total bag weight behind these rows (EmbeddingBag mode "sum"); default: the row count.

        Raises
        ------
        TypeError
            If ``Y`` is not a real torch tensor.
        ValueError
            If ``Y``'s last dimension is not ``dim``, it holds NaN/inf, or ``bag_weight`` is negative.
        """
        if not torch.is_tensor(Y):
            raise TypeError(f"`Y` must be a torch tensor, got {type(Y).__name__}")
        if Y.is_complex() or Y.dtype == torch.bool:
            raise TypeError(f"`Y` must be a real tensor, got dtype {Y.dtype}")
        if Y.dim() == 0 or Y.shape[-1] != self.dim:
            raise ValueError(f"`Y` must have last dimension dim={self.dim}, got shape {tuple(Y.shape)}")
        if Y.is_floating_point() and not bool(torch.isfinite(Y).all()):
            raise ValueError("`Y` holds NaN or inf values")
        if bag_weight is not None:
            bag_weight = check_float(bag_weight, "bag_weight", low=0.0)
        self._accumulate(Y, bag_weight)

    def _accumulate(self, Y, bag_weight=None):
        """:meth:`update` without its checks: the per-batch path of the calibration hooks."""
        Y = Y.detach().reshape(-1, self.dim).to(torch.float64)
        if self._sum is None:
            self._sum = torch.zeros(self.dim, dtype=torch.float64, device=Y.device)
            self._outer = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=Y.device)
        self._sum += Y.sum(dim=0)
        self._outer += Y.T @ Y
        self.count += Y.shape[0]
        self.weight_total += float(Y.shape[0] if bag_weight is None else bag_weight)

    @property
    def mean(self):
        """Mean vector, ``(dim,)`` float64."""
        self._check()
        return self._sum / self.count

    @property
    def covariance(self):
        """Population covariance (divides by the count)."""
        self._check()
        mu = self.mean
        cov = self._outer / self.count - torch.outer(mu, mu)
        return (cov + cov.T) / 2

    @property
    def second_moment(self):
        """``E[y y^T]``; its trace is the mean squared norm of the outputs."""
        self._check()
        return self._outer / self.count

    def principal_subspace(self):
        """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of the covariance."""
        w, V = torch.linalg.eigh(self.covariance)
        return torch.clamp(w.flip(0), min=0), V.flip(1)

    def _finite(self):
        return self._sum is None or bool(torch.isfinite(self._outer).all() and torch.isfinite(self._sum).all())

    def _check(self):
        if self.count == 0:
            raise ValueError("no calibration outputs were collected (empty calibration data?)")


def output_width(module):
    """Length of the vectors the statistics of ``module`` hold (features / channels)."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, _CONV):
        return module.out_channels
    return module.embedding_dim


def calibration_batches(calibration, batch_size):
    """Batches of ``calibration``: a tuple of tensors (or one tensor) is cut into row blocks."""
    if torch.is_tensor(calibration):
        calibration = (calibration,)
    if isinstance(calibration, tuple) and calibration and all(torch.is_tensor(t) for t in calibration):
        n = calibration[0].shape[0]
        if any(t.shape[0] != n for t in calibration):
            raise ValueError("`calibration` tensors must share their first dimension")
        for start in range(0, n, batch_size):
            yield tuple(t[start:start + batch_size] for t in calibration)
        return
    yield from calibration


def check_calibration(calibration):
    """What can be checked before the pass: the type, and finiteness of in-memory tensors."""
    if calibration is None:
        raise ValueError("`calibration` is required: give a tuple of tensors or an iterable of batches")
    tensors = (calibration,) if torch.is_tensor(calibration) else calibration
    if isinstance(tensors, tuple) and tensors and all(torch.is_tensor(t) for t in tensors):
        for i, t in enumerate(tensors):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"`calibration` tensor {i} holds NaN or inf values")
        return
    if isinstance(calibration, (str, bytes)) or not hasattr(calibration, "__iter__"):
        raise TypeError(f"`calibration` must be a tuple of tensors or an iterable of batches, got "
                        f"{type(calibration).__name__}")


def call_model(model, batch):
    """``model(**batch)`` for a dict, ``model(*batch)`` for a tuple/list, else ``model(batch)``."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _describe(batch):
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else [batch]
    return ", ".join(f"{tuple(t.shape)} {t.dtype}" if torch.is_tensor(t) else type(t).__name__ for t in items)


def _model_dtype(model):
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _channels_last(module, output):
    """Conv outputs ``(N, C, *spatial)`` as rows of channel vectors (batch and positions pooled)."""
    if isinstance(module, _CONV):
        n_spatial = len(module.kernel_size)
        return output.movedim(output.dim() - n_spatial - 1, -1)
    return output


def collect_output_statistics(model, targets, calibration, batch_size, max_batches, verbose, desc="calibration"):
    """Run ``calibration`` through ``model`` once; ``{name: OutputStatistics}`` of each target's outputs.

    ``targets`` maps qualified names to modules of ``model``. Hooks are removed and the model's
    train/eval mode restored whatever happens.
    """
    stats = {name: OutputStatistics(output_width(m)) for name, m in targets.items()}
    handles = []
    for name, module in targets.items():
        def hook(mod, inputs, output, _name=name):
            bag_weight = None
            if isinstance(mod, nn.EmbeddingBag) and mod.mode == "sum":
                offsets = inputs[1] if len(inputs) > 1 else None
                psw = inputs[2] if len(inputs) > 2 else None
                bag_weight = float(_bag_weights(inputs[0], offsets, psw, torch.float64).sum())
            stats[_name]._accumulate(_channels_last(mod, output), bag_weight)
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    n_batches = 0
    try:
        with torch.no_grad():
            for batch in progress(calibration_batches(calibration, batch_size), desc=desc, verbose=verbose,
                                  unit="batch"):
                try:
                    call_model(model, batch)
                except (RuntimeError, TypeError) as err:
                    # Shape and dtype mismatches surface deep inside a matmul: say which argument.
                    raise ValueError(f"`calibration`: the model failed on batch {n_batches} ({_describe(batch)}; "
                                     f"model parameters are {_model_dtype(model)}): {err}") from err
                n_batches += 1
                if max_batches is not None and n_batches >= max_batches:
                    break
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if n_batches == 0:
        raise ValueError("`calibration` holds no batches")
    for name, st in stats.items():
        if st.count == 0:
            raise ValueError(f"layer {name!r} was never called on the calibration data")
        if not st._finite():
            raise ValueError(f"`calibration`: the outputs of layer {name!r} are not finite (NaN or inf in the "
                             "calibration data, or values that overflow the model's dtype)")
    return stats


def check_finite_parameters(model):
    """Raise naming the first parameter of ``model`` holding NaN or inf (once per call)."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise ValueError(f"`model`: parameter {name!r} holds NaN or inf values")


