"""`llmbench predict --check`: each task's lift forecast by `predict` fitted without it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_complexity import run_cli

from llmbench.analysis.complexity import HEURISTICS
from llmbench.analysis.correlate import load_scores
from llmbench.analysis.predict import predict_outcomes
from llmbench.analysis.predict_check import (
    REFIT,
    Check,
    Forecast,
    check_predict,
    measured_lifts,
)

STUDY_TASKS = list(load_scores("paper").index[:12])  # names the study has: the shipped fit runs


def write_bakeoff(folder, lifts, tasks=None, seed: int = 0, model: str = "tiny"):
    """A bake-off's own scores (no gpt-4 column) and random heuristics of its tasks, laid out
    as `<folder>/correlate/bakeoff/scores.csv` and `<folder>/complexity/train.csv`; `lifts`
    is a list (one per task), or a function of the heuristics of 12 tasks."""
    tasks = tasks or [f"task{i}" for i in range(12 if callable(lifts) else len(lifts))]
    rng = np.random.default_rng(seed)
    heuristics = pd.DataFrame(
        rng.uniform(0.1, 1.0, size=(len(tasks), len(HEURISTICS))),
        columns=list(HEURISTICS),
        index=pd.Index(tasks, name="task"),
    )
    heuristics["n_examples"] = rng.integers(500, 500_000, size=len(tasks))
    lift = np.asarray(lifts(heuristics) if callable(lifts) else lifts, dtype=float)
    base = rng.uniform(0.2, 0.4, size=len(tasks))
    scores = pd.DataFrame(
        {f"{model}_ft": base + lift, f"{model}_base": base}, index=heuristics.index
    )
    paths = folder / "correlate" / "bakeoff" / "scores.csv", folder / "complexity" / "train.csv"
    for path, table in zip(paths, (scores, heuristics), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path)
    return paths


def test_a_lift_linear_in_one_heuristic_is_forecast_out_of_sample(tmp_path):
    scores, complexity = write_bakeoff(tmp_path, lambda h: 0.6 * h["io_rougeL_mean"] - 0.3)
    result = check_predict(scores, complexity, tmp_path / "out")
    assert result.refit.r2 == pytest.approx(1.0, abs=1e-6)
    assert result.refit.sign_share == 1.0 and result.refit.goal_met
    assert all("io_rougeL_mean" in f.model for f in result.refit.forecasts)


def test_a_lift_of_pure_noise_is_not_forecast(tmp_path):
    lifts = np.random.default_rng(7).normal(0.1, 0.2, size=12)
    scores, complexity = write_bakeoff(tmp_path, lifts)
    result = check_predict(scores, complexity, tmp_path / "out")
    assert result.refit.r2 <= 0 and not result.refit.goal_met


def test_each_forecast_is_predicts_own_fitted_without_that_task(tmp_path):
    scores, complexity = write_bakeoff(tmp_path, lambda h: h["input_tokens_mean"] - 0.5, seed=3)
    result = check_predict(scores, complexity, tmp_path / "out")
    known, _ = measured_lifts(scores, complexity)
    task = result.refit.forecasts[4].task
    alone = predict_outcomes(
        known.loc[task, list(HEURISTICS)].to_dict() | {"task": task}, known.drop(index=task)
    )
    assert result.refit.forecasts[4].forecast == alone.predictions[1].value


def test_r2_is_out_of_sample_about_the_measured_mean_and_a_measured_zero_has_no_sign():
    check = Check(
        REFIT,
        [
            Forecast("a", 0.2, 0.1, "m"),
            Forecast("b", -0.2, -0.1, "m"),
            Forecast("c", 0.0, 0.3, "m"),
        ],
    )
    # SST about the mean 0: 0.08; SSE: 0.01 + 0.01 + 0.09
    assert check.r2 == pytest.approx(1 - 0.11 / 0.08)
    assert check.right_signs == 2 and check.forecasts[2].error == pytest.approx(0.3)


def test_the_model_as_shipped_is_checked_apart_on_the_studys_tasks(tmp_path):
    scores, complexity = write_bakeoff(tmp_path, np.linspace(-0.1, 0.5, 12), tasks=STUDY_TASKS)
    result = check_predict(scores, complexity, tmp_path / "out")
    assert result.shipped is not None and [f.task for f in result.shipped.forecasts] == STUDY_TASKS
    assert result.baseline_r2 == pytest.approx(1 - (12 / 11) ** 2)
    shipped = pd.read_csv(tmp_path / "out" / "shipped.csv")
    assert list(shipped.columns) == ["task", "measured", "forecast", "error", "model"]
    assert shipped["error"].to_numpy() == pytest.approx(shipped.forecast - shipped.measured)


def test_tasks_the_study_lacks_leave_the_shipped_model_unchecked_with_a_note(tmp_path):
    scores, complexity = write_bakeoff(tmp_path, np.linspace(-0.1, 0.5, 12))
    result = check_predict(scores, complexity, tmp_path / "out")
    assert result.shipped is None and "the model as shipped not checked" in result.notes[0]


def test_three_tasks_are_enough_and_one_model_of_several_is_chosen(tmp_path):
    scores, complexity = write_bakeoff(tmp_path, [0.1, 0.3, -0.2], tasks=["a", "b", "c"])
    table = pd.read_csv(scores).assign(other_ft=0.9, other_base=0.1)
    table.to_csv(scores, index=False)
    result = check_predict(scores, complexity, tmp_path / "out", model="tiny")
    assert result.lift == "lift of tiny"
    assert [f.measured for f in result.refit.forecasts] == pytest.approx([0.1, 0.3, -0.2])


def test_check_from_a_bake_offs_work_directory_writes_beside_its_scores(tmp_path, capsys):
    write_bakeoff(tmp_path, lambda h: 0.6 * h["io_rougeL_mean"] - 0.3)
    status, out, _ = run_cli(capsys, "predict", "--check", "--runs", str(tmp_path))
    assert status == 0 and "sign right on 12 of 12 tasks (100%); goal" in out
    written = sorted(p.name for p in (tmp_path / "correlate/bakeoff/predict-check").iterdir())
    assert written == ["forecast-vs-measured.png", "refit.csv", "summary.md"]
    summary = (tmp_path / "correlate/bakeoff/predict-check/summary.md").read_text()
    assert "1 − SSE/SST, SST about the mean of the measured lifts" in summary


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (lambda p: write_bakeoff(p, [0.1, 0.2], tasks=["a", "b"]), [], "2 task(s); expected at"),
        (lambda p: write_bakeoff(p, [0.2] * 5, tasks=list("abcde")), [], "lift is +0.200 on every"),
        (lambda p: write_bakeoff(p, [0.1] * 4), ["--task", "x"], "expected it without --task"),
        (lambda p: write_bakeoff(p, [0.1, 0.3, 0.2]), ["--model", "tinny"], "did you mean 'tiny'"),
        (lambda p: None, [], "scores.csv: not found"),
    ],
)
def test_bad_input_to_the_check_is_one_line_and_exit_2(tmp_path, capsys, make, argv, message):
    make(tmp_path)
    status, _, err = run_cli(capsys, "predict", "--check", *argv, "--runs", str(tmp_path))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_task_without_heuristics_is_named(tmp_path, capsys):
    _, complexity = write_bakeoff(tmp_path, [0.1, 0.3, 0.2, 0.0], tasks=list("abcd"))
    pd.read_csv(complexity).iloc[1:].to_csv(complexity, index=False)
    status, _, err = run_cli(capsys, "predict", "--check", "--runs", str(tmp_path))
    assert status == 2 and "train.csv: no heuristics for task(s) a; expected a row" in err
