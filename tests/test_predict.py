"""Predictive capacity of the heuristics, and `llmbench predict` for a task or a user's file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_complexity import prepare_fixtures, run_cli

from llmbench.analysis.complexity import HEURISTICS
from llmbench.analysis.correlate import QUALITY
from llmbench.analysis.predict import (
    RIDGE_ALPHA,
    evaluate_predictors,
    loo_predictions,
    predict_outcomes,
    read_user_dataset,
    smoother,
)
from llmbench.errors import LLMBenchError


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A work folder with the 31 fixtures prepared and their heuristics in complexity/train.csv."""
    folder = tmp_path_factory.mktemp("work")
    prepare_fixtures(folder)
    return folder


def synthetic_tasks(target_from=None, seed: int = 0, tasks: int = 31) -> pd.DataFrame:
    """Random heuristics and quality measures for `tasks` tasks; `target_from(frame)` may set
    the average fine-tuned score."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.uniform(0.1, 1.0, size=(tasks, len(QUALITY) + len(HEURISTICS))),
        columns=[*QUALITY, *HEURISTICS],
        index=[f"task{i}" for i in range(tasks)],
    )
    frame["n_examples"] = rng.integers(500, 500_000, size=tasks)
    if target_from is not None:
        frame["avg_ft_score"] = target_from(frame, rng)
    return frame


@pytest.mark.parametrize("alpha", [0.0, RIDGE_ALPHA])
def test_closed_form_leave_one_out_equals_refitting_without_each_task(alpha):
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(9, 2)), rng.normal(size=9)
    fast = loo_predictions(smoother(z, alpha), y[:, None])[:, 0]
    for i in range(9):
        keep = np.arange(9) != i
        mean = z[keep].mean(axis=0)
        design = np.column_stack([np.ones(8), z[keep] - mean])
        weights = np.linalg.solve(
            design.T @ design + alpha * np.diag([0, 1, 1]), design.T @ y[keep]
        )
        assert fast[i] == pytest.approx(weights @ np.concatenate([[1], z[i] - mean]))


def test_a_planted_linear_relation_is_recovered():
    def planted(frame, rng):
        return 0.3 + 0.5 * frame["io_rougeL_mean"] + rng.normal(0, 0.01, len(frame))

    evaluation = evaluate_predictors(synthetic_tasks(planted))[0]
    assert evaluation.target == "avg_ft_score" and evaluation.has_signal
    assert "io_rougeL_mean" in evaluation.best.features and evaluation.best.r2 > 0.95
    assert evaluation.singles[0][0] == "io_rougeL_mean"
    assert evaluation.verdict().startswith("average fine-tuned score: signal:")


def test_noise_is_said_to_carry_no_reliable_signal():
    evaluation = evaluate_predictors(synthetic_tasks(seed=5))[0]
    assert not evaluation.has_signal and evaluation.chosen.kind == "mean"
    assert "no reliable signal" in evaluation.verdict() or "no model" in evaluation.verdict()


def test_the_mean_baseline_scores_just_below_zero_out_of_sample():
    evaluation = evaluate_predictors(synthetic_tasks(seed=1))[0]
    n = 31
    assert evaluation.baseline.r2 == pytest.approx(1 - (n / (n - 1)) ** 2, abs=1e-6)


def test_a_dataset_like_a_known_task_has_that_task_as_nearest_neighbour():
    known = synthetic_tasks(lambda f, rng: 0.2 + 0.6 * f["input_tokens_mean"])
    copy = known.loc["task4", list(HEURISTICS)].to_dict() | {"task": "mine"}
    result = predict_outcomes(copy, known)
    assert result.neighbours[0][:2] == ("task4", 0.0)
    score = result.predictions[0]
    assert score.target == "avg_ft_score" and 0 <= score.low <= score.value <= score.high <= 1
    assert score.value == pytest.approx(known.at["task4", "avg_ft_score"], abs=0.05)


def test_a_known_task_is_left_out_of_its_own_fit():
    known = synthetic_tasks(seed=3)
    result = predict_outcomes(
        known.loc["task0", list(HEURISTICS)].to_dict() | {"task": "task0"}, known
    )
    assert "task0" not in result.known_tasks and len(result.known_tasks) == 30


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_users_dataset_is_read_from_csv_jsonl_or_parquet(tmp_path, suffix):
    frame = pd.DataFrame({"question": ["2+2?", "capital of France?"], "answer": ["4", "Paris"]})
    path = tmp_path / f"mine{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
        ".parquet": lambda: frame.to_parquet(path),
    }[suffix]()
    assert read_user_dataset(path, ["question"], "answer").equals(frame)


def test_a_users_dataset_with_a_missing_column_or_empty_cell_is_an_error(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        json.dumps({"question": "q", "answer": "a"})
        + "\n"
        + json.dumps({"question": None, "answer": "b"})
        + "\n"
    )
    with pytest.raises(LLMBenchError, match="column 'anwser' missing \\(did you mean 'answer'"):
        read_user_dataset(path, ["question"], "anwser")
    with pytest.raises(
        LLMBenchError, match="column 'question' has 1 empty cell\\(s\\) \\(first at row 2\\)"
    ):
        read_user_dataset(path, ["question"], "answer")


def test_predict_for_a_prepared_task(work, capsys):
    status, out, _ = run_cli(capsys, "predict", "--task", "glue_sst2", "--runs", str(work))
    assert status == 0
    assert "glue_sst2: predicted outcome of fine-tuning (fitted on 30 known tasks" in out
    assert "most similar known tasks" in out and "90% range" in out
    assert "not the study's heuristics" in out


def test_predict_for_a_users_file_with_a_template(work, tmp_path, capsys):
    path = tmp_path / "mine.csv"
    pd.DataFrame(
        {"the question": ["Is the sky blue?", "Is fire cold?"] * 5, "answer": ["yes", "no"] * 5}
    ).to_csv(path, index=False)
    status, out, _ = run_cli(
        capsys,
        "predict",
        "--dataset",
        str(path),
        "--input-columns",
        "the question",
        "--target-col",
        "answer",
        "--runs",
        str(work),
    )
    assert status == 0 and "mine: predicted outcome" in out and "from 10 training rows" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "expected --task T, or --dataset FILE with --input-columns and --target-col"),
        (["--dataset", "x.csv", "--input-columns", "q"], "expected --task T, or --dataset FILE"),
        (["--task", "glue_sst2", "--target-col", "y"], "expected it without --data"),
        (["--dataset", "mine.txt", "--input-columns", "q", "--target-col", "a"], "not found"),
    ],
)
def test_predict_without_a_dataset_is_an_error(work, argv, message, capsys):
    status, _, err = run_cli(capsys, "predict", *argv, "--runs", str(work))
    assert status == 2 and message in err
