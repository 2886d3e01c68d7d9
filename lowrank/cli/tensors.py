"""Command-line face of lowrank.tensors: ``decompose`` (Tucker/CP/TT of a .npy tensor), ``funbat``
(FunBaT on a file of continuous-indexed entries) and the tensor rows of ``lowrank demo``."""

import time

import numpy as np

from lowrank.cli import DemoRow, timed

_METHODS = ("tucker", "hosvd", "st_hosvd", "cp", "tt")


def register(subparsers):
    p = subparsers.add_parser(
        "decompose",
        help="Tucker / HOSVD / CP / TT decomposition of a tensor stored in a .npy file",
        description="Decompose an N-way tensor from a .npy file (NaN entries are treated as missing and "
        "handled with mask=), print the relative error on the observed entries, and save the factors "
        "to an .npz file (core/weights and factor_0, factor_1, ...).",
    )
    p.add_argument("tensor", help=".npy file holding an N-way array (N >= 2); NaN = missing")
    p.add_argument("--method", choices=_METHODS, default="tucker")
    p.add_argument("--rank", type=int, nargs="+", required=True,
                   help="rank (one int, or one per mode for tucker/hosvd/st_hosvd; max TT ranks for tt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default=None, help="output .npz (default: TENSOR.METHOD.npz)")
    p.set_defaults(func=_decompose)

    f = subparsers.add_parser(
        "funbat",
        help="Functional Bayesian Tucker (FunBaT) on continuous-indexed entries (coords + value per row)",
        description="Fit FunBaT to a file of entries (.npy table, .npz with coords/values, or CSV: K "
        "coordinate columns then the value), hold out a fraction to report RMSE, MAE and the coverage "
        "of the predictive 95%% interval, and optionally predict at the coordinates of another file.",
    )
    f.add_argument("entries", help="entries file: K coordinates then the value on each row")
    f.add_argument("--rank", type=int, nargs="+", default=[2])
    f.add_argument("--core", choices=["tucker", "cp"], default="tucker")
    f.add_argument("--kernel", choices=["matern12", "matern32", "matern52"], default="matern32")
    f.add_argument("--lengthscale", type=float, nargs="+", default=[0.1],
                   help="per-mode lengthscale in units of the mode's range (one value or one per mode)")
    f.add_argument("--epochs", type=int, default=100)
    f.add_argument("--test-fraction", type=float, default=0.2)
    f.add_argument("--predict", default=None, help="file of coordinates (K columns, .npy or CSV) to predict at")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("-o", "--output", default=None, help="where to save predictions (.npy: mean, std columns)")
    f.add_argument("-v", "--verbose", action="store_true")
    f.set_defaults(func=_funbat)


def _rank_arg(values):
    return values[0] if len(values) == 1 else tuple(values)


def _decompose(args):
    from lowrank._utils.io import save_npz
    from lowrank.tensors import cp_als, hosvd, st_hosvd, tt_svd, tucker

    X = np.load(args.tensor)
    mask = np.isfinite(X) if not np.isfinite(X).all() else None
    rank = _rank_arg(args.rank)
    fns = {"tucker": tucker, "hosvd": hosvd, "st_hosvd": st_hosvd, "tt": tt_svd}
    start = time.perf_counter()
    if args.method == "cp":
        out = cp_als(X, rank, mask=mask, rng=args.seed)
        arrays = {"weights": np.asarray(out.weights)}
    else:
        out = fns[args.method](X, rank, mask=mask, rng=args.seed)
        arrays = {} if args.method == "tt" else {"core": np.asarray(out.core)}
    seconds = time.perf_counter() - start
    arrays.update({f"factor_{i}": np.asarray(f) for i, f in enumerate(out.factors)})
    obs = np.isfinite(X)
    err = np.linalg.norm((out.to_tensor() - np.where(obs, X, 0))[obs]) / np.linalg.norm(X[obs])
    path = args.output or f"{args.tensor}.{args.method}.npz"
    save_npz(path, arrays, kind=f"lowrank.tensors.{args.method}", meta={"shape": list(X.shape), "rank": args.rank})
    missing = "" if mask is None else f", {int((~obs).sum())} missing entries"
    print(f"{args.method} of a {'x'.join(map(str, X.shape))} tensor{missing}: relative error {err:.4g} in {seconds:.2f} s")
    print(f"saved {path}")
    return 0


def _funbat(args):
    from lowrank.datasets import load_continuous_tensor
    from lowrank.tensors import FunBaT

    coords, values = load_continuous_tensor(args.entries)
    rng = np.random.default_rng(args.seed)
    test = rng.random(values.size) < args.test_fraction if args.test_fraction > 0 else np.zeros(values.size, bool)
    model = FunBaT(rank=_rank_arg(args.rank), core=args.core, kernel=args.kernel,
                   lengthscale=_rank_arg(args.lengthscale), n_epochs=args.epochs, verbose=args.verbose,
                   random_state=args.seed)
    start = time.perf_counter()
    model.fit(coords[~test], values[~test])
    seconds = time.perf_counter() - start
    print(f"FunBaT {args.core} rank {args.rank}, {args.kernel}: {int((~test).sum())} entries, {coords.shape[1]} modes, "
          f"{model.n_iter_} sweeps in {seconds:.2f} s; training RMSE {model.train_rmse_[-1]:.4g}")
    if test.any():
        mean, std = model.predict(coords[test], return_std=True)
        err = mean - values[test]
        print(f"held-out ({int(test.sum())} entries): RMSE {np.sqrt(np.mean(err**2)):.4g}, MAE {np.mean(np.abs(err)):.4g}, "
              f"95% interval coverage {np.mean(np.abs(err) < 1.96 * std):.3f}")
    if args.predict:
        new = np.load(args.predict) if args.predict.endswith(".npy") else np.loadtxt(args.predict, delimiter=",", ndmin=2)
        mean, std = model.predict(np.asarray(new, dtype=float).reshape(-1, coords.shape[1]), return_std=True)
        path = args.output or f"{args.predict}.funbat.npy"
        np.save(path, np.column_stack([mean, std]))
        print(f"saved predictions (mean, std) to {path}")
    return 0


def demo():
    import tensorly as tl

    from lowrank.datasets import continuous_tensor
    from lowrank.tensors import FunBaT, cp_als, tucker

    rows = []
    rng = np.random.default_rng(0)
    n, r = 40, 4
    core = rng.standard_normal((r, r, r))
    U = [np.linalg.qr(rng.standard_normal((n, r)))[0] for _ in range(3)]
    T = tl.tucker_to_tensor((core, U))
    E = rng.standard_normal(T.shape)
    X = T + 0.01 * np.linalg.norm(T) / np.linalg.norm(E) * E
    ours, s1 = timed(tucker, X, r)
    ref, s2 = timed(tl.decomposition.tucker, X, [r] * 3, init="svd")
    e1 = np.linalg.norm(ours.to_tensor() - X) / np.linalg.norm(X)
    e2 = np.linalg.norm(tl.tucker_to_tensor(ref) - X) / np.linalg.norm(X)
    rows.append(DemoRow("Tucker (HOOI)", f"planted {n}^3 Tucker rank {r}, 1% noise", f"rel. error {e1:.5f}",
                        f"TensorLy tucker(init='svd') {e2:.5f} in {s2:.2f} s", s1))
    A = [rng.random((n, r)) for _ in range(3)]
    T = tl.cp_to_tensor((np.ones(r), A))
    X = T + 0.01 * np.linalg.norm(T) / np.linalg.norm(E) * E
    cp, s1 = timed(cp_als, X, r, rng=0)
    e1 = np.linalg.norm(cp.to_tensor() - X) / np.linalg.norm(X)
    rows.append(DemoRow("CP-ALS (compressed, GEVD start)", f"planted {n}^3 CP rank {r} (uniform factors), 1% noise",
                        f"rel. error {e1:.5f}", "noise floor 0.0100", s1))
    data = continuous_tensor(300, noise=0.001, rng=0)
    model, s1 = timed(FunBaT(rank=1, core="cp", lengthscale=0.1, n_epochs=25, random_state=0).fit, data.coords, data.values)
    X_test = np.random.default_rng(1).random((500, 2))
    rmse = float(np.sqrt(np.mean((model.predict(X_test) - data.function(X_test)) ** 2)))
    rows.append(DemoRow("FunBaT-CP rank 1, Matern-3/2", "FunBaT synthetic f(x, y), 300 entries",
                        f"test RMSE {rmse:.4f} vs truth", "paper's reference code 0.0042", s1))
    return rows
