"""Click-log data: a Criteo-shaped generator with a known teacher, and Criteo/Avazu file loaders."""

from dataclasses import dataclass

import numpy as np

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_float, check_int


@dataclass
class CTRData:
    """Click-log rows: ``dense`` (n, n_dense) float32, ``categorical`` (n, n_fields) int64 ids in
    ``[0, cardinalities[f])``, ``labels`` (n,) float32 in {0, 1}; for synthetic data also the
    teacher's click probabilities ``probabilities`` and the Bayes-optimal AUC ``bayes_auc``."""

    dense: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray
    cardinalities: list
    probabilities: np.ndarray | None = None
    bayes_auc: float | None = None

    def __len__(self):
        return self.labels.shape[0]

    def split(self, fractions, *, rng=None):
        """Random disjoint parts with the given fractions of rows (e.g. ``(0.8, 0.1, 0.1)``)."""
        fractions = np.asarray(fractions, dtype=float)
        if (fractions <= 0).any() or fractions.sum() > 1 + 1e-12:
            raise ValueError("`fractions` must be positive and sum to at most 1")
        order = as_generator(rng).permutation(len(self))
        bounds = np.concatenate([[0], np.cumsum(np.round(fractions * len(self)).astype(int))])
        return [self.subset(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def subset(self, rows):
        """The rows ``rows`` (indices or a boolean mask) as a new :class:`CTRData`."""
        return CTRData(self.dense[rows], self.categorical[rows], self.labels[rows], list(self.cardinalities),
                       None if self.probabilities is None else self.probabilities[rows], self.bayes_auc)


def synthetic_ctr(n_rows, *, n_dense=13, n_categorical=26, cardinality=1000, zipf_exponent=1.1,
                  teacher_dim=8, base_rate=0.25, rng=None):
    """Criteo-shaped click logs labelled by a known teacher model.

    Dense features are log-normal counts (as Criteo's), transformed ``log1p``; each categorical
    field draws ids from a Zipf law over ``cardinality`` values (popular ids first). The teacher
    gives each id a random ``teacher_dim`` vector; the click logit is a linear term in the dense
    features, first-order id effects and FM-style pairwise interactions between fields, shifted
    so the mean click rate is about ``base_rate``. Labels are Bernoulli draws, so the best any
    model can do is the teacher itself: ``bayes_auc`` is the AUC of the true probabilities.

    Parameters
    ----------
    n_rows : int
    n_dense : int, default=13
    n_categorical : int, default=26
    cardinality : int or sequence of int, default=1000
    zipf_exponent : float, default=1.1
    teacher_dim : int, default=8
    base_rate : float in (0, 1), default=0.25
    rng : None, int or numpy.random.Generator

    Returns
    -------
    CTRData

    Examples
    --------
    >>> data = synthetic_ctr(1000, rng=0)
    >>> data.dense.shape, data.categorical.shape, 0.6 < data.bayes_auc < 0.95
    ((1000, 13), (1000, 26), True)
    """
    from sklearn.metrics import roc_auc_score

    n_rows = check_int(n_rows, "n_rows", low=2)
    n_dense = check_int(n_dense, "n_dense", low=0)
    n_categorical = check_int(n_categorical, "n_categorical", low=1)
    zipf_exponent = check_float(zipf_exponent, "zipf_exponent", low=0.0, low_inclusive=False)
    base_rate = check_float(base_rate, "base_rate", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    cards = [cardinality] * n_categorical if np.isscalar(cardinality) else list(cardinality)
    if len(cards) != n_categorical or any(int(c) < 2 for c in cards):
        raise ValueError("`cardinality` must be an int >= 2 or one such int per categorical field")
    cards = [int(c) for c in cards]
    gen = as_generator(rng)
    # Teacher parameters first, so the same seed gives the same teacher for any n_rows.
    w_dense = gen.normal(0, 0.4, n_dense)
    tables = [gen.normal(0, 1 / np.sqrt(teacher_dim), (c, teacher_dim)) for c in cards]
    first = [gen.normal(0, 0.3, c) for c in cards]
    counts = np.floor(gen.lognormal(1.0, 1.2, (n_rows, n_dense)))
    dense = np.log1p(counts).astype(np.float32)
    categorical = np.empty((n_rows, n_categorical), dtype=np.int64)
    for f, c in enumerate(cards):
        p = 1.0 / np.arange(1, c + 1) ** zipf_exponent
        categorical[:, f] = gen.choice(c, size=n_rows, p=p / p.sum())
    vecs = np.stack([tables[f][categorical[:, f]] for f in range(n_categorical)], axis=1)
    pair = 0.5 * ((vecs.sum(1) ** 2).sum(1) - (vecs**2).sum((1, 2)))
    logit = (dense - dense.mean(0)) @ w_dense + sum(first[f][categorical[:, f]] for f in range(n_categorical))
    logit = logit + 0.5 * pair
    logit = logit / max(logit.std(), 1e-12) * 1.5
    shift = _shift_for_rate(logit, base_rate)
    prob = 1 / (1 + np.exp(-(logit + shift)))
    labels = (gen.random(n_rows) < prob).astype(np.float32)
    bayes = float(roc_auc_score(labels, prob)) if 0 < labels.sum() < n_rows else float("nan")
    return CTRData(dense, categorical, labels, cards, prob, bayes)


def _shift_for_rate(logit, rate):
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _index_categories(columns, min_count):
    """Map each field's raw values to ids by frequency; rare values (< min_count) share id 0."""
    ids, cards = [], []
    for col in columns:
        values, inverse, counts = np.unique(np.asarray(col, dtype=object).astype(str), return_inverse=True,
                                            return_counts=True)
        order = np.argsort(-counts, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        keep = counts[order] >= min_count
        n_keep = int(keep.sum())
        id_of_value = np.where(rank < n_keep, rank + 1, 0)
        ids.append(id_of_value[inverse].astype(np.int64))
        cards.append(n_keep + 1)
    return np.stack(ids, axis=1), cards


def load_criteo(path, *, n_rows=None, min_count=10):
    """Read Criteo's display-advertising text format from a local path (no download).

    Each line: ``label<TAB>I1..I13<TAB>C1..C26`` with empty fields for missing values. Integer
    features become ``log1p(max(x, 0))`` (missing = 0); categories are numbered by frequency per
    field, values seen fewer than ``min_count`` times share id 0.

    Parameters
    ----------
    path : str or os.PathLike
        Local text file (e.g. Criteo's ``train.txt``).
    n_rows : int, optional
        Read only the first ``n_rows`` lines.
    min_count : int, default=10
        Values seen fewer times than this in their field map to the shared id 0.

    Returns
    -------
    CTRData
        ``dense`` (n, 13) float32, ``categorical`` (n, 26) int64, ``labels`` (n,) float32.

    Raises
    ------
    ValueError
        A line without 40 tab-separated fields, an empty file, ``n_rows < 1``.
    """
    n_rows = None if n_rows is None else check_int(n_rows, "n_rows", low=1)
    labels, dense, cats = [], [], []
    with open(path) as f:
        for i, line in enumerate(f):
            if n_rows is not None and i >= n_rows:
                break
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 40:
                raise ValueError(f"{path}:{i + 1}: expected 40 tab-separated fields, got {len(parts)}")
            labels.append(float(parts[0]))
            dense.append([float(x) if x else 0.0 for x in parts[1:14]])
            cats.append(parts[14:])
    if not labels:
        raise ValueError(f"{path} holds no rows")
    dense = np.log1p(np.maximum(np.asarray(dense), 0)).astype(np.float32)
    categorical, cards = _index_categories(list(zip(*cats)), min_count)
    return CTRData(dense, categorical, np.asarray(labels, dtype=np.float32), cards)


def load_avazu(path, *, n_rows=None, min_count=10):
    """Read Avazu's CSV (``id,click,hour,C1,...``) from a local path; every field is categorical
    (``hour`` as hour-of-day), there are no dense features.

    Parameters
    ----------
    path : str or os.PathLike
        Local CSV file with a header line holding a ``click`` column.
    n_rows : int, optional
        Read only the first ``n_rows`` data rows.
    min_count : int, default=10
        Values seen fewer times than this in their field map to the shared id 0.

    Returns
    -------
    CTRData
        ``dense`` of shape (n, 0); one categorical field per column other than ``id`` and ``click``.

    Raises
    ------
    ValueError
        No header with a ``click`` column, no data rows, ``n_rows < 1``.
    """
    import csv

    n_rows = None if n_rows is None else check_int(n_rows, "n_rows", low=1)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or "click" not in header:
            raise ValueError(f"{path}: expected an Avazu CSV header with a 'click' column")
        click = header.index("click")
        fields = [j for j, name in enumerate(header) if name not in ("id", "click")]
        hour = header.index("hour") if "hour" in header else -1
        labels, cats = [], []
        for i, row in enumerate(reader):
            if n_rows is not None and i >= n_rows:
                break
            labels.append(float(row[click]))
            cats.append([row[j][-2:] if j == hour else row[j] for j in fields])
    if not labels:
        raise ValueError(f"{path} holds no rows")
    categorical, cards = _index_categories(list(zip(*cats)), min_count)
    return CTRData(np.zeros((len(labels), 0), np.float32), categorical, np.asarray(labels, np.float32), cards)
