"""Quality measures from a scores table, their correlation with the heuristics, the heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_complexity import prepare_fixtures, run_cli

from llmbench.analysis.complexity import HEURISTICS
from llmbench.analysis.correlate import (
    PAPER_SCORES,
    QUALITY,
    correlation_matrix,
    load_scores,
    plot_heatmap,
    quality_measures,
)
from llmbench.errors import LLMBenchError


@pytest.fixture(scope="module")
def fixture_complexity(tmp_path_factory):
    """Heuristics of the 31 shipped fixtures (not the study's: a dozen rows per task)."""
    return prepare_fixtures(tmp_path_factory.mktemp("work"))


@pytest.fixture
def paper_rows():
    return pd.read_csv(PAPER_SCORES, dtype=str, keep_default_na=False)


def test_the_shipped_paper_scores_match_the_studys_table(shared_dir):
    shipped = PAPER_SCORES.read_text()
    assert shipped == (shared_dir / "paper" / "table12_scores.csv").read_text()


def test_paper_scores_have_31_tasks_and_10_base_models():
    scores = load_scores("paper")
    assert scores.shape == (31, 21) and scores.at["glue_mnli", "gpt-4"] == 0.803


def test_quality_measures_match_values_worked_out_by_hand():
    quality = quality_measures(load_scores("paper"))
    # customer_support: every fine-tuned model and GPT-4 score 1.0; base scores sum to 3.74
    assert quality.loc["customer_support"].to_dict() == pytest.approx(
        {
            "gpt4_score": 1.0,
            "max_lift_over_gpt4": 0.0,
            "avg_base_lift": 0.626,
            "best_base_score": 0.85,
            "avg_base_score": 0.374,
            "best_ft_score": 1.0,
            "avg_ft_score": 1.0,
        }
    )
    # glue_wnli: GPT-4 0.93, best fine-tuned 0.873 (mistral-7b); fine-tuned sum 6.928, base 4.031
    assert quality.loc["glue_wnli"].to_dict() == pytest.approx(
        {
            "gpt4_score": 0.93,
            "max_lift_over_gpt4": -0.057,
            "avg_base_lift": 0.2897,
            "best_base_score": 0.437,
            "avg_base_score": 0.4031,
            "best_ft_score": 0.873,
            "avg_ft_score": 0.6928,
        }
    )


def test_correlation_matrix_is_symmetric_with_unit_diagonal_and_matches_scipy():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(12, 4)) @ rng.normal(size=(4, 4)), columns=list("abcd"))
    frame["d"] = frame["d"].round(0)  # ties, for Spearman's average ranks
    for method, reference in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        r, p = correlation_matrix(frame, method)
        assert np.allclose(r, r.T) and np.allclose(np.diag(r), 1.0) and np.allclose(p, p.T)
        for x in frame.columns:
            for y in frame.columns:
                if x != y:
                    expected = reference(frame[x], frame[y])
                    assert r.at[x, y] == pytest.approx(expected[0], abs=1e-12)
                    assert p.at[x, y] == pytest.approx(expected[1], rel=1e-6)


def test_a_planted_linear_relation_shows_as_a_near_perfect_correlation():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "io_rougeL_mean": rng.uniform(0, 0.3, 31),
            "n_examples": rng.integers(500, 500_000, 31).astype(float),
        }
    )
    frame["avg_ft_score"] = 0.9 - 2 * frame["io_rougeL_mean"] + rng.normal(0, 0.005, 31)
    r, p = correlation_matrix(frame)
    assert (
        r.at["avg_ft_score", "io_rougeL_mean"] < -0.99
        and p.at["avg_ft_score", "io_rougeL_mean"] < 1e-20
    )
    assert abs(r.at["avg_ft_score", "n_examples"]) < 0.5


def test_a_constant_column_has_no_correlation():
    frame = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 1, 4, 3], "c": [5.0] * 4})
    r, _ = correlation_matrix(frame)
    assert r["c"].isna().all() and r.loc["c"].isna().all() and r.at["a", "a"] == 1.0


def test_heatmap_is_a_png_of_quality_rows_by_heuristic_columns(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    names = [*QUALITY, *HEURISTICS]
    rng = np.random.default_rng(0)
    r, _ = correlation_matrix(pd.DataFrame(rng.normal(size=(31, len(names))), columns=names))
    plot_heatmap(r, tmp_path / "figure8.png", "test", note="a caveat")
    with pil.open(tmp_path / "figure8.png") as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 300


def test_correlate_with_paper_scores_and_fixture_heuristics(fixture_complexity, tmp_path, capsys):
    status, out, _ = run_cli(
        capsys,
        "correlate",
        "--scores",
        "paper",
        "--complexity",
        str(fixture_complexity),
        "--out",
        str(tmp_path),
    )
    assert status == 0 and "strongest Pearson correlations over 31 tasks" in out
    assert "not the study's heuristics" in out
    for name in (
        "quality",
        "joined",
        "pearson",
        "pearson_p",
        "spearman",
        "spearman_p",
        "prediction",
    ):
        assert (tmp_path / f"{name}.csv").stat().st_size > 0
    assert (tmp_path / "figure8.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pearson = pd.read_csv(tmp_path / "pearson.csv", index_col=0)
    assert list(pearson.index) == [*QUALITY, *HEURISTICS]
    assert np.allclose(pearson.to_numpy(), pearson.to_numpy().T, equal_nan=True)


def corrupt(paper_rows, tmp_path, change) -> str:
    path = tmp_path / "scores.csv"
    change(paper_rows).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.drop(columns="phi-2_base"),
            "model phi-2: column phi-2_base missing; expected its base score beside phi-2_ft",
        ),
        (lambda f: f.drop(columns="gpt-4"), "column 'gpt-4' missing"),
        (
            lambda f: f.assign(**{"gemma-7b_ft": f["gemma-7b_ft"].where(f.index != 7, "n/a")}),
            "task magicoder, column gemma-7b_ft: 'n/a' is not a number; expected a score",
        ),
        (
            lambda f: f.assign(**{"gpt-4": f["gpt-4"].where(f.index != 0, "")}),
            "task bc5cdr, column gpt-4: is empty",
        ),
        (
            lambda f: f[f["task"] != "drop"],
            "task(s) drop missing; expected a score row for every task of",
        ),
        (lambda f: pd.concat([f, f.tail(1)]), "task(s) gsm8k appear twice"),
    ],
    ids=[
        "model without base",
        "no gpt-4",
        "non-numeric",
        "empty cell",
        "missing task",
        "duplicate task",
    ],
)
def test_a_bad_scores_table_is_one_clear_error(
    change, message, paper_rows, fixture_complexity, tmp_path, capsys
):
    scores = corrupt(paper_rows, tmp_path, change)
    status, _, err = run_cli(
        capsys,
        "correlate",
        "--scores",
        scores,
        "--complexity",
        str(fixture_complexity),
        "--out",
        str(tmp_path / "out"),
    )
    assert status == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_every_non_numeric_cell_is_reported_at_once(paper_rows, tmp_path):
    scores = corrupt(
        paper_rows, tmp_path, lambda f: f.assign(**{"phi-2_ft": "x", "gpt-4": f["gpt-4"]})
    )
    with pytest.raises(LLMBenchError) as caught:
        load_scores(scores)
    assert len(caught.value.problems) == 31
