"""Backend-neutral tensor kernels shared by the decompositions (numpy, or torch on any device).

Every function takes the array namespace ``xp`` (numpy, or array-api-compat's torch wrapper) so the
same code runs on numpy arrays and on CPU/CUDA torch tensors; results stay on the input's backend.
"""

import numbers

import numpy as np

from lowrank._utils.backend import is_torch, namespace
from lowrank._utils.validation import check_int

# ----------------------------------------------------------------------------- input validation


def as_tensor(X, name="tensor", *, min_ndim=2, allow_nan=False):
    """Validate an N-way numpy array or torch tensor; return ``(X, xp)`` with a floating dtype.

    float32 (numpy or torch) is kept, integers/bools go to float64. Complex input, fewer than
    ``min_ndim`` dimensions, empty modes and (unless ``allow_nan``) NaN/inf are rejected.
    """
    if is_torch(X):
        import torch

        if X.is_complex():
            raise TypeError(f"`{name}` must be real; complex input is not supported")
        if not X.is_floating_point():
            X = X.to(torch.float64)
        elif X.dtype not in (torch.float32, torch.float64):
            X = X.to(torch.float32)
        finite = bool(torch.isfinite(X).all())
    else:
        if hasattr(X, "to_tensor") and not isinstance(X, np.ndarray):
            raise TypeError(f"`{name}` must be a dense array, got a factorized tensor; call `.to_tensor()` first")
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise TypeError(f"`{name}` must be real; complex input is not supported")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {X.dtype}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        finite = bool(np.isfinite(X).all())
    if X.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimensions, got {X.ndim}")
    if any(int(s) == 0 for s in X.shape):
        raise ValueError(f"`{name}` must be non-empty, got shape {tuple(X.shape)}")
    if not finite and not allow_nan:
        raise ValueError(f"`{name}` must not contain NaN or infinity (pass `mask=` for missing entries)")
    return X, namespace(X)


def as_mask(mask, X, xp):
    """Validate ``mask`` (True = observed) against ``X``; return ``(X_zero_filled, mask_float)`` or ``(X, None)``.

    Entries of ``X`` outside the mask may be anything (NaN included) and are replaced by 0;
    observed entries must be finite.
    """
    if mask is None:
        if is_torch(X):
            import torch

            ok = bool(torch.isfinite(X).all())
        else:
            ok = bool(np.isfinite(X).all())
        if not ok:
            raise ValueError("`tensor` must not contain NaN or infinity (pass `mask=` for missing entries)")
        return X, None
    if is_torch(X):
        import torch

        m = torch.as_tensor(mask, device=X.device)
        if tuple(m.shape) != tuple(X.shape):
            raise ValueError(f"`mask` must have the tensor's shape {tuple(X.shape)}, got {tuple(m.shape)}")
        m = m.to(torch.bool)
        if not bool(torch.isfinite(X[m]).all()):
            raise ValueError("`tensor` must be finite where `mask` is True")
        if not bool(m.any()):
            raise ValueError("`mask` must mark at least one entry as observed")
        return torch.where(m, X, torch.zeros((), dtype=X.dtype, device=X.device)), m.to(X.dtype)
    m = np.asarray(mask)
    if m.shape != X.shape:
        raise ValueError(f"`mask` must have the tensor's shape {X.shape}, got {m.shape}")
    if m.dtype != bool:
        if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
            raise ValueError("`mask` must be boolean (True = observed) or hold only 0 and 1")
        m = m.astype(bool)
    if not np.isfinite(X[m]).all():
        raise ValueError("`tensor` must be finite where `mask` is True")
    if not m.any():
        raise ValueError("`mask` must mark at least one entry as observed")
    return np.where(m, X, 0).astype(X.dtype, copy=False), m.astype(X.dtype)


def as_ranks(rank, shape, name="rank", *, modes=None):
    """Normalize an int or a sequence of ints to one rank per mode in ``modes`` (capped by nothing)."""
    modes = list(range(len(shape))) if modes is None else list(modes)
    if isinstance(rank, (numbers.Integral, np.integer)) and not isinstance(rank, bool):
        ranks = [int(rank)] * len(modes)
    else:
        try:
            ranks = list(rank)
        except TypeError:
            raise TypeError(f"`{name}` must be an int or a sequence of ints, got {type(rank).__name__}") from None
        if len(ranks) != len(modes):
            raise ValueError(f"`{name}` must give one rank per mode ({len(modes)}), got {len(ranks)}")
    out = []
    for r, m in zip(ranks, modes):
        r = check_int(r, name, low=1)
        if r > shape[m]:
            raise ValueError(f"`{name}` for mode {m} must satisfy `0 < {name} <= {shape[m]}`, got {r}")
        out.append(r)
    return out


def as_modes(modes, ndim):
    if modes is None:
        return list(range(ndim))
    try:
        modes = [check_int(m, "modes", low=-ndim, high=ndim - 1) % ndim for m in modes]
    except TypeError:
        raise TypeError("`modes` must be a sequence of mode indices") from None
    if len(set(modes)) != len(modes) or not modes:
        raise ValueError(f"`modes` must be distinct mode indices, got {modes}")
    return modes


# ----------------------------------------------------------------------------- array helpers


def norm(X, xp):
    """Frobenius norm as a Python float."""
    return float(xp.sqrt(xp.sum(X * X)))


def to_backend(a_np, ref):
    """Move a numpy array to the backend/device/dtype of ``ref``."""
    if is_torch(ref):
        import torch

        return torch.as_tensor(np.ascontiguousarray(a_np), device=ref.device, dtype=ref.dtype)
    return np.asarray(a_np, dtype=ref.dtype)


def mode_dot(X, M, mode, xp, *, transpose=False):
    """``X x_mode M`` (``M`` is (J, I_mode)); with ``transpose`` use ``M.T`` (``M`` is (I_mode, J))."""
    out = xp.tensordot(M, X, axes=([0 if transpose else 1], [mode]))
    return xp.moveaxis(out, 0, mode)


def multi_mode_dot(X, factors, modes, xp, *, transpose=False, skip=None):
    """Apply ``factors[i]`` along ``modes[i]`` (skipping index ``skip``), largest reduction first."""
    order = [i for i in range(len(modes)) if i != skip]
    if transpose:  # contract where the size shrinks most first: cheaper later steps
        order.sort(key=lambda i: factors[i].shape[1] / factors[i].shape[0])
    for i in order:
        X = mode_dot(X, factors[i], modes[i], xp, transpose=transpose)
    return X


def tucker_to_tensor(core, factors, xp):
    return multi_mode_dot(core, factors, list(range(len(factors))), xp)


def khatri_rao(mats, xp):
    """Column-wise Kronecker product, first matrix varying slowest (matches C-order unfolding)."""
    out = mats[0]
    for M in mats[1:]:
        out = xp.reshape(out[:, None, :] * M[None, :, :], (-1, M.shape[1]))
    return out


def cp_to_tensor(weights, factors, xp):
    shape = tuple(int(f.shape[0]) for f in factors)
    A0 = factors[0] * weights[None, :]
    rest = khatri_rao(factors[1:], xp)
    return xp.reshape(A0 @ rest.T, shape)


def mttkrp(X, factors, mode, xp):
    """Matricized tensor times Khatri-Rao product for ``mode``: ``X_(mode) @ KR(other factors)``."""
    ndim = len(factors)
    others = [m for m in range(ndim) if m != mode]
    # contract the largest other mode against its factor first, then fold the rest in with R batched
    last = others[-1]
    Y = xp.tensordot(X, factors[last], axes=([last], [0]))  # shape: modes except `last`, then R
    remaining = [m for m in range(ndim) if m != last]
    for m in reversed(others[:-1]):
        pos = remaining.index(m)
        Y = xp.sum(Y * xp.reshape(factors[m], (1,) * pos + (factors[m].shape[0],) + (1,) * (len(remaining) - pos - 1) + (factors[m].shape[1],)), axis=pos)
        remaining.pop(pos)
    return Y  # (I_mode, R)


def svd_flip_columns(U, xp):
    """Make the largest-magnitude entry of each column positive (deterministic signs)."""
    idx = xp.argmax(xp.abs(U), axis=0)
    cols = xp.arange(U.shape[1], device=U.device) if is_torch(U) else np.arange(U.shape[1])
    signs = xp.sign(U[idx, cols])
    signs = xp.where(signs == 0, xp.ones_like(signs), signs)
    return U * signs[None, :]


# ----------------------------------------------------------------------------- leading singular vectors


def gram(X, mode, xp, *, mask=None):
    """Mode-``mode`` Gram matrix ``X_(n) X_(n)^T``; with ``mask`` the pairwise-available estimate.

    With missing entries, ``G[i, j]`` sums only over fibres observed in both rows and is rescaled
    by (number of fibres) / (number observed in both), an unbiased estimate under missing-at-random.
    """
    others = [m for m in range(X.ndim) if m != mode]
    G = _self_gram(X, mode, xp)
    if mask is not None:
        C = _self_gram(mask, mode, xp)
        n_fibres = float(np.prod([X.shape[m] for m in others]))
        G = G * (n_fibres / xp.where(C > 0, C, xp.ones_like(C)))
    return G


def unfold(X, mode, xp):
    """Mode-``mode`` unfolding ``(I_mode, prod(others))`` (C order; a free reshape for mode 0)."""
    n = int(X.shape[mode])
    if mode == 0:
        return xp.reshape(X, (n, -1))
    return xp.reshape(xp.moveaxis(X, mode, 0), (n, -1))


def _self_gram(X, mode, xp):
    if mode == X.ndim - 1 and not is_torch(X):
        A = np.reshape(X, (-1, X.shape[mode]))  # free reshape; A.T @ A runs as one SYRK
        return A.T @ A
    A = unfold(X, mode, xp)
    if not is_torch(A):
        A = np.ascontiguousarray(A)
    return A @ A.T


def leading_vectors(X, mode, rank, xp, *, method="gram", mask=None, rng=None):
    """Top-``rank`` left singular vectors of the mode-``mode`` unfolding and all squared singular values.

    Returns ``(U, sq)`` with ``U`` (I_mode, rank) and ``sq`` the (descending) squared singular values
    available from the method (all of them for ``"gram"``, ``rank`` of them for ``"randomized"``).
    """
    n = int(X.shape[mode])
    rest = int(np.prod(X.shape)) // n
    if method == "randomized" and mask is None and rank < min(n, rest):
        from lowrank.linalg import randomized_svd

        U, s, _ = randomized_svd(unfold(X, mode, xp), rank, rng=rng)
        return svd_flip_columns(U, xp), s * s
    if n <= rest or mask is not None:
        w, V = xp.linalg.eigh(gram(X, mode, xp, mask=mask))
        w, V = xp.flip(w, axis=0), xp.flip(V, axis=1)
        w = xp.where(w > 0, w, xp.zeros_like(w))
        return svd_flip_columns(V[:, :rank], xp), w
    # more rows than columns: eigendecompose the small Gram on the other side (TensorLy forms the big one)
    Xn = unfold(X, mode, xp)
    w, V = xp.linalg.eigh(Xn.T @ Xn)
    w, V = xp.flip(w, axis=0), xp.flip(V, axis=1)
    w = xp.where(w > 0, w, xp.zeros_like(w))
    k = min(rank, rest)
    s = xp.sqrt(w[:k])
    safe = xp.where(s > 0, s, xp.ones_like(s))
    U = svd_flip_columns((Xn @ V[:, :k]) / safe[None, :], xp)
    if k < rank:  # the unfolding has fewer columns than the rank asked for: pad orthonormally
        U = complete_columns(U, rank, np.random.default_rng(0) if rng is None else rng, xp)
    return U, w


def rank_from_tol(sq, tol_sq):
    """Smallest rank whose discarded squared singular values sum to at most ``tol_sq``."""
    sq = np.asarray(sq, dtype=np.float64)
    tail = np.concatenate([np.cumsum(sq[::-1])[::-1], [0.0]])  # tail[r] = sum_{i >= r} sq[i]
    return max(1, int(np.argmax(tail <= tol_sq)))


def orthonormal_random(n, r, rng, ref):
    """An (n, r) matrix with orthonormal columns from a Gaussian draw, on ``ref``'s backend."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return to_backend(Q, ref)


def complete_columns(U, r, rng, xp):
    """Pad ``U`` (n, k <= r) with random orthonormal columns orthogonal to it."""
    k = U.shape[1]
    if k >= r:
        return U
    n = U.shape[0]
    extra = to_backend(rng.standard_normal((n, r - k)), U)
    extra = extra - U @ (U.T @ extra)
    Q, _ = xp.linalg.qr(extra)
    return xp.concat([U, Q], axis=1)
