"""Training sweeps: a manifest per sweep, failures isolated, kills resumed from checkpoints, Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from llmbench.prepare.tables import fixture_source, prepare_task
from llmbench.tasks.cards import get_card
from llmbench.train.render import render_configs
from llmbench.train.sweep import DONE, FAILED, Manifest, plan_jobs, run_sweep

pytestmark = pytest.mark.slow


def prepare(runs: Path, *tasks: str) -> None:
    for task in tasks:
        prepare_task(task, source=fixture_source(get_card(task)), out_dir=runs, progress=False)


def long_configs(runs: Path, task: str, train_steps: int) -> Path:
    """Tiny configs that train long enough to be interrupted, checkpointing often."""
    configs = runs / "long-configs"
    (rendered,) = render_configs(["tiny"], [task], out_dir=configs, work_dir=runs, validate=False)
    config = yaml.safe_load(rendered.path.read_text())
    config["trainer"].update(train_steps=train_steps, steps_per_checkpoint=10, eval_steps=10)
    rendered.path.write_text(yaml.safe_dump(config))
    return configs


def test_a_job_without_data_fails_alone_and_a_rerun_skips_done_jobs(tmp_path):
    prepare(tmp_path, "glue_sst2")
    jobs = plan_jobs(["tiny"], ["glue_sst2", "boolq"], tmp_path)
    manifest = run_sweep(jobs, tmp_path, max_parallel=2)
    done, failed = manifest.jobs["tiny/glue_sst2"], manifest.jobs["tiny/boolq"]
    assert done.state == DONE and Path(done.adapter, "adapter_model.safetensors").is_file()
    assert failed.state == FAILED and "prepared table not found" in failed.error
    assert "llmbench prepare --task boolq" in failed.error
    saved = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert saved["jobs"]["tiny/boolq"]["state"] == FAILED

    prepare(tmp_path, "boolq")
    manifest = run_sweep(plan_jobs(["tiny"], ["glue_sst2", "boolq"], tmp_path), tmp_path)
    assert manifest.jobs["tiny/glue_sst2"].attempts == 1  # done before: not run again
    assert manifest.jobs["tiny/boolq"].state == DONE and manifest.jobs["tiny/boolq"].attempts == 2


def test_a_failing_job_keeps_its_log(tmp_path):
    prepare(tmp_path, "gsm8k")
    configs = long_configs(tmp_path, "gsm8k", 20)
    broken = configs / "tiny" / "gsm8k.yaml"
    config = yaml.safe_load(broken.read_text())
    config["trainer"]["learning_rate"] = "fast"
    broken.write_text(yaml.safe_dump(config))
    manifest = run_sweep(plan_jobs(["tiny"], ["gsm8k"], tmp_path, configs), tmp_path)
    record = manifest.jobs["tiny/gsm8k"]
    assert record.state == FAILED and record.error
    assert record.error in Path(record.log).read_text()


def wait_for_checkpoint(run_dir: Path, timeout: float = 240) -> int:
    progress = run_dir / "model" / "training_progress.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if progress.is_file():
            try:
                steps = json.loads(progress.read_text())["steps"]
            except (json.JSONDecodeError, KeyError):
                steps = 0
            if steps > 0:
                return steps
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_mid_job_then_rerun_resumes_from_the_checkpoint(tmp_path):
    prepare(tmp_path, "gsm8k")
    configs = long_configs(tmp_path, "gsm8k", 400)
    command = [
        sys.executable,
        "-m",
        "llmbench.cli",
        "train",
        "--models",
        "tiny",
        "--tasks",
        "gsm8k",
        "--runs",
        str(tmp_path),
        "--configs",
        str(configs),
    ]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / "train" / "tiny" / "gsm8k" / "run_run"
    try:
        wait_for_checkpoint(run_dir)
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    interrupted = Manifest.load(tmp_path / "train" / "manifest.json").jobs["tiny/gsm8k"]
    assert interrupted.state == "running" and interrupted.attempts == 1
    assert not _training_processes(tmp_path), "the job outlived the killed sweep"

    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = Manifest.load(tmp_path / "train" / "manifest.json").jobs["tiny/gsm8k"]
    assert record.state == DONE and record.attempts == 2
    assert record.resumed_from_step and 0 < record.resumed_from_step < 400
    assert record.steps == 400
    assert "Resuming training" in Path(record.log).read_text()
    assert [h["state"] for h in record.history] == [DONE]


def _training_processes(runs: Path) -> list[str]:
    time.sleep(1.0)
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(runs) in cmdline and "--config" in cmdline:
                found.append(cmdline)
    return found


@pytest.fixture
def ray_cluster():
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray is None:
        pytest.skip("ray is not installed in this environment")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = "6399"
    # Ray's socket paths must stay short: a temporary folder directly under /tmp.
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    subprocess.run(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--num-gpus=0",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            [ray, "stop", "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_jobs_run_as_ray_tasks_on_a_local_cluster(tmp_path, ray_cluster):
    prepare(tmp_path, "glue_sst2", "gsm8k")
    jobs = plan_jobs(["tiny"], ["glue_sst2", "gsm8k"], tmp_path)
    manifest = run_sweep(jobs, tmp_path, ray_address=ray_cluster, gpus_per_job=0)
    for key in ("tiny/glue_sst2", "tiny/gsm8k"):
        record = manifest.jobs[key]
        assert record.state == DONE, record.error
        assert Path(record.adapter, "adapter_config.json").is_file()
