"""Disentanglement scores against known factors of variation: MIG and DCI.

Both compare a set of codes (one column per latent or discovered direction) with ground-truth
factors (one integer column per factor), as disentanglement_lib (Locatello et al., ICML 2019,
arXiv:1811.12359) does: codes are discretized into equal-width histogram bins for mutual
information; DCI reads an importance matrix off one tree ensemble per factor.
"""

import math
from typing import NamedTuple

import numpy as np

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int

__all__ = ["mutual_information_matrix", "mig", "dci", "dci_from_importance", "traversal_importance", "DCIResult"]


def _iv_codes_factors(codes, factors):
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] == 0:
        raise ValueError(f"`codes` must be a 2-D array (n_samples >= 2, n_codes >= 1), got shape {codes.shape}")
    if np.iscomplexobj(codes) or codes.dtype.kind not in "biuf":
        raise TypeError(f"`codes` must hold real numbers, got dtype {codes.dtype}")
    codes = codes.astype(np.float64)
    if not np.isfinite(codes).all():
        raise ValueError("`codes` must not contain NaN or infinity")
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2 or factors.shape[0] != codes.shape[0] or factors.shape[1] == 0:
        raise ValueError(f"`factors` must be a 2-D array with {codes.shape[0]} rows (one per code row), got shape {factors.shape}")
    if factors.dtype.kind not in "biu":
        if factors.dtype.kind != "f" or not np.isfinite(factors).all() or not np.all(factors == np.round(factors)):
            raise TypeError("`factors` must hold integer (discrete) factor values")
        factors = factors.astype(np.int64)
    return codes, factors


def _discretize(codes, n_bins):
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins=n_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])  # as disentanglement_lib's histogram discretizer
    return out


def _entropy_discrete(x):
    _, counts = np.unique(x, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mutual_information(x, y):
    """Mutual information (nats) of two discrete 1-D label arrays from their joint histogram."""
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    nx, ny = xi.max() + 1, yi.max() + 1
    joint = np.bincount(xi * ny + yi, minlength=nx * ny).reshape(nx, ny) / len(x)
    px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (px @ py)[nz])).sum())


def mutual_information_matrix(codes, factors, *, n_bins=20):
    """Mutual information ``I(c_i; v_j)`` (nats) between discretized codes and discrete factors.

    Parameters
    ----------
    codes : array-like, shape (n_samples, n_codes)
        Continuous codes; each column is cut into ``n_bins`` equal-width bins.
    factors : array-like of int, shape (n_samples, n_factors) or (n_samples,)
        Ground-truth factor values.
    n_bins : int, default=20
        Histogram bins per code (``>= 2``).

    Returns
    -------
    ndarray, shape (n_codes, n_factors)

    Raises
    ------
    TypeError, ValueError
        On non-numeric, non-finite or mismatched inputs, or non-integer factors.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([0, 0, 1, 1])
    >>> mutual_information_matrix(v[:, None].astype(float), v, n_bins=2).round(4)
    array([[0.6931]])
    """
    codes, factors = _iv_codes_factors(codes, factors)
    n_bins = check_int(n_bins, "n_bins", low=2)
    binned = _discretize(codes, n_bins)
    return np.array([[_mutual_information(binned[:, i], factors[:, j]) for j in range(factors.shape[1])]
                     for i in range(binned.shape[1])])


def mig(codes, factors, *, n_bins=20):
    r"""Mutual Information Gap: mean over factors of the normalized gap between the two most informative codes.

    ``MIG = (1/K) sum_k (I(c_{j_1}; v_k) - I(c_{j_2}; v_k)) / H(v_k)``, where ``j_1``, ``j_2`` are the
    codes with the largest and second-largest mutual information with factor ``v_k``. 1 means each
    factor is captured by one code alone; 0 means no code stands out. Factors that take a single
    value (``H = 0``) are skipped.

    Parameters
    ----------
    codes : array-like, shape (n_samples, n_codes)
        Continuous codes (``n_codes >= 2``).
    factors : array-like of int, shape (n_samples, n_factors) or (n_samples,)
        Ground-truth factor values.
    n_bins : int, default=20
        Histogram bins per code.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        If fewer than two codes are given, no factor varies, or inputs are malformed.

    References
    ----------
    .. [1] R. T. Q. Chen, X. Li, R. Grosse and D. Duvenaud, "Isolating Sources of Disentanglement
       in Variational Autoencoders", NeurIPS 2018, arXiv:1802.04942.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.repeat(np.arange(4), 24)
    >>> codes = np.stack([v + 0.1, np.tile(np.arange(4.0), 24)], axis=1)  # code 0 = factor, code 1 independent
    >>> round(mig(codes, v), 6)
    1.0
    """
    codes, factors = _iv_codes_factors(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("`codes` must have at least 2 columns for a gap between the two best codes")
    mi = mutual_information_matrix(codes, factors, n_bins=n_bins)
    gaps = []
    for j in range(factors.shape[1]):
        h = _entropy_discrete(factors[:, j])
        if h <= 0:
            continue
        top = np.sort(mi[:, j])[::-1]
        gaps.append((top[0] - top[1]) / h)
    if not gaps:
        raise ValueError("no factor in `factors` takes more than one value")
    return float(np.mean(gaps))


class DCIResult(NamedTuple):
    """Disentanglement, completeness, informativeness and the importance matrix behind them."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray


def _entropy_columns(P, base):
    """Entropy (log base ``base``) of each column of a column-stochastic ``P``."""
    P = np.asarray(P, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, P * np.log(P), 0.0)
    return -terms.sum(axis=0) / math.log(base)


def dci_from_importance(importance, informativeness=float("nan")):
    r"""Disentanglement and completeness of an importance matrix ``R`` (codes x factors), Eastwood & Williams.

    ``D = sum_i rho_i (1 - H_K(P_i.))`` with ``P_ij = R_ij / sum_k R_ik`` and
    ``rho_i = sum_j R_ij / sum R``; ``C = sum_j rho'_j (1 - H_L(P'_.j))`` with
    ``P'_ij = R_ij / sum_l R_lj`` and ``rho'_j = sum_i R_ij / sum R`` (entropies in base ``K`` =
    number of factors and ``L`` = number of codes; ``0 log 0 = 0``; a zero row or column counts as
    uniform). A single factor gives ``D = 1`` by convention, a single code ``C = 1``.

    Parameters
    ----------
    importance : array-like, shape (n_codes, n_factors)
        Non-negative importances of each code for predicting each factor.
    informativeness : float, default=nan
        Passed through to the result.

    Returns
    -------
    DCIResult

    Raises
    ------
    ValueError
        If ``importance`` is not a non-negative, finite, non-empty 2-D array.

    References
    ----------
    .. [1] C. Eastwood and C. K. I. Williams, "A Framework for the Quantitative Evaluation of
       Disentangled Representations", ICLR 2018.

    Examples
    --------
    >>> d, c, _, _ = dci_from_importance([[1.0, 0.0], [0.0, 1.0]])
    >>> (d, c)
    (1.0, 1.0)
    """
    R = np.asarray(importance, dtype=np.float64)
    if R.ndim != 2 or R.size == 0 or not np.isfinite(R).all() or (R < 0).any():
        raise ValueError("`importance` must be a non-empty 2-D array of finite, non-negative numbers")
    n_codes, n_factors = R.shape
    if R.sum() == 0:
        R = np.ones_like(R)

    def stochastic(M):  # columns sum to 1; a zero column becomes uniform
        s = M.sum(axis=0, keepdims=True)
        return np.where(s > 0, M / np.where(s > 0, s, 1.0), 1.0 / M.shape[0])

    per_code = 1.0 - _entropy_columns(stochastic(R.T), n_factors) if n_factors > 1 else np.ones(n_codes)
    per_factor = 1.0 - _entropy_columns(stochastic(R), n_codes) if n_codes > 1 else np.ones(n_factors)
    disentanglement = float((per_code * R.sum(axis=1) / R.sum()).sum())
    completeness = float((per_factor * R.sum(axis=0) / R.sum()).sum())
    return DCIResult(disentanglement, completeness, float(informativeness), np.asarray(importance, dtype=np.float64))


def dci(codes, factors, *, model="random_forest", test_size=0.3, rng=None):
    """DCI scores: one classifier per factor on the codes; importances give D and C, test accuracy gives I.

    Parameters
    ----------
    codes : array-like, shape (n_samples, n_codes)
    factors : array-like of int, shape (n_samples, n_factors) or (n_samples,)
    model : {"random_forest", "gradient_boosting", "lasso"}, default="random_forest"
        ``"gradient_boosting"`` is disentanglement_lib's choice (slow); ``"random_forest"`` uses
        the impurity importances of 50 bagged trees (all features tried at each split, at least
        5 samples per leaf), as sparse as gradient boosting's and about 10 times faster; ``"lasso"`` an L1 logistic regression on
        standardized codes with importance ``|coef|`` summed over classes.
    test_size : float, default=0.3
        Held-out fraction for the informativeness (mean test accuracy over factors), in (0, 1).
    rng : None, int or numpy.random.Generator, default=None
        Seeds the split and the models.

    Returns
    -------
    DCIResult
        ``(disentanglement, completeness, informativeness, importance)`` with ``importance`` of
        shape (n_codes, n_factors), each factor's column normalized to sum to 1.

    Raises
    ------
    TypeError, ValueError
        On malformed inputs or options.

    References
    ----------
    .. [1] C. Eastwood and C. K. I. Williams, "A Framework for the Quantitative Evaluation of
       Disentangled Representations", ICLR 2018.
    .. [2] F. Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
       Disentangled Representations", ICML 2019, arXiv:1811.12359.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> v = rng.integers(0, 3, size=(300, 2))
    >>> codes = v + 0.05 * rng.standard_normal((300, 2))
    >>> res = dci(codes, v, rng=0)
    >>> bool(res.disentanglement > 0.9 and res.informativeness > 0.95)
    True
    """
    codes, factors = _iv_codes_factors(codes, factors)
    check_choice(model, "model", ("random_forest", "gradient_boosting", "lasso"))
    test_size = check_float(test_size, "test_size", low=0, high=1, low_inclusive=False, high_inclusive=False)
    seed = int(as_generator(rng).integers(0, 2**31 - 1))
    from sklearn.model_selection import train_test_split

    idx_train, idx_test = train_test_split(np.arange(codes.shape[0]), test_size=test_size, random_state=seed)
    mean, std = codes[idx_train].mean(0), codes[idx_train].std(0)
    X = (codes - mean) / np.where(std > 0, std, 1.0)
    R = np.zeros((codes.shape[1], factors.shape[1]))
    accuracy = []
    for j in range(factors.shape[1]):
        y = factors[:, j]
        if np.unique(y[idx_train]).size < 2:
            accuracy.append(float(np.mean(y[idx_test] == y[idx_train][0])))
            continue
        clf, importance = _fit_importance(model, X[idx_train], y[idx_train], seed)
        R[:, j] = importance / importance.sum() if importance.sum() > 0 else importance
        accuracy.append(float(clf.score(X[idx_test], y[idx_test])))
    d, c, _, _ = dci_from_importance(R)
    return DCIResult(d, c, float(np.mean(accuracy)), R)


def _fit_importance(model, X, y, seed):
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        clf = RandomForestClassifier(n_estimators=50, max_features=None, min_samples_leaf=5, random_state=seed).fit(X, y)
        return clf, clf.feature_importances_
    if model == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        clf = GradientBoostingClassifier(random_state=seed).fit(X, y)
        return clf, clf.feature_importances_
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(l1_ratio=1.0, solver="saga", C=1.0, max_iter=500, random_state=seed).fit(X, y)
    return clf, np.abs(clf.coef_).sum(axis=0)


def traversal_importance(labels, *, reference_step=None):
    """Importance of each direction for each factor from traversals: how often a step changes the factor.

    ``labels[j, b, t, f]`` is the value of factor ``f`` (e.g. predicted by a fixed classifier) in the
    image obtained from base point ``b`` moved by step ``t`` along direction ``j``. The importance
    of direction ``j`` for factor ``f`` is the fraction of (base point, step) pairs, the reference
    step excluded, whose label differs from the label at the reference step (the unedited image).
    The result feeds :func:`dci_from_importance` (rows: directions, columns: factors).

    Parameters
    ----------
    labels : array-like of int, shape (n_directions, n_base, n_steps, n_factors)
        Factor values along each traversal (``n_steps >= 2``).
    reference_step : int, optional
        Index of the unedited step; default ``n_steps // 2`` (the middle of a symmetric traversal).

    Returns
    -------
    ndarray, shape (n_directions, n_factors)
        Flip fractions in ``[0, 1]``.

    Raises
    ------
    TypeError
        If ``labels`` does not hold integers.
    ValueError
        If ``labels`` is not 4-D with at least two steps, or ``reference_step`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((2, 1, 3, 2), dtype=int)
    >>> lab[0, 0, 2, 0] = 1  # direction 0 changes factor 0 at the last step
    >>> traversal_importance(lab)
    array([[0.5, 0. ],
           [0. , 0. ]])
    """
    L = np.asarray(labels)
    if L.dtype.kind not in "biu":
        raise TypeError(f"`labels` must hold integers, got dtype {L.dtype}")
    if L.ndim != 4 or min(L.shape) == 0 or L.shape[2] < 2:
        raise ValueError(f"`labels` must have shape (n_directions, n_base, n_steps >= 2, n_factors), got {L.shape}")
    n_steps = L.shape[2]
    ref = n_steps // 2 if reference_step is None else check_int(reference_step, "reference_step", low=0, high=n_steps - 1)
    changed = L != L[:, :, ref : ref + 1, :]
    return changed.sum(axis=(1, 2)) / (L.shape[1] * (n_steps - 1))
