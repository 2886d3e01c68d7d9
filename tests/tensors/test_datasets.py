"""Continuous-indexed tensor data: planted functions, the vega_datasets temperatures, file loading."""

import numpy as np
import pytest

from lowrank.datasets import continuous_tensor, load_continuous_tensor, load_temperatures


@pytest.mark.parametrize("kind, K", [("paper", 2), ("cp3", 3), ("tucker3", 3)])
def test_continuous_tensor_values_are_the_planted_function_plus_noise(kind, K):
    data = continuous_tensor(2000, kind=kind, noise=0.05, rng=0)
    assert data.coords.shape == (2000, K) and ((data.coords >= 0) & (data.coords < 1)).all()
    np.testing.assert_array_equal(data.clean, data.function(data.coords))
    assert np.std(data.values - data.clean) == pytest.approx(0.05, rel=0.1)
    again = continuous_tensor(2000, kind=kind, noise=0.05, rng=0)
    np.testing.assert_array_equal(again.values, data.values)


def test_paper_recipe_is_the_published_product():
    data = continuous_tensor(50, noise=0.0, rng=1)
    x, y = data.coords.T
    ref = np.sin(2 * np.pi * x) ** 2 * np.cos(2 * np.pi * x) * np.exp(-2 * y) * np.sin(1.5 * np.pi * y)
    np.testing.assert_allclose(data.values, ref, rtol=1e-14)


def test_continuous_tensor_bad_input():
    with pytest.raises(ValueError, match="kind"):
        continuous_tensor(10, kind="nope")
    with pytest.raises(ValueError, match="noise"):
        continuous_tensor(10, noise=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        continuous_tensor(0)


def test_load_temperatures_matches_the_raw_tables():
    vega = pytest.importorskip("vega_datasets")
    data = load_temperatures()
    assert data.tensor.shape == (2, 365, 24)
    assert data.values.shape == (17518,) and np.isnan(data.tensor).sum() == 2  # the DST hour, per city
    raw = vega.local_data.sf_temps()
    row = raw.iloc[1000]
    day, hour = row["date"].day_of_year, row["date"].hour
    assert data.tensor[1, day - 1, hour] == row["temp"]
    pick = (data.coords[:, 0] == data.latitudes[1]) & (data.coords[:, 1] == day) & (data.coords[:, 2] == hour)
    assert data.values[pick].tolist() == [row["temp"]]


def test_load_continuous_tensor_formats(tmp_path):
    table = np.array([[0.1, 0.2, 1.0], [0.3, 0.4, 2.0], [0.5, 0.6, 3.0]])
    np.save(tmp_path / "a.npy", table)
    np.savetxt(tmp_path / "a.csv", table, delimiter=",", header="x,y,value")
    np.savez(tmp_path / "a.npz", coords=table[:, :2], values=table[:, 2])
    for name in ("a.npy", "a.csv", "a.npz"):
        coords, values = load_continuous_tensor(tmp_path / name)
        np.testing.assert_allclose(coords, table[:, :2])
        np.testing.assert_allclose(values, table[:, 2])
    coords, values = load_continuous_tensor(tmp_path / "a.npy", value_column=0)
    np.testing.assert_allclose(values, table[:, 0])
    np.save(tmp_path / "bad.npy", np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        load_continuous_tensor(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="value_column"):  # 3 columns: -3 .. 2, not wrapped around
        load_continuous_tensor(tmp_path / "a.npy", value_column=3)
    with pytest.raises(TypeError, match="value_column"):
        load_continuous_tensor(tmp_path / "a.npy", value_column=1.0)
    np.save(tmp_path / "flat.npy", np.arange(3.0))
    with pytest.raises(ValueError, match="2-D"):
        load_continuous_tensor(tmp_path / "flat.npy")
