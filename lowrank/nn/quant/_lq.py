"""LQ-LoRA's decomposition ``W ~ Q + L1 L2``: alternate a rank-r SVD of ``W - Q`` and ``Q = quant(W - L1 L2)``."""

import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_int
from lowrank.nn.quant._fake import QuantConfig, quantize_config

torch = import_optional("torch", purpose="lowrank.nn")

__all__ = ["LQResult", "lq_decompose"]

# exact SVD up to this smaller side; a randomized SVD above (the rank is small against the matrix)
_EXACT_UP_TO = 512


@dataclasses.dataclass
class LQResult:
    """``W ~ Q + L1 @ L2``; unpacks as ``Q, L1, L2, errors``.

    Attributes
    ----------
    Q : torch.Tensor (m, n)
        The fake-quantized part (at most ``2**bits`` values per group).
    L1 : torch.Tensor (m, r)
    L2 : torch.Tensor (r, n)
    errors : list of float
        The (Fisher-weighted) Frobenius error ``||W - Q - L1 L2||`` after each accepted step;
        ``errors[0]`` is plain quantization (``L = 0``), strictly decreasing after that.
    """

    Q: object
    L1: object
    L2: object
    errors: list

    def __iter__(self):
        return iter((self.Q, self.L1, self.L2, self.errors))


def _low_rank(R, rank, fisher, method, rng):
    if fisher is not None:
        from lowrank.linalg import weighted_svd

        # LQ-LoRA approximates the Fisher matrix by a rank-1 (row x column) product, for which the
        # weighted low-rank problem has an exact SVD solution
        F = fisher.numpy()
        rows, cols = F.sum(1), F.sum(0) / max(F.sum(), 1e-300)
        tiny = 1e-12 * max(rows.max(), 1e-300), 1e-12 * max(cols.max(), 1e-300)
        U, s, Vh = weighted_svd(R.numpy(), rank, row_weights=np.maximum(rows, tiny[0]),
                                col_weights=np.maximum(cols, tiny[1]))
        return torch.from_numpy(U * s), torch.from_numpy(Vh)
    if method == "exact" or (method == "auto" and min(R.shape) <= _EXACT_UP_TO):
        U, s, Vh = torch.linalg.svd(R, full_matrices=False)
        return U[:, :rank] * s[:rank], Vh[:rank]
    from lowrank.linalg import randomized_svd

    U, s, Vh = randomized_svd(R, rank, rng=rng)
    return U * s, Vh


def _error(E, fisher):
    return float(torch.sqrt((E * E).sum() if fisher is None else (fisher * E * E).sum()))


def _lq_body(W, rank, config, n_iter, fisher, svd, rng):
    Q = quantize_config(W, config)
    L1 = torch.zeros(W.shape[0], rank, dtype=W.dtype)
    L2 = torch.zeros(rank, W.shape[1], dtype=W.dtype)
    errors = [_error(W - Q, fisher)]
    for _ in range(n_iter):
        A, B = _low_rank(W - Q, rank, fisher, svd, rng)
        Q_new = quantize_config(W - A @ B, config)
        err = _error(W - Q_new - A @ B, fisher)
        # the SVD step alone never raises the error, the re-quantization can (its scales move):
        # keep the last state whose error still went down, as LQ-LoRA stops when it stops improving
        if not err < errors[-1]:
            err_svd = _error(W - Q - A @ B, fisher)
            if err_svd < errors[-1]:
                L1, L2 = A, B
                errors.append(err_svd)
            break
        Q, L1, L2 = Q_new, A, B
        errors.append(err)
    return LQResult(Q, L1, L2, errors)


def lq_decompose(weight, rank, bits=4, group_size=64, kind="nf", *, n_iter=20, fisher=None, svd="auto", rng=None):
    """Low-rank plus quantized decomposition ``W ~ Q + L1 L2`` (LQ-LoRA).

    Starting from ``Q = quant(W)``, ``L = 0``, alternate ``L1 L2 = SVD_r(W - Q)`` and
    ``Q = quant(W - L1 L2)`` while the error keeps decreasing (at most ``n_iter`` rounds).

    Parameters
    ----------
    weight : torch.Tensor of shape (m, n)
        Computed in float64 on the CPU; the results are float64.
    rank : int
        ``0 < rank <= min(m, n)``.
    bits, group_size, kind
        The quantization (see :func:`lowrank.nn.quant.quantize`); defaults 4, 64, "nf".
    n_iter : int, default=20
        Most alternation rounds.
    fisher : torch.Tensor of shape (m, n), optional
        Non-negative diagonal Fisher estimate (mean squared gradients). The error becomes
        ``sum F (W - Q - L)^2`` and the SVD step the exact weighted SVD under the rank-1
        approximation ``F ~ r c^T`` (:func:`lowrank.linalg.weighted_svd`), as LQ-LoRA's data-aware variant.
    svd : {"auto", "exact", "randomized"}, default="auto"
        Exact SVD up to a smaller side of 512, :func:`lowrank.linalg.randomized_svd` above.
    rng : None, int or numpy.random.Generator
        For the randomized SVD.

    Returns
    -------
    LQResult
        ``Q, L1, L2, errors``.

    Raises
    ------
    TypeError, ValueError
        A non-matrix or non-finite weight, a bad rank or quantization option, a ``fisher`` of the
        wrong shape or with negative / non-finite entries.

    References
    ----------
    Guo, Greengard, Xing & Kim, "LQ-LoRA: Low-rank Plus Quantized Matrix Decomposition for Efficient
    Language Model Finetuning", ICLR 2024, arXiv:2311.12023.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> W = torch.randn(32, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 48, generator=g, dtype=torch.float64)
    >>> Q, L1, L2, errors = lq_decompose(W, rank=4, bits=3, group_size=16)
    >>> bool(errors[-1] < errors[0])  # below plain 3-bit quantization
    True
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or not weight.is_floating_point():
        raise TypeError("`weight` must be a 2-D floating-point torch.Tensor")
    W = weight.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(W).all():
        raise ValueError("`weight` must be finite (it holds NaN or inf)")
    rank = check_int(rank, "rank", low=1, high=min(W.shape))
    config = QuantConfig.make(bits, group_size, kind)
    n_iter = check_int(n_iter, "n_iter", low=0)
    check_choice(svd, "svd", ("auto", "exact", "randomized"))
    if fisher is not None:
        if not isinstance(fisher, torch.Tensor) or tuple(fisher.shape) != tuple(W.shape):
            raise ValueError(f"`fisher` must be a torch.Tensor of the weight's shape {tuple(W.shape)}")
        fisher = fisher.detach().to(device="cpu", dtype=torch.float64)
        if not torch.isfinite(fisher).all() or (fisher < 0).any():
            raise ValueError("`fisher` must be finite and non-negative")
    return _lq_body(W, rank, config, n_iter, fisher, svd, rng)
