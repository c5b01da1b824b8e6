"""The bake-off on the embedded default, end to end, and its resumption."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from llmbench.bakeoff.pipeline import load_config, run_bakeoff
from llmbench.errors import LLMBenchError
from llmbench.serving.launch import SERVE_VENV


def test_the_embedded_default_is_smollm2_on_the_demo_tasks():
    config = load_config(None)
    assert config.models == ["smollm2-135m"] and config.source == "demo"
    assert config.endpoint is None and config.tasks == ["glue_sst2", "e2e_nlg", "conllpp"]


def tiny_fixture_config(tmp_path):
    """The default's tasks on the tiny model and the shipped fixtures: the fast end-to-end run
    (the default itself, on smollm2, is what `make demo` runs and times)."""
    path = tmp_path / "tiny.yaml"
    path.write_text("models: [tiny]\ntasks: [glue_sst2, boolq, conllpp]\nsource: fixture\n")
    return load_config(path)


def test_a_task_without_demo_data_is_refused_by_name(tmp_path):
    from llmbench.bakeoff.pipeline import prepare_stage

    path = tmp_path / "gsm8k.yaml"
    path.write_text("models: [tiny]\ntasks: [gsm8k]\nsource: demo\n")
    with pytest.raises(LLMBenchError, match="task gsm8k has no demo data"):
        prepare_stage(load_config(path), tmp_path / "runs")
    assert not (tmp_path / "runs" / "prepared").exists()


def test_a_broken_config_lists_every_problem(tmp_path):
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: tiny\ntasks: []\nsorce: fixture\n")
    with pytest.raises(LLMBenchError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("unknown key 'sorce' (did you mean 'source'?)" in p for p in problems)
    assert any("models: 'tiny' is not of type 'array'" in p for p in problems)
    assert any("tasks: [] should be non-empty" in p for p in problems)


@pytest.mark.slow
def test_a_tiny_bakeoff_runs_end_to_end_and_a_rerun_redoes_nothing(tmp_path):
    if not (SERVE_VENV / "bin" / "python").exists():
        pytest.skip("no serving environment: run `bash scripts/setup-serve.sh`")
    config = tiny_fixture_config(tmp_path)
    tmp_path = tmp_path / "runs"
    result = run_bakeoff(config, tmp_path, progress=False)
    assert [(s.model, s.task) for s in result.scores] == [("tiny", t) for t in config.tasks]
    for score in result.scores:
        assert score.failed == 0 and score.n > 0
        assert 0.0 <= score.base <= 1.0 and 0.0 <= score.adapter <= 1.0
    table = (result.report_dir / "table12.md").read_text()
    assert all(task in table for task in config.tasks)
    with Image.open(result.report_dir / "figure5.png") as image:
        image.verify()
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert {job["state"] for job in manifest["jobs"].values()} == {"done"}
    responses = sorted(tmp_path.glob("eval/tiny/*/*/responses.jsonl"))
    assert len(responses) == 2 * len(config.tasks)
    before = {path: path.read_bytes() for path in responses}

    again = run_bakeoff(config, tmp_path, progress=False)
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert {job["attempts"] for job in manifest["jobs"].values()} == {1}
    assert {path: path.read_bytes() for path in responses} == before
    assert (result.servers_started, again.servers_started) == (1, 0)
    assert [s.adapter for s in again.scores] == [s.adapter for s in result.scores]


def test_with_four_or_more_tasks_the_bakeoff_correlates_them(tmp_path):
    from llmbench.bakeoff.pipeline import (
        BakeoffConfig,
        complexity_stage,
        correlate_stage,
        prepare_stage,
    )

    tasks = ["glue_sst2", "boolq", "conllpp", "gsm8k"]
    config = BakeoffConfig(models=["tiny"], tasks=tasks, source="fixture")
    prepare_stage(config, tmp_path)
    notes: list[str] = []
    out = correlate_stage(config, tmp_path, complexity_stage(config, tmp_path), notes)
    assert out == tmp_path / "correlate" and not notes
    assert (out / "pearson.csv").is_file() and (out / "figure8.png").is_file()
    with Image.open(out / "figure8.png") as image:
        image.verify()
    config.tasks = config.tasks[:3]
    assert correlate_stage(config, tmp_path, tmp_path / "unused.csv", notes) is None
    assert "needs at least 4 tasks" in notes[0]
