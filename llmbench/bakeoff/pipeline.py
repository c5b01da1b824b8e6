"""`llmbench bakeoff`: the study end to end, one resumable stage after another.

prepare -> train (the resumable sweep, rendering configs as needed) -> serve (starts
`llmbench serve` unless an endpoint is given) -> evaluate each base model and adapter ->
complexity -> correlate (when enough tasks) -> report. Every stage skips what is already done:
prepared tables are kept, trained jobs are skipped, evaluations resume from their responses.

The default config (llmbench/data/bakeoff.yaml) is the embedded default: smollm2-135m (a real
instruction-tuned model built offline) on three tasks prepared from the team's generated demo
rows, a few hundred training steps, all on a laptop CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import DEFAULT_WORK_DIR
from llmbench.validation import load_schema, read_yaml, validate_or_raise

MIN_TASKS_TO_CORRELATE = 4  # correlate refuses fewer
SCHEMA = "bakeoff"  # llmbench/schemas/bakeoff.schema.json: every key, its type and its default


def _default(key: str):
    """A key's default, from the schema (the one place defaults live)."""
    value = load_schema(SCHEMA)["properties"][key]["default"]
    return field(default_factory=lambda: copy.deepcopy(value))


@dataclass
class BakeoffConfig:
    models: list[str]
    tasks: list[str]
    source: str = _default("source")
    sources: dict = _default("sources")
    endpoint: str | None = _default("endpoint")
    max_loaded_adapters: int = _default("max_loaded_adapters")
    max_parallel: int = _default("max_parallel")
    eval_limit: int | None = _default("eval_limit")
    eval_concurrency: int = _default("eval_concurrency")


@dataclass
class TaskScore:
    model: str
    task: str
    metric: str
    base: float
    adapter: float
    n: int
    failed: int

    @property
    def lift(self) -> float:
        return self.adapter - self.base


@dataclass
class BakeoffResult:
    scores: list[TaskScore]
    report_dir: Path
    correlate_dir: Path | None
    notes: list[str]
    servers_started: int = 0


def load_config(path: Path | None) -> BakeoffConfig:
    """The bake-off config (the embedded default when `path` is None), every problem listed
    on its own line (file: key: problem), checked against llmbench/schemas/bakeoff.schema.json."""
    source = path or resources.files("llmbench").joinpath("data/bakeoff.yaml")
    document = read_yaml(Path(str(source)))
    if not isinstance(document, dict):
        raise LLMBenchError(f"{source}: expected a mapping of bake-off settings")
    validate_or_raise(document, SCHEMA, source)
    return BakeoffConfig(**document)


def run_bakeoff(
    config: BakeoffConfig, runs: Path = DEFAULT_WORK_DIR, progress: bool = True
) -> BakeoffResult:
    """Every stage for config.models x config.tasks under `runs`."""
    runs = Path(runs)
    _check_names(config)
    prepare_stage(config, runs)
    train_stage(config, runs)
    notes: list[str] = []
    with Endpoints(config, runs) as endpoints:
        scores = [
            evaluate_stage(config, runs, model, task, endpoints, progress)
            for model in config.models
            for task in config.tasks
        ]
    complexity = complexity_stage(config, runs)
    correlate_dir = correlate_stage(config, runs, complexity, notes)
    from llmbench.report.document import report

    report_dir = runs / "report"
    report(runs, report_dir)
    return BakeoffResult(scores, report_dir, correlate_dir, notes, len(endpoints.processes))


def _check_names(config: BakeoffConfig) -> None:
    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model

    for model in config.models:
        get_model(model)
    for task in config.tasks:
        get_card(task)


def prepare_stage(config: BakeoffConfig, runs: Path) -> None:
    from llmbench.prepare.tables import prepare_task, prepared_path

    for task in config.tasks:
        if prepared_path(task, runs).is_file():
            continue
        source = config.sources.get(task) or _shipped_source(config.source, task)
        prepare_task(task, source=Path(source) if source else None, out_dir=runs, progress=False)


def _shipped_source(kind: str, task: str) -> Path | None:
    """The copy shipped with llmbench that `source: demo|fixture` names; None for upstream."""
    from llmbench.prepare.demo_data import DEMO_TASKS, demo_source
    from llmbench.prepare.tables import fixture_source
    from llmbench.tasks.cards import get_card

    if kind == "fixture":
        return fixture_source(get_card(task))
    if kind == "demo":
        if task not in DEMO_TASKS:
            raise LLMBenchError(
                f"bake-off: task {task} has no demo data (source: demo); demo tasks: "
                f"{', '.join(DEMO_TASKS)}; use source: fixture or upstream, or give sources.{task}"
            )
        return demo_source(task)
    return None


def train_stage(config: BakeoffConfig, runs: Path) -> None:
    from llmbench.train.sweep import FAILED, plan_jobs, run_sweep

    jobs = plan_jobs(config.models, config.tasks, runs)
    manifest = run_sweep(jobs, runs, max_parallel=config.max_parallel)
    failed = [j.key for j in jobs if manifest.jobs[j.key].state == FAILED]
    if failed:
        raise LLMBenchError(
            f"training failed for {', '.join(failed)}; see {manifest.path} and "
            "each job's train.log, then rerun (done jobs are kept)"
        )


class Endpoints:
    """Model name -> endpoint: the configured one, or a `llmbench serve` started on first need
    (a rerun with every evaluation complete starts no server) and stopped on exit."""

    def __init__(self, config: BakeoffConfig, runs: Path):
        self.config, self.runs = config, runs
        self.urls: dict[str, str] = {}
        self.processes: list = []

    def url(self, name: str) -> str:
        if self.config.endpoint:
            return self.config.endpoint
        if name not in self.urls:
            from llmbench.serving.launch import start_server
            from llmbench.tasks.models import get_model

            model = get_model(name)
            base = (self.runs / model.local_path).resolve() if model.local_path else model.hub_id
            process, self.urls[name] = start_server(
                base,
                (self.runs / "train").resolve(),
                max_loaded_adapters=self.config.max_loaded_adapters,
                log_path=self.runs / f"serve-{name}.log",
            )
            self.processes.append(process)
        return self.urls[name]

    def __enter__(self) -> Endpoints:
        return self

    def __exit__(self, *exc) -> None:
        from llmbench.serving.launch import stop_server

        for process in self.processes:
            stop_server(process)


def evaluate_stage(
    config: BakeoffConfig, runs: Path, model: str, task: str, endpoints: Endpoints, progress: bool
) -> TaskScore:
    from llmbench.evaluate.harness import EvalSettings, evaluate, pending_examples

    results = []
    for adapter_id in (None, f"{model}/{task}"):
        settings = EvalSettings(
            task=task,
            endpoint="",
            model=model,
            adapter_id=adapter_id,
            limit=config.eval_limit,
            concurrency=config.eval_concurrency,
        )
        if pending_examples(settings, runs):
            settings = EvalSettings(**{**settings.__dict__, "endpoint": endpoints.url(model)})
        results.append(evaluate(settings, runs, progress=progress))
    base, adapter = results
    return TaskScore(
        model,
        task,
        base.metric,
        base.score,
        adapter.score,
        base.n,
        base.n_failed + adapter.n_failed,
    )


def complexity_stage(config: BakeoffConfig, runs: Path) -> Path:
    from llmbench.analysis.complexity import complexity_path, task_complexity, write_complexity

    rows = [task_complexity(task, runs) for task in config.tasks]
    path = complexity_path(runs / "complexity", "train")
    write_complexity(rows, path)
    return path


def correlate_stage(
    config: BakeoffConfig, runs: Path, complexity: Path, notes: list[str]
) -> Path | None:
    """The study's scores against these tasks' heuristics, when there are enough tasks."""
    if len(config.tasks) < MIN_TASKS_TO_CORRELATE:
        notes.append(
            f"correlate skipped: it needs at least {MIN_TASKS_TO_CORRELATE} tasks and "
            f"this bake-off has {len(config.tasks)}; run `llmbench correlate` on more"
        )
        return None
    from llmbench.analysis.correlate import correlate

    out = runs / "correlate"
    correlate("paper", complexity, out)
    return out
