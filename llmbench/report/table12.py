"""The study's Table 12 as data: evaluation runs read, the table built, and what it says.

Recipe: every `<runs>/eval/<model>/<task>/<adapter or base>/scores.json` (`read_run`,
`collect_runs`) → one `Table12`: per (task, model) the best adapter's fine-tuned score and the
base model's, the OpenAI baselines from your own runs or else the study's (`table_from_runs`;
`study_table` is the study's own) → per task and per model summaries, and the largest block
without gaps that `llmbench correlate` can read. `llmbench.report.document` renders it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.workdir import EVAL_SCORES_GLOB, Workdir, seed_of

# the names of llmbench.analysis.correlate's Table 12 layout, kept here so that `llmbench --help`
# does not
# import numpy through it
GPT4 = "gpt-4"
# the study's OpenAI baselines: a base run of a model with one of these names is a baseline
BASELINES = ("gpt-3.5-turbo", GPT4)
FT, BASE = "_ft", "_base"
STUDY, OURS = "study", "ours"
RUN_KEYS = {"task": str, "model": str, "score": (int, float), "n": int, "n_failed": int}


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One evaluation run's scores.json: a base run when `adapter` is None."""

    path: Path
    task: str
    model: str
    adapter: str | None
    score: float
    n: int
    n_failed: int
    # per example, in the same order (absent from runs of an llmbench older than the bootstrap)
    ids: tuple[int, ...] | None = None
    example_scores: tuple[float, ...] | None = None
    answers: dict | None = None  # llmbench.evaluate.answers.answer_stats
    sample: dict | None = None  # llmbench.evaluate.sampling.Sample.as_record
    off_label: int = 0  # a constrained run's answers that named no label (scored 0)

    @property
    def scores_by_id(self) -> dict[int, float] | None:
        if self.ids is None or self.example_scores is None:
            return None
        return dict(zip(self.ids, self.example_scores, strict=True))

    @property
    def flag(self) -> str | None:
        """Why its answers look degenerate (llmbench.evaluate.answers), or None."""
        return (self.answers or {}).get("flag")


def read_run(path: Path) -> Run:
    """One scores.json; an unreadable file or a missing or mistyped key is a one-line error."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LLMBenchError(
            f"{path}: not readable as JSON ({exc}); rerun its `llmbench eval`"
        ) from None
    if not isinstance(record, dict):
        raise LLMBenchError(f"{path}: expected a JSON object as `llmbench eval` writes it")
    wrong = [
        key
        for key, kind in RUN_KEYS.items()
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool)
    ]
    if "adapter" not in record or not isinstance(record["adapter"], str | None):
        wrong.append("adapter")
    if not wrong and not math.isfinite(record["score"]):
        wrong.append("score")
    if wrong:
        raise LLMBenchError(
            f"{path}: key(s) {', '.join(wrong)} missing or of the wrong type; expected task, "
            "model, adapter (null for a base run), score, n and n_failed as `llmbench eval` "
            "writes them"
        )
    ids, example_scores = _per_example(path, record)
    return Run(
        Path(path),
        record["task"],
        record["model"],
        record["adapter"],
        float(record["score"]),
        record["n"],
        record["n_failed"],
        ids,
        example_scores,
        record.get("answers") if isinstance(record.get("answers"), dict) else None,
        record.get("sample") if isinstance(record.get("sample"), dict) else None,
        record["n_off_label"] if isinstance(record.get("n_off_label"), int) else 0,
    )


def _per_example(path: Path, record: dict) -> tuple[tuple | None, tuple | None]:
    """The run's row ids and per-example scores, when it records them (both or neither, one
    per example, ids distinct integers, scores finite numbers)."""
    ids, scores = record.get("ids"), record.get("example_scores")
    if ids is None and scores is None:
        return None, None
    fine = (
        isinstance(ids, list)
        and isinstance(scores, list)
        and len(ids) == len(scores) == record["n"]
        and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        and len(set(ids)) == len(ids)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in scores
        )
    )
    if not fine:
        raise LLMBenchError(
            f"{path}: ids and example_scores: expected two lists of n ({record['n']}) entries, "
            "distinct integer row ids and finite scores, as `llmbench eval` writes them; rerun "
            "its `llmbench eval`"
        )
    return tuple(ids), tuple(float(v) for v in scores)


def collect_runs(runs_dir: Path) -> list[Run]:
    """Every run under `<runs_dir>/eval/`, in path order; every broken file reported at once."""
    paths = Workdir(runs_dir).eval_scores()
    if not paths:
        raise LLMBenchError(
            f"{runs_dir}: no {EVAL_SCORES_GLOB}; expected the work directory of `llmbench eval` "
            "(or --paper for the study's own table)"
        )
    return read_runs(paths)


def read_runs(paths: list[Path]) -> list[Run]:
    """Every run of `paths`, in their order; every broken file reported at once."""
    runs, problems = [], []
    for path in paths:
        try:
            runs.append(read_run(path))
        except LLMBenchError as exc:
            problems += exc.problems
    if problems:
        raise LLMBenchError(*problems)
    return runs


# --- the table ----------------------------------------------------------------------------------


@dataclass
class Table12:
    """Scores indexed by task: `ft` and `base` with one column per base model, `baselines` one
    per BASELINES name; NaN where nothing was run."""

    source: str
    ft: object
    base: object
    baselines: object
    own_baselines: set = field(default_factory=set)  # (task, baseline) from your own runs
    adapters: dict = field(default_factory=dict)  # (task, model) -> the best adapter
    failed: list = field(default_factory=list)  # runs with n_failed > 0
    ft_runs: dict = field(default_factory=dict)  # (task, model) -> the best adapter's Run
    base_runs: dict = field(default_factory=dict)  # (task, model) -> the base model's Run
    # (task, model) -> {training seed: Run} of the sweep's adapter and its other seeds
    seed_runs: dict = field(default_factory=dict)

    @property
    def lift(self):
        return self.ft - self.base

    @property
    def tasks(self) -> list[str]:
        return list(self.ft.index)

    @property
    def models(self) -> list[str]:
        return list(self.ft.columns)

    def flagged(self, task: str, model: str) -> bool:
        return any(r.task == task and r.model == model for r in self.failed)


def study_table() -> Table12:
    """The study's Table 12, from the scores shipped with llmbench."""
    import pandas as pd

    from llmbench.analysis.correlate import PAPER_SCORES, models_of

    frame = pd.read_csv(PAPER_SCORES).set_index("task")
    models = models_of(frame.columns)
    return Table12(
        STUDY,
        frame[[m + FT for m in models]].set_axis(models, axis=1),
        frame[[m + BASE for m in models]].set_axis(models, axis=1),
        frame[list(BASELINES)],
    )


def table_from_runs(runs: list[Run], study: Table12, source: str) -> Table12:
    """Your Table 12: per (task, model) the best adapter and the base run; the baselines from
    your own runs where you have them, else the study's for the same task. The sweep's adapter
    of training seed k > 1 (a bake-off's `seeds`) is never the best adapter: it is kept with
    seed 1's in `seed_runs`, for the spread across seeds (llmbench.report.seeds)."""
    import pandas as pd

    ft, base, baselines, adapters, seed_runs = {}, {}, {}, {}, {}
    problems = []
    for run in runs:
        key = (run.task, run.model)
        seed = seed_of(run.adapter, run.model, run.task) if run.adapter is not None else None
        if seed is not None:
            seed_runs.setdefault(key, {})[seed] = run
            if seed > 1:
                continue
        if run.model in BASELINES:
            target = baselines
            if run.adapter is not None:
                problems.append(f"{run.path}: {run.model} is a baseline; expected a base run")
        else:
            target = base if run.adapter is None else ft
        if run.adapter is not None and key in ft and ft[key].score >= run.score:
            continue
        if run.adapter is None and key in target:
            problems.append(
                f"{run.path}: a second base run of {run.model} on {run.task} (the other: "
                f"{target[key].path}); expected one, remove or move the other"
            )
        target[key] = run
        if run.adapter is not None:
            adapters[key] = run.adapter
    if problems:
        raise LLMBenchError(*problems)
    if not ft and not base:
        raise LLMBenchError(
            f"{source}: only baseline runs ({', '.join(BASELINES)}); expected runs of a base "
            "model or its adapters to report on"
        )
    tasks = _ordered({t for t, _ in [*ft, *base]}, study.tasks)
    models = _ordered({m for _, m in [*ft, *base]}, study.models)
    study_baselines = study.baselines.reindex(tasks)
    own = pd.DataFrame(
        {b: [_score(baselines, t, b) for t in tasks] for b in BASELINES}, index=tasks
    )
    return Table12(
        source,
        _frame(ft, tasks, models),
        _frame(base, tasks, models),
        own.fillna(study_baselines),
        {k for k in baselines if k[0] in tasks},
        adapters,
        sorted(
            (
                r
                for r in [
                    *ft.values(),
                    *base.values(),
                    *baselines.values(),
                    *_other_seeds(seed_runs),
                ]
                if _counts(r, tasks)
            ),
            key=lambda r: r.path,
        ),
        ft,
        base,
        seed_runs,
    )


def _other_seeds(seed_runs: dict) -> list[Run]:
    """The runs of seeds k > 1, which no cell shows but whose failures it flags."""
    return [run for by_seed in seed_runs.values() for s, run in by_seed.items() if s > 1]


def _counts(run: Run, tasks: list[str]) -> bool:
    """A run behind a cell of the table whose requests partly failed: it gets flagged."""
    return run.n_failed > 0 and run.task in tasks


def _ordered(names: set[str], study_order: list[str]) -> list[str]:
    """The study's order first, then names the study does not have, sorted."""
    return [n for n in study_order if n in names] + sorted(names - set(study_order))


def _score(runs: dict, task: str, model: str) -> float:
    return runs[(task, model)].score if (task, model) in runs else math.nan


def _frame(runs: dict, tasks: list[str], models: list[str]):
    import pandas as pd

    return pd.DataFrame({m: [_score(runs, t, m) for t in tasks] for m in models}, index=tasks)


# --- what the table says ------------------------------------------------------------------------


def per_task(table: Table12):
    """Per task: the best fine-tuned model(s), best fine-tuned and base scores, GPT-4, and the
    best adapter's lift over the best base model and over GPT-4 (Figure 5's two bars)."""
    import pandas as pd

    best_ft = table.ft.max(axis=1)
    best_models = [
        [m for m in table.models if table.ft.at[t, m] == best_ft[t]] for t in table.tasks
    ]
    frame = pd.DataFrame(
        {
            "best_ft": best_ft,
            "best_base": table.base.max(axis=1),
            "gpt4": table.baselines[GPT4],
        },
        index=table.tasks,
    )
    frame["lift_over_base"] = frame["best_ft"] - frame["best_base"]
    frame["lift_over_gpt4"] = frame["best_ft"] - frame["gpt4"]
    frame["best_models"] = best_models
    return frame


def per_model(table: Table12):
    """Per model: its average fine-tuned score and lift over the tasks it has, and how many."""
    import pandas as pd

    return pd.DataFrame(
        {
            "avg_ft": table.ft.mean(),
            "avg_lift": table.lift.mean(),
            "n_tasks": table.ft.notna().sum(),
        }
    )


def complete_block(table: Table12) -> tuple[list[str], list[str]]:
    """The tasks and models of the largest block without gaps that `correlate` can read: every
    cell has a fine-tuned and a base score and every task a GPT-4 score. Found by dropping, one
    at a time, the task or model with the largest share of missing cells (a task on a tie)."""
    tasks = [t for t in table.tasks if not math.isnan(table.baselines.at[t, GPT4])]
    models = table.models
    have = table.ft.notna() & table.base.notna()
    while tasks and models:
        missing = ~have.loc[tasks, models]
        if not missing.to_numpy().any():
            break
        rows, cols = missing.mean(axis=1), missing.mean(axis=0)
        if rows.max() >= cols.max():
            tasks = [t for t in tasks if t != rows.idxmax()]
        else:
            models = [m for m in models if m != cols.idxmax()]
    return (tasks, models) if tasks and models else ([], [])
