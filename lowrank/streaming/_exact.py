"""The exact baseline: accumulate the ``d x d`` Gram matrix ``A^T A`` and take its top eigenvector."""

import numpy as np
import scipy.sparse as sp

from lowrank.streaming._random_order import flip_signs


class ExactState:
    """``G = sum of X^T X`` over the batches (float64); ``O(d^2)`` memory, exact answer."""

    def __init__(self, n_features, dtype, **_):
        self.n_features = n_features
        self.dtype = np.dtype(dtype)
        self.G = np.zeros((n_features, n_features))
        self.n_rows = 0

    def update(self, X):
        if sp.issparse(X):
            if not np.isfinite(X.data).all():
                raise ValueError("the batch contains NaN or infinity; nothing from it was used")
            G = (X.T @ X).toarray()
        else:
            # one pass for the check, one BLAS syrk-like product; float32 batches are widened so
            # the sum over a long stream keeps float64 accuracy
            if not np.isfinite(X).all():
                raise ValueError("the batch contains NaN or infinity; nothing from it was used")
            X64 = X.astype(np.float64, copy=False)
            G = X64.T @ X64
        self.G += G
        self.n_rows += X.shape[0]

    def result(self, k=1):
        w, V = np.linalg.eigh(self.G)
        return flip_signs(V[:, ::-1][:, :k]), np.maximum(w[::-1][:k], 0.0)

    @property
    def nbytes(self):
        return int(self.G.nbytes)
