"""`llmbench bakeoff`: the study end to end, one resumable stage after another.

prepare -> train (the resumable sweep, rendering configs as needed) -> serve (starts
`llmbench serve` unless an endpoint is given) -> evaluate each base model and adapter ->
complexity -> correlate (when enough tasks: the bake-off's own scores, and the study's for the
tasks it has) -> report. Every stage skips what is already done: prepared tables are kept,
trained jobs are skipped, evaluations resume from their responses.

Tasks come from the project's cards, or from a folder of your own (`datasets:` in the config, or
`--datasets`): a task of your own is prepared, trained, evaluated and correlated like the
study's, and is only left out of the comparison with the study's scores, which cannot know it.

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
from llmbench.paths import CONFIGS_DIR, DATASETS_DIR, DEFAULT_WORK_DIR, atomic_write_text
from llmbench.validation import load_schema, read_yaml, validate_or_raise
from llmbench.workdir import Workdir, adapter_id

MIN_TASKS_TO_CORRELATE = 4  # correlate refuses fewer
SCHEMA = "bakeoff"  # llmbench/schemas/bakeoff.schema.json: every key, its type and its default
# The two correlations, each in <runs>/correlate/<name>/: the bake-off's own scores, and the
# study's Table 12 for the tasks the study has.
OWN, STUDY = "bakeoff", "study"


def _default(key: str):
    """A key's default, from the schema (the one place defaults live)."""
    value = load_schema(SCHEMA)["properties"][key]["default"]
    return field(default_factory=lambda: copy.deepcopy(value))


@dataclass
class BakeoffConfig:
    models: list[str]
    tasks: list[str]
    datasets: str | None = _default("datasets")
    source: str = _default("source")
    sources: dict = _default("sources")
    endpoint: str | None = _default("endpoint")
    max_loaded_adapters: int = _default("max_loaded_adapters")
    max_parallel: int = _default("max_parallel")
    trainer: dict = _default("trainer")
    eval_limit: int | None = _default("eval_limit")
    eval_sample: int | None = _default("eval_sample")
    eval_seed: int = _default("eval_seed")
    eval_concurrency: int = _default("eval_concurrency")
    eval_timeout: float = _default("eval_timeout")

    @property
    def datasets_dir(self) -> Path:
        """The folder of task cards the tasks come from."""
        return Path(self.datasets) if self.datasets else DATASETS_DIR


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
    correlate_dirs: dict[str, Path]  # OWN and/or STUDY -> the folder written, when correlated
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
    budget = (document.get("trainer") or {}).get("budget")
    if budget is not None:  # a duration the schema's types cannot check
        from llmbench.train.budget import parse_budget

        parse_budget(budget, f"{source}: trainer.budget")
    if document.get("eval_limit") is not None and document.get("eval_sample") is not None:
        raise LLMBenchError(
            f"{source}: eval_limit and eval_sample: both set; expected one (eval_sample scores "
            "a seeded random sample, eval_limit the first N rows)"
        )
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
            evaluate_stage(config, runs, model, task, endpoints, progress, notes)
            for model in config.models
            for task in config.tasks
        ]
    complexity = complexity_stage(config, runs)
    correlate_dirs = correlate_stage(config, runs, complexity, scores, notes)
    from llmbench.report.document import report

    report_dir = Workdir(runs).report
    report(runs, report_dir)
    return BakeoffResult(scores, report_dir, correlate_dirs, notes, len(endpoints.processes))


def _check_names(config: BakeoffConfig) -> None:
    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model

    for model in config.models:
        get_model(model)
    for task in config.tasks:
        get_card(task, config.datasets_dir)


def prepare_stage(config: BakeoffConfig, runs: Path) -> None:
    from llmbench.prepare.tables import prepare_task

    for task in config.tasks:
        if Workdir(runs).prepared(task).is_file():
            continue
        source = config.sources.get(task) or _shipped_source(config, task)
        prepare_task(
            task,
            source=Path(source) if source else None,
            out_dir=runs,
            datasets_dir=config.datasets_dir,
            progress=False,
        )


def _shipped_source(config: BakeoffConfig, task: str) -> Path | None:
    """The copy shipped with the task that `source: demo|fixture` names; None for upstream."""
    from llmbench.prepare.demo_data import DEMO_TASKS, demo_source
    from llmbench.prepare.tables import fixture_source
    from llmbench.tasks.cards import get_card

    if config.source == "fixture":
        return fixture_source(get_card(task, config.datasets_dir))
    if config.source == "demo":
        if task not in DEMO_TASKS:
            raise LLMBenchError(
                f"bake-off: task {task} has no demo data (source: demo); demo tasks: "
                f"{', '.join(DEMO_TASKS)}; use source: fixture or upstream, or give sources.{task}"
            )
        return demo_source(task)
    return None


def train_stage(config: BakeoffConfig, runs: Path) -> None:
    from llmbench.train.budget import parse_budget
    from llmbench.train.sweep import FAILED, plan_jobs, run_sweep

    trainer = dict(config.trainer)
    budget = trainer.pop("budget", None)
    budget_s = parse_budget(budget, "bake-off trainer.budget") if budget is not None else None
    jobs = plan_jobs(
        config.models, config.tasks, runs, CONFIGS_DIR, config.datasets_dir, trainer, budget_s
    )
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
        self.config, self.workdir = config, Workdir(runs)
        self.urls: dict[str, str] = {}
        self.processes: list = []

    def url(self, name: str) -> str:
        if self.config.endpoint:
            return self.config.endpoint
        if name not in self.urls:
            from llmbench.serving.launch import start_server
            from llmbench.tasks.models import get_model

            process, self.urls[name] = start_server(
                self.workdir.base_model(get_model(name)),
                self.workdir.train.resolve(),
                max_loaded_adapters=self.config.max_loaded_adapters,
                log_path=self.workdir.serve_log(name),
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
    config: BakeoffConfig,
    runs: Path,
    model: str,
    task: str,
    endpoints: Endpoints,
    progress: bool,
    notes: list[str] | None = None,
) -> TaskScore:
    """The base model's and the adapter's scores on the task. The adapter's answers are kept
    with its weights' digest: once it is retrained, or when its answers predate the digest and
    cannot be tied to its weights, its evaluation starts over (with a note)."""
    from llmbench.evaluate.harness import (
        UNRECORDED,
        EvalSettings,
        evaluate,
        pending_examples,
        recorded_weights,
    )
    from llmbench.train.training import adapter_digest, finished_adapter, run_directory

    datasets = config.datasets_dir
    trained = finished_adapter(run_directory(Workdir(runs).train_output(model, task)))
    results = []
    for adapter in (None, adapter_id(model, task)):
        settings = EvalSettings(
            task=task,
            endpoint="",
            model=model,
            adapter_id=adapter,
            limit=config.eval_limit,
            sample=config.eval_sample,
            seed=config.eval_seed,
            concurrency=config.eval_concurrency,
            timeout=config.eval_timeout,
            adapter_weights=adapter_digest(trained) if adapter and trained else None,
        )
        before = recorded_weights(settings, runs)
        now = settings.adapter_weights
        restart = now is not None and before is not None and before != now
        if restart and notes is not None:
            why = (
                "its answers do not record which weights made them"
                if before == UNRECORDED
                else "retrained since its evaluation"
            )
            notes.append(f"{adapter}: {why}, so it was evaluated again")
        if restart or pending_examples(settings, runs, datasets_dir=datasets):
            settings = EvalSettings(**{**settings.__dict__, "endpoint": endpoints.url(model)})
        results.append(
            evaluate(settings, runs, progress=progress, restart=restart, datasets_dir=datasets)
        )
    base, adapter = results
    if notes is not None:
        notes += base.notes  # the adapter's rows are the base's: one note says it
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
    from llmbench.analysis.complexity import task_complexity, write_complexity

    rows = [task_complexity(task, runs, "train", config.datasets_dir) for task in config.tasks]
    path = Workdir(runs).complexity("train")
    write_complexity(rows, path)
    return path


def correlate_stage(
    config: BakeoffConfig,
    runs: Path,
    complexity: Path,
    scores: list[TaskScore],
    notes: list[str],
) -> dict[str, Path]:
    """The bake-off's own scores, and the study's for the tasks the study has, against these
    tasks' heuristics, each when there are enough tasks; what was not done is a note, never an
    error, so that no task of yours can stop the bake-off at its last stage."""
    if len(config.tasks) < MIN_TASKS_TO_CORRELATE:
        notes.append(
            f"correlate skipped: it needs at least {MIN_TASKS_TO_CORRELATE} tasks and "
            f"this bake-off has {len(config.tasks)}; run `llmbench correlate` on more"
        )
        return {}
    from llmbench.analysis.correlate import PAPER, correlate, correlate_scores

    workdir = Workdir(runs)
    own = workdir.correlation(OWN)
    own_scores = own_scores_table(scores)
    atomic_write_text(own / "scores.csv", own_scores.to_csv(index_label="task"))
    runs_by_name = {
        # the complexity table keeps the rows of earlier bake-offs in this work directory:
        # tasks this one did not score are left out, and named in a note
        OWN: lambda: correlate_scores(
            own_scores, complexity, own, str(own / "scores.csv"), unscored_ok=True
        ),
        STUDY: lambda: correlate(PAPER, complexity, workdir.correlation(STUDY)),
    }
    done = {}
    for name, run in runs_by_name.items():
        try:
            result = run()
        except LLMBenchError as exc:
            notes += [f"correlate ({name} scores) skipped: {problem}" for problem in exc.problems]
            continue
        done[name] = workdir.correlation(name)
        notes += [f"correlate ({name} scores): {note}" for note in result.notes]
    return done


def own_scores_table(scores: list[TaskScore]):
    """The bake-off's scores in the Table 12 layout less its `gpt-4` column (a bake-off runs no
    GPT-4): per task, `<model>_ft` (the adapter) and `<model>_base` for each model."""
    import pandas as pd

    from llmbench.analysis.correlate import BASE, FT

    models = list(dict.fromkeys(s.model for s in scores))
    tasks = list(dict.fromkeys(s.task for s in scores))
    cells = {(s.task, s.model): s for s in scores}
    columns = {
        **{m + FT: [cells[t, m].adapter for t in tasks] for m in models},
        **{m + BASE: [cells[t, m].base for t in tasks] for m in models},
    }
    return pd.DataFrame(columns, index=pd.Index(tasks, name="task"))
