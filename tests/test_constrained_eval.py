"""Constrained evaluation (docs/evaluation.md): a classification task's answers restricted to its
card's labels by the real `llmbench serve`'s structured output, scored beside the free answers
on the same rows, and reported side by side with paired intervals; and its bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from serving_fixtures import TRAIN_PROMPTS

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.constrained import chosen_label
from llmbench.evaluate.harness import RESPONSES, SCORES, EvalSettings, answer_settings
from llmbench.evaluate.responses import check_same_run, read_response_file
from llmbench.workdir import Workdir

TASK = "word_kind"  # a task of this test's own: its card and rows are written here
LABELS = ("alpha", "beta", "gamma")
CARD = """\
version: 1
name: {name}
description: Name the word a text is about (invented rows for the constrained-evaluation tests)
category: Classic NLP
dataset_link: rows written in tests/test_constrained_eval.py
source:
  kind: local
  id: words
  splits:
    train: train.jsonl
    test: test.jsonl
prompt_template: |-
  {{text}}
input_columns: [text]
target_col: label
metric_name: {metric}
{labels}split_column: split
split_column_value: 2
split_counts: {{train: null, validation: null, test: null}}
max_new_tokens: 12
study_tokens: {{min: 2, max: 40, p95: 30}}
"""
PREPARE = '''\
"""One JSON object per line, {"text": ..., "label": ...}, one file per split."""

import json


def read_rows(source, card):
    for split, name in card.source["splits"].items():
        with open(source / name, encoding="utf-8") as handle:
            for line in handle:
                yield split, json.loads(line)
'''
# The serving fixtures' own prompts (what the adapters were trained on) and a few others.
TEXTS = [
    *TRAIN_PROMPTS,
    "The quick brown fox jumps over the lazy dog.",
    "Serving many adapters on one base model.",
    "Say a word",
    "Answer:",
]


def write_task(root: Path, name: str = TASK, labels=LABELS, metric: str = "label_accuracy",
               targets=LABELS) -> Path:  # fmt: skip
    """`<root>/<name>/` (card, prepare.py, fixture/): TEXTS as the test split, the targets
    cycling through `targets`; `labels` None leaves the card's key out."""
    folder = root / name
    (folder / "fixture").mkdir(parents=True)
    line = "" if labels is None else f"labels: {json.dumps(list(labels))}\n"
    card = CARD.format(name=name, metric=metric, labels=line)
    (folder / "metadata.yaml").write_text(card, encoding="utf-8")
    (folder / "prepare.py").write_text(PREPARE, encoding="utf-8")
    rows = [{"text": t, "label": targets[i % len(targets)]} for i, t in enumerate(TEXTS)]
    parts = {"train": rows[:1], "test": rows}
    for split, chosen in parts.items():
        text = "".join(json.dumps(row) + "\n" for row in chosen)
        (folder / "fixture" / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return root


def prepared(tmp: Path, **card) -> tuple[Path, Path]:
    """A task folder written by `write_task` and prepared: (datasets folder, runs folder)."""
    datasets, runs = write_task(tmp / "tasks", **card), tmp / "runs"
    name = card.get("name", TASK)
    common = ["--datasets", str(datasets), "--runs", str(runs)]
    assert main(["prepare", "--task", name, "--fixture", *common]) == 0
    return datasets, runs


def records(path: Path) -> dict[int, dict]:
    return read_response_file(path).records


def one_error(capsys) -> str:
    """The one line a refused command printed."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- against the real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bakeoff(served, tmp_path_factory):
    """The bake-off's evaluation stage with `constrained: true`, against the session's server:
    the tiny base model and the adapter `tiny/word_kind` (a copy of the fixtures' adapter
    `alpha`, in the server's adapters root), each free and constrained on the task's rows."""
    from llmbench.bakeoff.pipeline import BakeoffConfig, Endpoints, evaluate_stage, resolve

    tmp = tmp_path_factory.mktemp("constrained")
    datasets, runs = prepared(tmp)
    shutil.copytree(served["root"] / "alpha", served["root"] / "tiny" / TASK)
    config = BakeoffConfig(
        models=["tiny"], tasks=[TASK], datasets=str(datasets), endpoint=served["url"],
        constrained=True, eval_concurrency=4,
    )  # fmt: skip
    run = resolve(config, runs)
    with Endpoints(run) as endpoints:
        score = evaluate_stage(run, "tiny", TASK, endpoints, progress=False)
    return {"runs": runs, "datasets": datasets, "score": score, "url": served["url"]}


def run_folders(runs: Path) -> dict[str, Path]:
    work = Workdir(runs)
    return {
        f"{who} {'constrained' if constrained else 'free'}": work.eval_run(
            "tiny", TASK, adapter, constrained
        )
        for who, adapter in (("base", None), ("adapter", f"tiny/{TASK}"))
        for constrained in (False, True)
    }


@pytest.mark.slow
def test_constrained_answers_are_always_labels_even_where_free_ones_are_not(bakeoff):
    folders = run_folders(bakeoff["runs"])
    free = records(folders["base free"] / RESPONSES)
    for who in ("base", "adapter"):
        constrained = records(folders[f"{who} constrained"] / RESPONSES)
        assert len(constrained) == len(TEXTS)
        for record in constrained.values():
            assert record["error"] is None
            # exactly one label as a JSON string, nothing before or after it
            assert chosen_label(record["output"], LABELS) in LABELS, record["output"]
            assert record["output"] == json.dumps(json.loads(record["output"]))
    # the random tiny base model, free, answers words of its vocabulary, not labels
    off_label = [i for i, r in free.items() if (r["output"] or "").strip() not in LABELS]
    assert off_label, [r["output"] for r in free.values()]
    constrained_base = records(folders["base constrained"] / RESPONSES)
    assert all(json.loads(constrained_base[i]["output"]) in LABELS for i in off_label)


@pytest.mark.slow
def test_the_bakeoff_scores_base_and_adapter_free_and_constrained_on_the_same_rows(bakeoff):
    scores = {
        name: json.loads((folder / SCORES).read_text())
        for name, folder in run_folders(bakeoff["runs"]).items()
    }
    assert {tuple(s["ids"]) for s in scores.values()} == {tuple(range(len(TEXTS)))}
    assert [s["constrained"] for s in scores.values()] == [False, True, False, True]
    assert all(s["n_failed"] == 0 for s in scores.values())
    assert all(s["n_off_label"] == 0 for s in scores.values() if s["constrained"])
    score = bakeoff["score"]
    assert score.base_constrained == scores["base constrained"]["score"]
    assert score.adapter_constrained == scores["adapter constrained"]["score"]
    assert (score.base, score.adapter) == (
        scores["base free"]["score"],
        scores["adapter free"]["score"],
    )
    # a constrained answer is scored as the label it names, with the task's own metric
    with open(run_folders(bakeoff["runs"])["base constrained"] / "examples.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["score"]) for r in rows] == [
        float(json.loads(r["output"]) == r["target"]) for r in rows
    ]


@pytest.mark.slow
def test_the_report_shows_constrained_beside_free_each_with_its_paired_interval(
    bakeoff, tmp_path, capsys
):
    from llmbench.report.intervals import lift_interval

    out = tmp_path / "report"
    assert main(["report", "--runs", str(bakeoff["runs"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    cells = {
        row["task"]: row for row in csv.DictReader((out / "cells.csv").read_text().splitlines())
    }
    cell, score = cells[TASK], bakeoff["score"]
    assert float(cell["ft_constrained"]) == pytest.approx(score.adapter_constrained, abs=1e-6)
    assert float(cell["base_constrained"]) == pytest.approx(score.base_constrained, abs=1e-6)
    for who in ("ft", "base", "lift"):
        low, high = float(cell[f"{who}_constrained_low"]), float(cell[f"{who}_constrained_high"])
        assert low <= float(cell[f"{who}_constrained"]) <= high
    # the constrained lift's interval: adapter and base resampled on the same rows (paired)
    folders = run_folders(bakeoff["runs"])
    per_example = {
        who: json.loads((folders[f"{who} constrained"] / SCORES).read_text())["example_scores"]
        for who in ("base", "adapter")
    }
    paired = lift_interval(per_example["base"], per_example["adapter"], f"{TASK} tiny constrained")
    assert (float(cell["lift_constrained_low"]), float(cell["lift_constrained_high"])) == (
        pytest.approx(paired.low, abs=1e-6),
        pytest.approx(paired.high, abs=1e-6),
    )
    # table12.md: one row with the six numbers, each followed by its interval
    markdown = (out / "table12.md").read_text()
    section = markdown.split("## Constrained answers", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith(f"| {TASK} | tiny |"))
    numbers = row.strip("| ").split(" | ")[2:]
    assert len(numbers) == 6 and all(n.count("[") == 1 for n in numbers), row
    assert f"{score.base_constrained:.3f} [" in numbers[3]
    assert "constrained to the labels" in printed and f"{score.adapter_constrained:.3f}" in printed


@pytest.mark.slow
def test_eval_constrained_through_the_openai_backend_writes_its_own_folder(
    bakeoff, tmp_path, capsys
):
    out = tmp_path / "openai"
    status = main(
        ["eval", "--task", TASK, "--datasets", str(bakeoff["datasets"]), "--runs",
         str(bakeoff["runs"]), "--endpoint", bakeoff["url"], "--model", "tiny",
         "--adapter-id", "alpha", "--backend", "openai", "--limit", "4", "--constrained",
         "--out", str(out)]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    answers = [r["output"] for r in records(out / RESPONSES).values()]
    assert len(answers) == 4 and all(chosen_label(a, LABELS) for a in answers), answers
    assert json.loads((out / SCORES).read_text())["constrained"] is True
    assert "constrained" in capsys.readouterr().out


# --- bad input: one line, exit 2 ------------------------------------------------------------


def test_a_task_without_labels_is_refused_by_name_before_anything_is_read(tmp_path, capsys):
    status = main(
        ["eval", "--task", "gsm8k", "--endpoint", "http://127.0.0.1:9", "--model", "tiny",
         "--base", "--constrained", "--runs", str(tmp_path / "runs")]
    )  # fmt: skip
    assert status == 2
    error = one_error(capsys)
    assert "gsm8k/metadata.yaml: labels: task gsm8k has no label set" in error
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ({"labels": []}, "metadata.yaml: labels: [] should be non-empty"),
        (
            {"labels": ["one", "two"], "metric": "first_number_accuracy", "targets": ["1"]},
            "metadata.yaml: labels: 'one', 'two' not scored as right against itself by "
            "first_number_accuracy",
        ),
    ],
)
def test_a_card_with_empty_or_unreadable_labels_is_one_line(tmp_path, capsys, card, expected):
    datasets = write_task(tmp_path, **card)
    status = main(
        ["eval", "--task", TASK, "--datasets", str(datasets), "--endpoint", "http://127.0.0.1:9",
         "--model", "tiny", "--base", "--constrained", "--runs", str(tmp_path / "runs")]
    )  # fmt: skip
    assert status == 2
    assert expected in one_error(capsys)


def test_a_target_no_label_answers_is_refused_naming_the_row_and_the_labels(tmp_path, capsys):
    datasets, runs = prepared(tmp_path, labels=("alpha", "beta"))
    capsys.readouterr()
    status = main(
        ["eval", "--task", TASK, "--datasets", str(datasets), "--endpoint", "http://127.0.0.1:9",
         "--model", "tiny", "--base", "--constrained", "--runs", str(runs)]
    )  # fmt: skip
    assert status == 2
    error = one_error(capsys)
    assert "metadata.yaml: labels: test example 2 (and 2 more) has the target 'gamma'" in error
    assert "got 'alpha', 'beta'" in error
    assert not Workdir(runs).eval_run("tiny", TASK, None, constrained=True).exists()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "constrained: [glue_sst]",
            "constrained: 'glue_sst': not a task of this bake-off (did you mean 'glue_sst2'?)",
        ),  # fmt: skip
        ("constrained: true", "bake-off: constrained: task e2e_nlg has no labels in its card"),
        ("constrained: [e2e_nlg]", "bake-off: constrained: task e2e_nlg has no labels"),
        ("constrained: yes please", "constrained: 'yes please' is not of type 'boolean', 'array'"),
    ],
)
def test_a_bakeoff_constraining_a_task_without_labels_exits_2_before_anything_runs(
    tmp_path, capsys, line, expected
):
    path = tmp_path / "bakeoff.yaml"
    path.write_text(f"models: [tiny]\ntasks: [glue_sst2, e2e_nlg]\nsource: fixture\n{line}\n")
    runs = tmp_path / "runs"
    assert main(["bakeoff", "--config", str(path), "--runs", str(runs)]) == 2
    assert expected in one_error(capsys)
    assert not runs.exists()


def test_free_answers_from_before_the_option_resume_and_never_mix_with_constrained(tmp_path):
    """A responses file whose settings line predates `constrained` counts as a free run's."""
    free = EvalSettings(TASK, "", "tiny", max_new_tokens=12)
    path = tmp_path / RESPONSES
    old = {k: v for k, v in answer_settings(free).items() if k != "constrained"}
    lines = [{"settings": old}, {"id": 0, "output": "x", "error": None}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    found = read_response_file(path)
    check_same_run(path, found, answer_settings(free), [])  # resumes
    constrained = EvalSettings(TASK, "", "tiny", max_new_tokens=12, constrained=True)
    with pytest.raises(LLMBenchError, match="constrained False there, True now"):
        check_same_run(path, found, answer_settings(constrained), [])


def test_a_constrained_answer_that_names_no_label_scores_0_and_is_counted(tmp_path):
    """Cut off (`"bet`) or not JSON at all (a server that ignored the schema): never a label,
    even where the free metric would read one."""
    from llmbench.evaluate.harness import Example, score_run

    examples = [Example(i, "p", target) for i, target in enumerate(LABELS)]
    responses = {0: {"output": '"alpha"'}, 1: {"output": '"bet'}, 2: {"output": "gamma"}}
    settings = EvalSettings(TASK, "", "tiny", max_new_tokens=12, constrained=True)
    result = score_run(settings, examples, "label_accuracy", responses, tmp_path, labels=LABELS)
    assert (result.score, result.off_label_ids, result.n_failed) == (1 / 3, [1, 2], 0)
    assert "2 of 3 answers name none of the labels" in result.notes[0]
    assert json.loads((tmp_path / SCORES).read_text())["n_off_label"] == 2
