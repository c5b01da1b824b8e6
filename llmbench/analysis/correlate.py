"""`llmbench correlate`: how dataset complexity goes with model quality (the study's Figure 8).

Load a scores table in the study's Table 12 layout (`task`, `<model>_ft`, `<model>_base` per base
model, `gpt-4`; other columns such as `gpt-3.5-turbo` are carried but unused) → derive the
quality measures of each task → join the complexity heuristics of the same tasks → Pearson and
Spearman matrices with p-values → CSVs, a Figure-8-style heatmap, and how well small models on
the heuristics predict fine-tuning outcomes (see `llmbench.analysis.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmbench.errors import LLMBenchError
from llmbench.paths import PACKAGE_DATA_DIR, atomic_write_bytes, atomic_write_text

PAPER = "paper"
PAPER_SCORES = PACKAGE_DATA_DIR / "table12_scores.csv"
GPT4 = "gpt-4"
FT, BASE = "_ft", "_base"
MIN_TASKS = 4

# quality measure -> its label in the figure, in the study's words
QUALITY = {
    "gpt4_score": "GPT-4 score",
    "max_lift_over_gpt4": "max lift over GPT-4",
    "avg_base_lift": "average base-model lift",
    "best_base_score": "best base score",
    "avg_base_score": "average base score",
    "best_ft_score": "best fine-tuned score",
    "avg_ft_score": "average fine-tuned score",
}


# --- scores -------------------------------------------------------------------------------------


def scores_source(scores: str | Path) -> Path:
    """The file behind `--scores`: `paper` names the study's Table 12, shipped with llmbench."""
    return PAPER_SCORES if str(scores) == PAPER else Path(scores)


def load_scores(scores: str | Path, gpt4: bool = True):
    """A Table-12-layout scores table, indexed by task, every cell a number; all problems at once.

    Raises LLMBenchError when the file or its `task` column is missing, its `gpt-4` column is
    (unless not `gpt4`: a bake-off's own scores have none), a model has a fine-tuned column but
    no base column (or the reverse), a task appears twice, or a cell is empty or not a number.
    """
    import pandas as pd

    path = scores_source(scores)
    if not path.is_file():
        raise LLMBenchError(
            f"{path}: not found; expected a scores CSV in the Table 12 layout "
            "(or --scores paper for the study's own)"
        )
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    problems = _layout_problems(path, list(frame.columns), gpt4)
    if problems:
        raise LLMBenchError(*problems)
    twice = sorted(set(frame["task"][frame["task"].duplicated()]))
    if twice:
        raise LLMBenchError(
            f"{path}: task(s) {', '.join(twice)} appear twice; expected one row per task"
        )
    frame = frame.set_index("task")
    problems = []
    for column in score_columns(frame.columns):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        for task in frame.index[numbers.isna()]:
            text = frame.at[task, column]
            what = "is empty" if not text.strip() else f"'{text}' is not a number"
            problems.append(f"{path}: task {task}, column {column}: {what}; expected a score")
        frame[column] = numbers
    if problems:
        raise LLMBenchError(*problems)
    return frame[score_columns(frame.columns)].astype(float)


def models_of(columns) -> list[str]:
    """The base models of a scores table: every `<model>_ft` column, in order."""
    return [c[: -len(FT)] for c in columns if c.endswith(FT)]


def score_columns(columns) -> list[str]:
    models = models_of(columns)
    gpt4 = [GPT4] if GPT4 in columns else []
    return [*(m + FT for m in models), *(m + BASE for m in models), *gpt4]


def _layout_problems(path: Path, columns: list[str], gpt4: bool = True) -> list[str]:
    problems = [
        f"{path}: column '{name}' missing; expected the Table 12 layout (task, "
        "<model>_ft, <model>_base, ..., gpt-4)"
        for name in (("task", GPT4) if gpt4 else ("task",))
        if name not in columns
    ]
    ft = set(models_of(columns))
    base = {c[: -len(BASE)] for c in columns if c.endswith(BASE)}
    problems += [
        f"{path}: model {m}: column {m}{BASE} missing; expected its base score beside {m}{FT}"
        for m in sorted(ft - base)
    ]
    problems += [
        f"{path}: model {m}: column {m}{FT} missing; expected its fine-tuned score beside {m}{BASE}"
        for m in sorted(base - ft)
    ]
    if not ft and not base:
        problems.append(
            f"{path}: no <model>_ft / <model>_base columns; expected one pair per base model"
        )
    return problems


def quality_measures(scores):
    """Per task: the seven quality measures of QUALITY from its scores.

    Lift over GPT-4 is a fine-tuned score minus GPT-4's (blank without a `gpt-4` column); a
    base-model lift is a model's fine-tuned score minus its own base score; averages and maxima
    run over the base models.
    """
    import pandas as pd

    models = models_of(scores.columns)
    ft = scores[[m + FT for m in models]].to_numpy()
    base = scores[[m + BASE for m in models]].to_numpy()
    # a bake-off's own scores have no GPT-4 column: its two measures are then left blank
    gpt4 = scores[GPT4].to_numpy() if GPT4 in scores.columns else np.full(len(scores), np.nan)
    measures = {
        "gpt4_score": gpt4,
        "max_lift_over_gpt4": ft.max(axis=1) - gpt4,
        "avg_base_lift": (ft - base).mean(axis=1),
        "best_base_score": base.max(axis=1),
        "avg_base_score": base.mean(axis=1),
        "best_ft_score": ft.max(axis=1),
        "avg_ft_score": ft.mean(axis=1),
    }
    return pd.DataFrame(measures, index=scores.index).round(6)


def join_tasks(quality, complexity, scores_path, complexity_path: Path, unscored_ok: bool = False):
    """Quality measures and heuristics side by side for the tasks of the complexity table.

    A task with no score row is an error, unless `unscored_ok` (the study's scores, which cannot
    know your own tasks): it is then left out (`unscored` names it).
    """
    from llmbench.analysis.complexity import HEURISTICS

    absent = unscored(quality, complexity)
    if absent and not unscored_ok:
        raise LLMBenchError(
            f"{scores_path}: task(s) {', '.join(absent)} missing; expected a score row for every "
            f"task of {complexity_path} (or drop those tasks from it)"
        )
    scored = [t for t in complexity.index if t in quality.index]
    if len(scored) < MIN_TASKS:
        without = f", {len(absent)} more without a score in {scores_path}" if absent else ""
        raise LLMBenchError(
            f"{complexity_path}: {len(scored)} task(s){without}; expected at least "
            f"{MIN_TASKS} to correlate"
        )
    return quality.loc[scored].join(complexity.loc[scored, list(HEURISTICS)])


def unscored(quality, complexity) -> list[str]:
    """The tasks of the complexity table with no row in the scores."""
    return [t for t in complexity.index if t not in quality.index]


# --- correlations -------------------------------------------------------------------------------


def correlation_matrix(frame, method: str = "pearson"):
    """(r, p) DataFrames over every pair of `frame`'s columns: symmetric, unit diagonal.

    Spearman is Pearson on average ranks; p-values are two-sided from Student's t with n - 2
    degrees of freedom, as scipy.stats reports them. A constant column has no correlation (NaN).
    """
    import pandas as pd
    from scipy import stats

    values = frame.to_numpy(dtype=float)
    if method == "spearman":
        values = np.apply_along_axis(stats.rankdata, 0, values)
    elif method != "pearson":
        raise ValueError(f"method '{method}': expected pearson or spearman")
    centred = values - values.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (centred.T @ centred) / np.outer(norms, norms)
    r = np.clip(r, -1.0, 1.0)
    constant = norms == 0
    np.fill_diagonal(r, 1.0)
    r[constant, :] = np.nan
    r[:, constant] = np.nan
    dof = len(values) - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(dof / (1.0 - r**2))
    p = 2 * stats.t.sf(np.abs(t), dof)
    p[np.abs(r) == 1.0] = 0.0
    columns = list(frame.columns)
    return (
        pd.DataFrame(r, index=columns, columns=columns),
        pd.DataFrame(p, index=columns, columns=columns),
    )


def plot_heatmap(r, path: Path, title: str, note: str = "") -> None:
    """Figure 8's layout: quality measures as rows, heuristics as columns, annotated cells, a
    diverging colour scale fixed at -1..1."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmbench.analysis.complexity import HEURISTICS

    block = r.loc[list(QUALITY), list(HEURISTICS)].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 * len(HEURISTICS) + 3, 0.6 * len(QUALITY) + 3))
    image = ax.imshow(np.ma.masked_invalid(block), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (row, col), value in np.ndenumerate(block):
        text = "–" if np.isnan(value) else f"{value:.2f}"
        ax.text(
            col,
            row,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if abs(np.nan_to_num(value)) > 0.6 else "black",
        )
    ax.set_xticks(range(len(HEURISTICS)), list(HEURISTICS), rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(QUALITY)), list(QUALITY.values()), fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    ax.set_title(title, fontsize=10, loc="left")
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, color="darkred", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# --- the stage ----------------------------------------------------------------------------------


def known_tasks(scores: str | Path, complexity_path: Path):
    """(quality measures joined with heuristics per task, tasks whose heuristics are not from
    the study's training rows) for the tasks of the complexity table; with the study's scores,
    tasks the study does not have are left out."""
    from llmbench.analysis.complexity import not_the_study, read_complexity

    quality = quality_measures(load_scores(scores))
    complexity = read_complexity(complexity_path)
    joined = join_tasks(
        quality, complexity, scores_source(scores), Path(complexity_path), str(scores) == PAPER
    )
    rows = complexity.loc[joined.index].reset_index().to_dict("records")
    return joined, not_the_study(rows)


@dataclass
class CorrelateResult:
    tasks: list[str]
    pearson: object
    spearman: object
    predictions: list = field(default_factory=list)
    not_study: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # in the complexity table, not scored
    notes: list[str] = field(default_factory=list)


def fixture_note(not_study: list[str], total: int) -> str:
    """The plain warning when heuristics came from other rows than the study's training sets."""
    if not not_study:
        return ""
    return (
        f"heuristics of {len(not_study)} of {total} tasks come from other rows than the "
        "study's training sets (fixtures or subsets): these are not the study's heuristics"
    )


def correlate(scores: str | Path, complexity_path: Path, out_dir: Path) -> CorrelateResult:
    """Quality vs heuristics: write quality.csv, joined.csv, pearson/spearman (+ _p) CSVs,
    figure8.png and prediction.csv into `out_dir`. With the study's scores (`paper`), tasks the
    study does not have are left out and named in the result."""
    return correlate_scores(
        load_scores(scores),
        complexity_path,
        out_dir,
        str(scores_source(scores)),
        unscored_ok=str(scores) == PAPER,
    )


def correlate_scores(
    scores, complexity_path: Path, out_dir: Path, source: str, unscored_ok: bool = False
) -> CorrelateResult:
    """`correlate` on a scores table already in hand (a bake-off's own: task-indexed,
    `<model>_ft` and `<model>_base` columns, `gpt-4` when there is one); `source` names it."""
    from llmbench.analysis.complexity import not_the_study, read_complexity
    from llmbench.analysis.predict import evaluate_predictors, write_evaluation

    complexity = read_complexity(complexity_path)
    quality_all = quality_measures(scores)
    joined = join_tasks(quality_all, complexity, source, Path(complexity_path), unscored_ok)
    not_study = not_the_study(complexity.loc[joined.index].reset_index().to_dict("records"))
    left_out = unscored(quality_all, complexity)
    notes = []
    if left_out:
        notes.append(f"left out, no score in {Path(source).name}: {', '.join(left_out)}")
    if GPT4 not in scores.columns:
        notes.append(f"no {GPT4} scores in {Path(source).name}: its two measures are left blank")
    quality = joined[list(QUALITY)]
    pearson, pearson_p = correlation_matrix(joined, "pearson")
    spearman, spearman_p = correlation_matrix(joined, "spearman")
    out_dir = Path(out_dir)
    files = []
    for name, table in [
        ("quality", quality),
        ("joined", joined),
        ("pearson", pearson),
        ("pearson_p", pearson_p),
        ("spearman", spearman),
        ("spearman_p", spearman_p),
    ]:
        files.append(out_dir / f"{name}.csv")
        atomic_write_text(
            files[-1],
            table.round(6).to_csv(index_label="task" if name in ("quality", "joined") else ""),
        )
    files.append(out_dir / "figure8.png")
    plot_heatmap(
        pearson,
        files[-1],
        f"Pearson r: task quality ({Path(source).name}) vs dataset complexity, {len(joined)} tasks",
        fixture_note(not_study, len(joined)),
    )
    try:
        predictions = evaluate_predictors(joined)
    except LLMBenchError as exc:  # e.g. every task scored the same: nothing to predict
        predictions = []
        notes += [f"no prediction.csv: {problem}" for problem in exc.problems]
    else:
        files.append(out_dir / "prediction.csv")
        write_evaluation(predictions, files[-1])
    return CorrelateResult(
        list(joined.index), pearson, spearman, predictions, not_study, files, left_out, notes
    )
