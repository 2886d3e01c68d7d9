"""The standard node-classification protocol for node embeddings (DeepWalk, node2vec, FastRP papers)."""

import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_choice, check_float, check_int

__all__ = ["evaluate_node_classification", "NodeClassificationScores"]


class NodeClassificationScores(NamedTuple):
    """Micro- and macro-averaged F1 (means over the repeats) and the per-repeat values."""

    micro_f1: float
    macro_f1: float
    micro_f1_runs: np.ndarray
    macro_f1_runs: np.ndarray


def evaluate_node_classification(
    embedding, labels, *, train_ratio=0.5, C=1.0, n_repeats=5, standardize=True, solver="liblinear", max_iter=1000,
    rng=None,
):
    """Score an embedding by one-vs-rest logistic regression on a random fraction of labelled vertices.

    The protocol of DeepWalk, node2vec and FastRP: split the vertices at random, train one L2
    logistic regression per label on ``train_ratio`` of them (features standardized on the
    training part), and predict the others. Multi-label data (``labels`` 2-D) predicts, for
    each test vertex, its ``k`` most probable labels where ``k`` is its true number of labels;
    multi-class data (``labels`` 1-D) predicts the most probable class. Micro- and macro-F1 are
    averaged over ``n_repeats`` random splits.

    Parameters
    ----------
    embedding : array_like of shape (n_nodes, n_dims)
        One row per vertex; finite.
    labels : array_like of shape (n_nodes,) or (n_nodes, n_labels)
        Class of each vertex (1-D), or a 0/1 (dense or sparse) label-indicator matrix (2-D).
    train_ratio : float, default=0.5
        Fraction of vertices used for training, in (0, 1).
    C : float, default=1.0
        Inverse L2 regularization strength of the logistic regressions, ``> 0``.
    n_repeats : int, default=5
        Number of random splits averaged.
    standardize : bool, default=True
        Scale features to zero mean and unit variance (statistics from the training vertices).
    solver : str, default="liblinear"
        scikit-learn ``LogisticRegression`` solver; "liblinear" (the solver of the original
        DeepWalk scoring script) is also several times faster than "lbfgs" here.
    max_iter : int, default=1000
        Iteration limit of each logistic regression.
    rng : None, int or numpy.random.Generator, optional
        Randomness of the splits.

    Returns
    -------
    NodeClassificationScores
        ``(micro_f1, macro_f1, micro_f1_runs, macro_f1_runs)``; unpacks like a tuple.

    Raises
    ------
    ValueError
        Shapes that disagree, non-finite embeddings, fewer than two classes, a split that leaves
        no training or test vertex, out-of-range parameters.
    TypeError
        Non-numeric input.

    References
    ----------
    .. [1] B. Perozzi, R. Al-Rfou, S. Skiena, "DeepWalk: Online Learning of Social
       Representations", KDD 2014, arXiv:1403.6652.
    .. [2] H. Chen et al., "Fast and Accurate Network Embeddings via Very Sparse Random
       Projection", CIKM 2019, arXiv:1908.11512.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> X = rng.standard_normal((100, 4)) + 3 * labels[:, None]
    >>> scores = evaluate_node_classification(X, labels, train_ratio=0.5, rng=0)
    >>> scores.micro_f1 > 0.95
    True
    """
    X, Y, multilabel, train_ratio, C, n_repeats, standardize, solver, max_iter, gen = _iv(
        embedding, labels, train_ratio, C, n_repeats, standardize, solver, max_iter, rng
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    n = X.shape[0]
    n_train = int(round(train_ratio * n))
    if not 0 < n_train < n:
        raise ValueError(f"`train_ratio`={train_ratio} leaves no training or no test vertex out of {n}")
    micro, macro = np.empty(n_repeats), np.empty(n_repeats)
    for r in range(n_repeats):
        perm = gen.permutation(n)
        train, test = perm[:n_train], perm[n_train:]
        X_train, X_test = X[train], X[test]
        if standardize:
            scaler = StandardScaler().fit(X_train)
            X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        clf = OneVsRestClassifier(LogisticRegression(C=C, solver=solver, max_iter=max_iter))
        with warnings.catch_warnings():
            # a label absent from a small training split: sklearn predicts it never, and says so
            warnings.simplefilter("ignore", UserWarning)
            clf.fit(X_train, Y[train])
            proba = clf.predict_proba(X_test)
        if multilabel:
            Y_test = Y[test]
            k = Y_test.sum(axis=1)
            order = np.argsort(-proba, axis=1, kind="stable")
            pred = np.zeros_like(Y_test)
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :], axis=1)
            pred[ranks < k[:, None]] = 1
            y_true, y_pred = Y_test, pred
        else:
            y_true, y_pred = Y[test], clf.classes_[np.argmax(proba, axis=1)]
        micro[r] = f1_score(y_true, y_pred, average="micro", zero_division=0)
        macro[r] = f1_score(y_true, y_pred, average="macro", zero_division=0)
    return NodeClassificationScores(float(micro.mean()), float(macro.mean()), micro, macro)


def _iv(embedding, labels, train_ratio, C, n_repeats, standardize, solver, max_iter, rng):
    if sp.issparse(embedding):
        embedding = embedding.toarray()
    X = np.asarray(embedding)
    if X.ndim != 2:
        raise ValueError(f"`embedding` must be 2-dimensional (n_nodes, n_dims), got {X.ndim} dimension(s)")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"`embedding` must hold real numbers, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ValueError("`embedding` must not contain NaN or infinity")
    if sp.issparse(labels):
        Y = labels.toarray()
    else:
        Y = np.asarray(labels)
    if Y.ndim not in (1, 2) or Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"`labels` must have shape (n_nodes,) or (n_nodes, n_labels) with n_nodes={X.shape[0]}, got {Y.shape}"
        )
    multilabel = Y.ndim == 2
    if multilabel:
        if Y.dtype.kind not in "biuf" or not np.isin(Y, (0, 1)).all():
            raise ValueError("2-D `labels` must be a 0/1 indicator matrix")
        Y = Y.astype(np.int64)
        if Y.shape[1] < 2:
            raise ValueError("`labels` must have at least 2 label columns")
    elif np.unique(Y).size < 2:
        raise ValueError("`labels` must contain at least 2 classes")
    train_ratio = check_float(train_ratio, "train_ratio", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    C = check_float(C, "C", low=0.0, low_inclusive=False)
    n_repeats = check_int(n_repeats, "n_repeats", low=1)
    max_iter = check_int(max_iter, "max_iter", low=1)
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"`standardize` must be a bool, got {type(standardize).__name__}")
    check_choice(solver, "solver", ("liblinear", "lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"))
    gen = as_generator(rng)
    return X.astype(np.float64), Y, multilabel, train_ratio, C, n_repeats, bool(standardize), solver, max_iter, gen
