"""The bake-off on the embedded default, end to end, and its resumption."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from user_task import TASK, write_user_task

from llmbench.bakeoff.pipeline import (
    BakeoffConfig,
    TaskScore,
    load_config,
    resolve,
    run_bakeoff,
)
from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR
from llmbench.serving.launch import SERVE_VENV


def test_the_embedded_default_is_smollm2_on_the_demo_tasks():
    config = load_config(None)
    assert config.models == ["smollm2-135m"] and config.source == "demo"
    assert config.endpoint is None and config.tasks == ["glue_sst2", "e2e_nlg", "conllpp"]


def tiny_fixture_config(tmp_path):
    """The default's tasks on the tiny model and the shipped fixtures, beside a task of the
    user's own, all from the user's folder: the fast end-to-end run (the default itself, on
    smollm2, is what `make demo` runs and times)."""
    folder = users_folder(tmp_path, ["glue_sst2", "boolq", "conllpp"])
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"models: [tiny]\ntasks: [glue_sst2, boolq, conllpp, {TASK}]\nsource: fixture\n"
        f"datasets: {folder}\neval_limit: 4\n"
    )
    return load_config(path)


def users_folder(tmp_path, study_tasks):
    """A folder of cards of the user's own: copies of some of the project's tasks beside a
    task of their own (capital_of, see user_task.py)."""
    root = write_user_task(tmp_path / "my_tasks")
    for task in study_tasks:
        shutil.copytree(DATASETS_DIR / task, root / task)
    return root


def test_every_unknown_model_and_task_is_named_at_once_before_anything_is_written(tmp_path):
    config = BakeoffConfig(models=["tiny", "tinny"], tasks=["glue_sst2", "gsm8kk", "boolqq"])
    with pytest.raises(LLMBenchError) as caught:
        resolve(config, tmp_path / "runs")
    assert [p.split("'")[1] for p in caught.value.problems] == ["tinny", "gsm8kk", "boolqq"]
    assert "did you mean 'tiny'?" in caught.value.problems[0]
    assert not (tmp_path / "runs").exists()


def test_a_task_without_demo_data_is_refused_by_name(tmp_path):
    from llmbench.bakeoff.pipeline import prepare_stage

    path = tmp_path / "gsm8k.yaml"
    path.write_text("models: [tiny]\ntasks: [gsm8k]\nsource: demo\n")
    with pytest.raises(LLMBenchError, match="task gsm8k has no demo data"):
        prepare_stage(resolve(load_config(path), tmp_path / "runs"))
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


def count_loads(monkeypatch) -> tuple[Counter, Counter]:
    """From now on, each task card read (by task) and each model looked up in the registry (by
    name): a spy around the real loaders, which still do the work."""
    import llmbench.tasks.cards as cards
    import llmbench.tasks.models as models

    loaded, looked_up = Counter(), Counter()
    load_card, get_model = cards.load_card, models.get_model
    monkeypatch.setattr(
        cards, "load_card", lambda path: loaded.update([Path(path).parent.name]) or load_card(path)
    )
    monkeypatch.setattr(
        models, "get_model", lambda name: looked_up.update([name]) or get_model(name)
    )
    return loaded, looked_up


@pytest.mark.slow
def test_a_tiny_bakeoff_with_a_users_task_runs_end_to_end_and_a_rerun_redoes_nothing(
    tmp_path, monkeypatch
):
    if not (SERVE_VENV / "bin" / "python").exists():
        pytest.skip("no serving environment: run `bash scripts/setup-serve.sh`")
    config = tiny_fixture_config(tmp_path)
    tmp_path = tmp_path / "runs"
    loaded, looked_up = count_loads(monkeypatch)
    result = run_bakeoff(config, tmp_path, progress=False)
    # each card and model resolved once, at the start, and handed to every stage
    assert (loaded, looked_up) == (Counter(config.tasks), Counter(config.models))
    assert [(s.model, s.task) for s in result.scores] == [("tiny", t) for t in config.tasks]
    for score in result.scores:
        assert score.failed == 0 and score.n > 0
        assert 0.0 <= score.base <= 1.0 and 0.0 <= score.adapter <= 1.0
    table = (result.report_dir / "table12.md").read_text()
    assert all(task in table for task in config.tasks)
    # four tasks: the bake-off's own scores are correlated, the user's task among them; the
    # study knows three of them, too few, and says so in a note
    assert list(result.correlate_dirs) == ["bakeoff"]
    joined = pd.read_csv(result.correlate_dirs["bakeoff"] / "joined.csv", index_col="task")
    assert sorted(joined.index) == sorted(config.tasks)
    assert any(n.startswith("correlate (study scores) skipped") for n in result.notes)
    with Image.open(result.report_dir / "figure5.png") as image:
        image.verify()
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert {job["state"] for job in manifest["jobs"].values()} == {"done"}
    responses = sorted(tmp_path.glob("eval/tiny/*/*/responses.jsonl"))
    assert len(responses) == 2 * len(config.tasks)
    before = {path: path.read_bytes() for path in responses}

    loaded.clear(), looked_up.clear()
    again = run_bakeoff(config, tmp_path, progress=False)
    assert (loaded, looked_up) == (Counter(config.tasks), Counter(config.models))
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert {job["attempts"] for job in manifest["jobs"].values()} == {1}
    assert {path: path.read_bytes() for path in responses} == before
    assert (result.servers_started, again.servers_started) == (1, 0)
    assert [s.adapter for s in again.scores] == [s.adapter for s in result.scores]


def made_up_scores(config):
    """Scores as the evaluate stage returns them, different per task, without a server."""
    return [
        TaskScore(model, task, "rouge", 0.1 * i, 0.1 * i + 0.05 * (i % 3), 3, 0)
        for model in config.models
        for i, task in enumerate(config.tasks)
    ]


def correlated(config: BakeoffConfig, runs) -> tuple[dict, list[str]]:
    """Prepare, complexity and correlate for `config`, with made-up scores: (folders, notes)."""
    from llmbench.bakeoff.pipeline import complexity_stage, correlate_stage, prepare_stage

    run = resolve(config, runs)
    prepare_stage(run)
    notes: list[str] = []
    scores = made_up_scores(config)
    return correlate_stage(run, complexity_stage(run), scores, notes), notes


def users_config(tmp_path, study: list[str]) -> BakeoffConfig:
    """The study's tasks `study` beside the user's TASK, from the fixtures."""
    folder = str(users_folder(tmp_path, study))
    return BakeoffConfig(models=["tiny"], tasks=[*study, TASK], source="fixture", datasets=folder)


def test_with_four_or_more_tasks_the_bakeoff_correlates_its_own_scores_and_the_studys(tmp_path):
    study = ["glue_sst2", "boolq", "conllpp", "gsm8k"]
    config = users_config(tmp_path, study)
    runs = tmp_path / "runs"
    dirs, notes = correlated(config, runs)
    assert dirs == {
        "bakeoff": runs / "correlate" / "bakeoff",
        "study": runs / "correlate" / "study",
    }
    own = pd.read_csv(dirs["bakeoff"] / "joined.csv", index_col="task")
    assert sorted(own.index) == sorted(config.tasks)  # the user's task beside the rest
    assert own.at[TASK, "avg_ft_score"] == pytest.approx(0.4 + 0.05)
    assert own["gpt4_score"].isna().all()  # a bake-off runs no GPT-4
    studys = pd.read_csv(dirs["study"] / "joined.csv", index_col="task")
    assert sorted(studys.index) == sorted(study)  # the study cannot know the user's task
    for folder in dirs.values():
        with Image.open(folder / "figure8.png") as image:
            image.verify()
    assert f"correlate (study scores): left out, no score in table12_scores.csv: {TASK}" in notes


def test_an_earlier_bakeoffs_tasks_in_the_work_directory_are_left_out_by_name(tmp_path):
    from llmbench.bakeoff.pipeline import complexity_stage, prepare_stage

    study = ["glue_sst2", "boolq", "conllpp", "gsm8k"]
    folder = str(users_folder(tmp_path, study))
    runs = tmp_path / "runs"
    earlier = resolve(
        BakeoffConfig(models=["tiny"], tasks=study, source="fixture", datasets=folder), runs
    )
    prepare_stage(earlier)
    complexity_stage(earlier)
    config = BakeoffConfig(
        models=["tiny"], tasks=[*study[1:], TASK], source="fixture", datasets=folder
    )
    dirs, notes = correlated(config, runs)
    own = pd.read_csv(dirs["bakeoff"] / "joined.csv", index_col="task")
    assert sorted(own.index) == sorted(config.tasks)
    assert "correlate (bakeoff scores): left out, no score in scores.csv: glue_sst2" in notes


def test_a_users_task_that_leaves_the_study_too_few_tasks_is_a_note_not_an_error(tmp_path):
    config = users_config(tmp_path, ["glue_sst2", "boolq", "conllpp"])
    runs = tmp_path / "runs"
    dirs, notes = correlated(config, runs)
    assert list(dirs) == ["bakeoff"] and (dirs["bakeoff"] / "pearson.csv").is_file()
    skipped = [n for n in notes if n.startswith("correlate (study scores) skipped")]
    assert len(skipped) == 1 and "3 task(s), 1 more without a score" in skipped[0]
    assert not (runs / "correlate" / "study").exists()


def test_fewer_than_four_tasks_are_not_correlated(tmp_path):
    from llmbench.bakeoff.pipeline import correlate_stage

    config = BakeoffConfig(models=["tiny"], tasks=["glue_sst2", "boolq", "conllpp"])
    notes: list[str] = []
    assert correlate_stage(resolve(config, tmp_path), tmp_path / "unused.csv", [], notes) == {}
    assert "needs at least 4 tasks" in notes[0]


def test_the_bakeoff_takes_its_cards_from_the_config_or_the_flag(tmp_path):
    mine = write_user_task(tmp_path / "mine")
    path = tmp_path / "bakeoff.yaml"
    path.write_text(f"models: [tiny]\ntasks: [{TASK}]\nsource: fixture\ndatasets: {mine}\n")
    config = load_config(path)
    assert config.datasets_dir == mine
    from llmbench.bakeoff.pipeline import prepare_stage

    prepare_stage(resolve(config, tmp_path / "runs"))
    assert (tmp_path / "runs" / "prepared" / f"{TASK}.parquet").is_file()
    # without it, the project's cards: the user's task is unknown there, by name
    path.write_text(f"models: [tiny]\ntasks: [{TASK}]\nsource: fixture\n")
    with pytest.raises(LLMBenchError, match=f"unknown task '{TASK}'"):
        run_bakeoff(load_config(path), tmp_path / "other")
    assert not (tmp_path / "other").exists()


class Unreachable:
    """Endpoints whose server is never there: a stage that must send fails saying so."""

    def url(self, name: str) -> str:
        return "http://127.0.0.1:9"


def answered_gsm8k(tmp_path, digest: bool):
    """A fixture bake-off whose tiny/gsm8k adapter is "trained" (made-up weights) and whose base
    and adapter have answered every example, the adapter's answers recording its weights' digest
    when `digest`: (config, runs, weights folder)."""
    from llmbench.bakeoff.pipeline import prepare_stage
    from llmbench.evaluate.harness import EvalSettings, answer_settings, run_dir
    from llmbench.train.training import adapter_digest, run_directory
    from llmbench.workdir import Workdir

    config = BakeoffConfig(models=["tiny"], tasks=["gsm8k"], source="fixture", eval_limit=3)
    runs = tmp_path / "runs"
    prepare_stage(resolve(config, runs))
    weights = run_directory(Workdir(runs).train_output("tiny", "gsm8k")) / "model/model_weights"
    weights.mkdir(parents=True)
    (weights / "adapter_config.json").write_text("{}")
    (weights / "adapter_model.safetensors").write_bytes(b"first training")
    for adapter in (None, "tiny/gsm8k"):
        made = EvalSettings(
            "gsm8k", "", "tiny", adapter, max_new_tokens=384,
            adapter_weights=adapter_digest(weights) if adapter and digest else None,
        )  # fmt: skip
        out = run_dir(made, runs)
        out.mkdir(parents=True)
        lines = [{"settings": answer_settings(made)}]
        lines += [{"id": i, "output": "#### 1", "error": None} for i in range(3)]
        (out / "responses.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return config, runs, weights


def test_a_retrained_adapter_is_evaluated_again_and_an_unchanged_one_is_not(tmp_path):
    from llmbench.bakeoff.pipeline import evaluate_stage
    from llmbench.workdir import Workdir

    config, runs, weights = answered_gsm8k(tmp_path, digest=True)
    notes: list[str] = []
    score = evaluate_stage(resolve(config, runs), "tiny", "gsm8k", Unreachable(), False, notes)
    assert (score.n, notes) == (3, [])  # unchanged: nothing sent

    (weights / "adapter_model.safetensors").write_bytes(b"second training")
    with pytest.raises(LLMBenchError, match="127.0.0.1:9"):  # it went on to send again
        evaluate_stage(resolve(config, runs), "tiny", "gsm8k", Unreachable(), False, notes)
    assert notes == ["tiny/gsm8k: retrained since its evaluation, so it was evaluated again"]
    adapter_run = Workdir(runs).eval_run("tiny", "gsm8k", "tiny/gsm8k")
    assert (adapter_run / "responses.previous.jsonl").is_file()


def test_an_adapters_answers_that_do_not_record_its_weights_are_made_again(tmp_path):
    """Answers from before llmbench recorded the digest cannot be tied to the adapter as it is
    now (it may have been trained again since): they are set aside; the base's are kept."""
    from llmbench.bakeoff.pipeline import evaluate_stage
    from llmbench.workdir import Workdir

    config, runs, _ = answered_gsm8k(tmp_path, digest=False)
    notes: list[str] = []
    with pytest.raises(LLMBenchError, match="127.0.0.1:9"):
        evaluate_stage(resolve(config, runs), "tiny", "gsm8k", Unreachable(), False, notes)
    assert notes == [
        "tiny/gsm8k: its answers do not record which weights made them, so it was evaluated again"
    ]
    workdir = Workdir(runs)
    assert (workdir.eval_run("tiny", "gsm8k", "tiny/gsm8k") / "responses.previous.jsonl").is_file()
    assert not (workdir.eval_run("tiny", "gsm8k", None) / "responses.previous.jsonl").exists()


def test_the_eval_timeout_is_each_requests_patience(tmp_path, monkeypatch):
    """gsm8k's 384-token answers, 16 at a time on this CPU, take minutes: a request given up
    after the client's 60 s would be sent again and again and never answered."""
    import llmbench.evaluate.harness as harness
    from llmbench.bakeoff.pipeline import evaluate_stage

    config, runs, weights = answered_gsm8k(tmp_path, digest=True)
    assert config.eval_timeout == 600
    config.eval_timeout = 900.0
    (weights / "adapter_model.safetensors").write_bytes(b"second training")  # so it sends
    sent, evaluate = [], harness.evaluate
    monkeypatch.setattr(
        harness, "evaluate", lambda s, *a, **k: evaluate(sent.append(s) or s, *a, **k)
    )
    with pytest.raises(LLMBenchError, match="127.0.0.1:9"):
        evaluate_stage(resolve(config, runs), "tiny", "gsm8k", Unreachable(), False, [])
    assert [s.timeout for s in sent] == [900.0, 900.0]  # the base (answered) and the adapter

    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [gsm8k]\neval_timeout: 0\n")
    with pytest.raises(LLMBenchError, match="eval_timeout"):
        load_config(path)


@pytest.mark.slow
def test_the_bakeoffs_trainer_values_are_trained_and_changing_them_trains_again(tmp_path):
    import yaml

    from llmbench.bakeoff.pipeline import prepare_stage, train_stage
    from llmbench.train.sweep import Manifest
    from llmbench.workdir import Workdir

    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [glue_sst2]\nsource: fixture\ntrainer:\n")
    runs = Workdir(tmp_path / "runs")

    def trained(steps: int):
        with path.open("a") as file:
            file.write(f"  train_steps: {steps}\n")
        run = resolve(load_config(path), runs.root)
        prepare_stage(run)
        train_stage(run)
        return Manifest.load(runs.train_manifest).jobs["tiny/glue_sst2"]

    first = trained(3)
    rendered = (runs.configs / "tiny" / "glue_sst2.yaml").read_text()
    assert yaml.safe_load(rendered)["trainer"]["train_steps"] == 3
    assert "with this model's overrides and the bake-off's:" in rendered
    assert (first.state, first.steps, first.attempts) == ("done", 3, 1)
    train_stage(resolve(load_config(path), runs.root))  # unchanged: not trained again
    assert Manifest.load(runs.train_manifest).jobs["tiny/glue_sst2"].attempts == 1

    path.write_text(path.read_text().replace("train_steps: 3\n", ""))
    second = trained(5)  # changed: trained again from step 0, the first output kept
    assert (second.state, second.steps, second.resumed_from_step) == ("done", 5, None)
    (kept,) = (runs.root / "replaced" / "tiny" / "glue_sst2").iterdir()
    for output, steps in ((kept, 3), (runs.train_output("tiny", "glue_sst2"), 5)):
        hyperparameters = json.loads(
            (output / "run_run/model/model_hyperparameters.json").read_text()
        )
        assert hyperparameters["trainer"]["train_steps"] == steps


def test_an_unknown_trainer_value_is_refused_by_name(tmp_path):
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [glue_sst2]\ntrainer: {train_step: 3}\n")
    with pytest.raises(LLMBenchError, match="train_step"):
        load_config(path)


# --- seeds ----------------------------------------------------------------------------------------


def config_file(tmp_path, text: str) -> Path:
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [glue_sst2, conllpp]\n" + text)
    return path


@pytest.mark.parametrize(
    ("seeds", "problem"),
    [
        ("0", "seeds: 0 is less than the minimum of 1"),
        ("-2", "seeds: -2 is less than the minimum of 1"),
        ("1.5", "seeds: 1.5 is not of type 'integer', 'object'"),
        ("'3'", "seeds: '3' is not of type 'integer', 'object'"),
        ("true", "seeds: True is not of type 'integer', 'object'"),
        ("{glue_sst2: 0}", "seeds.glue_sst2: 0 is less than the minimum of 1"),
        ("{default: 2.5}", "seeds.default: 2.5 is not of type 'integer'"),
        (
            "{glue_sst: 3}",
            "seeds.glue_sst: not a task of this bake-off (did you mean 'glue_sst2'?)",
        ),
    ],
)
def test_seeds_that_are_not_whole_numbers_of_at_least_one_are_refused_by_key(
    tmp_path, seeds, problem
):
    path = config_file(tmp_path, f"seeds: {seeds}\n")
    with pytest.raises(LLMBenchError) as caught:
        load_config(path)
    (line,) = caught.value.problems
    assert line.startswith(f"{path}: {problem}")


def test_bad_seeds_exit_2_with_one_line_before_anything_runs(tmp_path, capsys):
    from llmbench.cli import main

    path = config_file(tmp_path, "seeds: 0\n")
    assert main(["bakeoff", "--config", str(path), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "seeds: 0 is less than the minimum of 1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_seeds_is_one_number_for_every_task_or_a_number_per_task_with_a_default(tmp_path):
    assert load_config(config_file(tmp_path, "")).seeds_of("glue_sst2") == 1  # the default
    every = load_config(config_file(tmp_path, "seeds: 3\n"))
    assert [every.seeds_of(t) for t in every.tasks] == [3, 3]
    per_task = load_config(config_file(tmp_path, "seeds: {default: 2, glue_sst2: 3}\n"))
    assert [per_task.seeds_of(t) for t in per_task.tasks] == [3, 2]
    without_default = load_config(config_file(tmp_path, "seeds: {glue_sst2: 3}\n"))
    assert [without_default.seeds_of(t) for t in without_default.tasks] == [3, 1]


@pytest.mark.slow
def test_two_seeds_train_two_adapters_scored_on_the_same_rows_and_the_report_shows_the_spread(
    tmp_path,
):
    if not (SERVE_VENV / "bin" / "python").exists():
        pytest.skip("no serving environment: run `bash scripts/setup-serve.sh`")
    from llmbench.report.seeds import SEED_COLUMNS
    from llmbench.train.sweep import Manifest
    from llmbench.train.training import adapter_digest, finished_adapter, run_directory
    from llmbench.workdir import Workdir

    path = tmp_path / "bakeoff.yaml"
    path.write_text(
        "models: [tiny]\ntasks: [glue_sst2]\nsource: fixture\neval_limit: 4\nseeds: 2\n"
        "trainer: {train_steps: 20}\n"
    )
    runs = Workdir(tmp_path / "runs")
    result = run_bakeoff(load_config(path), runs.root, progress=False)

    manifest = Manifest.load(runs.train_manifest).jobs
    assert sorted(manifest) == ["tiny/glue_sst2", "tiny/glue_sst2-seed2"]
    assert [manifest[k].seed for k in sorted(manifest)] == [1, 2]
    seed_1, seed_2 = (runs.train_output("tiny", "glue_sst2", s) for s in (1, 2))
    assert seed_1 == runs.train / "tiny" / "glue_sst2"  # seed 1: the folder from before seeds
    weights = [finished_adapter(run_directory(folder)) for folder in (seed_1, seed_2)]
    assert adapter_digest(weights[0]) != adapter_digest(weights[1])

    (score,) = result.scores
    assert len(score.seed_scores) == 2 and score.adapter == score.seed_scores[0]
    ids = [
        json.loads((runs.eval_run("tiny", "glue_sst2", a) / "scores.json").read_text())["ids"]
        for a in (None, "tiny/glue_sst2", "tiny/glue_sst2-seed2")
    ]
    assert ids[0] == ids[1] == ids[2]  # every seed on the base model's rows

    cells = pd.read_csv(result.report_dir / "cells.csv").set_index(["task", "model"])
    cell = cells.loc[("glue_sst2", "tiny")]
    assert cell["adapter"] == "tiny/glue_sst2" and cell["seeds"] == 2
    assert cell["ft"] == pytest.approx(score.seed_scores[0])
    assert cell["ft_seed_min"] == pytest.approx(min(score.seed_scores))
    assert cell["ft_seed_max"] == pytest.approx(max(score.seed_scores))
    assert cell["lift_seed_mean"] == pytest.approx(sum(score.seed_scores) / 2 - score.base)
    table = pd.read_csv(result.report_dir / "table12.csv")
    assert {f"tiny_{c}" for c in SEED_COLUMNS} <= set(table.columns)
    text = (result.report_dir / "table12.md").read_text()
    assert "## Seeds" in text and "· 2 seeds" in text
    curves = text.split("## Learning curves", 1)[1].splitlines()
    links = dict(re.findall(r"^- \[(.+)\]\((.+)\)$", "\n".join(curves), re.M))
    assert sorted(links) == ["tiny/glue_sst2", "tiny/glue_sst2-seed2"]  # each seed's own plot
    for adapter, link in links.items():
        plot = (result.report_dir / link).resolve()
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plot.parent.parent == (runs.train / adapter).resolve()


@pytest.mark.slow
def test_the_bakeoffs_lora_values_reach_the_trained_adapter(tmp_path):
    from llmbench.bakeoff.pipeline import prepare_stage, train_stage
    from llmbench.workdir import Workdir

    path = tmp_path / "bakeoff.yaml"
    path.write_text(
        "models: [tiny]\ntasks: [glue_sst2]\nsource: fixture\ntrainer: {train_steps: 2}\n"
        "adapter: {r: 4, alpha: 8, target_modules: [q_proj, k_proj, v_proj, o_proj, up_proj]}\n"
    )
    runs = Workdir(tmp_path / "runs")
    run = resolve(load_config(path), runs.root)
    prepare_stage(run)
    train_stage(run)
    rendered = (runs.configs / "tiny" / "glue_sst2.yaml").read_text()
    assert "# the study's LoRA with: alpha=8, r=4," in rendered
    weights = runs.train_output("tiny", "glue_sst2") / "run_run/model/model_weights"
    trained = json.loads((weights / "adapter_config.json").read_text())
    assert (trained["r"], trained["lora_alpha"], trained["lora_dropout"]) == (4, 8, 0.05)
    assert sorted(trained["target_modules"]) == ["k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


@pytest.mark.parametrize(
    ("adapter", "named"),
    [("{r: 0}", "adapter.r"), ("{target_modules: []}", "adapter.target_modules"),
     ("{rank: 8}", "rank")],
)  # fmt: skip
def test_a_bad_lora_value_is_named_before_anything_runs(tmp_path, adapter, named):
    path = tmp_path / "bakeoff.yaml"
    path.write_text(f"models: [tiny]\ntasks: [glue_sst2]\nadapter: {adapter}\n")
    with pytest.raises(LLMBenchError, match=named.replace(".", r"\.")):
        load_config(path)


def test_tasks_runs_some_of_the_configs_tasks_in_its_order_with_their_settings(tmp_path):
    from llmbench.bakeoff.pipeline import only_tasks

    path = config_file(tmp_path, "seeds: {default: 1, conllpp: 3}\nconstrained: [glue_sst2]\n")
    config = load_config(path)
    piece = only_tasks(config, ["conllpp", "glue_sst2"], path)
    assert piece.tasks == ["glue_sst2", "conllpp"]  # the config's order
    assert (piece.seeds_of("conllpp"), piece.is_constrained("glue_sst2")) == (3, True)
    assert only_tasks(config, ["conllpp"], path).tasks == ["conllpp"]
    assert config.tasks == ["glue_sst2", "conllpp"]  # the config itself unchanged


def test_a_task_the_config_does_not_have_exits_2_naming_each_before_anything_runs(tmp_path, capsys):
    from llmbench.cli import main

    path = config_file(tmp_path, "")
    runs = tmp_path / "runs"
    argv = ["bakeoff", "--config", str(path), "--runs", str(runs), "--tasks", "conllp,boolq"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--tasks: 'conllp' is not a task of" in err and "did you mean 'conllpp'?" in err
    assert "--tasks: 'boolq' is not a task of" in err
    assert "expected some of glue_sst2, conllpp" in err
    assert not runs.exists()
