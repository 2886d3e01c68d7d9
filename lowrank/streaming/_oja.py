"""Arbitrary-order streams: Oja's algorithm with the rate chosen as in Price & Xun (FOCS 2024).

Oja's update ``x <- x + eta (a^T x) a`` multiplies ``x`` by ``prod_t (I + eta a_t a_t^T)``, roughly
``exp(eta A^T A)``: it separates ``v1`` from ``v2`` by ``exp(eta (sigma_1^2 - sigma_2^2))`` and
its norm grows by about ``exp(eta sigma_1^2)``. Price & Xun show a fixed rate with
``eta sigma_1^2 = Theta(log d)`` works in adversarial order when ``R = Omega(log n log d)``, and
use the norm growth to reject rates that are too small. ``sigma_1`` is unknown in a stream, so
the state runs copies with rates ``c_j / ||A_{1:t}||_F^2`` on a geometric grid of ``c_j``
(``sigma_1^2 >= ||A||_F^2 / d`` bounds the grid) and returns the copy with the smallest rate
whose log-norm growth reaches ``target_growth * log(d)``: no rate to tune.
"""

import numpy as np
import scipy.sparse as sp

from lowrank.streaming._kernels import _oja_rows_csr, _oja_rows_dense
from lowrank.streaming._random_order import flip_signs


class OjaState:
    """Running state of the multi-rate Oja method (no validation: batches are pre-checked)."""

    def __init__(self, n_features, dtype, *, n_rates, target_growth, rng):
        d = n_features
        self.n_features = d
        self.dtype = np.dtype(dtype)
        # c_j from 1 to ~4 d: eta_j sigma_1^2 = c_j sigma_1^2 / F spans [c_j / d, c_j]
        top = np.log2(4.0 * max(d, 2))
        self.rates = np.exp2(np.linspace(0.0, top, n_rates)) if n_rates > 1 else np.array([np.exp2(top / 2)])
        X0 = rng.standard_normal((1, d))
        X0 /= np.linalg.norm(X0)
        self.XS = np.repeat(X0, self.rates.shape[0], axis=0)  # the same start for every copy
        self.log_norm = np.zeros(self.rates.shape[0])
        self.energy = np.zeros(self.rates.shape[0])
        self.target = target_growth * np.log(max(d, 2))
        self.frob = 0.0
        self.n_rows = 0

    def update(self, X):
        XS, log_norm, energy = self.XS.copy(), self.log_norm.copy(), self.energy.copy()
        if sp.issparse(X):
            frob, bad = _oja_rows_csr(X.data, X.indices, X.indptr, XS, log_norm, energy, self.rates, self.frob)
        else:
            frob, bad = _oja_rows_dense(X, XS, log_norm, energy, self.rates, self.frob)
        if bad >= 0:
            raise ValueError(f"the batch contains NaN or infinity (row {bad}); nothing from it was used")
        self.XS, self.log_norm, self.energy, self.frob = XS, log_norm, energy, frob
        self.n_rows += X.shape[0]

    def chosen(self):
        """Index of the copy returned: the smallest rate whose growth reaches the target."""
        ok = np.flatnonzero(self.log_norm >= self.target)
        return int(ok[0]) if ok.size else int(np.argmax(self.log_norm))

    def result(self, k=1):
        j = self.chosen()
        v = self.XS[j] / np.linalg.norm(self.XS[j])
        # the energy the iterate captured on the way: close to sigma_1^2 once it has converged
        return flip_signs(v[:, None]), np.array([self.energy[j]])

    @property
    def nbytes(self):
        return int(self.XS.nbytes + self.log_norm.nbytes + self.energy.nbytes + self.rates.nbytes)
