"""``lowrank complete`` on a ratings file written from a planted matrix."""

import numpy as np
import pytest

from lowrank.cli import main
from lowrank.completion import CompletionResult
from lowrank.datasets import planted_low_rank


def test_complete_subcommand_recovers_planted_ratings(tmp_path, capsys):
    planted = planted_low_rank(120, 90, 2, 0.4, rng=3)
    coo = planted.observed.tocoo()
    path = tmp_path / "ratings.csv"
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{100 + r},{5000 + c},{float(v)!r},{t}" for t, (r, c, v) in enumerate(zip(coo.row, coo.col, coo.data))]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "factors.npz"
    code = main(["complete", str(path), "--rank", "2", "--alpha", "0", "--no-bias", "--tol", "1e-12",
                 "--max-iter", "100", "--validation-fraction", "0", "-o", str(out)])
    assert code == 0
    assert "saved" in capsys.readouterr().out
    result = CompletionResult.load(out)
    assert result.row_ids.tolist() == list(range(100, 220)) and result.col_ids.tolist() == list(range(5000, 5090))
    np.testing.assert_allclose(result.to_dense(), planted.to_dense(), atol=1e-6)


def test_complete_subcommand_with_biases_and_holdout(tmp_path, capsys):
    planted = planted_low_rank(80, 60, 2, 0.5, noise=0.1, rng=4)
    coo = planted.observed.tocoo()
    path = tmp_path / "ratings.tsv"
    path.write_text("".join(f"u{r}\ti{c}\t{3 + v:.4f}\n" for r, c, v in zip(coo.row, coo.col, coo.data)))
    out = tmp_path / "f.npz"
    assert main(["complete", str(path), "--rank", "2", "-o", str(out)]) == 0
    assert "held-out RMSE" in capsys.readouterr().out
    result = CompletionResult.load(out)
    assert result.row_ids.dtype.kind == "U" and result.global_mean == pytest.approx(3 + coo.data.mean(), abs=0.05)


def test_complete_subcommand_help(capsys):
    try:
        code = main(["complete", "--help"])
    except SystemExit as exc:  # argparse's own exit, if the central handler lets it through
        code = exc.code
    assert code == 0
    assert "ratings" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_rows_check_against_references():
    from lowrank.cli.completion import demo

    rows = demo()
    assert len(rows) >= 3
    assert all(row.seconds >= 0 for row in rows)


def test_complete_subcommand_defaults_beat_the_item_means(tmp_path, capsys):
    # 1-5 star ratings from a planted taste model (user and item biases + rank 3 + rounding noise):
    # the defaults (rank, alpha and biases all "auto") must beat the item-mean baseline on the
    # held-out ratings.
    rng = np.random.default_rng(5)
    m, n = 120, 90
    taste = rng.standard_normal((m, 3)) @ rng.standard_normal((3, n)) * 0.6
    truth = 3.2 + rng.normal(0, 0.6, n)[None, :] + rng.normal(0, 0.4, m)[:, None] + taste
    stars = np.clip(np.round(truth + rng.normal(0, 0.3, truth.shape)), 1, 5)
    observed = rng.random((m, n)) < 0.3
    test = observed & (rng.random((m, n)) < 0.2)
    train = observed & ~test
    path = tmp_path / "ratings.csv"
    rows, cols = np.nonzero(train)
    path.write_text("user,item,rating\n" + "".join(f"{r},{c},{stars[r, c]:.0f}\n" for r, c in zip(rows, cols)))
    out = tmp_path / "f.npz"
    assert main(["complete", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out RMSE" in printed and "auto choice" in printed
    result = CompletionResult.load(out)
    assert result.selection is not None and result.global_mean != 0.0
    user_index = {u: k for k, u in enumerate(result.row_ids.tolist())}
    item_index = {i: k for k, i in enumerate(result.col_ids.tolist())}
    t_rows, t_cols = np.nonzero(test)
    keep = [k for k in range(t_rows.size) if t_rows[k] in user_index and t_cols[k] in item_index]
    r = np.array([user_index[t_rows[k]] for k in keep])
    c = np.array([item_index[t_cols[k]] for k in keep])
    y = stars[t_rows[keep], t_cols[keep]]
    rmse = np.sqrt(np.mean((result.predict(r, c) - y) ** 2))
    item_mean = np.array([stars[train[:, j], j].mean() for j in result.col_ids])
    baseline = np.sqrt(np.mean((item_mean[c] - y) ** 2))
    assert rmse < 0.9 * baseline
