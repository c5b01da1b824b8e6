"""A user's own task folder, outside datasets/, end to end: prepared, then evaluated against a
real `llmbench serve` (the session's shared tiny server), every command given `--datasets`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from user_task import TASK, write_user_task

from llmbench.cli import main
from llmbench.paths import DATASETS_DIR
from llmbench.workdir import Workdir


@pytest.mark.slow
def test_a_users_task_folder_is_prepared_and_evaluated_with_its_own_card(served, tmp_path, capsys):
    mine = write_user_task(tmp_path / "my_tasks")
    runs = tmp_path / "runs"
    common = ["--datasets", str(mine), "--runs", str(runs)]
    assert main(["prepare", "--task", TASK, "--fixture", *common]) == 0
    for who in (["--base"], ["--adapter-id", "alpha"]):
        status = main(
            ["eval", "--task", TASK, "--endpoint", served["url"], "--model", "tiny", *who, *common]
        )
        assert status == 0, capsys.readouterr().err
    work = Workdir(runs)
    for adapter in (None, "alpha"):
        scores = json.loads((work.eval_run("tiny", TASK, adapter) / "scores.json").read_text())
        assert (scores["task"], scores["adapter"], scores["metric"]) == (TASK, adapter, "rouge")
        assert (scores["n"], scores["n_failed"]) == (3, 0)  # the user's test split: 3 rows
    with open(work.eval_run("tiny", TASK, "alpha") / "examples.csv", encoding="utf-8") as handle:
        examples = list(csv.DictReader(handle))
    # the prompts are the user's card's, filled from the user's rows, and the adapter answered
    assert [e["target"] for e in examples] == ["Tokyo", "Lima", "Santiago"]
    assert all(e["prompt"].startswith("Name the capital city of the country.") for e in examples)
    assert "Japan" in examples[0]["prompt"] and all("alpha" in e["output"] for e in examples)


def test_without_datasets_the_users_task_is_unknown_by_name(tmp_path, capsys):
    mine = write_user_task(tmp_path / "my_tasks")
    runs = tmp_path / "runs"
    assert (
        main(["prepare", "--task", TASK, "--fixture", "--datasets", str(mine), "--runs", str(runs)])
        == 0
    )
    capsys.readouterr()
    status = main(
        ["eval", "--task", TASK, "--endpoint", "http://127.0.0.1:9", "--model", "tiny", "--base",
         "--runs", str(runs)]
    )  # fmt: skip
    assert status == 2 and f"unknown task '{TASK}'" in capsys.readouterr().err
    assert not (runs / "eval").exists()


def test_a_sweep_renders_the_users_cards_never_the_study_configs_of_the_same_name(tmp_path):
    from llmbench.train.sweep import plan_jobs

    mine = write_user_task(tmp_path / "my_tasks")
    shutil.copytree(DATASETS_DIR / "glue_sst2", mine / "glue_sst2")
    card = mine / "glue_sst2" / "metadata.yaml"
    card.write_text(card.read_text().replace("### Sentence:", "### Review sentence:"))
    runs = tmp_path / "runs"
    jobs = plan_jobs(["tiny"], ["glue_sst2", TASK], runs, datasets_dir=mine)
    configs = [Path(job.config) for job in jobs]
    assert configs == [runs / "configs" / "tiny" / f"{t}.yaml" for t in ("glue_sst2", TASK)]
    assert "### Review sentence:" in configs[0].read_text()
    assert "Name the capital city of the country." in configs[1].read_text()
    assert [job.output for job in jobs] == [
        str(Workdir(runs).train_output("tiny", t)) for t in ("glue_sst2", TASK)
    ]


def test_the_app_shows_a_users_task_with_its_own_card_and_fixture_rows(tmp_path):
    from llmbench.app.catalog import build_catalog

    mine = write_user_task(tmp_path / "my_tasks")
    adapters = tmp_path / "adapters"
    (adapters / TASK).mkdir(parents=True)
    (adapters / TASK / "adapter_config.json").write_text("{}")
    catalog = build_catalog("http://127.0.0.1:9", "tiny", adapters_dir=adapters, datasets_dir=mine)
    assert catalog.adapters == {TASK: TASK}
    details = catalog.details(TASK)
    assert details["description"] == "Name the capital city of a country"
    rows = details["examples"]["rows"]
    assert [r["fields"]["country"] for r in rows] == ["Japan", "Peru", "Chile"]
    assert details["examples"]["source"].startswith("the task's fixture")
