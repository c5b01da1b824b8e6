"""The work directory (`--runs DIR`, default ./runs): every path under it, and the adapter id.

One place says where each stage reads and writes, so that stages hand each other files by
asking the same object, never by spelling a folder name twice:

    runs/
      upstream/<task>/                     fetched upstream copies (`prepare` without --source)
      prepared/<task>.parquet              `prepare`: the prepared table
      prepared/<task>.manifest.json        ... and where its rows came from
      stats/token_stats.csv                `tasks stats`
      models/<name>/                       local base models (`build-model`; the registry's
                                           local_path)
      configs/<model>/<task>.yaml          configs a sweep rendered for itself
      train/manifest.json                  the sweep's job records
      train/<model>/<task>/                one job's output; its adapter id is <model>/<task>
      train/<model>/<task>-seed<k>/        ... of the job's seed k > 1 (`seeds` of a bake-off)
      serve-<model>.log                    a server the bake-off started
      eval/<model>/<task>/<adapter>/       `eval`: responses, scores (adapter id's '/' -> '__',
                                           `base` for the base model)
        constrained/                       ... of `eval --constrained` (answers restricted to
                                           the task's labels)
      complexity/<split>.csv               `complexity`
      correlate/                           `correlate` (the bake-off: correlate/<scores>/)
      report/, report-paper/               `report`
      loadtest/                            `loadtest`

A name that would lead out of the work directory (a task, model or adapter id holding '..', an
absolute path, a NUL) is refused with one line before any path is made from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from llmbench.errors import LLMBenchError
from llmbench.paths import DEFAULT_WORK_DIR

# The adapter id of the (model, task) job of a sweep: also its folder under train/, which is the
# adapters root `llmbench serve` is given, so the server knows the adapter by this id.
ADAPTER_ID = "{model}/{task}"
# A seed k > 1 of the same job: its own folder and id beside seed 1's (task names hold no '-').
# Seed 1 keeps the plain id, so runs from before seeds resume unchanged.
SEED_SUFFIX = "-seed{seed}"
BASE_LEAF = "base"  # eval/<model>/<task>/base: the base model's own run
EVAL_SCORES_GLOB = "eval/*/*/*/scores.json"
# A constrained run's folder, inside the free run's: one level deeper, so EVAL_SCORES_GLOB (Table
# 12's runs) never finds it.
CONSTRAINED_LEAF = "constrained"
CONSTRAINED_SCORES_GLOB = f"eval/*/*/*/{CONSTRAINED_LEAF}/scores.json"
LEARNING_CURVE_PLOT = "learning_curve.png"  # what llmbench.train.progress plots into a run folder


def adapter_id(model: str, task: str, seed: int = 1) -> str:
    """The id under which `llmbench serve --adapters <runs>/train` serves the sweep's adapter
    (of its training seed `seed`: 1 is the plain id, k > 1 adds SEED_SUFFIX)."""
    plain = ADAPTER_ID.format(model=_name("model", model), task=_name("task", task))
    return plain if seed == 1 else plain + SEED_SUFFIX.format(seed=seed)


def seed_of(adapter: str, model: str, task: str) -> int | None:
    """The training seed of `adapter` when it is one of the sweep's adapter ids of (model,
    task) (see `adapter_id`); None for an adapter of another name."""
    plain = ADAPTER_ID.format(model=model, task=task)
    if adapter == plain:
        return 1
    number = adapter.removeprefix(plain + SEED_SUFFIX.partition("{seed}")[0])
    if number.isdigit() and int(number) > 1 and adapter == adapter_id(model, task, int(number)):
        return int(number)
    return None


def _name(kind: str, name: str) -> str:
    """`name` when it is one plain path component; otherwise a one-line error."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
    ):
        raise LLMBenchError(
            f"{kind} {name!r}: not usable as a folder name inside the work directory; "
            "expected a plain name (no '/', '\\', '..' or NUL)"
        )
    return name


def _flat(kind: str, name: str) -> str:
    """A free-form id (an adapter id, a served model's name) as one folder name: '/' -> '__'."""
    if not isinstance(name, str):
        return _name(kind, name)
    return _name(kind, name.replace("/", "__"))


@dataclass(frozen=True)
class Workdir:
    """The paths under one work directory; nothing is created until a stage writes."""

    root: Path = DEFAULT_WORK_DIR

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # --- prepare --------------------------------------------------------------------------------

    def upstream(self, task: str) -> Path:
        """Where a task's upstream data is fetched to."""
        return self.root / "upstream" / _name("task", task)

    @property
    def prepared_dir(self) -> Path:
        return self.root / "prepared"

    def prepared(self, task: str) -> Path:
        """The task's prepared table."""
        return self.prepared_dir / f"{_name('task', task)}.parquet"

    def prepared_manifest(self, task: str) -> Path:
        """The source and row counts of the task's prepared table, beside it."""
        return self.prepared_dir / f"{_name('task', task)}.manifest.json"

    @property
    def token_stats(self) -> Path:
        return self.root / "stats" / "token_stats.csv"

    # --- models and training --------------------------------------------------------------------

    def local_model(self, model) -> Path:
        """Where a registry model with a `local_path` (built offline) lives: <runs>/<local_path>."""
        if not model.local_path:
            raise LLMBenchError(
                f"model {model.name}: not built locally (its hub id is {model.hub_id}); "
                "expected a registry model with a local_path, such as tiny or smollm2-135m"
            )
        relative = PurePosixPath(model.local_path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise LLMBenchError(
                f"model {model.name}: local_path {model.local_path!r} leads out of the work "
                "directory; expected a relative path such as models/<name>"
            )
        return self.root.joinpath(*relative.parts)

    def base_model(self, model) -> str:
        """What a config or a server is given as the base model: the hub id, or the local
        model's folder as an absolute path."""
        return model.hub_id or str(self.local_model(model).resolve())

    @property
    def configs(self) -> Path:
        """Configs a sweep renders for itself (<configs>/<model>/<task>.yaml)."""
        return self.root / "configs"

    @property
    def train(self) -> Path:
        """The sweep's output: also the adapters root a server is given."""
        return self.root / "train"

    @property
    def train_manifest(self) -> Path:
        return self.train / "manifest.json"

    def train_output(self, model: str, task: str, seed: int = 1) -> Path:
        """One sweep job's output folder: <train>/<adapter id>."""
        return self.train / adapter_id(model, task, seed)

    def learning_curves(self) -> list[Path]:
        """Every training run's learning-curve plot (<train>/<adapter id>/<run folder>/
        LEARNING_CURVE_PLOT), in path order."""
        return sorted(self.train.glob(f"*/*/*/{LEARNING_CURVE_PLOT}"))

    def replaced_output(self, model: str, task: str, stamp: str, seed: int = 1) -> Path:
        """Where a job's earlier output is kept when its config changed: <runs>/replaced/<adapter
        id>/<stamp>, outside the adapters root, so no server offers it."""
        return self.root / "replaced" / adapter_id(model, task, seed) / _name("stamp", stamp)

    def serve_log(self, model: str) -> Path:
        return self.root / f"serve-{_name('model', model)}.log"

    # --- evaluation -----------------------------------------------------------------------------

    def eval_run(
        self, model: str, task: str, adapter: str | None, constrained: bool = False
    ) -> Path:
        """One evaluation's folder: eval/<model>/<task>/<adapter id with '/' as '__', or base>,
        and CONSTRAINED_LEAF inside it for the constrained run of the same model or adapter."""
        leaf = _flat("adapter id", adapter) if adapter is not None else BASE_LEAF
        path = self.root / "eval" / _flat("model", model) / _name("task", task) / leaf
        return path / CONSTRAINED_LEAF if constrained else path

    def eval_scores(self, constrained: bool = False) -> list[Path]:
        """Every (free, or else constrained) evaluation's scores.json, in path order."""
        return sorted(self.root.glob(CONSTRAINED_SCORES_GLOB if constrained else EVAL_SCORES_GLOB))

    # --- analysis and reports -------------------------------------------------------------------

    @property
    def complexity_dir(self) -> Path:
        return self.root / "complexity"

    def complexity(self, split: str = "train") -> Path:
        """The heuristics of one split of every measured task."""
        return self.complexity_dir / f"{_name('split', split)}.csv"

    @property
    def correlate(self) -> Path:
        return self.root / "correlate"

    def correlation(self, scores: str) -> Path:
        """The bake-off's correlation against one set of scores (study, bakeoff)."""
        return self.correlate / _name("scores", scores)

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_paper(self) -> Path:
        """`report --paper`: the study's own table, apart from yours."""
        return self.root / "report-paper"

    @property
    def loadtest(self) -> Path:
        return self.root / "loadtest"
