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
