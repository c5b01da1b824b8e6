"""Plain Ludwig on a rendered 4-bit config, through the environment's real `ludwig` console
script: `ludwig train` finishes and writes the adapter; a run killed with SIGKILL resumes from its
checkpoint; `ludwig predict` and `ludwig evaluate` load the trained model. With
LLMBENCH_NO_LUDWIG_FIX=1 the same commands fail as Ludwig 0.17.10 alone does, which shows that
the start-up hook (llmbench/train/ludwig_fix.py) is what makes them work."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llmbench.prepare.tables import fixture_source, prepare_task
from llmbench.tasks.cards import get_card
from llmbench.train.ludwig_fix import apply_4bit_reload_fix
from llmbench.train.render import render_configs
from llmbench.train.tiny import build_tiny_model

BIN = Path(sys.executable).parent  # the environment under test: its python, its `ludwig`
TASK = "winogrande"
TRAIN_STEPS = 24
STEPS_PER_CHECKPOINT = 4
# Each assertion below names one of these lines of Ludwig's log.
RESUMED = "Resuming training from previous run."
STARTED_AGAIN = "starting fresh"
QUANT_STATE_REFUSED = "Unexpected keys found in state dict"
NULL_ADAPTERS_REFUSED = "None is not of type 'object'"


def ludwig_env(*, fix: bool = True) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LLMBENCH_NO_LUDWIG_FIX", None)
    return env if fix else {**env, "LLMBENCH_NO_LUDWIG_FIX": "1"}


def ludwig(log: Path, *args: str, fix: bool = True) -> subprocess.CompletedProcess:
    """`ludwig ARGS` to completion, its output in `log` (also returned as .stdout)."""
    with log.open("w") as out:
        done = subprocess.run(
            [str(BIN / "ludwig"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ludwig_env(fix=fix),
        )
    done.stdout = log.read_text(errors="replace")
    return done


def tail(text: str) -> str:
    return "\n".join(text.splitlines()[-30:])


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict[str, Path]:
    """The tiny model, winogrande's fixture prepared, and its rendered 4-bit config with a short
    trainer (the rest of the config as rendered)."""
    work = tmp_path_factory.mktemp("native")
    runs = work / "runs"
    build_tiny_model(runs / "models" / "tiny")
    prepare_task(TASK, source=fixture_source(get_card(TASK)), out_dir=runs, progress=False)
    (rendered,) = render_configs(["tiny"], [TASK], out_dir=work / "configs", work_dir=runs)
    config = yaml.safe_load(rendered.path.read_text())
    assert config["quantization"]["bits"] == 4
    config["trainer"].update(
        train_steps=TRAIN_STEPS,
        steps_per_checkpoint=STEPS_PER_CHECKPOINT,
        eval_steps=STEPS_PER_CHECKPOINT,
        skip_all_evaluation=True,  # Ludwig's generating evaluation would only slow the test
    )
    short = work / "config.yaml"
    short.write_text(yaml.safe_dump(config, sort_keys=False))
    return {"work": work, "config": short, "dataset": runs / "prepared" / f"{TASK}.parquet"}


def train_args(job, *more: str) -> list[str]:
    return ["train", "--config", str(job["config"]), "--dataset", str(job["dataset"]), *more]


def steps_done(run_dir: Path) -> int:
    progress = run_dir / "model" / "training_progress.json"
    return json.loads(progress.read_text())["steps"] if progress.is_file() else 0


def kill_after_first_checkpoint(job, run_dir: Path, log: Path) -> int:
    """Start `ludwig train`, SIGKILL it once it has written a checkpoint; the steps it had done."""
    args = train_args(job, "--output_directory", str(job["work"] / "results"))
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "ludwig"), *args, "--experiment_name", "killed"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ludwig_env(),
        )
    try:
        deadline = time.monotonic() + 300
        while steps_done(run_dir) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, (
            f"ludwig train ended before the kill:\n{tail(log.read_text())}"
        )
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return steps_done(run_dir)


@pytest.fixture(scope="module")
def resumed(job) -> dict:
    """A run killed after its first checkpoint, then resumed with --model_resume_path."""
    run_dir = job["work"] / "results" / "killed_run"
    killed_at = kill_after_first_checkpoint(job, run_dir, job["work"] / "killed.log")
    resume = ludwig(
        job["work"] / "resumed.log", *train_args(job, "--model_resume_path", str(run_dir))
    )
    return {"run_dir": run_dir, "killed_at": killed_at, "resume": resume}


@pytest.mark.slow
def test_the_killed_run_stopped_mid_way_after_a_checkpoint(resumed):
    assert 0 < resumed["killed_at"] < TRAIN_STEPS


@pytest.mark.slow
def test_ludwig_train_resumes_a_killed_4bit_run_from_its_checkpoint(resumed):
    resume = resumed["resume"]
    assert resume.returncode == 0, tail(resume.stdout)
    assert RESUMED in resume.stdout
    assert STARTED_AGAIN not in resume.stdout
    # Ludwig's progress bar opens at the step the checkpoint holds, not at 0.
    first_bar = re.search(rf"\| (\d+)/{TRAIN_STEPS} \[", resume.stdout)
    assert first_bar and int(first_bar.group(1)) == resumed["killed_at"]
    assert steps_done(resumed["run_dir"]) == TRAIN_STEPS


@pytest.mark.slow
def test_ludwig_train_writes_the_peft_adapter(resumed):
    adapter = resumed["run_dir"] / "model" / "model_weights"
    assert (adapter / "adapter_model.safetensors").is_file()
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"
    assert set(adapter_config["target_modules"]) == {"q_proj", "v_proj"}


@pytest.mark.slow
def test_ludwig_predict_loads_the_trained_model(job, resumed):
    import pandas as pd

    out = job["work"] / "predict"
    done = ludwig(
        job["work"] / "predict.log",
        *["predict", "--model_path", str(resumed["run_dir"] / "model")],
        *["--dataset", str(job["dataset"]), "--split", "test", "--output_directory", str(out)],
    )
    assert done.returncode == 0, tail(done.stdout)
    table = pd.read_parquet(job["dataset"])
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert len(predictions) == int((table["split"] == 2).sum()) > 0
    assert any(column.endswith("_response") for column in predictions.columns)


@pytest.mark.slow
def test_ludwig_evaluate_scores_the_trained_model(job, resumed):
    out = job["work"] / "evaluate"
    done = ludwig(
        job["work"] / "evaluate.log",
        *["evaluate", "--model_path", str(resumed["run_dir"] / "model")],
        *["--dataset", str(job["dataset"]), "--split", "test", "--output_directory", str(out)],
    )
    assert done.returncode == 0, tail(done.stdout)
    statistics = json.loads((out / "test_statistics.json").read_text())
    target = get_card(TASK).target_col
    assert "loss" in statistics[target]


@pytest.mark.slow
def test_without_the_fix_ludwig_train_loses_the_4bit_run(job):
    """Ludwig 0.17.10's own behaviour. When this and the next test fail, Ludwig has fixed its
    bugs and llmbench/train/ludwig_fix.py can go."""
    config = yaml.safe_load(job["config"].read_text())
    config["trainer"].update(train_steps=2, steps_per_checkpoint=2)
    two_steps = job["work"] / "two_steps.yaml"
    two_steps.write_text(yaml.safe_dump(config, sort_keys=False))
    results = job["work"] / "unfixed"
    done = ludwig(
        job["work"] / "unfixed.log",
        *["train", "--config", str(two_steps), "--dataset", str(job["dataset"])],
        *["--output_directory", str(results)],
        fix=False,
    )
    assert done.returncode != 0
    assert QUANT_STATE_REFUSED in done.stdout and "quant_state.bitsandbytes__nf4" in done.stdout
    assert not list(results.rglob("adapter_model.safetensors"))


@pytest.mark.slow
def test_without_the_fix_ludwig_cannot_read_back_the_config_it_saved(resumed):
    """What `ludwig predict` and `ludwig evaluate` die of without the fix: Ludwig saves
    `adapters: null` into every LLM model it trains, and its own schema refuses that on load."""
    from ludwig.error import ConfigValidationError
    from ludwig.schema.model_types.base import ModelConfig

    saved = resumed["run_dir"] / "model" / "model_hyperparameters.json"
    config = json.loads(saved.read_text())
    assert "adapters" in config and config["adapters"] is None
    unfixed = getattr(ModelConfig.from_dict, "__wrapped__", ModelConfig.from_dict)
    with pytest.raises(ConfigValidationError, match=NULL_ADAPTERS_REFUSED):
        unfixed(json.loads(saved.read_text()))
    assert ModelConfig.from_dict(config).adapter.r == 8  # the fixed one reads it


def test_the_startup_hook_is_installed_and_imports_nothing_heavy():
    probe = (
        "import sys; "
        "print(any(type(f).__name__ == 'PatchOnImport' for f in sys.meta_path)); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ludwig', 'peft'}))"
    )
    hooked = subprocess.run(
        [str(BIN / "python"), "-c", probe], capture_output=True, text=True, env=ludwig_env()
    )
    assert hooked.stdout.split("\n")[:2] == ["True", "[]"], (
        "llmbench_ludwig_fix.pth is not active in this environment: run `make setup` "
        f"(stderr: {hooked.stderr.strip()})"
    )
    off = subprocess.run(
        [str(BIN / "python"), "-c", probe],
        capture_output=True,
        text=True,
        env=ludwig_env(fix=False),
    )
    assert off.stdout.split("\n")[:2] == ["False", "[]"]


def test_a_model_without_4bit_layers_gets_no_hook():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    apply_4bit_reload_fix(model)
    assert not model._load_state_dict_post_hooks
    state = {**model.state_dict(), "0.weight.absmax": torch.zeros(1)}
    assert model.load_state_dict(state, strict=False).unexpected_keys == ["0.weight.absmax"]
