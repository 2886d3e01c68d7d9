"""top_k_rows against a per-row lexsort reference, with ties and k beyond the width."""

import numpy as np
import pytest

from lowrank._utils.ranking import top_k_rows


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_top_k_rows_matches_lexsort_reference(k):
    gen = np.random.default_rng(0)
    X = gen.integers(0, 4, size=(50, 9)).astype(float)  # many ties
    idx, val = top_k_rows(X, k)
    width = min(k, X.shape[1])
    for i, row in enumerate(X):
        ref = np.lexsort((np.arange(row.size), -row))[:width]  # by score, then smaller index
        np.testing.assert_array_equal(idx[i], ref)
        np.testing.assert_array_equal(val[i], row[ref])
