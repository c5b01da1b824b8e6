"""`llmbench train --models … --tasks …`: a resumable sweep of training jobs, locally or on Ray.

Each (model, task) job trains one rendered config on the task's prepared table in a child
process (`llmbench train --resume`), its output in `<runs>/train/<model>/<task>/` and its log in
`train.log` there. The sweep records every job's state in `<runs>/train/manifest.json`
(queued, running, done, failed; start and end times, attempts, the adapter path, the step a
resumed job started from, the error). A rerun skips done jobs and resumes interrupted ones from
Ludwig's latest checkpoint; a failed job keeps its log and the others go on.

Only this process writes the manifest (atomically, after every change), so killing the sweep at
any moment leaves a readable manifest; child processes die with it (PR_SET_PDEATHSIG), and a job
found "running" on the next start was interrupted.

With `ray_address`, each job runs as a Ray task asking for `gpus_per_job` GPUs (and one CPU);
the results come back to this process, which keeps the same manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import CONFIGS_DIR, DATASETS_DIR, DEFAULT_WORK_DIR, atomic_write_text
from llmbench.workdir import Workdir, adapter_id

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# What the sweep also shows of a job's log: progress, the budget's plan, threads. Found anywhere
# in a line: Ludwig's progress bar (stderr, the same pipe) ends its updates with a carriage
# return, not a newline, so a line of ours can follow one.
SHOWN = re.compile(r"(progress \S+: step |budget \d+ s: |warm-up: |torch threads: ).*")


@dataclass
class JobRecord:
    model: str
    task: str
    config: str
    dataset: str
    output: str
    state: str = QUEUED
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    adapter: str | None = None
    config_sha256: str | None = None  # the config's text when planned; None in older manifests
    budget_s: float | None = None  # train for this long (llmbench.train.budget), not train_steps
    seed: int = 1  # the training seed (1: Ludwig's default random_seed, as before seeds existed)
    resumed_from_step: int | None = None
    steps: int | None = None
    log: str | None = None
    error: str | None = None
    history: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return adapter_id(self.model, self.task, self.seed)


class Manifest:
    """The sweep's job records, saved atomically after every change (thread-safe)."""

    def __init__(self, path: Path, jobs: dict[str, JobRecord]):
        self.path, self.jobs, self._lock = Path(path), jobs, threading.Lock()

    @classmethod
    def load(cls, path: Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            return cls(path, {})
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            jobs = {key: JobRecord(**record) for key, record in document["jobs"].items()}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LLMBenchError(f"{path}: not a sweep manifest ({exc}); move it aside") from None
        return cls(path, jobs)

    def update(self, key: str, **changes) -> None:
        with self._lock:
            record = self.jobs[key]
            for name, value in changes.items():
                setattr(record, name, value)
            self._save()

    def add(self, record: JobRecord) -> None:
        with self._lock:
            self.jobs.setdefault(record.key, record)
            self._save()

    def _save(self) -> None:
        document = {"version": 1, "jobs": {k: asdict(v) for k, v in sorted(self.jobs.items())}}
        atomic_write_text(self.path, json.dumps(document, indent=2) + "\n")


def plan_jobs(
    models: list,
    tasks: list,
    runs: Path,
    configs: Path = CONFIGS_DIR,
    datasets_dir: Path = DATASETS_DIR,
    trainer: dict | None = None,
    budget_s: float | None = None,
    seeds: dict[str, int] | None = None,
    adapter: dict | None = None,
) -> list[JobRecord]:
    """One job per (model, task, seed): its config (rendered into <runs>/configs from the cards
    in `datasets_dir` when not in `configs`, or always with `trainer` values that replace the
    model's, and `adapter` LoRA values likewise), its prepared table and its output folder;
    with `budget_s`, each job trains for that long. `models` and `tasks` are names, or models
    and cards already loaded. `seeds` maps a task to its number of training seeds (1 where
    absent): seed k > 1 trains the same config with its own seed into its own folder (see
    `adapter_id`). Unknown names fail here, before anything runs."""
    from llmbench.tasks.cards import as_card
    from llmbench.tasks.models import as_model
    from llmbench.train.local_models import ensure_local_model

    workdir = Workdir(runs)
    models = [as_model(model) for model in models]
    for model in models:
        if model.local_path:  # built offline, into the work directory
            ensure_local_model(model.name, workdir.local_model(model))
    cards = [as_card(task, datasets_dir) for task in tasks]
    jobs = []
    for model in models:
        for card in cards:
            given = None if trainer or adapter else _given_config(configs, model.name, card)
            config = given or _render_for_prepared_data(
                model, card, workdir, datasets_dir, trainer, adapter
            )
            for seed in range(1, (seeds or {}).get(card.name, 1) + 1):
                jobs.append(
                    JobRecord(
                        model=model.name,
                        task=card.name,
                        config=str(config),
                        config_sha256=job_digest(config, budget_s),
                        budget_s=budget_s,
                        seed=seed,
                        dataset=str(workdir.prepared(card.name)),
                        output=str(workdir.train_output(model.name, card.name, seed)),
                    )
                )
    return jobs


def _given_config(configs: Path, model: str, card) -> Path | None:
    """The config in `configs` for (model, task), if there is one; never the study's own
    configs for a card of another folder (a task of yours may share a name with ours)."""
    path = Path(configs) / model / f"{card.name}.yaml"
    study_configs = Path(configs).resolve() == CONFIGS_DIR.resolve()
    if study_configs and card.folder.parent.resolve() != DATASETS_DIR.resolve():
        return None
    return path if path.is_file() else None


def _render_for_prepared_data(
    base,
    card,
    workdir: Workdir,
    datasets_dir: Path,
    trainer: dict | None = None,
    adapter: dict | None = None,
) -> Path:
    """A config rendered into <runs>/configs, its sequence length measured on the prepared table
    with the model's own tokenizer when the model is local (the study's figures were measured
    on its own prompts, which a model's markup can outgrow: a truncated target teaches nothing)."""
    from llmbench.prepare.stats import longest_in_model_tokens
    from llmbench.train.render import render_one

    measured = None
    # without a prepared table the job fails on its own, naming the missing data
    if base.local_path and workdir.prepared(card.name).is_file():
        measured = longest_in_model_tokens(
            card, base, workdir.local_model(base), workdir.root, datasets_dir
        )
    rendered = render_one(card, base, workdir.configs, workdir.root, measured, trainer, adapter)
    atomic_write_text(rendered.path, rendered.text)
    return rendered.path


def run_sweep(
    jobs: list[JobRecord],
    runs: Path = DEFAULT_WORK_DIR,
    max_parallel: int = 1,
    ray_address: str | None = None,
    gpus_per_job: float = 1.0,
) -> Manifest:
    """Run every job not yet done; return the manifest as it ends."""
    manifest = Manifest.load(Workdir(runs).train_manifest)
    for job in jobs:
        manifest.add(job)
        _start_over_if_changed(job, manifest, Workdir(runs))
    pending = [manifest.jobs[j.key] for j in jobs if manifest.jobs[j.key].state != DONE]
    if ray_address:
        _run_on_ray(pending, manifest, ray_address, gpus_per_job)
    else:
        with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
            for future in [pool.submit(_run_local, job, manifest) for job in pending]:
                future.result()
    return manifest


def file_digest(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def job_digest(config: Path | str, budget_s: float | None) -> str:
    """What a job trains: its config's text, and its budget when it has one (either changing
    trains the job again)."""
    digest = file_digest(config)
    if budget_s is None:
        return digest
    return hashlib.sha256(f"{digest} budget {budget_s:g}".encode()).hexdigest()


def _start_over_if_changed(job: JobRecord, manifest: Manifest, workdir: Workdir) -> None:
    """A job whose config changed since it was recorded (done or not) is trained again from
    step 0: its earlier output is moved to <runs>/replaced/<model>/<task>/<UTC time>/, never
    deleted. A record from an older manifest, with no digest, takes the job's as it stands."""
    record = manifest.jobs[job.key]
    if record.config_sha256 == job.config_sha256:
        return
    if record.config_sha256 is not None and Path(job.output).exists():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = workdir.replaced_output(job.model, job.task, stamp, job.seed)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(job.output, kept)
        manifest.update(
            job.key, state=QUEUED, adapter=None, steps=None, error=None, seconds=None,
            started=None, finished=None, resumed_from_step=None,
        )  # fmt: skip
    manifest.update(
        job.key, config=job.config, config_sha256=job.config_sha256, budget_s=job.budget_s
    )


def _start(job: JobRecord, manifest: Manifest) -> None:
    from llmbench.train.training import run_directory

    resumed = _checkpoint_step(run_directory(Path(job.output)))
    manifest.update(
        job.key,
        state=RUNNING,
        attempts=job.attempts + 1,
        started=time.time(),
        finished=None,
        seconds=None,
        error=None,
        resumed_from_step=resumed,
        log=str(Path(job.output) / "train.log"),
    )


def _finish(job: JobRecord, manifest: Manifest, result: dict) -> None:
    history = [
        *job.history,
        {
            "attempt": job.attempts,
            "state": result["state"],
            "resumed_from_step": job.resumed_from_step,
        },
    ]
    now = time.time()
    manifest.update(
        job.key, finished=now, seconds=round(now - job.started, 2), history=history, **result
    )


def _run_local(job: JobRecord, manifest: Manifest) -> None:
    _start(job, manifest)
    result = execute_job(
        job.config, job.dataset, job.output, job.budget_s, job.key, _echo, job.seed
    )
    _finish(job, manifest, result)


def _echo(line: str) -> None:
    print(line, flush=True)


def execute_job(
    config: str,
    dataset: str,
    output: str,
    budget_s: float | None = None,
    label: str | None = None,
    echo=None,
    seed: int = 1,
) -> dict:
    """Train one job in a child process; the outcome as manifest fields. Runs on Ray workers too.

    Everything the child prints goes to `<output>/train.log`; its progress lines (and the
    budget's plan) are also passed to `echo`, when given, as they come. A `seed` other than 1
    is passed on (`llmbench train --seed`); seed 1's command is the one from before seeds."""
    from llmbench.train.training import finished_adapter, run_directory

    output_dir = Path(output)
    if not Path(dataset).is_file():
        return {
            "state": FAILED,
            "error": f"{dataset}: prepared table not found; run "
            f"`llmbench prepare --task {output_dir.name}` first",
        }
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "llmbench.cli",
        "train",
        "--config",
        config,
        "--dataset",
        dataset,
        "--output-directory",
        output,
        "--resume",
        *(["--budget", f"{budget_s:g}"] if budget_s is not None else []),
        *(["--label", label] if label else []),
        *(["--seed", str(seed)] if seed != 1 else []),
    ]
    with open(output_dir / "train.log", "ab") as log:
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        for raw in child.stdout:
            log.write(raw)
            log.flush()
            shown = SHOWN.search(raw.decode("utf-8", errors="replace").rstrip())
            if echo and shown:
                echo(shown.group(0))
        status = child.wait()
    run_dir = run_directory(output_dir)
    adapter = finished_adapter(run_dir)
    if status == 0 and adapter:
        return {"state": DONE, "adapter": str(adapter), "steps": _checkpoint_step(run_dir)}
    return {"state": FAILED, "error": _last_error(output_dir / "train.log", status)}


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the sweep process dies, so no orphan keeps training."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    os.setsid()


def _checkpoint_step(run_dir: Path) -> int | None:
    """The training step of the run's latest checkpoint, None when it has none."""
    progress = Path(run_dir) / "model" / "training_progress.json"
    if not progress.is_file():
        return None
    try:
        return int(json.loads(progress.read_text(encoding="utf-8"))["steps"])
    except (json.JSONDecodeError, KeyError, ValueError):
        return None


def _last_error(log: Path, status: int) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln]
    return (errors or lines or [f"exit status {status}"])[-1][:500]


def _run_on_ray(jobs: list[JobRecord], manifest: Manifest, address: str, gpus: float) -> None:
    import ray

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(execute_job)
        futures = {}
        for job in jobs:
            _start(job, manifest)
            future = remote.remote(job.config, job.dataset, job.output, job.budget_s, seed=job.seed)
            futures[future] = job
        waiting = list(futures)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            job = futures[ready[0]]
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                first = str(exc).splitlines()[0]
                result = {"state": FAILED, "error": f"Ray task failed: {first}"}
            _finish(job, manifest, result)
    finally:
        # Disconnect: a driver still attached when the cluster stops is shut down with it.
        ray.shutdown()
