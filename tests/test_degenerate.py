"""Degenerate answers: one label, or one string, for nearly every row, flagged in the run's
scores.json and in the report, with the answers' distribution beside the gold one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmbench.evaluate.answers import NO_ANSWER, answer_stats
from llmbench.evaluate.harness import EvalSettings, load_examples, score_run
from llmbench.prepare.demo_data import demo_source
from llmbench.prepare.tables import prepare_task
from llmbench.report.document import report

GOLD_69 = ["1"] * 69 + ["0"] * 31  # glue_cola's dev split is about this


def test_one_label_for_every_row_is_flagged_when_the_gold_majority_is_under_70_percent():
    stats = answer_stats(["1"] * 100, GOLD_69, classification=True)
    assert stats["flag"] == (
        "one answer ('1') on 100% of the rows, while the gold majority ('1') covers 69%"
    )
    assert stats["answers"] == {"1": 100} and stats["gold"] == {"1": 69, "0": 31}


def test_one_label_on_a_split_that_is_mostly_that_label_is_not_flagged():
    gold = ["1"] * 75 + ["0"] * 25
    assert answer_stats(["1"] * 100, gold, classification=True)["flag"] is None


def test_a_label_on_89_percent_of_the_rows_is_not_flagged():
    outputs = ["D"] * 89 + ["A"] * 11
    stats = answer_stats(outputs, ["A", "B", "C", "D"] * 25, classification=True)
    assert stats["top_answer_share"] == pytest.approx(0.89) and stats["flag"] is None


def test_the_answer_is_the_answer_line_so_markup_does_not_hide_a_single_label():
    outputs = ["D", "Answer: D", "**D**", "D\nbecause"] * 25
    stats = answer_stats(outputs, ["A", "B", "C", "D"] * 25, classification=True)
    assert stats["top_answer"] == "D" and stats["top_answer_share"] == 1.0
    assert stats["top_output_share"] == 0.25 and stats["flag"].startswith("one answer ('D')")


def test_one_output_string_for_nearly_every_row_of_a_generation_task_is_flagged():
    stats = answer_stats(["3.5"] * 199 + ["2"], [str(i % 6) for i in range(200)], False)
    assert stats["flag"] == "the same output ('3.5') on 99.5% of the rows"  # not rounded up
    assert "answers" not in stats  # distributions are for classification tasks only


def test_varied_generation_outputs_are_not_flagged():
    outputs = [f"The {i} restaurant" for i in range(20)]
    assert answer_stats(outputs, outputs, classification=False)["flag"] is None


def test_failed_requests_are_no_answer_never_a_label():
    stats = answer_stats([None] * 95 + ["1"] * 5, GOLD_69[:100], classification=True)
    assert stats["top_answer"] == NO_ANSWER and stats["flag"] is None


def test_a_run_records_its_answers_and_the_report_flags_and_explains_it(tmp_path):
    work = tmp_path / "work"
    prepare_task("glue_sst2", source=demo_source("glue_sst2"), out_dir=work, progress=False)
    runs = tmp_path / "runs"
    for adapter, answer in ((None, "0"), ("tiny/glue_sst2", "1")):
        settings = EvalSettings(task="glue_sst2", endpoint="", model="tiny", adapter_id=adapter)
        examples, metric = load_examples(settings, work)
        out = runs / "eval" / "tiny" / "glue_sst2" / (adapter or "base").replace("/", "__")
        score_run(settings, examples, metric, {e.id: {"output": answer} for e in examples}, out)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["answers"]["answers"] == {"1": 60} and scores["answers"]["gold"] == {
        "0": 30, "1": 30,
    }  # fmt: skip
    assert scores["answers"]["flag"].startswith("one answer ('1') on 100% of the rows")

    report(runs, tmp_path / "out")
    text = (tmp_path / "out" / "table12.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| glue_sst2"))
    assert row.split("|")[2].strip().endswith("⚑")
    assert "⚑ glue_sst2 tiny adapter: one answer ('1') on 100% of the rows" in text
    assert "⚑ glue_sst2 tiny base: one answer ('0') on 100% of the rows" in text
    assert "on a classification task one answer on >= 90% of the rows" in text
    answers = text.split("## Answers", 1)[1]
    assert "| glue_sst2 | tiny | adapter ⚑ | '1' 100% | '0' 50% | 100% | '1' 100% |" in answers
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index(["task", "model"])
    assert cells.loc[("glue_sst2", "tiny"), "ft_top_answer_share"] == 1.0
    assert cells.loc[("glue_sst2", "tiny"), "flag"].startswith("adapter: one answer ('1')")


def test_a_report_of_healthy_answers_flags_nothing(tmp_path):
    work = tmp_path / "work"
    prepare_task("glue_sst2", source=demo_source("glue_sst2"), out_dir=work, progress=False)
    settings = EvalSettings(task="glue_sst2", endpoint="", model="tiny")
    examples, metric = load_examples(settings, work)
    out = tmp_path / "runs" / "eval" / "tiny" / "glue_sst2" / "base"
    score_run(settings, examples, metric, {e.id: {"output": e.target} for e in examples}, out)
    report(tmp_path / "runs", tmp_path / "out")
    assert "⚑" not in (tmp_path / "out" / "table12.md").read_text().split("## Answers")[0]
