"""``alpha="auto"``, ``rank="auto"`` and ``shrinkage="auto"``: chosen on a held-out tenth of the
observed entries.

The held-out entries are drawn as in ``validation_fraction`` (every row and column keeps a
fitted entry). For the alternating methods:

1. a path of ``alpha`` values ``alpha_max * (0, 0.01, 0.03, 0.1, 0.3, 1)``, ascending, each fit
   warm-started from the previous one (at most 5 sweeps each). ``alpha_max`` is the largest
   singular value of the observed residual (after the biases): at ``alpha >= alpha_max`` the
   penalized problem's solution is ``U = V = 0`` (in its nuclear-norm form every singular value
   is thresholded away), so the grid spans "no penalty" to "everything shrunk". The path stops
   early only two values past the best held-out RMSE and 25% above it (the curve need not be
   unimodal: on pure noise it rises before it falls), and a parabola through the best value and
   its neighbours (in ``log alpha``) gives one refined candidate;
2. with ``rank="auto"`` (the path runs at ``min(10, m, n)``): the factored ridge acts as a
   nuclear-norm penalty, so the selected fit's singular values below 1% of the largest are the
   components the penalty removes. Fewer survivors than the rank: that count is the rank, and
   step 1 runs again at it. All survive: the rank is doubled while one fit at twice the rank
   improves the held-out RMSE by more than one standard error (relative ``1 / sqrt(2 n_held)``);
3. with biases and ``bias_alpha=None`` (and ``alpha="auto"``): ``bias_alpha`` among
   ``alpha * (1, 1/4, 1/16)``, warm-started.

The caller then refits on every observed entry, warm-started from the selected candidate.
SoftImpute's ``shrinkage="auto"`` is in :func:`_select_soft_impute`. Nothing here looks at
entries outside ``observed``.
"""

import logging
from dataclasses import replace

import numpy as np

from lowrank.completion._options import Entries
from lowrank.linalg import randomized_svd

logger = logging.getLogger("lowrank.completion")

HOLDOUT_FRACTION = 0.1
ALPHA_FRACTIONS = (1e-2, 3e-2, 1e-1, 3e-1, 1.0)
BIAS_FRACTIONS = (0.25, 0.0625)
DEAD_FRACTION = 1e-2
MAX_AUTO_RANK = 64
PATH_SWEEPS = 5
PATH_TOL = 1e-3
STOP_RATIO = 1.25
SOFTIMPUTE_RANK = 20


def select(entries, opts, gen):
    """Resolve ``"auto"`` rank/alpha; returns ``(opts, selection, warm)``.

    ``selection`` records what was tried (``{"rank", "alpha", "path": [[rank, alpha, rmse], ...]}``);
    ``warm`` is the selected fit's FitState (None when no search ran).
    """
    from lowrank.completion._complete import Problem, _split_validation, centred_validation

    rows, cols, values, shape = entries
    default_rank = min(10, min(shape))
    if opts.method == "softimpute":
        # SoftImpute's rank is only a cap (the shrinkage decides the rank); alpha only damps biases
        rank = min(SOFTIMPUTE_RANK, min(shape)) if opts.rank == "auto" else opts.rank
        alpha = 0.0 if opts.alpha == "auto" else opts.alpha
        opts = replace(opts, rank=rank, alpha=alpha)
        if opts.shrinkage != "auto":
            return opts, {"rank": rank, "alpha": alpha, "path": []}, None
        return _select_soft_impute(entries, opts, gen)
    fit, held = _split_validation(rows, cols, values, shape, HOLDOUT_FRACTION, gen)
    if held[0].shape[0] == 0:  # too few entries to hold any out without leaving a row or column empty
        rank = default_rank if opts.rank == "auto" else opts.rank
        alpha = 0.0 if opts.alpha == "auto" else opts.alpha
        return replace(opts, rank=rank, alpha=alpha), {"rank": rank, "alpha": alpha, "path": []}, None
    path_opts = replace(opts, validation_fraction=None, verbose=False, max_iter=min(PATH_SWEEPS, opts.max_iter),
                        tol=max(PATH_TOL, opts.tol))
    problem = Problem(Entries(*fit, shape), path_opts)
    try:
        search = _Search(problem, path_opts, centred_validation(problem, held), gen)
        rank, alpha, bias_alpha = search.run(default_rank, opts)
        warm = search.state(rank, alpha, bias_alpha)
    finally:
        problem.close()
    selection = {"rank": int(rank), "alpha": float(alpha), "bias_alpha": bias_alpha, "path": search.records}
    return replace(opts, rank=rank, alpha=alpha, bias_alpha=bias_alpha), selection, warm


def effective_rank(state):
    """Singular values of ``U @ V.T`` at least ``DEAD_FRACTION`` of the largest: the components the
    penalty keeps (a factored ridge acts as a nuclear-norm penalty, which zeroes the others)."""
    from lowrank.completion._complete import balance_factors

    U, _ = balance_factors(state.U, state.V)
    s = np.sum(U * U, axis=0)  # balanced factors: column norms^2 are the singular values
    if not s.size or not s[0] > 0:
        return 1
    return max(1, int(np.sum(s >= DEAD_FRACTION * s[0])))


class _Search:
    def __init__(self, problem, opts, validation, gen):
        self.problem, self.opts, self.validation, self.gen = problem, opts, validation, gen
        self.records = []  # [rank, alpha, bias_alpha, held-out RMSE]
        self.states = {}
        self._alpha_max = None
        # relative standard error of an RMSE over n held-out entries, about 1 / sqrt(2 n)
        self.standard_error = 1.0 / np.sqrt(2.0 * max(validation[0].shape[0], 1))

    def run(self, default_rank, opts):
        """Returns the selected ``(rank, alpha, bias_alpha)``."""
        m, n = self.problem.shape
        rank = default_rank if opts.rank == "auto" else opts.rank
        alpha, bias_alpha = opts.alpha, opts.bias_alpha
        if alpha == "auto":
            alpha = self.alpha_path(rank, bias_alpha)
        if opts.rank == "auto":
            kept = effective_rank(self.state(rank, alpha, bias_alpha))
            if kept < rank:
                rank = kept
                if opts.alpha == "auto":
                    alpha = self.alpha_path(rank, bias_alpha)
                elif self.state(rank, alpha, bias_alpha) is None:
                    self.fit(rank, alpha, bias_alpha)
            else:
                # every component survives the penalty: a larger rank may help; keep doubling while
                # the held-out RMSE improves by more than one standard error
                current = self.score(rank, alpha, bias_alpha)
                while 2 * rank <= min(m, n, MAX_AUTO_RANK):
                    _, rmse = self.fit(2 * rank, alpha, bias_alpha)
                    if not rmse < current * (1 - self.standard_error):
                        break
                    rank, current = 2 * rank, rmse
        if opts.bias and opts.bias_alpha is None and opts.alpha == "auto" and alpha > 0:
            bias_alpha = self.bias_path(rank, alpha)
        return rank, alpha, bias_alpha

    def fit(self, rank, alpha, bias_alpha, warm=None):
        from lowrank.completion._complete import alternate

        options = replace(self.opts, rank=rank, alpha=float(alpha), bias_alpha=bias_alpha)
        state = alternate(self.problem, options, self.gen, 0.0, warm=warm, log_sweeps=False)
        rmse = state.validation_rmse(self.validation)
        logger.info("auto: rank %d, alpha %.4g, bias_alpha %s: held-out RMSE %.5g (%d iterations)", rank, alpha,
                    "tied" if bias_alpha is None else f"{bias_alpha:.4g}", rmse, state.n_iter)
        self.records.append([int(rank), float(alpha), bias_alpha, rmse])
        self.states[(rank, float(alpha), bias_alpha)] = (state, rmse)
        return state, rmse

    def state(self, rank, alpha, bias_alpha):
        found = self.states.get((rank, float(alpha), bias_alpha))
        return None if found is None else found[0]

    def score(self, rank, alpha, bias_alpha):
        return self.states[(rank, float(alpha), bias_alpha)][1]

    def bias_path(self, rank, alpha):
        """``bias_alpha`` among ``alpha * (1, 1/4, 1/16)`` (None: tied to alpha) by held-out RMSE."""
        best, best_rmse = None, self.score(rank, alpha, None)
        warm = self.state(rank, alpha, None)
        for fraction in BIAS_FRACTIONS:
            _, rmse = self.fit(rank, alpha, fraction * alpha, warm)
            if rmse < best_rmse:
                best, best_rmse = fraction * alpha, rmse
        return best

    def alpha_max(self):
        if self._alpha_max is None:
            from lowrank.completion._complete import _fit_biases, residual_operator

            problem = self.problem
            row_bias = col_bias = None
            if self.opts.bias:
                r, c, _, shape = problem.entries
                row_bias, col_bias = _fit_biases(r, c, problem.centred, shape, 0.0)
            op = residual_operator(problem, row_bias, col_bias)
            top = randomized_svd(op, 1, n_iter=self.opts.svd_n_iter + 2, rng=self.gen)[1][0]
            self._alpha_max = float(top) if top > 0 else 1.0
        return self._alpha_max

    def alpha_path(self, rank, bias_alpha):
        """The alpha of lowest held-out RMSE at ``rank`` (ascending warm-started path + one parabola step)."""
        top = self.alpha_max()
        # a tied bias penalty may be 0 with alpha; an explicit bias_alpha needs alpha > 0 (see Problem)
        grid = ([0.0] if bias_alpha is None else [1e-4 * top]) + [f * top for f in ALPHA_FRACTIONS]
        scores, states, warm = [], [], None
        for alpha in grid:
            state, rmse = self.fit(rank, alpha, bias_alpha, warm)
            scores.append(rmse)
            states.append(state)
            warm = state
            best = int(np.nanargmin(scores)) if np.isfinite(scores).any() else 0
            # the held-out curve need not be unimodal (pure noise: worse at small alpha than at 0,
            # best at alpha_max), so stop early only once it is far above its best
            if len(scores) - 1 - best >= 2 and scores[-1] > STOP_RATIO * scores[best]:
                break
        best = int(np.nanargmin(scores)) if np.isfinite(scores).any() else 0
        alpha = grid[best]
        if 0 < best < len(scores) - 1 and grid[best - 1] > 0:
            x = np.log([grid[best - 1], grid[best], grid[best + 1]])
            y = np.asarray(scores[best - 1 : best + 2])
            curvature = y[0] - 2 * y[1] + y[2]
            if curvature > 0:
                # vertex of the parabola through three equally spaced points in log(alpha)
                shift = 0.5 * (y[0] - y[2]) / curvature * (x[1] - x[0])
                refined = float(np.exp(x[1] + shift))
                if refined != alpha:
                    _, rmse = self.fit(rank, refined, bias_alpha, states[best])
                    if rmse < scores[best]:
                        alpha = refined
        return alpha


def _select_soft_impute(entries, opts, gen):
    """``shrinkage="auto"`` (and, with biases and no ``bias_alpha``, the bias ridge) on held-out entries.

    The bias ridge comes first, from the biases alone: ``bias_alpha`` among ``c * (0, 0.1, 0.3, 1, 3)``
    with ``c`` the mean number of entries per column. Then a descending, warm-started path of
    shrinkages ``sigma_1 * (1, 0.3, 0.1, 0.03, 0.01)`` (``sigma_1`` the top singular value of the
    observed residual), the standard SoftImpute path of Mazumder, Hastie & Tibshirani (2010).
    """
    from lowrank.completion._complete import (
        Problem,
        _fit_biases,
        _split_validation,
        _validation_rmse,
        centred_validation,
    )
    from lowrank.completion._softimpute import soft_impute, top_singular_value

    rows, cols, values, shape = entries
    fit, held = _split_validation(rows, cols, values, shape, HOLDOUT_FRACTION, gen)
    records = []
    if held[0].shape[0] == 0:
        opts = replace(opts, shrinkage=None)
        return opts, {"rank": opts.rank, "alpha": opts.alpha, "path": []}, None
    if opts.bias and opts.bias_alpha is None:
        f_rows, f_cols, f_values = fit
        centred = f_values - f_values.mean()
        per_column = f_values.shape[0] / shape[1]
        best = None
        for fraction in (0.0, 0.1, 0.3, 1.0, 3.0):
            beta = fraction * per_column
            row_bias, col_bias = _fit_biases(f_rows, f_cols, centred, shape, beta)
            h_rows, h_cols, h_values = held
            pred = f_values.mean() + row_bias[h_rows] + col_bias[h_cols]
            rmse = float(np.sqrt(np.mean((pred - h_values) ** 2)))
            records.append(["bias", beta, rmse])
            if best is None or rmse < best[1]:
                best = (beta, rmse)
        opts = replace(opts, bias_alpha=best[0])
    path_opts = replace(opts, verbose=False, max_iter=min(PATH_SWEEPS, opts.max_iter), tol=max(PATH_TOL, opts.tol))
    problem = Problem(Entries(*fit, shape), path_opts)
    try:
        validation = centred_validation(problem, held)
        top = top_singular_value(problem.sides, opts.svd_n_iter + 2, gen) or 1.0
        best, warm = None, None
        for fraction in sorted(ALPHA_FRACTIONS, reverse=True):
            shrinkage = fraction * top
            U, V, _, steps, _ = soft_impute(problem.sides, replace(path_opts, shrinkage=shrinkage), gen, 0.0,
                                            warm=warm)
            warm = (U, V)
            rmse = _validation_rmse(U, V, None, None, validation)
            records.append([opts.rank, shrinkage, rmse])
            logger.info("auto: softimpute shrinkage %.4g: held-out RMSE %.5g (%d steps)", shrinkage, rmse, steps)
            if best is None or rmse < best[1]:
                best = (shrinkage, rmse)
    finally:
        problem.close()
    opts = replace(opts, shrinkage=best[0])
    selection = {"rank": opts.rank, "alpha": opts.alpha, "bias_alpha": opts.bias_alpha, "shrinkage": best[0],
                 "path": records}
    return opts, selection, None
