"""CoSpaDi: a Linear weight as a dictionary times a column-sparse code matrix, fitted to the calibration inputs.

Instead of one rank-``k`` subspace (SVD), every output neuron's weight vector is a combination
of only ``s`` of ``k`` learned atoms: a union of ``s``-dimensional subspaces. The fit is
calibration-guided: with ``G = E[x x^T]`` the second moment of the layer's inputs and
``G + eps I = L L^T`` its Cholesky factor, the output error is
``E||(W - W_hat) x||^2 = ||L^T (W - W_hat)^T||_F^2``, so the whitened matrix ``L^T W^T``
(``in x out``) is factored as ``D C`` by K-SVD (sparse coding by orthogonal matching pursuit,
``sklearn.linear_model.orthogonal_mp_gram``; each atom and its codes updated by a rank-1 SVD of
its residual) and un-whitened: ``W_hat^T = (L^-T D) C``. The layer becomes a
:class:`lowrank.nn.layers_dict.DictLinear` (dictionary ``in x k``, codes ``s`` per output; the
weight is never formed).

``compress(model, "cospadi", calib, rank=k)`` uses ``k`` atoms and ``s = ceil(density * k)``
non-zeros per column (``density=0.5`` by default). Parameters counted: ``in * k`` (dictionary)
+ ``out * s`` (code values) + ``out`` (bias); the ``out * s`` atom indices are an integer buffer
(``ceil(log2 k)`` bits each), not counted as parameters.

Shared dictionaries (``share=[["q", "k", "v"], ...]`` or ``share="same_input_width"``): the
layers of a group read the same input width; they are whitened by one factor ``L`` of their
pooled input second moment (the count-weighted mean of their Grams: exact when they read the
same input, as parallel projections do), their whitened weights are concatenated,
``[L^T W_1^T, ..., L^T W_m^T] ~ D [C_1, ..., C_m]``, and every layer keeps its own codes ``C_l``
while holding the same dictionary parameter ``L^-T D``, so the model counts it once (each layer's
report entry still counts it, a conservative per-layer break-even). A group needs one rank for
all its layers.
"""

import dataclasses
import math
import warnings

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.compression._base import Compressor, LayerSpectrum
from lowrank.nn.compression._registry import register_compressor
from lowrank.nn.compression._statistics import OutputStatistics, calibration_batches, call_model

torch = import_optional("torch", purpose="lowrank.nn")
nn = torch.nn

__all__ = ["CoSpaDiCompressor", "CoSpaDiOptions", "ksvd"]


@dataclasses.dataclass(frozen=True)
class CoSpaDiOptions:
    """Options of the ``"cospadi"`` compressor.

    Attributes
    ----------
    density : float in (0, 1]
        Non-zeros per code column as a fraction of the atoms: ``s = ceil(density * k)``.
    n_iter : int
        K-SVD iterations (sparse coding + dictionary update) per start.
    n_init : int
        K-SVD starts; the best is kept.
    eps : float
        Ridge on the input Gram, relative to its mean diagonal (keeps the Cholesky defined for
        inputs that do not span every direction).
    random_state : int, Generator or None
        Seeds the dictionary initialization.
    share : None, "same_input_width" or tuple of tuples of str
        Groups of layers that learn one dictionary together (see the module docstring):
        None (a dictionary per layer), every group of targets with the same ``in_features``,
        or explicit groups of target names.
    """

    density: float = 0.5
    n_iter: int = 30
    n_init: int = 1
    eps: float = 1e-6
    random_state: object = 0
    share: object = None


def ksvd(Y, n_atoms, n_nonzero, *, n_iter=30, n_init=1, tol=1e-12, rng=None):
    """K-SVD: ``Y ~ D C`` with unit-norm atoms ``D`` and at most ``n_nonzero`` non-zeros per column of ``C``.

    Parameters
    ----------
    Y : ndarray, shape (d, n)
        Signals as columns.
    n_atoms : int
    n_nonzero : int
        ``0 < n_nonzero <= n_atoms``.
    n_iter : int, default=30
        Most iterations per start.
    n_init : int, default=1
        Starts (dictionaries drawn from the signals); the best fit is returned. K-SVD reaches
        local fixed points, so more starts raise the chance of the global one.
    tol : float, default=1e-12
        A start stops when its relative squared error falls below ``tol`` or an iteration no
        longer decreases it (a fixed point).
    rng : int, Generator or None
        Picks the signals the dictionaries start from.

    Returns
    -------
    D : ndarray (d, n_atoms)
    C : ndarray (n_atoms, n)
    errors : list of float
        Relative Frobenius error after each iteration of the returned start.

    References
    ----------
    M. Aharon, M. Elad and A. Bruckstein, "K-SVD: an algorithm for designing overcomplete dictionaries
    for sparse representation", IEEE TSP 2006.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> D0 = np.linalg.qr(rng.standard_normal((6, 3)))[0]
    >>> Y = D0 @ rng.standard_normal((3, 40))          # every column in the atoms' span
    >>> D, C, errors = ksvd(Y, 3, 3)
    >>> bool(errors[-1] < 1e-10)
    True
    """
    from sklearn.linear_model import orthogonal_mp_gram

    rng = as_generator(rng)
    d, n = Y.shape
    norm_y = np.linalg.norm(Y)
    if norm_y == 0:
        return np.eye(d, n_atoms), np.zeros((n_atoms, n)), [0.0]
    col_norms = np.linalg.norm(Y, axis=0)
    usable = np.flatnonzero(col_norms > 0)
    best = None
    for _ in range(n_init):
        start = rng.choice(usable, size=n_atoms, replace=usable.size < n_atoms)
        D = Y[:, start] / col_norms[start]
        if usable.size < n_atoms:   # atoms started at the same signal must differ
            D = D + 1e-3 * rng.standard_normal(D.shape) / math.sqrt(d)
            D /= np.linalg.norm(D, axis=0)
        D, C, errors = _ksvd_start(Y, D, n_nonzero, n_iter, tol, norm_y, orthogonal_mp_gram)
        if best is None or errors[-1] < best[2][-1]:
            best = (D, C, errors)
        if errors[-1] ** 2 < tol:
            break
    return best


def _ksvd_start(Y, D, n_nonzero, n_iter, tol, norm_y, omp):
    n_atoms = D.shape[1]
    errors = []
    for _ in range(n_iter):
        C = _codes(D, Y, n_nonzero, omp)
        R = Y - D @ C
        for j in range(n_atoms):
            users = np.flatnonzero(C[j])
            if users.size == 0:
                # an unused atom restarts at the worst-represented signal
                worst = int(np.argmax((R**2).sum(axis=0)))
                if np.linalg.norm(R[:, worst]) > 0:
                    D[:, j] = R[:, worst] / np.linalg.norm(R[:, worst])
                continue
            E = R[:, users] + np.outer(D[:, j], C[j, users])
            u, s, vt = np.linalg.svd(E, full_matrices=False)
            D[:, j] = u[:, 0]
            C[j, users] = s[0] * vt[0]
            R[:, users] = E - np.outer(D[:, j], C[j, users])
        errors.append(float(np.linalg.norm(R) / norm_y))
        if errors[-1] ** 2 < tol or (len(errors) > 1 and errors[-2] - errors[-1] <= tol * errors[-2]):
            break
    C = _codes(D, Y, n_nonzero, omp)
    errors.append(float(np.linalg.norm(Y - D @ C) / norm_y))
    return D, C, errors


def _codes(D, Y, n_nonzero, omp):
    with warnings.catch_warnings():
        # a momentarily dependent dictionary (two atoms restarted alike) only leaves some codes
        # with fewer than n_nonzero entries; the next dictionary update separates the atoms
        warnings.filterwarnings("ignore", message="Orthogonal matching pursuit ended prematurely")
        C = omp(D.T @ D, D.T @ Y, n_nonzero_coefs=n_nonzero, copy_Gram=True, copy_Xy=True)
    return np.asarray(C, dtype=np.float64).reshape(D.shape[1], Y.shape[1])


def _collect_inputs(model, targets, calibration, options):
    stats = {name: OutputStatistics(m.in_features) for name, m in targets.items()}
    handles = [m.register_forward_pre_hook(lambda mod, inputs, _n=name: stats[_n]._accumulate(inputs[0]))
               for name, m in targets.items()]
    was_training = model.training
    model.eval()
    n_batches = 0
    try:
        with torch.no_grad():
            for batch in progress(calibration_batches(calibration, options.batch_size), desc="cospadi calibration",
                                  verbose=options.verbose, unit="batch"):
                try:
                    call_model(model, batch)
                except (RuntimeError, TypeError) as err:
                    raise ValueError(f"`calibration`: the model failed on batch {n_batches}: {err}") from err
                n_batches += 1
                if options.max_batches is not None and n_batches >= options.max_batches:
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
            raise ValueError(f"`calibration`: the inputs of layer {name!r} are not finite")
    return stats


def _check_share(share):
    if share is None or share == "same_input_width":
        return share
    if isinstance(share, str) or not isinstance(share, (list, tuple)):
        raise TypeError("`share` must be None, 'same_input_width' or a list of lists of layer names, got "
                        f"{share!r}")
    groups, seen = [], set()
    for group in share:
        if isinstance(group, str) or not isinstance(group, (list, tuple)) or \
                not all(isinstance(n, str) for n in group):
            raise TypeError(f"`share`: every group must be a list of layer names, got {group!r}")
        if len(set(group)) < 2:
            raise ValueError(f"`share`: a group needs at least two distinct layers, got {list(group)}")
        if seen & set(group):
            raise ValueError(f"`share`: layer {sorted(seen & set(group))[0]!r} is in two groups")
        seen |= set(group)
        groups.append(tuple(dict.fromkeys(group)))
    return tuple(groups)


def _groups(share, targets):
    """``name -> group`` (a tuple of target names) for the targets that share a dictionary."""
    if share is None:
        return {}
    if share == "same_input_width":
        by_width = {}
        for name, m in targets.items():
            by_width.setdefault(m.in_features, []).append(name)
        share = [tuple(g) for g in by_width.values() if len(g) > 1]
    out = {}
    for group in share:
        missing = [n for n in group if n not in targets]
        if missing:
            raise ValueError(f"`share`: {missing[0]!r} names no target layer (targets: {', '.join(targets)})")
        widths = {targets[n].in_features for n in group}
        if len(widths) > 1:
            raise ValueError(f"`share`: the layers of group {list(group)} read different input widths "
                             f"{sorted(widths)}; a shared dictionary needs one")
        out.update({n: tuple(group) for n in group})
    return out


def whitening(gram, eps):
    """Lower Cholesky factor ``L`` of ``gram + eps * mean(diag) * I`` (float64 numpy)."""
    G = np.asarray(gram, dtype=np.float64)
    ridge = eps * max(float(np.trace(G)) / G.shape[0], 1e-300)
    return np.linalg.cholesky(G + ridge * np.eye(G.shape[0]))


class CoSpaDiCompressor(Compressor):
    """Calibration-whitened sparse dictionary factorization of each Linear (``rank`` = atoms).

    Options: ``density=0.5`` (``s = ceil(density * k)`` non-zeros per column), ``n_iter=30``,
    ``n_init=1``, ``eps=1e-6``, ``random_state=0``, ``share=None`` (groups sharing one
    dictionary). The report's ``output_relative_error`` is the relative
    calibration output error ``||L^T (W - W_hat)^T||_F / ||L^T W^T||_F`` (bias excluded).
    With ``energy=`` or ``budget=`` the ranks are chosen from the whitened weight's singular
    values (an SVD proxy for the dictionary's error).

    References
    ----------
    "CoSpaDi: Compressing LLMs via Calibration-Guided Sparse Dictionary Learning", 2025, arXiv:2509.22075.

    Examples
    --------
    >>> from lowrank.nn import compress
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Linear(16, 64))
    >>> small, report = compress(model, "cospadi", torch.randn(200, 16), rank=8, density=0.25)
    >>> type(small[0]).__name__, small[0].nonzeros_per_column, report.layers[0].params_after
    ('DictLinear', 2, 320)
    """

    supported = (nn.Linear,)
    statistics = "custom"
    Options = CoSpaDiOptions

    def __init__(self, options):
        super().__init__(options)
        # filled by collect(): share groups, their whitening, whitened blocks and fitted dictionaries
        self._groups, self._whiten, self._blocks, self._shared = {}, {}, {}, {}

    @classmethod
    def make_options(cls, **options):
        opts = super().make_options(**options)
        return CoSpaDiOptions(
            density=check_float(opts.density, "density", low=0.0, high=1.0, low_inclusive=False),
            n_iter=check_int(opts.n_iter, "n_iter", low=1), n_init=check_int(opts.n_init, "n_init", low=1),
            eps=check_float(opts.eps, "eps", low=0.0, low_inclusive=False),
            random_state=opts.random_state, share=_check_share(opts.share))

    def collect(self, model, targets, calibration, options):
        stats = _collect_inputs(model, targets, calibration, options)
        self._groups = _groups(self.options.share, targets)
        self._shared, self._blocks = {}, {}
        whiten = {}
        for group in set(self._groups.values()):
            # one whitening for the group, so that the un-whitened dictionary is one tensor
            count = sum(stats[n].count for n in group)
            pooled = sum(stats[n].count * stats[n].second_moment.cpu().to(torch.float64) for n in group) / count
            whiten[group] = whitening(pooled.numpy(), self.options.eps)
        self._whiten = {name: whiten[g] for name, g in self._groups.items()}
        return stats

    def spectrum(self, name, module, statistics):
        W = module.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        L = self._whiten.get(name)
        if L is None:
            L = whitening(statistics.second_moment.cpu().numpy(), self.options.eps)
        Y = L.T @ W.T
        if name in self._groups:
            self._blocks[name] = Y
        e = torch.from_numpy(np.linalg.svd(Y, compute_uv=False) ** 2)
        return LayerSpectrum(energies=e, total=float(e.sum()), state=(L, Y, name))

    def build(self, module, spectrum, rank):
        from lowrank.nn.layers_dict import DictLinear

        L, Y, name = spectrum.state
        s = max(1, math.ceil(self.options.density * rank))
        group = self._groups.get(name)
        if group is None:
            D, C, _ = ksvd(Y, rank, s, n_iter=self.options.n_iter, n_init=self.options.n_init,
                           rng=self.options.random_state)
            shared = None
        else:
            D, C, shared = self._group_fit(group, name, rank, s, module)
        Du = np.linalg.solve(L.T, D)   # un-whiten: W_hat^T = L^-T D C
        order = np.argsort(C == 0, axis=0, kind="stable")[:s].T   # per output: its non-zero atoms first
        values = np.take_along_axis(C.T, order, axis=1)
        like = dict(dtype=module.weight.dtype, device=module.weight.device)
        err2 = float(((Y - D @ C) ** 2).sum())
        # the core reports sqrt(sum(energies[rank:]) / total): make that the dictionary's own error
        n = spectrum.energies.numel()
        kept = torch.full((rank,), max(spectrum.total - err2, 0.0) / rank, dtype=torch.float64)
        spectrum.energies = torch.cat([kept, torch.full((max(n - rank, 0),), err2 / max(n - rank, 1),
                                                         dtype=torch.float64)])
        layer = DictLinear(torch.tensor(Du, **like), torch.from_numpy(order).to(module.weight.device),
                           torch.tensor(values, **like), module.bias)
        if shared is not None:
            layer.dictionary = shared   # one Parameter object: counted once by the model
        return layer

    def _group_fit(self, group, name, rank, s, module):
        """``(D, C_name, shared Parameter)`` of ``name``'s group, fitted once over the concatenated weights."""
        if group not in self._shared:
            blocks = [self._blocks[n] for n in group]
            D, C, _ = ksvd(np.hstack(blocks), rank, s, n_iter=self.options.n_iter, n_init=self.options.n_init,
                           rng=self.options.random_state)
            offsets = np.cumsum([0] + [b.shape[1] for b in blocks])
            codes = {n: C[:, offsets[i]:offsets[i + 1]] for i, n in enumerate(group)}
            Du = np.linalg.solve(self._whiten[name].T, D)
            param = nn.Parameter(torch.tensor(Du, dtype=module.weight.dtype, device=module.weight.device))
            self._shared[group] = (rank, D, codes, param)
        k, D, codes, param = self._shared[group]
        if k != rank:
            raise ValueError(f"`share`: the layers of group {list(group)} must have one rank (atoms), got {k} and "
                             f"{rank}; pass one integer `rank`")
        return D, codes[name], param


register_compressor("cospadi", CoSpaDiCompressor)
