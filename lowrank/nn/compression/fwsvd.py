"""Fisher-weighted SVD (FWSVD): spend the rank where the task loss is sensitive.

On calibration ``(inputs, targets)`` batches the task loss is back-propagated once per batch and
the squared gradients of every target's weight are summed (float64, streaming: no batch is
kept), giving the empirical Fisher ``F`` (weight-shaped). Row ``i`` of the weight matrix gets
the importance ``I_i = sqrt(sum_j F_ij)`` and the layer is replaced by

    ``W ~ I^-1 SVD_k(I W)``,

the exact minimizer of ``||I (W - W_k)||_F^2`` over rank-``k`` matrices
(:func:`lowrank.linalg.weighted_svd` with row weights ``I_i^2``). With ``sides="both"`` the
columns are weighted too (``J_j = sqrt(sum_i F_ij)``): a separable, diagonal stand-in for the
Kronecker-factored Fisher of generalized FWSVD, still solved exactly by the weighted SVD.
With ``sides="kronecker"`` (Linear layers only) the Fisher of a layer's weight is approximated
by ``A ⊗ G`` (generalized FWSVD): ``A = sum x x^T`` over the layer's input rows and
``G = sum g g^T`` over the task-loss gradients of its output rows, both summed in the same
calibration pass; the exact minimizer of ``||G^{1/2} (W - W_k) A^{1/2}||_F`` is
``G^{-1/2} SVD_k(G^{1/2} W A^{1/2}) A^{-1/2}`` (:func:`kronecker_weighted_svd`).

Floor: a row whose Fisher is zero (a dead ReLU unit, an embedding row never looked up) would
get an infinite ``I^-1``; every ``I_i`` is raised to at least ``floor * max(I)`` (default
``floor=1e-3``), so such rows are approximated with a tiny but non-zero weight. A layer whose
Fisher is zero everywhere falls back to uniform weights (plain SVD). The Kronecker factors are
floored the same way on their square roots: every eigenvalue ``lambda`` of ``A`` (and of ``G``)
is raised to at least ``floor^2 * max(lambda)``, so ``sqrt(lambda) >= floor * max(sqrt(lambda))``;
an all-zero factor becomes the identity.
"""

import dataclasses

import numpy as np
import scipy.linalg

from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.validation import check_choice, check_float
from lowrank.nn.compression._base import Compressor, LayerSpectrum
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.compression._statistics import calibration_batches, call_model, check_calibration
from lowrank.nn.compression.svd import svd_replacement, weight_matrix

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["FWSVDCompressor", "FWSVDOptions", "default_loss", "empirical_fisher", "kronecker_weighted_svd"]


def default_loss(outputs, targets):
    """Cross-entropy for integer ``targets`` (class labels), mean squared error otherwise.

    Examples
    --------
    >>> round(float(default_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))), 6)  # log 2
    0.693147
    >>> float(default_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])))
    2.5
    """
    if not targets.is_floating_point() and not targets.is_complex():
        return nn.functional.cross_entropy(outputs, targets)
    return nn.functional.mse_loss(outputs.reshape(targets.shape) if outputs.numel() == targets.numel() else outputs,
                                  targets)


@dataclasses.dataclass(frozen=True)
class FWSVDOptions:
    """Options of the ``"fwsvd"`` compressor.

    Attributes
    ----------
    loss_fn : callable or None
        ``loss_fn(outputs, targets) -> scalar``; None: :func:`default_loss`.
    floor : float
        Smallest row importance, relative to the largest (``I_i >= floor * max(I)``).
    sides : {"rows", "both", "kronecker"}
        Weight the rows only (FWSVD), rows and columns (separable two-sided weighting), or by the
        Kronecker-factored Fisher ``A ⊗ G`` (generalized FWSVD; Linear layers only).
    """

    loss_fn: object = None
    floor: float = 1e-3
    sides: str = "rows"


def _split(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError("`calibration` batches must be (inputs, targets) tuples for 'fwsvd' (the task loss needs "
                         f"targets), got {type(batch).__name__}")
    inputs = tuple(batch[:-1])
    return inputs, batch[-1]


def empirical_fisher(model, targets, calibration, *, loss_fn=None, batch_size=4096, max_batches=None,
                     verbose=False, kronecker=False):
    """Sum over calibration batches of the squared task-loss gradient of each target's weight.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated in eval mode (dropout off); its parameters and ``.grad`` are not changed.
    targets : dict
        ``name -> module`` of ``model`` (modules with a ``weight``).
    calibration : iterable of (inputs..., targets) batches or tuple of tensors
        The last element of each batch is the target; the others are passed as ``model(*inputs)``.
        A tuple of tensors is cut into ``batch_size`` rows.
    loss_fn : callable, optional
        ``loss_fn(outputs, targets)``; default :func:`default_loss`.
    batch_size : int, default=4096
    max_batches : int, optional
    verbose : bool, default=False
    kronecker : bool, default=False
        Instead of ``F``, the Kronecker factors of every (Linear) target: ``A = sum x x^T`` over
        its input rows and ``G = sum g g^T`` over the loss gradients of its output rows.

    Returns
    -------
    dict of str to torch.Tensor (or to a pair of them)
        Weight-shaped float64 sums ``sum_b (d loss_b / d W)^2``; with ``kronecker=True`` the
        float64 pairs ``(A, G)`` (``in x in`` and ``out x out``).

    Raises
    ------
    ValueError
        No batches, a batch that is not ``(inputs, targets)``, a model failing on a batch, or a
        non-finite loss.

    References
    ----------
    Y.-C. Hsu et al., "Language model compression with weighted low-rank factorization", ICLR 2022,
    arXiv:2207.00112.

    Examples
    --------
    >>> layer = torch.nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.zero_()
    >>> F = empirical_fisher(layer, {"": layer}, (torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0]])))
    >>> F[""]    # d/dW (W x - t)^2 = 2 (W x - t) x
    tensor([[ 4., 16.]], dtype=torch.float64)
    """
    check_calibration(calibration)
    loss_fn = default_loss if loss_fn is None else loss_fn
    weights = {name: m.weight for name, m in targets.items()}
    sums = {name: torch.zeros(w.shape, dtype=torch.float64, device=w.device) for name, w in weights.items()}
    flags = {name: w.requires_grad for name, w in weights.items()}
    was_training = model.training
    model.eval()
    n_batches = 0
    seen = {name: [] for name in targets}   # (input rows, output tensor) of every call in a batch
    handles = []
    if kronecker:
        sums = {name: (torch.zeros(m.in_features, m.in_features, dtype=torch.float64, device=m.weight.device),
                       torch.zeros(m.out_features, m.out_features, dtype=torch.float64, device=m.weight.device))
                for name, m in targets.items()}
        handles = [m.register_forward_hook(lambda mod, inp, out, _n=name: seen[_n].append((inp[0].detach(), out)))
                   for name, m in targets.items()]
    try:
        for w in weights.values():
            w.requires_grad_(True)
        for batch in progress(calibration_batches(calibration, batch_size), desc="fwsvd fisher", verbose=verbose,
                              unit="batch"):
            inputs, y = _split(batch)
            try:
                loss = loss_fn(call_model(model, inputs), y)
            except (RuntimeError, TypeError) as err:
                raise ValueError(f"`calibration`: the model or loss failed on batch {n_batches}: {err}") from err
            if not bool(torch.isfinite(loss)):
                raise ValueError(f"`calibration`: the loss of batch {n_batches} is not finite")
            if kronecker:
                _accumulate_factors(loss, seen, sums)
            else:
                grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
                for name, g in zip(weights, grads):
                    if g is not None:
                        sums[name] += g.detach().to(torch.float64) ** 2
            n_batches += 1
            if max_batches is not None and n_batches >= max_batches:
                break
    finally:
        for h in handles:
            h.remove()
        for name, w in weights.items():
            w.requires_grad_(flags[name])
        model.train(was_training)
    if n_batches == 0:
        raise ValueError("`calibration` holds no batches")
    return sums


def _accumulate_factors(loss, seen, sums):
    calls = [(name, x, out) for name, items in seen.items() for x, out in items]
    for items in seen.values():
        items.clear()
    outs = [out for _, _, out in calls]
    grads = torch.autograd.grad(loss, outs, allow_unused=True) if outs else []
    for (name, x, out), g in zip(calls, grads):
        A, G = sums[name]
        X = x.reshape(-1, x.shape[-1]).to(torch.float64)
        A += X.T @ X
        if g is not None:
            g = g.detach().reshape(-1, g.shape[-1]).to(torch.float64)
            G += g.T @ g


def kronecker_root(M, floor):
    """``(M^{1/2}, M^{-1/2})`` of a symmetric PSD factor, its eigenvalues floored at ``floor^2 * max``.

    An all-zero factor (no signal) gives the identity pair.

    Examples
    --------
    >>> R, Ri = kronecker_root(np.diag([4.0, 0.0]), 0.1)
    >>> np.diag(R), np.diag(Ri)     # sqrt(0) raised to 0.1 * sqrt(4)
    (array([2. , 0.2]), array([0.5, 5. ]))
    """
    lam, Q = scipy.linalg.eigh(np.asarray(M, dtype=np.float64))
    top = lam.max() if lam.size else 0.0
    if not top > 0:
        eye = np.eye(lam.size)
        return eye, eye
    root = np.sqrt(np.maximum(lam, floor**2 * top))
    return (Q * root) @ Q.T, (Q / root) @ Q.T


def kronecker_weighted_svd(W, A, G, rank, *, floor=1e-3):
    """Best rank-``rank`` fit of ``W`` (``out x in``) in the norm ``||G^{1/2} E A^{1/2}||_F``.

    Generalized FWSVD's Kronecker-factored Fisher ``A ⊗ G`` (``A``: input second moment,
    ``G``: output-gradient second moment). Both factors are floored
    (:func:`kronecker_root`); the minimizer is exact: ``B = G^{-1/2} SVD_k(G^{1/2} W A^{1/2}) A^{-1/2}``.

    Parameters
    ----------
    W : ndarray (out, in)
    A : ndarray (in, in), symmetric PSD
    G : ndarray (out, out), symmetric PSD
    rank : int
    floor : float, default=1e-3

    Returns
    -------
    U : (out, rank), s : (rank,), Vh : (rank, in)
        ``B = U @ diag(s) @ Vh``; ``s`` are the singular values of the weighted matrix.

    References
    ----------
    Generalized Fisher-weighted SVD, arXiv:2505.17974.

    Examples
    --------
    >>> W = np.diag([3.0, 2.0, 1.0])
    >>> U, s, Vh = kronecker_weighted_svd(W, np.eye(3), np.diag([1.0, 1.0, 100.0]), 1)
    >>> np.round(U * s @ Vh, 6)   # the heavily weighted third output wins
    array([[0., 0., 0.],
           [0., 0., 0.],
           [0., 0., 1.]])
    """
    from lowrank.linalg import svd_flip

    Ar, Ari = kronecker_root(A, floor)
    Gr, Gri = kronecker_root(G, floor)
    U, s, Vh = scipy.linalg.svd(Gr @ W @ Ar, full_matrices=False)
    U, Vh = svd_flip(U[:, :rank], Vh[:rank])
    return Gri @ U, s[:rank], Vh @ Ari


def importance(fisher, floor, axis=1):
    """``I = sqrt(sum F)`` along ``axis`` of the Fisher matrix, floored at ``floor * max(I)``; ones if all zero."""
    I = np.sqrt(fisher.sum(axis=axis))
    top = I.max() if I.size else 0.0
    if not top > 0:
        return np.ones_like(I)
    return np.maximum(I, floor * top)


class FWSVDCompressor(Compressor):
    """Fisher-weighted SVD of each target (needs ``(inputs, targets)`` calibration batches).

    Options: ``loss_fn=None`` (cross-entropy for integer targets, MSE otherwise), ``floor=1e-3``,
    ``sides="rows"`` (or ``"both"``, ``"kronecker"``). The report's ``output_relative_error`` is the
    relative Fisher-weighted weight error ``||I (W - W_k)||_F / ||I W||_F``.

    References
    ----------
    Y.-C. Hsu et al., "Language model compression with weighted low-rank factorization", ICLR 2022,
    arXiv:2207.00112. Generalized FWSVD (two-sided weighting), arXiv:2505.17974.

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    >>> small, report = compress(model, "fwsvd", (x, y), rank=2, targets=["0"])
    >>> report.layers[0].rank, report.error_basis
    (2, 'Fisher-weighted weights')
    """

    statistics = "custom"
    error_basis = "Fisher-weighted weights"
    Options = FWSVDOptions

    @classmethod
    def make_options(cls, **options):
        opts = super().make_options(**options)
        if opts.loss_fn is not None and not callable(opts.loss_fn):
            raise TypeError(f"`loss_fn` must be callable, got {type(opts.loss_fn).__name__}")
        floor = check_float(opts.floor, "floor", low=0.0, high=1.0, low_inclusive=False)
        sides = check_choice(opts.sides, "sides", ("rows", "both", "kronecker"))
        return FWSVDOptions(loss_fn=opts.loss_fn, floor=floor, sides=sides)

    def check(self, name, module):
        super().check(name, module)
        if self.options.sides == "kronecker" and not isinstance(module, nn.Linear):
            raise ValueError(f"`sides`='kronecker' handles Linear layers only; {type(module).__name__} {name!r} "
                             "is a target (pass `targets=` or another `sides`)")

    def collect(self, model, targets, calibration, options):
        return empirical_fisher(model, targets, calibration, loss_fn=self.options.loss_fn,
                                batch_size=options.batch_size, max_batches=options.max_batches,
                                verbose=options.verbose, kronecker=self.options.sides == "kronecker")

    def spectrum(self, name, module, statistics):
        W = weight_matrix(module).cpu().numpy()
        if self.options.sides == "kronecker":
            A, G = (t.cpu().numpy() for t in statistics)
            U, s, Vh = kronecker_weighted_svd(W, A, G, min(W.shape), floor=self.options.floor)
            e = torch.from_numpy(s**2)
            return LayerSpectrum(energies=e, total=float(e.sum()), state=(U, s, Vh))
        F = statistics.reshape(W.shape).cpu().numpy()
        r = importance(F, self.options.floor, axis=1) ** 2
        c = importance(F, self.options.floor, axis=0) ** 2 if self.options.sides == "both" else None
        U, s, Vh = fisher_weighted_svd(W, r, c, min(W.shape))
        e = torch.from_numpy(s**2)
        return LayerSpectrum(energies=e, total=float(e.sum()), state=(U, s, Vh))

    def build(self, module, spectrum, rank):
        U, s, Vh = spectrum.state
        like = dict(dtype=torch.float64)
        return svd_replacement(module, torch.tensor(U[:, :rank], **like), torch.tensor(s[:rank], **like),
                               torch.tensor(Vh[:rank], **like))


def fisher_weighted_svd(W, row_weights, col_weights, rank):
    """``U, s, Vh`` with ``U diag(s) Vh`` the best rank-``rank`` fit of ``W`` in the weighted norm.

    ``row_weights`` (and ``col_weights``, or None) multiply the squared errors: for FWSVD the
    row weights are ``I_i^2``, so this is ``I^-1 SVD_k(I W)``.

    Examples
    --------
    >>> W = np.diag([3.0, 2.0, 1.0])
    >>> U, s, Vh = fisher_weighted_svd(W, np.array([1.0, 1.0, 100.0]), None, 1)
    >>> np.round(U * s @ Vh, 6)   # the heavily weighted third row wins
    array([[0., 0., 0.],
           [0., 0., 0.],
           [0., 0., 1.]])
    """
    from lowrank.linalg import weighted_svd

    U, s, Vh = weighted_svd(W, rank, row_weights=row_weights, col_weights=col_weights)
    return U, s, Vh


register_compressor("fwsvd", FWSVDCompressor)
