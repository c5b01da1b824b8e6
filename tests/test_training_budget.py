"""Batched 4-bit training within a time budget: length-grouped batches, the warm-up's plan,
progress lines, learning curves, resuming a killed run, and the one-line refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_sweep import prepare, wait_for_checkpoint
from test_training_4bit import _write_config, _write_dataset

from llmbench.bakeoff.pipeline import load_config
from llmbench.errors import LLMBenchError
from llmbench.train.budget import load_plan, parse_budget, plan_file
from llmbench.train.ludwig_fix import LengthGroupedSampler
from llmbench.train.progress import PLOT_FILE, cores_given, read_curve
from llmbench.train.sweep import DONE, Manifest
from llmbench.train.tiny import build_tiny_model
from llmbench.train.training import _fitting_in_memory, train


def _sampler(size: int, epoch: int = 0):
    from ludwig.data.sampler import DistributedSampler

    sampler = DistributedSampler(size, shuffle=True, random_seed=42)
    sampler.set_epoch(epoch)
    return sampler


def _padding(order: list[int], lengths, batch: int) -> int:
    """Pad tokens when each batch of `order` is padded to its longest example."""
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    return sum(max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b) for b in batches)


def test_length_grouped_batches_take_every_example_once_with_far_less_padding():
    lengths = np.random.RandomState(0).randint(5, 300, size=1000)
    plain = list(_sampler(1000))
    grouped = list(LengthGroupedSampler(_sampler(1000), lengths, batch_size=8))
    assert sorted(grouped) == list(range(1000))  # the same examples, each once
    assert _padding(grouped, lengths, 8) * 5 < _padding(plain, lengths, 8)
    assert grouped == list(LengthGroupedSampler(_sampler(1000), lengths, batch_size=8))
    assert grouped != list(LengthGroupedSampler(_sampler(1000, epoch=1), lengths, 8))


def test_a_short_last_batch_stays_last():
    lengths = np.arange(1, 21)
    order = list(LengthGroupedSampler(_sampler(20), lengths, batch_size=8))
    assert len(order) == 20
    assert [len(order[i : i + 8]) for i in range(0, 20, 8)] == [8, 8, 4]
    first_two = [order[:8], order[8:16]]
    assert all(max(lengths[b]) - min(lengths[b]) <= 9 for b in first_two)  # sorted neighbours


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("budget")
    config = _write_config(root / "config.yaml", build_tiny_model(root / "tiny"))
    document = yaml.safe_load(config.read_text())
    # no early stopping: the tiny model fits 48 rows within seconds, and a run that stops when
    # its validation loss turns up would not show whether the planned steps were trained
    document["trainer"].update(
        batch_size=4, gradient_accumulation_steps=2, bucketing_field="prompt", early_stop=-1
    )
    config.write_text(yaml.safe_dump(document))
    return {"config": config, "dataset": _write_dataset(root / "data.csv"), "root": root}


@pytest.fixture(scope="module")
def budgeted_run(tiny_inputs) -> dict:
    out = tiny_inputs["root"] / "runs"
    lines: list[str] = []
    adapter = train(tiny_inputs["config"], tiny_inputs["dataset"], out, budget_s=30,
                    label="tiny/colours", progress_interval_s=1, write=lines.append)  # fmt: skip
    return {"adapter": adapter, "out": out, "run": adapter.parent.parent, "lines": lines}


def test_a_budgeted_run_trains_the_steps_its_warm_up_chose(budgeted_run):
    plan = load_plan(plan_file(budgeted_run["out"], "run"))
    assert (plan.batch_size, plan.gradient_accumulation_steps) == (4, 2)
    assert plan.train_steps % 2 == 0 and plan.optimizer_steps == plan.train_steps // 2
    assert plan.examples == plan.train_steps * 4 and plan.train_rows == 48
    assert plan.epochs == pytest.approx(plan.examples / 48, abs=1e-3)
    # the steps fill what the budget leaves after the warm-up and the run's own start (to a
    # whole optimizer step, and to the 0.1 s to which the plan rounds the two times)
    left = plan.budget_s - plan.warmup_wall_s - plan.start_overhead_s
    slack = 2 * 4 + 0.1 * plan.examples_per_second + 0.5
    assert plan.examples == pytest.approx(left * plan.examples_per_second, abs=slack)
    assert plan.trained["train_steps"] == plan.train_steps
    assert plan.trained["examples"] == plan.examples
    recorded = json.loads((budgeted_run["run"] / "budget.json").read_text())
    assert recorded["trained"] == plan.trained


def test_a_run_writes_its_loss_per_step_and_plots_it(budgeted_run):
    plan = load_plan(plan_file(budgeted_run["out"], "run"))
    rows = read_curve(budgeted_run["run"])
    assert [int(r["step"]) for r in rows] == list(range(1, plan.train_steps + 1))
    assert all(int(r["examples"]) == 4 * int(r["step"]) for r in rows)
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # it learned
    assert all(int(r["tokens"]) <= int(r["padded_tokens"]) for r in rows)
    evals = read_curve(budgeted_run["run"], "eval_loss.csv")
    assert evals and {r["split"] for r in evals} == {"validation", "test"}
    assert (budgeted_run["run"] / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_budgeted_run_decays_its_learning_rate_once_over_the_whole_run(budgeted_run):
    """Ludwig's cosine restarts every `steps_per_checkpoint` unless told its period; a budgeted run
    checkpoints every tenth of its steps, and must still decay once, to about zero, at its end."""
    plan = load_plan(plan_file(budgeted_run["out"], "run"))
    assert plan.train_steps >= 100  # checkpoints every tenth: restarts would show
    rates = [float(r["learning_rate"]) for r in read_curve(budgeted_run["run"])]
    peak = int(np.argmax(rates))
    assert peak < 0.1 * len(rates)  # the warm-up's 3%, then the decay
    after = rates[peak:]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(after, after[1:], strict=False))
    assert after[-1] < 0.02 * after[0]


def test_a_run_says_its_threads_its_plan_and_its_progress(budgeted_run):
    lines = budgeted_run["lines"]
    plan = load_plan(plan_file(budgeted_run["out"], "run"))
    assert (
        lines[0] == f"torch threads: {cores_given()} (cores given to this process: {cores_given()})"
    )
    assert any(line.startswith("budget 30 s: warm-up measured") for line in lines)
    progress = [line for line in lines if line.startswith("progress tiny/colours: step")]
    assert progress[-1].startswith(
        f"progress tiny/colours: step {plan.train_steps}/{plan.train_steps}"
    )
    assert all(" loss " in line and "examples/s" in line and "ETA" in line for line in progress)


def test_the_sweep_shows_the_plan_but_not_ludwigs_command_line_that_names_the_budget():
    from llmbench.train.sweep import SHOWN

    plan = "budget 360 s: warm-up measured 1.73 examples/s at batch 4 on 2 thread(s)"
    assert SHOWN.search("\r 12%|#  " + plan).group(0) == plan
    ludwigs_table = "│ command │ ('llmbench train --config c.yaml --budget 360 --label ' │"
    assert SHOWN.search(ludwigs_table) is None


def test_a_budget_shorter_than_the_warm_up_is_refused_on_one_line(tiny_inputs):
    out = tiny_inputs["root"] / "too-short"
    with pytest.raises(LLMBenchError, match="shorter than the warm-up") as error:
        train(tiny_inputs["config"], tiny_inputs["dataset"], out, budget_s=0.5)
    assert "\n" not in str(error.value)
    assert not (out / "run_run").exists() and not plan_file(out, "run").exists()


@pytest.mark.parametrize("text", ["soon", "20x", "-5m", "0", "m", "1h 3", "nan"])
def test_a_budget_that_is_not_a_duration_is_refused(text):
    with pytest.raises(LLMBenchError, match="budget"):
        parse_budget(text)


def test_budgets_read_as_durations():
    assert parse_budget("20m") == 1200
    assert parse_budget("1h30m") == 5400
    assert parse_budget("90s") == parse_budget(90) == parse_budget("90") == 90
    assert parse_budget("1.5m") == 90


def test_the_cli_refuses_a_bad_budget_with_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "llmbench.cli", "train", "--budget", "soon", "--models", "tiny"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--budget" in done.stderr and "not a duration" in done.stderr


def test_a_bakeoff_budget_that_is_not_a_duration_names_the_file_and_key(tmp_path):
    path = tmp_path / "bakeoff.yaml"
    path.write_text(yaml.safe_dump({"models": ["tiny"], "tasks": ["glue_sst2"],
                                    "trainer": {"budget": "soon"}}))  # fmt: skip
    with pytest.raises(LLMBenchError, match=r"bakeoff\.yaml: trainer\.budget: 'soon'"):
        load_config(path)


def test_an_allocation_failure_names_the_batch_size(tmp_path):
    def failing():
        raise RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried")

    with pytest.raises(LLMBenchError, match="trainer.batch_size 64 does not fit in memory"):
        _fitting_in_memory({"trainer": {"batch_size": 64}}, tmp_path / "c.yaml", failing)
    with pytest.raises(RuntimeError, match="something else"):
        _fitting_in_memory({}, tmp_path / "c.yaml", lambda: (_ for _ in ()).throw(
            RuntimeError("something else")))  # fmt: skip


@pytest.mark.slow
def test_a_killed_budgeted_sweep_resumes_its_plan_and_counts_no_step_twice(tmp_path):
    prepare(tmp_path, "gsm8k")
    command = [sys.executable, "-m", "llmbench.cli", "train", "--models", "tiny", "--tasks",
               "gsm8k", "--runs", str(tmp_path), "--budget", "75s"]  # fmt: skip
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    output = tmp_path / "train" / "tiny" / "gsm8k"
    try:
        wait_for_checkpoint(output / "run_run")
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    planned = load_plan(plan_file(output, "run"))
    assert planned is not None and not planned.trained

    rerun = subprocess.run(command, capture_output=True, text=True, check=True)
    record = Manifest.load(tmp_path / "train" / "manifest.json").jobs["tiny/gsm8k"]
    assert record.state == DONE and record.attempts == 2 and record.resumed_from_step
    plan = load_plan(plan_file(output, "run"))
    assert plan.train_steps == planned.train_steps == record.steps  # the plan it began with
    log = (output / "train.log").read_text().splitlines()
    assert sum(line.startswith("warm-up: ") for line in log) == 1  # measured once, then reused
    steps = [int(r["step"]) for r in read_curve(output / "run_run")]
    assert steps == list(range(1, plan.train_steps + 1))
    # the sweep shows its job's progress on the terminal, not only in the log
    assert f"progress tiny/gsm8k: step {plan.train_steps}/{plan.train_steps}" in rerun.stdout
