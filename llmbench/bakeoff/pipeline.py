"""`llmbench bakeoff`: the study end to end, one resumable stage after another.

prepare -> train (the resumable sweep, rendering configs as needed) -> serve (starts
`llmbench serve` unless an endpoint is given) -> evaluate each base model and adapter ->
complexity -> correlate (when enough tasks: the bake-off's own scores, and the study's for the
tasks it has) -> report. Every stage skips what is already done: prepared tables are kept,
trained jobs are skipped, evaluations resume from their responses.

Tasks come from the project's cards, or from a folder of your own (`datasets:` in the config, or
`--datasets`): a task of your own is prepared, trained, evaluated and correlated like the
study's, and is only left out of the comparison with the study's scores, which cannot know it.

Each model and task card is resolved once, at the start (`resolve`: unknown names fail there,
before anything runs), and the stages are handed the resolved run, never the names to look up
again. With `seeds`, a task trains several adapters (seed 1 keeps the id and folder it had
before seeds existed; seed k the id `<model>/<task>-seed<k>`), each evaluated on the same rows.
With `constrained`, a classification task's base model and (seed 1's) adapter are also scored
with answers restricted to the card's labels, on the same rows (llmbench.evaluate.constrained).

The default config (llmbench/data/bakeoff.yaml) is the embedded default: smollm2-135m (a real
instruction-tuned model built offline) on three tasks prepared from the team's generated demo
rows, a few hundred training steps, all on a laptop CPU.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from llmbench.errors import LLMBenchError, did_you_mean
from llmbench.paths import CONFIGS_DIR, DATASETS_DIR, DEFAULT_WORK_DIR, atomic_write_text
from llmbench.tasks.cards import TaskCard
from llmbench.tasks.models import BaseModel
from llmbench.validation import load_schema, read_yaml, validate_or_raise
from llmbench.workdir import Workdir, adapter_id

MIN_TASKS_TO_CORRELATE = 4  # correlate refuses fewer
SCHEMA = "bakeoff"  # llmbench/schemas/bakeoff.schema.json: every key, its type and its default
# The two correlations, each in <runs>/correlate/<name>/: the bake-off's own scores, and the
# study's Table 12 for the tasks the study has.
OWN, STUDY = "bakeoff", "study"


def _schema_default(key: str):
    """A key's default, from the schema (the one place defaults live)."""
    return copy.deepcopy(load_schema(SCHEMA)["properties"][key]["default"])


def _default(key: str):
    return field(default_factory=lambda: _schema_default(key))


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
    adapter: dict = _default("adapter")
    eval_limit: int | None = _default("eval_limit")
    eval_sample: int | None = _default("eval_sample")
    eval_seed: int = _default("eval_seed")
    eval_concurrency: int = _default("eval_concurrency")
    eval_timeout: float = _default("eval_timeout")
    seeds: int | dict = _default("seeds")
    constrained: bool | list = _default("constrained")

    @property
    def datasets_dir(self) -> Path:
        """The folder of task cards the tasks come from."""
        return Path(self.datasets) if self.datasets else DATASETS_DIR

    def seeds_of(self, task: str) -> int:
        """How many seeds `task` trains: `seeds`, or in its per-task form the task's own
        number, else its `default` (else the schema's default)."""
        if isinstance(self.seeds, int):
            return self.seeds
        return self.seeds.get(task, self.seeds.get("default", _schema_default("seeds")))

    def is_constrained(self, task: str) -> bool:
        """Whether `task` is also scored constrained: `constrained` is true, or lists it."""
        return self.constrained is True or (
            isinstance(self.constrained, list) and task in self.constrained
        )


@dataclass(frozen=True)
class ResolvedRun:
    """One bake-off as its stages see it: the settings, the work directory, and each model and
    task card resolved once (`resolve`), in the config's order."""

    config: BakeoffConfig
    runs: Path
    models: dict[str, BaseModel]
    cards: dict[str, TaskCard]

    @property
    def workdir(self) -> Workdir:
        return Workdir(self.runs)

    def seeds(self, task: str) -> range:
        """The training seeds of `task`'s adapters: 1, 2, ... (see BakeoffConfig.seeds_of)."""
        return range(1, self.config.seeds_of(task) + 1)


@dataclass
class TaskScore:
    model: str
    task: str
    metric: str
    base: float
    adapter: float
    n: int
    failed: int
    # every seed's adapter score, seed 1 first (`adapter` is seed 1's); () when not recorded
    seed_scores: tuple[float, ...] = ()
    # with `constrained`: the base model's and seed 1's adapter's scores, answers restricted
    # to the task's labels; None when the task is not scored constrained
    base_constrained: float | None = None
    adapter_constrained: float | None = None

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
    _check_task_names(document, source)
    return BakeoffConfig(**document)


def only_tasks(config: BakeoffConfig, tasks: list[str], source) -> BakeoffConfig:
    """`config` for these of its tasks only (in the config's order), everything else as it is:
    a long bake-off run in pieces into one work directory. A name the config does not have is
    refused, every one at once."""
    problems = [
        f"--tasks: {name!r} is not a task of {source}{did_you_mean(name, config.tasks)}; "
        f"expected some of {', '.join(config.tasks)}"
        for name in tasks
        if name not in config.tasks
    ]
    if problems:
        raise LLMBenchError(*problems)
    return dataclasses.replace(config, tasks=[task for task in config.tasks if task in tasks])


def _check_task_names(document: dict, source) -> None:
    """Each task named in the per-task form of `seeds`, or in a list of `constrained`, is one of
    the bake-off's tasks."""
    tasks = document["tasks"]
    seeds, constrained = document.get("seeds"), document.get("constrained")
    named = []  # (where, name, allowed, expected)
    if isinstance(seeds, dict):
        allowed = ["default", *tasks]
        named += [(f"seeds.{name}", name, allowed, "default or one of") for name in seeds]
    if isinstance(constrained, list):
        named += [(f"constrained: {name!r}", name, tasks, "one of") for name in constrained]
    problems = [
        f"{source}: {where}: not a task of this bake-off{did_you_mean(name, allowed)}; "
        f"expected {expected} {', '.join(tasks)}"
        for where, name, allowed, expected in named
        if name not in allowed
    ]
    if problems:
        raise LLMBenchError(*problems)


def run_bakeoff(
    config: BakeoffConfig, runs: Path = DEFAULT_WORK_DIR, progress: bool = True
) -> BakeoffResult:
    """Every stage for config.models x config.tasks under `runs`."""
    run = resolve(config, runs)
    prepare_stage(run)
    train_stage(run)
    notes: list[str] = []
    with Endpoints(run) as endpoints:
        scores = [
            evaluate_stage(run, model, task, endpoints, progress, notes)
            for model in run.models
            for task in run.cards
        ]
    complexity = complexity_stage(run)
    correlate_dirs = correlate_stage(run, complexity, scores, notes)
    from llmbench.report.document import report

    report_dir = run.workdir.report
    report(run.runs, report_dir)
    return BakeoffResult(scores, report_dir, correlate_dirs, notes, len(endpoints.processes))


def resolve(config: BakeoffConfig, runs: Path = DEFAULT_WORK_DIR) -> ResolvedRun:
    """The bake-off's models and task cards, each looked up once; every unknown or broken one
    reported together, before anything is written."""
    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model

    models, cards, problems = {}, {}, []
    for names, found, look_up in (
        (config.models, models, get_model),
        (config.tasks, cards, lambda task: get_card(task, config.datasets_dir)),
    ):
        for name in names:
            try:
                found[name] = look_up(name)
            except LLMBenchError as exc:
                problems += exc.problems
    problems += [
        f"bake-off: constrained: task {task} has no labels in its card ({card.path}: labels), so "
        "its answers cannot be constrained; expected a list of the tasks whose cards list "
        "their labels, or false"
        for task, card in cards.items()
        if config.is_constrained(task) and not card.labels
    ]
    if problems:
        raise LLMBenchError(*problems)
    return ResolvedRun(config, Path(runs), models, cards)


def prepare_stage(run: ResolvedRun) -> None:
    from llmbench.prepare.tables import prepare_task

    config = run.config
    for task, card in run.cards.items():
        if run.workdir.prepared(task).is_file():
            continue
        source = config.sources.get(task) or _shipped_source(config, card)
        prepare_task(
            card,
            source=Path(source) if source else None,
            out_dir=run.runs,
            datasets_dir=config.datasets_dir,
            progress=False,
        )


def _shipped_source(config: BakeoffConfig, card: TaskCard) -> Path | None:
    """The copy shipped with the task that `source: demo|fixture` names; None for upstream."""
    from llmbench.prepare.demo_data import DEMO_TASKS, demo_source
    from llmbench.prepare.tables import fixture_source

    if config.source == "fixture":
        return fixture_source(card)
    if config.source == "demo":
        if card.name not in DEMO_TASKS:
            raise LLMBenchError(
                f"bake-off: task {card.name} has no demo data (source: demo); demo tasks: "
                f"{', '.join(DEMO_TASKS)}; use source: fixture or upstream, or give "
                f"sources.{card.name}"
            )
        return demo_source(card.name)
    return None


def train_stage(run: ResolvedRun) -> None:
    from llmbench.train.budget import parse_budget
    from llmbench.train.sweep import FAILED, plan_jobs, run_sweep

    config = run.config
    trainer = dict(config.trainer)
    budget = trainer.pop("budget", None)
    budget_s = parse_budget(budget, "bake-off trainer.budget") if budget is not None else None
    jobs = plan_jobs(
        list(run.models.values()),
        list(run.cards.values()),
        run.runs,
        CONFIGS_DIR,
        config.datasets_dir,
        trainer,
        budget_s,
        seeds={task: config.seeds_of(task) for task in run.cards},
        adapter=config.adapter,
    )
    manifest = run_sweep(jobs, run.runs, max_parallel=config.max_parallel)
    failed = [j.key for j in jobs if manifest.jobs[j.key].state == FAILED]
    if failed:
        raise LLMBenchError(
            f"training failed for {', '.join(failed)}; see {manifest.path} and "
            "each job's train.log, then rerun (done jobs are kept)"
        )


class Endpoints:
    """Model name -> endpoint: the configured one, or a `llmbench serve` started on first need
    (a rerun with every evaluation complete starts no server) and stopped on exit."""

    def __init__(self, run: ResolvedRun):
        self.run = run
        self.urls: dict[str, str] = {}
        self.processes: list = []

    def url(self, name: str) -> str:
        config, workdir = self.run.config, self.run.workdir
        if config.endpoint:
            return config.endpoint
        if name not in self.urls:
            from llmbench.serving.launch import start_server

            process, self.urls[name] = start_server(
                workdir.base_model(self.run.models[name]),
                workdir.train.resolve(),
                max_loaded_adapters=config.max_loaded_adapters,
                log_path=workdir.serve_log(name),
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
    run: ResolvedRun,
    model: str,
    task: str,
    endpoints: Endpoints,
    progress: bool,
    notes: list[str] | None = None,
) -> TaskScore:
    """The base model's score on the task and each seed's adapter's, all on the same rows; with
    `constrained`, the base model's and seed 1's adapter's again, answers restricted to the
    task's labels."""
    base = _evaluate_one(run, model, task, None, endpoints, progress, notes)
    seeds = [
        _evaluate_one(run, model, task, s, endpoints, progress, notes) for s in run.seeds(task)
    ]
    constrained = [
        _evaluate_one(run, model, task, s, endpoints, progress, notes, constrained=True)
        for s in ((None, 1) if run.config.is_constrained(task) else ())
    ]
    if notes is not None:
        notes += base.notes  # the adapters' rows are the base's: one note says it
        notes += [n for result in constrained for n in result.notes if n not in notes]
    return TaskScore(
        model,
        task,
        base.metric,
        base.score,
        seeds[0].score,
        base.n,
        base.n_failed + sum(result.n_failed for result in [*seeds, *constrained]),
        tuple(result.score for result in seeds),
        base_constrained=constrained[0].score if constrained else None,
        adapter_constrained=constrained[1].score if constrained else None,
    )


def _evaluate_one(
    run: ResolvedRun,
    model: str,
    task: str,
    seed: int | None,
    endpoints: Endpoints,
    progress: bool,
    notes: list[str] | None,
    constrained: bool = False,
):
    """One evaluation: the base model's (`seed` None) or the adapter of one training seed, free
    or `constrained`. The adapter's answers are kept with its weights' digest: once it is
    retrained, or when its answers predate the digest and cannot be tied to its weights, its
    evaluation starts over (with a note)."""
    from llmbench.evaluate.harness import (
        UNRECORDED,
        EvalSettings,
        Resolved,
        evaluate,
        pending_examples,
        recorded_weights,
    )
    from llmbench.train.training import adapter_digest, finished_adapter, run_directory

    config, datasets = run.config, run.config.datasets_dir
    adapter, trained = None, None
    if seed is not None:
        adapter = adapter_id(model, task, seed)
        trained = finished_adapter(run_directory(run.workdir.train_output(model, task, seed)))
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
        adapter_weights=adapter_digest(trained) if trained else None,
        constrained=constrained,
    )
    resolved = Resolved(run.cards[task], run.models[model])
    before = recorded_weights(settings, run.runs)
    now = settings.adapter_weights
    restart = now is not None and before is not None and before != now
    if restart and notes is not None:
        why = (
            "its answers do not record which weights made them"
            if before == UNRECORDED
            else "retrained since its evaluation"
        )
        who = f"{adapter} (constrained)" if constrained else adapter
        notes.append(f"{who}: {why}, so it was evaluated again")
    if restart or pending_examples(settings, run.runs, datasets_dir=datasets, resolved=resolved):
        settings = EvalSettings(**{**settings.__dict__, "endpoint": endpoints.url(model)})
    return evaluate(
        settings,
        run.runs,
        progress=progress,
        restart=restart,
        datasets_dir=datasets,
        resolved=resolved,
    )


def complexity_stage(run: ResolvedRun) -> Path:
    from llmbench.analysis.complexity import task_complexity, write_complexity

    datasets = run.config.datasets_dir
    rows = [task_complexity(card, run.runs, "train", datasets) for card in run.cards.values()]
    path = run.workdir.complexity("train")
    write_complexity(rows, path)
    return path


def correlate_stage(
    run: ResolvedRun,
    complexity: Path,
    scores: list[TaskScore],
    notes: list[str],
) -> dict[str, Path]:
    """The bake-off's own scores, and the study's for the tasks the study has, against these
    tasks' heuristics, each when there are enough tasks; what was not done is a note, never an
    error, so that no task of yours can stop the bake-off at its last stage."""
    if len(run.cards) < MIN_TASKS_TO_CORRELATE:
        notes.append(
            f"correlate skipped: it needs at least {MIN_TASKS_TO_CORRELATE} tasks and "
            f"this bake-off has {len(run.cards)}; run `llmbench correlate` on more"
        )
        return {}
    from llmbench.analysis.correlate import PAPER, correlate, correlate_scores

    workdir = run.workdir
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
    for name, correlate_with in runs_by_name.items():
        try:
            result = correlate_with()
        except LLMBenchError as exc:
            notes += [f"correlate ({name} scores) skipped: {problem}" for problem in exc.problems]
            continue
        done[name] = workdir.correlation(name)
        notes += [f"correlate ({name} scores): {note}" for note in result.notes]
    return done


def own_scores_table(scores: list[TaskScore]):
    """The bake-off's scores in the Table 12 layout less its `gpt-4` column (a bake-off runs no
    GPT-4): per task, `<model>_ft` (the adapter; seed 1's, as in the report's main column) and
    `<model>_base` for each model."""
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
