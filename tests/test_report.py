"""`llmbench report`: Table 12 and Figure 5 from a runs tree, checked against numbers worked out
by hand; the study's own table from the shipped scores; the CSV `llmbench correlate` reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from llmbench.analysis.complexity import HEURISTICS
from llmbench.analysis.correlate import PAPER_SCORES, load_scores, quality_measures
from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.report.document import report
from llmbench.report.table12 import complete_block, study_table


def write_run(runs: Path, model: str, task: str, score: float, adapter=None, n=100, failed=0):
    """A scores.json where `llmbench eval` puts it (the inputs of a report, not its output)."""
    leaf = adapter.replace("/", "__") if adapter else "base"
    path = runs / "eval" / model / task / leaf / "scores.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task": task,
        "model": model,
        "adapter": adapter,
        "metric": "accuracy",
        "n": n,
        "n_failed": failed,
        "score": score,
        "failed_ids": list(range(failed)),
        "settings": {"adapter_id": adapter, "endpoint": "http://127.0.0.1:8080"},
    }
    path.write_text(json.dumps(record))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`llmbench ARGV` in-process: exit status, stdout, stderr."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def runs(tmp_path):
    """Two study models and `tiny` on glue_sst2 and gsm8k, with gaps, two adapters for one cell,
    a run with failed requests, and a GPT-4 baseline of our own on gsm8k."""
    root = tmp_path / "runs"
    write_run(root, "mistral-7b", "gsm8k", 0.5, "mistral-7b/gsm8k")
    write_run(root, "mistral-7b", "gsm8k", 0.6, "mistral-7b/gsm8k-v2")
    write_run(root, "mistral-7b", "gsm8k", 0.1)
    write_run(root, "mistral-7b", "glue_sst2", 0.9, "mistral-7b/glue_sst2")
    write_run(root, "mistral-7b", "glue_sst2", 0.4)
    write_run(root, "phi-2", "gsm8k", 0.3, "phi-2/gsm8k")
    write_run(root, "phi-2", "gsm8k", 0.2, failed=2)
    write_run(root, "tiny", "glue_sst2", 0.55, "tiny/glue_sst2")
    write_run(root, "tiny", "glue_sst2", 0.5)
    write_run(root, "gpt-4", "gsm8k", 0.7)
    return root


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The first Markdown table's rows by their first cell."""
    rows, started = {}, False
    for line in markdown.splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
        elif started:
            break
    return rows


def test_markdown_cells_are_best_adapter_score_with_lift_over_base(runs, tmp_path):
    report(runs, tmp_path / "out")
    rows = table_rows((tmp_path / "out" / "table12.md").read_text())
    # columns in the study's model order, then models the study lacks; tasks in its task order
    assert rows["task"] == [
        "phi-2",
        "mistral-7b",
        "tiny",
        "best fine-tuned",
        "GPT-4",
        "lift over GPT-4",
    ]
    assert list(rows)[2:4] == ["glue_sst2", "gsm8k"]
    # gsm8k: mistral's better adapter 0.6 - base 0.1; phi-2's base run had failures; GPT-4 ours
    assert rows["gsm8k"] == [
        "0.300 (+0.100) ⚠",
        "0.600 (+0.500)",
        "",
        "mistral-7b 0.600",
        "0.700 (ours)",
        "-0.100",
    ]
    # glue_sst2: phi-2 absent (not zero); GPT-4 is the study's 0.942
    assert rows["glue_sst2"] == [
        "",
        "0.900 (+0.500)",
        "0.550 (+0.050)",
        "mistral-7b 0.900",
        "0.942",
        "-0.042",
    ]


def test_average_row_runs_over_the_tasks_each_model_has(runs, tmp_path):
    report(runs, tmp_path / "out")
    rows = table_rows((tmp_path / "out" / "table12.md").read_text())
    # GPT-4: (0.942 + 0.7) / 2; lift over GPT-4: (-0.042 - 0.1) / 2
    assert rows["**average**"] == [
        "0.300 (+0.100) [1 of 2 tasks]",
        "0.750 (+0.500)",
        "0.550 (+0.050) [1 of 2 tasks]",
        "",
        "0.821",
        "-0.071",
    ]


def test_failed_requests_and_own_gpt4_are_explained_under_the_table(runs, tmp_path):
    report(runs, tmp_path / "out")
    markdown = (tmp_path / "out" / "table12.md").read_text()
    assert "⚠ " + str(runs / "eval/phi-2/gsm8k/base/scores.json") + ": 2 of 100" in markdown
    assert "your own `gpt-4` base runs (gsm8k)" in markdown


def test_study_values_stand_beside_yours_where_both_have_the_cell(runs, tmp_path):
    report(runs, tmp_path / "out")
    markdown = (tmp_path / "out" / "table12.md").read_text()
    beside = table_rows(markdown.split("## Yours beside the study", 1)[1])
    assert beside["task"] == ["phi-2", "mistral-7b", "GPT-4"]  # tiny is not in the study
    assert beside["gsm8k"] == [
        "0.300 (+0.100) / 0.441 (+0.358)",
        "0.600 (+0.500) / 0.520 (+0.406)",
        "0.700 / 0.373",
    ]
    assert beside["glue_sst2"] == ["", "0.900 (+0.500) / 0.959 (+0.844)", ""]


def test_csv_holds_the_complete_block_in_the_table12_layout(runs, tmp_path):
    report(runs, tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "table12.csv")
    # phi-2 lacks glue_sst2 and tiny lacks gsm8k: dropped one at a time until no gap is left
    assert list(frame.columns) == [
        "task",
        "mistral-7b_ft",
        "tiny_ft",
        "mistral-7b_base",
        "tiny_base",
        "gpt-3.5-turbo",
        "gpt-4",
    ]
    assert frame.to_dict("records") == [
        {
            "task": "glue_sst2",
            "mistral-7b_ft": 0.9,
            "tiny_ft": 0.55,
            "mistral-7b_base": 0.4,
            "tiny_base": 0.5,
            "gpt-3.5-turbo": 0.933,
            "gpt-4": 0.942,
        }
    ]
    assert "leaves out, for gaps: gsm8k, phi-2" in (tmp_path / "out" / "table12.md").read_text()


def test_cells_csv_keeps_every_cell_with_its_adapter_and_the_studys(runs, tmp_path):
    report(runs, tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index(["task", "model"])
    assert len(cells) == 4
    mistral = cells.loc[("gsm8k", "mistral-7b")]
    assert mistral["adapter"] == "mistral-7b/gsm8k-v2"
    assert mistral[["ft", "base", "lift", "study_ft", "study_base"]].tolist() == pytest.approx(
        [0.6, 0.1, 0.5, 0.52, 0.114]
    )
    assert cells.loc[("gsm8k", "phi-2"), "n_failed"] == 2
    assert np.isnan(cells.loc[("glue_sst2", "tiny"), "study_ft"])


def test_correlate_reads_the_report_csv(tmp_path, capsys):
    tasks = ["bc5cdr", "conllpp", "e2e_nlg", "viggo", "boolq", "gsm8k"]
    runs = tmp_path / "runs"
    for i, task in enumerate(tasks):
        for j, model in enumerate(["mistral-7b", "phi-2"]):
            write_run(runs, model, task, 0.5 + 0.05 * i + 0.01 * j, f"{model}/{task}")
            write_run(runs, model, task, 0.1 + 0.03 * i * j)
    status, _, err = run_cli(capsys, "report", "--runs", str(runs), "--out", str(tmp_path / "out"))
    assert status == 0, err
    scores = load_scores(tmp_path / "out" / "table12.csv")
    assert list(scores.index) == tasks
    assert quality_measures(scores).at["gsm8k", "best_ft_score"] == pytest.approx(0.76)
    rng = np.random.default_rng(0)
    complexity = pd.DataFrame(
        rng.uniform(1, 100, (len(tasks), len(HEURISTICS))), columns=HEURISTICS
    )
    complexity.insert(0, "task", tasks)
    complexity.to_csv(tmp_path / "train.csv", index=False)
    status, _, err = run_cli(
        capsys,
        "correlate",
        "--scores",
        str(tmp_path / "out" / "table12.csv"),
        "--complexity",
        str(tmp_path / "train.csv"),
        "--out",
        str(tmp_path / "correlate"),
    )
    assert status == 0, err
    assert (tmp_path / "correlate" / "quality.csv").is_file()


def test_figure5_is_a_png_of_plausible_size(runs, tmp_path):
    report(runs, tmp_path / "out")
    with Image.open(tmp_path / "out" / "figure5.png") as image:
        assert image.format == "PNG"
        assert 600 <= image.width <= 6000 and 400 <= image.height <= 2000


def test_paper_csv_round_trips_the_shipped_scores(tmp_path, capsys):
    status, out, _ = run_cli(capsys, "report", "--paper", "--out", str(tmp_path / "paper"))
    assert status == 0 and "31 tasks × 10 models: the best adapter beats GPT-4 on 24 of 31" in out
    ours = load_scores(tmp_path / "paper" / "table12.csv")
    pd.testing.assert_frame_equal(ours, load_scores("paper"))
    assert (tmp_path / "paper" / "table12.csv").read_text().splitlines() == (
        PAPER_SCORES.read_text().splitlines()
    )


def test_paper_table_reproduces_the_studys_numbers(tmp_path):
    report(None, tmp_path / "paper")
    rows = table_rows((tmp_path / "paper" / "table12.md").read_text())
    mistral = rows["task"].index("mistral-7b")
    # the mean of mistral-7b's 31 fine-tuned scores (22.685 / 31) and of its 31 lifts
    assert rows["**average**"][mistral] == "0.732 (+0.461)"
    assert rows["bc5cdr"][mistral] == "0.972 (+0.795)"
    assert rows["bc5cdr"][-3:] == ["mistral-7b 0.972", "0.890", "+0.082"]
    assert rows["magicoder"][-3:] == ["gemma-7b 0.433", "0.829", "-0.396"]
    assert rows["customer_support"][-3] == "phi-2 (+9 tied) 1.000"
    assert "Yours beside the study" not in (tmp_path / "paper" / "table12.md").read_text()


def test_paper_table_is_complete():
    study = study_table()
    assert complete_block(study) == (study.tasks, study.models)
    assert study.ft.at["glue_wnli", "mistral-7b"] == 0.873


def test_runs_without_scores_are_an_error_exit_2(tmp_path, capsys):
    (tmp_path / "empty" / "eval").mkdir(parents=True)
    status, _, err = run_cli(capsys, "report", "--runs", str(tmp_path / "empty"))
    assert status == 2
    assert err.count("\n") == 1 and "no eval/*/*/*/scores.json" in err


def test_a_corrupt_scores_json_is_named_exit_2(runs, capsys):
    broken = runs / "eval" / "tiny" / "glue_sst2" / "base" / "scores.json"
    broken.write_text('{"task": "glue_sst2", "model": ')
    status, _, err = run_cli(capsys, "report", "--runs", str(runs))
    assert status == 2
    assert err.count("\n") == 1 and str(broken) in err and "not readable as JSON" in err


def test_a_scores_json_without_a_score_is_named(runs):
    path = write_run(runs, "tiny", "gsm8k", 0.1)
    record = json.loads(path.read_text())
    del record["score"]
    path.write_text(json.dumps(record))
    with pytest.raises(LLMBenchError, match=f"{path}: key\\(s\\) score missing"):
        report(runs, runs / "report")


def test_runs_and_paper_together_are_an_error(runs, capsys):
    status, _, err = run_cli(capsys, "report", "--runs", str(runs), "--paper")
    assert status == 2 and "--runs and --paper" in err


def test_a_model_with_only_a_base_run_shows_its_base_score(runs, tmp_path):
    write_run(runs, "gemma-2b", "gsm8k", 0.026)
    report(runs, tmp_path / "out")
    rows = table_rows((tmp_path / "out" / "table12.md").read_text())
    gemma = rows["task"].index("gemma-2b")
    assert rows["gsm8k"][gemma] == "base 0.026" and rows["glue_sst2"][gemma] == ""
    assert rows["**average**"][gemma] == ""


def test_runs_of_baselines_only_are_an_error(tmp_path):
    write_run(tmp_path, "gpt-4", "gsm8k", 0.7)
    with pytest.raises(LLMBenchError, match="only baseline runs"):
        report(tmp_path, tmp_path / "report")


def test_a_second_base_run_of_one_cell_names_both_files(runs):
    first = runs / "eval" / "tiny" / "glue_sst2" / "base" / "scores.json"
    second = write_run(runs, "tiny", "glue_sst2", 0.5, adapter=None)
    moved = second.parent.parent / "base-again" / "scores.json"
    moved.parent.mkdir()
    moved.write_text(first.read_text())
    with pytest.raises(LLMBenchError, match="a second base run of tiny on glue_sst2") as caught:
        report(runs, runs / "report")
    assert str(first) in str(caught.value) and str(moved) in str(caught.value)
