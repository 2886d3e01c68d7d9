"""Body of CP-ALS: compression, SVD/GEVD/random initializations, line search, EM for missing entries."""

import math

import numpy as np

from lowrank._utils.backend import is_torch, to_numpy
from lowrank.tensors._tensor_ops import (
    cp_to_tensor,
    leading_vectors,
    mttkrp,
    norm,
    svd_flip_columns,
    to_backend,
)
from lowrank.tensors._tucker import st_hosvd_body


def _hadamard_grams(grams, skip, xp):
    out = None
    for m, G in enumerate(grams):
        if m != skip:
            out = G if out is None else out * G
    return out


def _solve_sym(V, B, xp):
    """Solve ``A V = B`` for ``A`` (V symmetric PSD), with a tiny ridge against exact singularity.

    The ridge is relative to the trace and never below a few float ulps of the working dtype: a
    1e-12 ridge vanishes in float32, where a collapsed factor then made ``V`` exactly singular. A
    Gram that is still singular falls back to the pseudo-inverse (the least-squares solution).
    """
    R = V.shape[0]
    single = not str(V.dtype).endswith("float64")  # numpy "float32", torch "torch.float32", bfloat16, ...
    eps = float(np.finfo(np.float32 if single else np.float64).eps)
    trace = float(xp.sum(xp.linalg.diagonal(V)) if is_torch(V) else np.trace(V))
    ridge = max(1e-12, 10 * eps) * trace / R + 1e-300
    eye = xp.eye(R, dtype=V.dtype, device=V.device) if is_torch(V) else np.eye(R, dtype=V.dtype)
    try:
        return xp.linalg.solve(V + ridge * eye, B.T).T
    except (np.linalg.LinAlgError, RuntimeError):  # torch raises its LinAlgError, a RuntimeError
        return (xp.linalg.pinv(V + ridge * eye) @ B.T).T


def _fit_error(X, factors, grams, norm_x2, xp, M=None):
    """Relative error of the CP model; the fast Gram formula when nothing is missing."""
    if M is not None:
        recon = cp_to_tensor(_ones(factors[0], xp), factors, xp)
        return norm(M * (X - recon), xp) / math.sqrt(norm_x2)
    K = len(factors)
    inner = float(xp.sum(mttkrp(X, factors, K - 1, xp) * factors[K - 1]))
    model2 = float(xp.sum(_hadamard_grams(grams, None, xp)))
    return math.sqrt(max(norm_x2 - 2 * inner + model2, 0.0) / norm_x2)


def _ones(ref, xp):
    return xp.ones(ref.shape[1], dtype=ref.dtype, device=ref.device) if is_torch(ref) else np.ones(ref.shape[1], dtype=ref.dtype)


def sparsify(R, count, xp):
    """Keep the ``count`` largest-magnitude entries of ``R`` (zeros elsewhere)."""
    flat = xp.reshape(R, (-1,))
    if count <= 0:
        return R * 0
    if is_torch(R):
        idx = xp.abs(flat).topk(count).indices
        out = flat * 0
        out[idx] = flat[idx]
    else:
        idx = np.argpartition(np.abs(flat), flat.size - count)[flat.size - count :]
        out = np.zeros_like(flat)
        out[idx] = flat[idx]
    return xp.reshape(out, R.shape)


def _orthonormal_columns(F, xp):
    return xp.linalg.qr(F)[0] if F.shape[0] >= F.shape[1] else F


def als(X, factors, n_iter_max, tol, line_search, xp, M=None, *, fixed_modes=(), orthogonalise=0, sparsity=0, callback=None):
    """Alternating least squares from ``factors``; returns ``(factors, errors, sparse_component)``.

    Stops when the relative error changes by less than ``tol`` (relative to the error itself), or
    when ``callback(iteration, rel_error, factors)`` returns True. With ``M`` (observed = 1) each
    sweep first imputes the missing entries from the current model (EM). Line search extrapolates
    along the last sweep's step (Bro, 1998) with growing steps ``it**(1/p)``. Modes in
    ``fixed_modes`` are not updated; during the first ``orthogonalise`` sweeps the factors are
    replaced by orthonormal bases of their columns first (as TensorLy's ``orthogonalise``). With
    ``sparsity > 0`` the model is ``CP + S`` with ``S`` the ``sparsity`` largest entries of the
    residual, refitted every sweep (ALS on ``X - S``). ``n_iter_max = 0`` only measures the start.
    """
    K = len(factors)
    factors = list(factors)
    grams = [A.T @ A for A in factors]
    norm_x2 = norm(X, xp) ** 2 or 1.0  # a zero tensor: absolute errors
    errors = []
    acc_pow, acc_fail = 2.0, 0
    S = None
    free = [n for n in range(K) if n not in fixed_modes]
    if n_iter_max == 0:
        return factors, [_fit_error(X, factors, grams, norm_x2, xp, M)], S
    for it in range(1, n_iter_max + 1):
        if orthogonalise and it <= orthogonalise:
            factors = [F if n in fixed_modes else _orthonormal_columns(F, xp) for n, F in enumerate(factors)]
            grams = [A.T @ A for A in factors]
        prev = list(factors)
        if M is not None:
            Xf = X + (1 - M) * cp_to_tensor(_ones(factors[0], xp), factors, xp)
        elif S is not None:
            Xf = X - S
        else:
            Xf = X
        for n in free:
            V = _hadamard_grams(grams, n, xp)
            factors[n] = _solve_sym(V, mttkrp(Xf, factors, n, xp), xp)
            grams[n] = factors[n].T @ factors[n]
        if sparsity:
            R = X - cp_to_tensor(_ones(factors[0], xp), factors, xp)
            S = sparsify(R, sparsity, xp)
            err = norm(R - S, xp) / math.sqrt(norm_x2)
        else:
            err = _fit_error(X, factors, grams, norm_x2, xp, M)
        if line_search and M is None and not sparsity and it > 2:
            jump = it ** (1.0 / acc_pow)
            trial = [P + jump * (F - P) if n not in fixed_modes else F for n, (P, F) in enumerate(zip(prev, factors))]
            trial_grams = [A.T @ A for A in trial]
            trial_err = _fit_error(X, trial, trial_grams, norm_x2, xp)
            if trial_err < err:
                factors, grams, err = trial, trial_grams, trial_err
                acc_fail = 0
            else:
                acc_fail += 1
                if acc_fail == 4:
                    acc_pow += 1.0
                    acc_fail = 0
        errors.append(err)
        if callback is not None and callback(it - 1, err, factors):
            break
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= tol * max(errors[-2], 1e-300):
            break
    return factors, errors, S


def svd_init(X, rank, rng, xp, M=None):
    """Leading left singular vectors per mode (masked Gram when ``M``), random columns where short."""
    factors = []
    for n in range(X.ndim):
        k = min(rank, int(X.shape[n]))
        U, _ = leading_vectors(X, n, k, xp, mask=M)
        if k < rank:
            U = xp.concat([U, to_backend(rng.standard_normal((int(X.shape[n]), rank - k)) / math.sqrt(X.shape[n]), X)], axis=1)
        factors.append(U)
    return factors


def random_init(shape, rank, rng, ref):
    return [to_backend(rng.standard_normal((int(n), rank)), ref) for n in shape]


def gevd_init(G, rank, rng):
    """Generalized-eigenvalue initialization of a third-order (numpy) tensor with ``rank <= G.shape[0], G.shape[1]``.

    Two random slice combinations ``S_k = A diag(C^T w_k) B^T``; the eigenvectors of ``S_1 S_2^+`` give ``A``
    exactly when the tensor has an exact rank-``rank`` CP (Sanchez & Kowalski, 1990; Leurgans et al., 1993).
    """
    I, J, _ = G.shape
    w1, w2 = rng.standard_normal(G.shape[2]), rng.standard_normal(G.shape[2])
    S1, S2 = G @ w1, G @ w2
    vals, vecs = np.linalg.eig(S1 @ np.linalg.pinv(S2))
    order = np.argsort(-np.abs(vals))[:rank]
    A = np.real(vecs[:, order])
    B = (np.linalg.pinv(A) @ S2).T  # = B diag(C^T w2) up to scaling of columns
    C = np.linalg.lstsq(
        np.einsum("ir,jr->ijr", A, B).reshape(I * J, rank), G.reshape(I * J, -1), rcond=None
    )[0].T
    return [A, B, C]


def cp_body(X, rank, init, n_restarts, compress, line_search, n_iter_max, tol, M, rng, xp, *, options=None):
    """Returns ``(weights, factors, errors, sparse_component)``.

    ``options`` (a dict of :func:`als` keywords: fixed_modes, orthogonalise, sparsity, callback, plus
    normalize_factors) applies to the sweeps on the full tensor.
    """
    options = dict(options or {})
    normalize_factors = options.pop("normalize_factors", True)
    K = X.ndim
    shape = [int(s) for s in X.shape]
    use_compression = (
        compress
        and M is None
        and n_iter_max > 0
        and not options.get("sparsity")  # the compressed core of an outlier-corrupted tensor is corrupted too
        and not isinstance(init, (list, tuple))
        and all(rank < s for s in shape)
        and math.prod(shape) > 8 * rank**K
    )
    if use_compression:
        core, U = st_hosvd_body(X, [rank] * K, None, "gram", rng, xp)
        core_np = to_numpy(core).astype(np.float64)
        candidates = _candidate_inits(core_np, rank, init, n_restarts, rng, np)
        best = None
        for start in candidates:
            f, errs, _ = als(core_np, start, max(n_iter_max, 500), min(tol, 1e-10), True, np)
            if best is None or errs[-1] < best[1][-1]:
                best = (f, errs)
        factors = [Un @ to_backend(F, Un) for Un, F in zip(U, best[0])]
        factors, errors, S = als(X, factors, n_iter_max, tol, line_search, xp, **options)
    else:
        candidates = _candidate_inits(X, rank, init, n_restarts, rng, xp, M=M)
        best = None
        for start in candidates:
            start = [to_backend(to_numpy(F), X) if not _same_backend(F, X) else F for F in start]
            f, errs, S = als(X, start, n_iter_max, tol, line_search, xp, M=M, **options)
            if best is None or errs[-1] < best[1][-1]:
                best = (f, errs, S)
        factors, errors, S = best
    weights, factors = _normalize(factors, xp)
    if not normalize_factors:
        # TensorLy's normalize_factors=False: unit weights; the scale is shared evenly by the factors.
        share = weights ** (1.0 / K)
        factors = [F * share[None, :] for F in factors]
        weights = xp.ones_like(weights)
    return weights, factors, errors, S


def _same_backend(F, X):
    return is_torch(F) == is_torch(X) and (not is_torch(X) or F.device == X.device)


def _candidate_inits(X, rank, init, n_restarts, rng, xp, M=None):
    shape = [int(s) for s in X.shape]
    if isinstance(init, (list, tuple)):
        cands = [list(init)]
    elif init == "random":
        cands = [random_init(shape, rank, rng, X)]
    else:
        cands = [svd_init(X, rank, rng, xp, M=M)]
        if X.ndim == 3 and rank <= min(shape[0], shape[1]) and M is None:
            try:
                cands.append([to_backend(F, X) for F in gevd_init(to_numpy(X).astype(np.float64), rank, rng)])
            except np.linalg.LinAlgError:
                pass
    cands += [random_init(shape, rank, rng, X) for _ in range(n_restarts)]
    return cands


def _normalize(factors, xp):
    """Unit-norm columns with positive largest entries (the last factor absorbs signs), weights descending."""
    K = len(factors)
    norms = [xp.sqrt(xp.sum(F * F, axis=0)) for F in factors]
    weights = norms[0]
    for nrm in norms[1:]:
        weights = weights * nrm
    out = []
    for n, (F, nrm) in enumerate(zip(factors, norms)):
        safe = xp.where(nrm > 0, nrm, xp.ones_like(nrm))
        F = F / safe[None, :]
        out.append(F)
    signs = None
    for n in range(K - 1):
        flipped = svd_flip_columns(out[n], xp)
        s = xp.sign(xp.sum(flipped * out[n], axis=0))
        out[n] = flipped
        signs = s if signs is None else signs * s
    out[K - 1] = out[K - 1] * signs[None, :]
    order = xp.argsort(-weights) if not is_torch(weights) else xp.argsort(weights, descending=True)
    return weights[order], [F[:, order] for F in out]
