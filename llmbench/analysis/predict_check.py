"""`llmbench predict --check`: does `predict`'s forecast of lift hold on tasks it has not seen?

Load a bake-off's scores (`<runs>/correlate/bakeoff/scores.csv`, or any table in the Table 12
layout) and its tasks' heuristics → for each task, the lift that `llmbench predict --task T`
forecasts when fitted on the other tasks' measured lifts (its own model: the same selection
among the mean, linear and ridge fits on up to two heuristics, the same shuffle test, refitted
without the task) → out-of-sample R², the share of forecasts with the measured lift's sign.
Beside it, apart, the model as shipped (`--scores paper`: fitted on the study's mean lift over
its ten base models, for the tasks of the same complexity table, the task itself left out),
forecasting the same measured lifts. → refit.csv, shipped.csv, forecast-vs-measured.png,
summary.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmbench.errors import LLMBenchError, unknown_name
from llmbench.paths import atomic_write_bytes, atomic_write_text

TARGET = "avg_base_lift"
MIN_TASKS = 3  # two to fit on, one to forecast
GOAL_SIGN_SHARE = 2 / 3  # issue 27's goal, with R² > 0
REFIT, SHIPPED = "refit", "shipped"
FITS = {
    REFIT: "predict's model refitted on the other tasks' measured lifts",
    SHIPPED: "predict as shipped: fitted on the study's mean lift (--scores paper)",
}


@dataclass(frozen=True)
class Forecast:
    task: str
    measured: float
    forecast: float
    model: str  # the model `predict` chose, fitted without this task

    @property
    def error(self) -> float:
        return self.forecast - self.measured


@dataclass
class Check:
    """One fit's forecasts of every task's measured lift, and how good they are."""

    fit: str  # REFIT or SHIPPED
    forecasts: list[Forecast]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        measured = np.array([f.measured for f in self.forecasts])
        return measured, np.array([f.forecast for f in self.forecasts])

    @property
    def r2(self) -> float:
        """Out of sample: 1 - SSE / SST, SST about the mean of the measured lifts."""
        measured, forecast = self._arrays()
        spread = ((measured - measured.mean()) ** 2).sum()
        return float(1.0 - ((measured - forecast) ** 2).sum() / spread)

    @property
    def right_signs(self) -> int:
        """Forecasts with the measured lift's sign; a measured 0 only matches a forecast of 0."""
        measured, forecast = self._arrays()
        return int((np.sign(measured) == np.sign(forecast)).sum())

    @property
    def sign_share(self) -> float:
        return self.right_signs / len(self.forecasts)

    @property
    def goal_met(self) -> bool:
        return self.r2 > 0 and self.sign_share >= GOAL_SIGN_SHARE

    def models(self) -> str:
        """The models chosen over the folds, most often first: 'mean of the other tasks (12), …'."""
        names = [f.model for f in self.forecasts]
        counts = sorted({n: names.count(n) for n in names}.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} ({count})" for name, count in counts)


@dataclass
class PredictCheck:
    lift: str  # whose lift: one model's, or the average over the bake-off's models
    refit: Check
    shipped: Check | None
    baseline_r2: float  # forecasting each task by the mean of the others: 1 - (n/(n-1))²
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def positive(self) -> int:
        """Tasks with a measured lift above 0: the signs an always-positive forecast gets right."""
        return sum(f.measured > 0 for f in self.refit.forecasts)

    @property
    def checks(self) -> list[Check]:
        return [c for c in (self.refit, self.shipped) if c is not None]


# --- inputs -------------------------------------------------------------------------------------


def measured_lifts(scores: str | Path, complexity_path: Path, model: str | None = None):
    """(quality measures joined with heuristics for every scored task, whose lift it is).

    Every task of the scores needs its heuristics; tasks of the complexity table that were not
    scored (earlier bake-offs in the same work directory) are left out. Raises LLMBenchError
    for fewer than MIN_TASKS tasks, a scored task without heuristics, or the same lift on every
    task (R² has no spread to explain).
    """
    from llmbench.analysis.complexity import HEURISTICS, read_complexity
    from llmbench.analysis.correlate import (
        BASE,
        FT,
        load_scores,
        models_of,
        quality_measures,
        scores_source,
    )

    source = scores_source(scores)
    table = load_scores(scores, gpt4=False)
    models = models_of(table.columns)
    if model is not None:
        if model not in models:
            raise unknown_name(f"model in {source}", model, models)
        table, models = table[[model + FT, model + BASE]], [model]
    complexity = read_complexity(complexity_path)
    missing = [t for t in table.index if t not in complexity.index]
    if missing:
        raise LLMBenchError(
            f"{complexity_path}: no heuristics for task(s) {', '.join(missing)}; expected a row "
            f"for every task of {source} (run `llmbench complexity --task all`)"
        )
    if len(table) < MIN_TASKS:
        raise LLMBenchError(
            f"{source}: {len(table)} task(s); expected at least {MIN_TASKS} to leave one out"
        )
    joined = quality_measures(table).join(complexity.loc[table.index, list(HEURISTICS)])
    lifts = joined[TARGET]
    if np.ptp(lifts.to_numpy()) == 0:
        raise LLMBenchError(
            f"{source}: the lift is {lifts.iloc[0]:+.3f} on every task; expected lifts that "
            "differ (R² is the share of their spread a forecast explains)"
        )
    whose = f"lift of {models[0]}" if len(models) == 1 else f"mean lift over {len(models)} models"
    return joined, whose


# --- the check ----------------------------------------------------------------------------------


def leave_one_out(measured, fit_on, fit: str, progress: bool = False) -> Check:
    """Each task of `measured` forecast as `llmbench predict --task T` does with `fit_on` as
    its known tasks (quality and heuristics per task, as `correlate` joins them): `predict`
    leaves a known task of the same name out of its fit."""
    from tqdm import tqdm

    from llmbench.analysis.complexity import HEURISTICS
    from llmbench.analysis.predict import predict_outcomes

    forecasts = []
    for task in tqdm(measured.index, desc=f"predict --check ({fit})", disable=not progress):
        heuristics = measured.loc[task, list(HEURISTICS)].to_dict() | {"task": task}
        try:
            result = predict_outcomes(heuristics, fit_on)
        except LLMBenchError as exc:
            raise LLMBenchError(*(f"leaving out {task}: {p}" for p in exc.problems)) from None
        lift = next(p for p in result.predictions if p.target == TARGET)
        forecasts.append(Forecast(task, float(measured.at[task, TARGET]), lift.value, lift.model))
    return Check(fit, forecasts)


def check_predict(
    scores: str | Path,
    complexity_path: Path,
    out_dir: Path,
    model: str | None = None,
    progress: bool = False,
) -> PredictCheck:
    """Leave one task out: `predict`'s model refitted on the other tasks, and (unless `scores`
    is the study's own) the model as shipped; writes their CSVs, the plot and summary.md."""
    from llmbench.analysis.correlate import PAPER, known_tasks

    measured, whose = measured_lifts(scores, complexity_path, model)
    refit = leave_one_out(measured, measured, REFIT, progress)
    shipped, notes = None, []
    if str(scores) == PAPER:
        notes.append("the scores are the study's own: the refit is the model as shipped")
    else:
        try:
            study, _ = known_tasks(PAPER, complexity_path)
        except LLMBenchError as exc:
            notes += [f"the model as shipped not checked: {p}" for p in exc.problems]
        else:
            shipped = leave_one_out(measured, study, SHIPPED, progress)
    n = len(measured)
    result = PredictCheck(whose, refit, shipped, 1.0 - (n / (n - 1)) ** 2, notes)
    write_check(result, Path(out_dir), scores, complexity_path)
    return result


# --- outputs ------------------------------------------------------------------------------------


def write_check(result: PredictCheck, out_dir: Path, scores, complexity_path: Path) -> None:
    """<fit>.csv per fit (task, measured, forecast, error = forecast - measured, model), the
    plot and summary.md, each written whole or not at all."""
    for check in result.checks:
        result.files.append(out_dir / f"{check.fit}.csv")
        atomic_write_text(result.files[-1], forecasts_csv(check))
    result.files.append(out_dir / "forecast-vs-measured.png")
    plot_check(result, result.files[-1])
    result.files.append(out_dir / "summary.md")
    atomic_write_text(result.files[-1], summary_markdown(result, scores, complexity_path))


def forecasts_csv(check: Check) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "measured", "forecast", "error", "model"])
    for f in check.forecasts:
        writer.writerow([f.task, round(f.measured, 6), f.forecast, round(f.error, 6), f.model])
    return buffer.getvalue()


def verdict(check: Check) -> str:
    """One line: R², the signs, and whether issue 27's goal (R² > 0, signs ≥ 2/3) is met."""
    met = "met" if check.goal_met else "not met"
    return (
        f"{FITS[check.fit]}: out-of-sample R² {check.r2:+.3f}, sign right on "
        f"{check.right_signs} of {len(check.forecasts)} tasks ({check.sign_share:.0%}); "
        f"goal (R² > 0 and sign right on ≥ 2/3) {met}"
    )


def summary_markdown(result: PredictCheck, scores, complexity_path: Path) -> str:
    n = len(result.refit.forecasts)
    lines = [
        "# `llmbench predict`, checked out of sample",
        "",
        f"Scores: `{scores}`; heuristics: `{complexity_path}`. Measured: the {result.lift} on "
        f"each of {n} tasks. Each task is forecast by `predict` fitted without it (leave one "
        "task out). R² is out of sample: 1 − SSE/SST, SST about the mean of the measured lifts. "
        "A sign is right when forecast and measured lift are both positive or both negative "
        "(a measured lift of exactly 0 counts as wrong for any forecast but 0).",
        "",
        "| fit | R² | sign right | goal met | models chosen over the folds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {FITS[c.fit]} | {c.r2:+.3f} | {c.right_signs}/{n} ({c.sign_share:.0%}) | "
        f"{'yes' if c.goal_met else 'no'} | {c.models()} |"
        for c in result.checks
    ]
    lines += [
        "",
        f"For scale: forecasting each task by the mean of the other tasks' measured lifts "
        f"scores R² {result.baseline_r2:+.3f} by construction (1 − (n/(n−1))²); a forecast "
        f"that is always positive gets the sign right on {result.positive} of {n}.",
        "The goal (issue 27): R² > 0 and the sign right on at least 2/3 of tasks.",
        *(f"- {note}" for note in result.notes),
        "",
        "| task | measured | " + " | ".join(f"forecast ({c.fit})" for c in result.checks) + " |",
        "|---|---|" + "---|" * len(result.checks),
    ]
    by_task = [{f.task: f for f in c.forecasts} for c in result.checks]
    lines += [
        f"| {f.task} | {f.measured:+.3f} | "
        + " | ".join(f"{fits[f.task].forecast:+.3f}" for fits in by_task)
        + " |"
        for f in result.refit.forecasts
    ]
    return "\n".join(lines) + "\n"


def plot_check(result: PredictCheck, path: Path) -> None:
    """Forecast against measured lift, one labelled point per task and the line y = x; one
    panel per fit, on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checks = result.checks
    values = [v for c in checks for f in c.forecasts for v in (f.measured, f.forecast)]
    pad = 0.1 * (max(values) - min(values))  # room for the labels
    limits = (min(values) - pad, max(values) + pad)
    fig, axes = plt.subplots(1, len(checks), figsize=(6.2 * len(checks), 6), squeeze=False)
    for ax, check in zip(axes[0], checks, strict=True):
        ax.plot(limits, limits, color="grey", linewidth=1, label="forecast = measured")
        ax.axhline(0, color="lightgrey", linewidth=0.8)
        ax.axvline(0, color="lightgrey", linewidth=0.8)
        ax.scatter([f.measured for f in check.forecasts], [f.forecast for f in check.forecasts])
        # forecasts often sit close together: labels slant away, above and below in turn
        for i, f in enumerate(sorted(check.forecasts, key=lambda f: f.measured)):
            up = i % 2 == 0
            ax.annotate(
                f.task,
                (f.measured, f.forecast),
                xytext=(2, 5 if up else -5),
                textcoords="offset points",
                fontsize=7,
                rotation=60 if up else -60,
                rotation_mode="anchor",
                va="center",
            )
        ax.set(xlim=limits, ylim=limits, xlabel=f"measured {result.lift}", ylabel="forecast")
        ax.set_aspect("equal")
        ax.set_title(
            f"{FITS[check.fit]}\nR² {check.r2:+.2f}, sign right on {check.right_signs}/"
            f"{len(check.forecasts)}",
            fontsize=9,
            loc="left",
        )
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
