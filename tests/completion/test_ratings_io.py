"""load_ratings on the common ratings layouts (files, compressed files, DataFrames, implicit
interactions) and split_ratings, against matrices written by hand here."""

import bz2
import gzip
import lzma
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.datasets import load_ratings, split_ratings

TRIPLES = [(1, 10, 4.0), (1, 20, 3.5), (7, 10, 5.0), (3, 30, 1.0)]
EXPECTED = np.array([[4.0, 3.5, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])  # users 1, 3, 7; items 10, 20, 30


def _csv(header=True):
    lines = ["userId,movieId,rating,timestamp"] if header else []
    lines += [f"{u},{i},{r},{100 + t}" for t, (u, i, r) in enumerate(TRIPLES)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_files(tmp_path, suffix, opener):
    path = tmp_path / f"ratings.csv{suffix}"
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(_csv())
    ratings = load_ratings(path)
    np.testing.assert_array_equal(ratings.matrix.toarray(), EXPECTED)
    assert ratings.user_ids.tolist() == [1, 3, 7] and ratings.item_ids.tolist() == [10, 20, 30]
    assert ratings.timestamps[0, 1] == 101


def test_one_file_zip_and_a_zip_with_two_files(tmp_path):
    path = tmp_path / "ml.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml/ratings.csv", _csv())
    np.testing.assert_array_equal(load_ratings(path).matrix.toarray(), EXPECTED)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", _csv())
        archive.writestr("b.csv", _csv())
    with pytest.raises(ValueError, match="exactly one file"):
        load_ratings(path)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "r.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(_csv() * 50)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="cannot read"):
        load_ratings(path)


def test_book_crossing_layout_with_quotes_and_string_ids(tmp_path):
    path = tmp_path / "BX-Book-Ratings.csv"
    path.write_text('"User-ID";"ISBN";"Book-Rating"\n"276725";"034545104X";"0"\n"276726";"0155061224";"5"\n'
                    '"276725";"0155061224";"7"\n')
    ratings = load_ratings(path)
    assert ratings.item_ids.tolist() == ["0155061224", "034545104X"]
    np.testing.assert_array_equal(ratings.matrix.toarray(), [[7.0, 0.0], [5.0, 0.0]])
    assert ratings.matrix.nnz == 3  # the explicit 0 rating is stored (observed)


def test_columns_by_position(tmp_path):
    path = tmp_path / "items_first.tsv"
    path.write_text("".join(f"{i}\t{r}\t{u}\n" for u, i, r in TRIPLES))
    ratings = load_ratings(path, columns=(2, 0, 1))
    np.testing.assert_array_equal(ratings.matrix.toarray(), EXPECTED)
    with pytest.raises(ValueError, match="fewer than 6 fields"):
        load_ratings(path, columns=(0, 1, 5))
    with pytest.raises(TypeError, match="columns"):
        load_ratings(path, columns=("a", "b", "c"))
    with pytest.raises(ValueError, match="columns"):
        load_ratings(path, columns=(0, 1))


def test_implicit_interactions_count_repeats(tmp_path):
    path = tmp_path / "plays.csv"
    path.write_text("user,track\n1,a\n1,a\n1,b\n2,a\n1,a\n")
    ratings = load_ratings(path, implicit=True)
    np.testing.assert_array_equal(ratings.matrix.toarray(), [[3.0, 1.0], [1.0, 0.0]])
    assert ratings.timestamps is None


def test_dataframes_with_common_column_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"rownames": [1, 2, 3, 4], "movieId": [i for _, i, _ in TRIPLES],
                          "title": list("abcd"), "userId": [u for u, _, _ in TRIPLES],
                          "rating": [r for *_, r in TRIPLES], "timestamp": [100, 101, 102, 103]})
    ratings = load_ratings(frame)
    np.testing.assert_array_equal(ratings.matrix.toarray(), EXPECTED)
    assert ratings.timestamps is not None and ratings.timestamps[2, 0] == 102
    other = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["x", "y"], "score": [1.0, 2.0]})
    np.testing.assert_array_equal(load_ratings(other).matrix.toarray(), [[1.0, 0.0], [0.0, 2.0]])
    named = pd.DataFrame({"who": [1, 2], "what": [5, 5], "stars": [3.0, 4.0]})
    with pytest.raises(ValueError, match="no user column"):
        load_ratings(named)
    np.testing.assert_array_equal(load_ratings(named, columns=("who", "what", "stars")).matrix.toarray(), [[3.0], [4.0]])
    with pytest.raises(ValueError, match="not in the frame"):
        load_ratings(named, columns=("who", "what", "rating"))
    with pytest.raises(ValueError, match="rating"):
        load_ratings(pd.DataFrame({"user": [1], "item": [2], "rating": [np.nan]}))


def test_bad_sources():
    with pytest.raises(TypeError, match="source"):
        load_ratings(42)
    with pytest.raises(FileNotFoundError, match="source"):
        load_ratings("/nonexistent/ratings.csv")
    with pytest.raises(TypeError, match="implicit"):
        load_ratings("/nonexistent/ratings.csv", implicit="yes")


def test_split_ratings_partitions_the_entries_and_keeps_cold_rows():
    rng = np.random.default_rng(0)
    M = sp.random_array((300, 200), density=0.02, format="csr", rng=rng)
    train, (rows, cols, values) = split_ratings(M, 0.3, rng=1)
    assert train.shape == M.shape
    assert train.nnz + rows.size == M.nnz
    rebuilt = train + sp.csr_array((values, (rows, cols)), shape=M.shape)
    assert abs(rebuilt - M).max() == 0
    assert 0.25 < rows.size / M.nnz < 0.35
    # some users lost every rating to the test part: they stay as empty rows (cold start)
    assert np.any((np.diff(train.indptr) == 0) & (np.diff(M.indptr) > 0))
    with pytest.raises(ValueError, match="test_fraction"):
        split_ratings(M, 1.0)
    with pytest.raises(TypeError, match="sparse"):
        split_ratings(M.toarray())
