"""The paired bootstrap behind every interval of the report, on cases with a known answer; and
the intervals where a reader sees them: table12.md, table12.csv, cells.csv, `llmbench report`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmbench.cli import main
from llmbench.report.document import report
from llmbench.report.intervals import (
    RESAMPLES,
    SEED,
    lift_interval,
    mean_lift_interval,
    method_text,
    score_interval,
)


def test_a_constant_difference_collapses_the_lift_interval_to_that_difference():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 0.7, 200)
    found = lift_interval(base, base + 0.25, "cell")
    assert found.low == pytest.approx(0.25) and found.high == pytest.approx(0.25)


def test_the_same_scores_on_every_row_have_a_point_interval():
    found = score_interval([0.5] * 40, "cell")
    assert (found.low, found.high) == pytest.approx((0.5, 0.5))


def test_a_bernoulli_scores_interval_matches_the_normal_approximation():
    """n = 400 rows scored 0 or 1 with p = 0.5: the width is close to 2 * 1.96 * sqrt(pq/n)."""
    scores = [1.0] * 200 + [0.0] * 200
    found = score_interval(scores, "bernoulli")
    expected = 2 * 1.96 * math.sqrt(0.25 / 400)  # 0.098
    assert found.width == pytest.approx(expected, rel=0.1)
    assert found.low < 0.5 < found.high


def test_pairing_narrows_the_lift_interval_on_correlated_rows():
    """The adapter is right where the base model is, plus on a few more rows: what the two
    share cancels out of the paired lift and not of the unpaired one."""
    rng = np.random.default_rng(2)
    base = (rng.uniform(size=300) < 0.5).astype(float)
    adapter = np.maximum(base, (rng.uniform(size=300) < 0.1).astype(float))
    paired = lift_interval(base, adapter, "cell")
    unpaired = lift_interval(base, adapter, "cell", paired=False)
    assert paired.width < 0.5 * unpaired.width
    lift = adapter.mean() - base.mean()
    assert paired.low <= lift <= paired.high and paired.low > 0


def test_the_mean_lift_over_tasks_averages_each_tasks_own_resamples():
    rng = np.random.default_rng(3)
    one, two = rng.uniform(size=50), rng.uniform(size=80)
    found = mean_lift_interval({"a": (one, one + 0.1), "b": (two, two + 0.3)})
    assert (found.low, found.high) == pytest.approx((0.2, 0.2))


def test_the_mean_lift_of_independent_tasks_is_narrower_than_each():
    rng = np.random.default_rng(4)
    pairs = {
        str(k): ((rng.uniform(size=200) < 0.4) * 1.0, (rng.uniform(size=200) < 0.6) * 1.0)
        for k in range(4)
    }
    mean = mean_lift_interval(pairs)
    each = [lift_interval(b, a, k) for k, (b, a) in pairs.items()]
    assert mean.width < min(e.width for e in each)


def test_an_interval_is_the_same_every_time_and_says_how_it_was_made():
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert score_interval(scores, "x") == score_interval(scores, "x")
    assert f"{RESAMPLES} resamples" in method_text() and f"seed {SEED}" in method_text()
    assert (RESAMPLES, SEED) == (1000, 0)


# ---- in the report -----------------------------------------------------------------------------


def write_run(runs: Path, task: str, scores: dict[int, float], adapter=None, answers=None):
    """A scores.json as `llmbench eval` writes it now: with its rows and their scores."""
    leaf = adapter.replace("/", "__") if adapter else "base"
    path = runs / "eval" / "tiny" / task / leaf / "scores.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task": task, "model": "tiny", "adapter": adapter, "metric": "m", "n": len(scores),
        "n_failed": 0, "score": sum(scores.values()) / len(scores), "failed_ids": [],
        "ids": list(scores), "example_scores": list(scores.values()),
    }  # fmt: skip
    if answers is not None:
        record["answers"] = answers
    path.write_text(json.dumps(record))


@pytest.fixture
def runs(tmp_path):
    """tiny on two tasks: glue_sst2's adapter right on 60 of 100 rows where the base is right
    on 40 (paired, a constant +0.2 on 20 rows); gsm8k a constant lift of exactly 0.1."""
    root = tmp_path / "runs"
    base = {i: float(i % 5 < 2) for i in range(100)}
    write_run(root, "glue_sst2", base)
    write_run(root, "glue_sst2", {i: float(i % 5 < 3) for i in range(100)}, "tiny/glue_sst2")
    write_run(root, "gsm8k", {i: 0.5 for i in range(50)})
    write_run(root, "gsm8k", {i: 0.6 for i in range(50)}, "tiny/gsm8k")
    return root


def rows_of(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.split("## ", 1)[0].splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_table12_md_shows_each_score_lift_and_mean_lift_with_its_interval(runs, tmp_path):
    result = report(runs, tmp_path / "out")
    text = (tmp_path / "out" / "table12.md").read_text()
    rows = rows_of(text)
    assert rows["gsm8k"][0] == "0.600 [0.600, 0.600] (+0.100 [+0.100, +0.100])"
    sst2 = result.intervals.cells[("glue_sst2", "tiny")]
    assert rows["glue_sst2"][0] == (f"0.600 {sst2.ft.text()} (+0.200 {sst2.lift.text('+.3f')})")
    assert sst2.ft.low < 0.6 < sst2.ft.high and 0 < sst2.lift.low < 0.2 < sst2.lift.high
    # the mean lift: gsm8k's is a point, so its interval is half of glue_sst2's, shifted
    mean = result.intervals.mean_lift["tiny"]
    assert mean.low == pytest.approx((sst2.lift.low + 0.1) / 2)
    assert mean.high == pytest.approx((sst2.lift.high + 0.1) / 2)
    assert rows["**average**"][0] == f"0.600 (+0.150 {mean.text('+.3f')})"
    assert "percentile bootstrap over examples, 1000 resamples, seed 0" in text


def test_table12_csv_and_cells_csv_carry_the_bounds(runs, tmp_path):
    report(runs, tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index(["task", "model"])
    gsm8k = cells.loc[("gsm8k", "tiny")]
    assert gsm8k[
        ["ft_low", "ft_high", "base_low", "base_high", "lift_low", "lift_high"]
    ].tolist() == (pytest.approx([0.6, 0.6, 0.5, 0.5, 0.1, 0.1]))
    table = pd.read_csv(tmp_path / "out" / "table12.csv")
    assert "tiny_lift_low" in table.columns and "tiny_ft" in table.columns


def test_report_prints_the_cells_with_their_intervals(runs, tmp_path, capsys):
    assert main(["report", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "+0.100 [+0.100, +0.100]" in out and "mean lift" in out and "1000 resamples" in out


def test_runs_scored_on_different_rows_get_no_paired_lift(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "gsm8k", {i: 0.5 for i in range(50)})
    write_run(root, "gsm8k", {i: 0.6 for i in range(10, 60)}, "tiny/gsm8k")
    result = report(root, tmp_path / "out")
    cell = result.intervals.cells[("gsm8k", "tiny")]
    assert cell.lift is None and cell.ft is not None and result.intervals.mean_lift["tiny"] is None
    assert (
        "scored on different rows: no paired lift" in (tmp_path / "out" / "table12.md").read_text()
    )


def test_runs_without_per_example_scores_have_no_interval(tmp_path):
    path = tmp_path / "runs" / "eval" / "tiny" / "gsm8k" / "base" / "scores.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"task": "gsm8k", "model": "tiny", "adapter": None,
                                "score": 0.5, "n": 4, "n_failed": 0}))  # fmt: skip
    result = report(tmp_path / "runs", tmp_path / "out")
    assert not result.intervals.any
    assert rows_of((tmp_path / "out" / "table12.md").read_text())["gsm8k"][0] == "base 0.500"


def test_mismatched_per_example_scores_are_one_line(tmp_path, capsys):
    path = tmp_path / "runs" / "eval" / "tiny" / "gsm8k" / "base" / "scores.json"
    path.parent.mkdir(parents=True)
    record = {"task": "gsm8k", "model": "tiny", "adapter": None, "score": 0.5, "n": 2}
    path.write_text(json.dumps({**record, "n_failed": 0, "ids": [0, 1], "example_scores": [1.0]}))
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: ids and example_scores" in err
