"""The factored result of a completion: ``M ~ U @ V.T`` (+ optional bias terms)."""

import numpy as np

from lowrank._utils.io import load_npz, save_npz

_DENSE_LIMIT = 10**8
_KIND = "lowrank.completion.CompletionResult"


class CompletionResult:
    """A completed matrix in factored form, ``X = U @ V.T + global_mean + row_bias[:, None] + col_bias[None, :]``.

    Unpacks like a tuple, ``U, V = result``, whatever the options (bias terms are zero
    unless ``bias=True`` was asked for). Factors are balanced (``U.T @ U == V.T @ V``, diagonal,
    decreasing) and signs are fixed as ``svd_flip`` does, so equal matrices give equal factors.

    Attributes
    ----------
    U : ndarray, shape (m, rank)
    V : ndarray, shape (n, rank)
    global_mean : float
    row_bias : ndarray, shape (m,)
    col_bias : ndarray, shape (n,)
    history : dict of lists
        Per sweep: ``"train_rmse"`` (on the fitted entries), ``"validation_rmse"`` (empty without
        a held-out set), ``"seconds"`` (elapsed since the start, initialization included).
    n_iter : int
        Sweeps run (one sweep updates both factors).
    converged : bool
        Whether the stopping rule was met before ``max_iter``.
    method : str
    alpha : float or None
        The L2 penalty of the fit (the selected one when ``alpha="auto"``).
    bias_alpha : float or None
        The ridge on the bias terms (None without biases).
    selection : dict or None
        With ``rank="auto"`` or ``alpha="auto"``: ``{"rank", "alpha", "path"}``, ``path`` a list of
        ``[rank, alpha, held-out RMSE]`` for every candidate tried.
    row_ids, col_ids : ndarray or None
        Identifiers of the rows/columns when saved with them (see :meth:`save`).
    """

    def __init__(self, U, V, *, global_mean=0.0, row_bias=None, col_bias=None, history=None, n_iter=0,
                 converged=False, method="", alpha=None, bias_alpha=None, selection=None):
        self.U = U
        self.V = V
        self.global_mean = float(global_mean)
        self.row_bias = np.zeros(U.shape[0]) if row_bias is None else row_bias
        self.col_bias = np.zeros(V.shape[0]) if col_bias is None else col_bias
        self.history = history if history is not None else {"train_rmse": [], "validation_rmse": [], "seconds": []}
        self.n_iter = int(n_iter)
        self.converged = bool(converged)
        self.method = method
        self.alpha = None if alpha is None else float(alpha)
        self.bias_alpha = None if bias_alpha is None else float(bias_alpha)
        self.selection = selection
        self.row_ids = None
        self.col_ids = None

    def __iter__(self):
        return iter((self.U, self.V))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.U, self.V)[index]

    def __repr__(self):
        return (
            f"CompletionResult(shape={self.shape}, rank={self.rank}, method={self.method!r}, "
            f"n_iter={self.n_iter}, converged={self.converged})"
        )

    @property
    def shape(self):
        return (self.U.shape[0], self.V.shape[0])

    @property
    def rank(self):
        return self.U.shape[1]

    def predict(self, rows, cols):
        """Completed values at index pairs ``(rows[t], cols[t])`` (arrays of equal length)."""
        from lowrank.completion._kernels import pair_values

        rows = np.asarray(rows)
        cols = np.asarray(cols)
        if rows.shape != cols.shape or rows.ndim != 1:
            raise ValueError("`rows` and `cols` must be 1-D index arrays of the same length")
        m, n = self.shape
        for name, idx, size in (("rows", rows, m), ("cols", cols, n)):
            if idx.dtype.kind not in "iu":
                raise TypeError(f"`{name}` must hold integers, got dtype {idx.dtype}")
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                raise ValueError(f"`{name}` must lie in [0, {size}), got values in [{idx.min()}, {idx.max()}]")
        rows = rows.astype(np.int64)
        cols = cols.astype(np.int64)
        return pair_values(rows, cols, self.U, self.V) + self.global_mean + self.row_bias[rows] + self.col_bias[cols]

    def to_dense(self):
        """The completed ``(m, n)`` matrix; refuses shapes over 10^8 entries (use ``predict``)."""
        m, n = self.shape
        if m * n > _DENSE_LIMIT:
            raise ValueError(f"to_dense() would allocate {m} x {n} entries; use predict(rows, cols) instead")
        return self.U @ self.V.T + self.global_mean + self.row_bias[:, None] + self.col_bias[None, :]

    def full_factors(self):
        """Factors ``(A, B)`` with ``A @ B.T`` equal to the completed matrix, biases included
        (rank + 2 columns when any bias term is non-zero)."""
        if self.global_mean == 0.0 and not self.row_bias.any() and not self.col_bias.any():
            return self.U, self.V
        m, n = self.shape
        A = np.hstack([self.U, (self.row_bias + self.global_mean)[:, None], np.ones((m, 1))])
        B = np.hstack([self.V, np.ones((n, 1)), self.col_bias[:, None]])
        return A, B

    def save(self, path, *, row_ids=None, col_ids=None):
        """Write the result to ``path`` (``.npz``, atomically); :meth:`load` reads it back exactly.

        ``row_ids`` / ``col_ids`` (e.g. the user and item ids of a ratings file, numbers or
        strings) are stored alongside and come back as ``result.row_ids`` / ``result.col_ids``.
        """
        history = {key: np.asarray(val, dtype=np.float64) for key, val in self.history.items()}
        arrays = {"U": self.U, "V": self.V, "row_bias": self.row_bias, "col_bias": self.col_bias}
        for name, ids, size in (("row_ids", row_ids, self.shape[0]), ("col_ids", col_ids, self.shape[1])):
            if ids is not None:
                ids = np.asarray(ids)
                if ids.shape != (size,) or ids.dtype.kind not in "iuU":
                    raise ValueError(
                        f"`{name}` must be {size} integers or strings, got {ids.dtype} of shape {ids.shape}"
                    )
                arrays[name] = ids
        arrays.update({f"history_{key}": val for key, val in history.items()})
        meta = {"global_mean": self.global_mean, "n_iter": self.n_iter, "converged": self.converged,
                "method": self.method, "history_keys": sorted(history), "alpha": self.alpha,
                "bias_alpha": self.bias_alpha, "selection": self.selection}
        save_npz(path, arrays, kind=_KIND, meta=meta)

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`."""
        arrays, meta = load_npz(path, kind=_KIND)
        history = {key: arrays[f"history_{key}"].tolist() for key in meta["history_keys"]}
        result = cls(arrays["U"], arrays["V"], global_mean=meta["global_mean"], row_bias=arrays["row_bias"],
                     col_bias=arrays["col_bias"], history=history, n_iter=meta["n_iter"],
                     converged=meta["converged"], method=meta["method"], alpha=meta.get("alpha"),
                     bias_alpha=meta.get("bias_alpha"), selection=meta.get("selection"))
        result.row_ids = arrays.get("row_ids")
        result.col_ids = arrays.get("col_ids")
        return result
