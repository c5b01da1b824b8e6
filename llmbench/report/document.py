"""The report: the study's Table 12 and Figure 5 from your evaluation runs (or the study's).

Recipe: read every `<runs>/eval/<model>/<task>/<adapter or base>/scores.json` → one Table 12
(built by `llmbench.report.table12`): per (task, model) the best adapter's fine-tuned score and its
lift over the base model, GPT-4 from your own `gpt-4` base runs or else the study's → per model
averages, per task the best fine-tuned model and its lift over GPT-4 → `table12.md` (with the
study's numbers beside yours), `table12.csv` (the Table 12 layout `llmbench correlate --scores`
reads), `cells.csv` (every cell, long form) and `figure5.png`. `--paper` renders the same from
the study's shipped scores.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from llmbench.paths import atomic_write_bytes, atomic_write_text
from llmbench.report.table12 import (
    BASE,
    BASELINES,
    FT,
    GPT4,
    OURS,
    STUDY,
    Table12,
    collect_runs,
    complete_block,
    per_model,
    per_task,
    study_table,
    table_from_runs,
)

FAILED = "⚠"  # marks a cell whose run had failed requests (scored 0)

# --- outputs ------------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A score as the CSV holds it: up to 6 decimals, the study's own numbers unchanged."""
    return "" if math.isnan(value) else repr(round(float(value), 6))


def table12_csv(table: Table12) -> str:
    """The Table 12 layout of `llmbench correlate --scores`: task, <model>_ft..., <model>_base...,
    the baselines; only the complete block (see complete_block)."""
    tasks, models = complete_block(table)
    header = ["task", *(m + FT for m in models), *(m + BASE for m in models), *BASELINES]
    lines = [",".join(header)]
    for t in tasks:
        cells = [table.ft.at[t, m] for m in models] + [table.base.at[t, m] for m in models]
        cells += [table.baselines.at[t, b] for b in BASELINES]
        lines.append(",".join([t, *map(_num, cells)]))
    return "\n".join(lines) + "\n"


def cells_csv(table: Table12, study: Table12 | None) -> str:
    """Every (task, model) cell, long form: yours, the best adapter, failures, the study's."""
    lines = ["task,model,ft,base,lift,adapter,n_failed,study_ft,study_base,study_lift"]
    for t in table.tasks:
        for m in table.models:
            ft, base = table.ft.at[t, m], table.base.at[t, m]
            if math.isnan(ft) and math.isnan(base):
                continue
            failed = sum(r.n_failed for r in table.failed if (r.task, r.model) == (t, m))
            theirs = _study_cell(study, t, m)
            values = [ft, base, ft - base]
            lines.append(
                ",".join(
                    [t, m, *map(_num, values), table.adapters.get((t, m), ""), str(failed)]
                    + [_num(v) for v in (*theirs, theirs[0] - theirs[1])]
                )
            )
    return "\n".join(lines) + "\n"


def _study_cell(study: Table12 | None, task: str, model: str) -> tuple[float, float]:
    """The study's (fine-tuned, base) score of a cell; NaN where the study has none."""
    if study is None or task not in study.tasks or model not in study.models:
        return math.nan, math.nan
    return study.ft.at[task, model], study.base.at[task, model]


def _fmt(value: float, spec: str = ".3f") -> str:
    return "" if math.isnan(value) else format(value, spec)


def _cell(ft: float, lift: float, flagged: bool = False) -> str:
    """ "ft (+lift)" as the study prints it; ⚠ when a run behind it had failed requests."""
    if math.isnan(ft):
        return ""
    lift_text = "" if math.isnan(lift) else f" ({lift:+.3f})"
    return f"{ft:.3f}{lift_text}" + (f" {FAILED}" if flagged else "")


def _model_cell(table: Table12, task: str, model: str) -> str:
    """A model's cell of Table 12; "base 0.200" where only the base model was run."""
    ft, base = table.ft.at[task, model], table.base.at[task, model]
    flagged = table.flagged(task, model)
    if math.isnan(ft) and not math.isnan(base):
        return f"base {base:.3f}" + (f" {FAILED}" if flagged else "")
    return _cell(ft, ft - base, flagged)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_header(names: list[str]) -> list[str]:
    return [_md_row(names), _md_row(["---"] * len(names))]


def _best_cell(models: list[str], score: float) -> str:
    tied = f" (+{len(models) - 1} tied)" if len(models) > 1 else ""
    return f"{models[0]}{tied} {score:.3f}" if models else ""


def _gpt4_cell(table: Table12, task: str) -> str:
    own = (task, GPT4) in table.own_baselines
    text = _fmt(table.baselines.at[task, GPT4])
    if own:
        text += f" ({OURS})" + (f" {FAILED}" if table.flagged(task, GPT4) else "")
    return text


def main_table(table: Table12) -> list[str]:
    """Table 12 as Markdown lines: a row per task, "ft (+lift)" per model, the best fine-tuned
    model, GPT-4 and the best adapter's lift over it; a bottom row of averages."""
    tasks = per_task(table)
    lines = _md_header(["task", *table.models, "best fine-tuned", "GPT-4", "lift over GPT-4"])
    for t, row in tasks.iterrows():
        cells = [_model_cell(table, t, m) for m in table.models]
        best = _best_cell(row["best_models"], row["best_ft"])
        lines.append(
            _md_row([t, *cells, best, _gpt4_cell(table, t), _fmt(row["lift_over_gpt4"], "+.3f")])
        )
    averages = [
        _cell(avg_ft, avg_lift) + (f" [{n} of {len(tasks)} tasks]" if 0 < n < len(tasks) else "")
        for avg_ft, avg_lift, n in per_model(table).itertuples(index=False)
    ]
    gpt4, lift = tasks["gpt4"].mean(), tasks["lift_over_gpt4"].mean()
    lines.append(_md_row(["**average**", *averages, "", _fmt(gpt4), _fmt(lift, "+.3f")]))
    return lines


def beside_table(table: Table12, study: Table12) -> list[str]:
    """Where both have a cell: "yours / the study's" fine-tuned score (lift); GPT-4 likewise
    where you ran your own baseline. Empty when nothing overlaps."""
    models = [m for m in table.models if m in study.models]
    rows = []
    for t in (t for t in table.tasks if t in study.tasks):
        cells = []
        for m in models:
            theirs_ft, theirs_base = _study_cell(study, t, m)
            cells.append(
                _pair(
                    _cell(table.ft.at[t, m], table.lift.at[t, m]),
                    _cell(theirs_ft, theirs_ft - theirs_base),
                )
            )
        gpt4 = ""
        if (t, GPT4) in table.own_baselines:
            gpt4 = _pair(_fmt(table.baselines.at[t, GPT4]), _fmt(study.baselines.at[t, GPT4]))
        if any(cells) or gpt4:
            rows.append(_md_row([t, *cells, gpt4]))
    return [*_md_header(["task", *models, "GPT-4"]), *rows] if rows else []


def _pair(ours: str, theirs: str) -> str:
    return f"{ours} / {theirs}" if ours and theirs else ""


def markdown(table: Table12, study: Table12 | None, csv_block: tuple[list, list]) -> str:
    """The whole table12.md: Table 12, its notes, and (for your runs) the study beside it."""
    if table.source == STUDY:
        title = "# Table 12 — the study's scores (LoRA Land), as shipped with llmbench"
    else:
        title = f"# Table 12 — your scores ({table.source})"
    lines = [
        title,
        "",
        "Each cell: the best adapter's fine-tuned score (its lift over the same base model). "
        "Averages run over the tasks a model has.",
        "",
        *main_table(table),
        "",
        *_notes(table, csv_block),
    ]
    beside = beside_table(table, study) if study is not None else []
    if beside:
        lines += ["", "## Yours beside the study", "", "Cells: yours / the study's.", "", *beside]
    return "\n".join(lines) + "\n"


def _notes(table: Table12, csv_block: tuple[list, list]) -> list[str]:
    notes = []
    if table.source != STUDY:
        own = sorted({t for t, b in table.own_baselines if b == GPT4})
        notes.append(
            f"- GPT-4: the study's score, except cells marked (ours): your own `gpt-4` base "
            f"runs ({', '.join(own)})."
            if own
            else "- GPT-4: the study's scores (no `gpt-4` base runs of your own)."
        )
    for run in table.failed:
        notes.append(
            f"- {FAILED} {run.path}: {run.n_failed} of {run.n} requests failed (scored 0)."
        )
    tasks, models = csv_block
    left_out = sorted(set(table.tasks) - set(tasks)) + sorted(set(table.models) - set(models))
    if left_out:
        notes.append(
            "- table12.csv (the layout `llmbench correlate` reads) leaves out, for gaps: "
            + ", ".join(left_out)
            + "; cells.csv has every cell."
        )
    return notes


def plot_figure5(table: Table12, path: Path, title: str) -> None:
    """Figure 5: per task, the best adapter's lift over the best base model and over GPT-4,
    tasks sorted by the lift over the base model, largest first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    frame = per_task(table).sort_values("lift_over_base", ascending=False, na_position="last")
    x = np.arange(len(frame))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(frame) + 2), 5.2))
    gpt4_label = "over GPT-4" + (" (study's)" if table.source == STUDY else "")
    if table.source != STUDY and table.own_baselines:
        gpt4_label = "over GPT-4 (yours where run, else the study's)"
    ax.bar(x - 0.2, frame["lift_over_base"], 0.4, label="over the best base model", color="#2b6cb0")
    ax.bar(x + 0.2, frame["lift_over_gpt4"], 0.4, label=gpt4_label, color="#c53030")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, list(frame.index), rotation=55, ha="right", fontsize=8)
    ax.set_xlim(-0.7, len(frame) - 0.3)
    ax.set_ylabel("lift of the best fine-tuned adapter")
    ax.grid(axis="y", linewidth=0.4, alpha=0.6)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# --- the stage ----------------------------------------------------------------------------------


@dataclass
class ReportResult:
    table: Table12
    files: list[Path]


def report(runs_dir: Path | None, out_dir: Path) -> ReportResult:
    """Table 12 and Figure 5 of your runs under `runs_dir` (None: the study's own), written
    into `out_dir` as table12.md, table12.csv, cells.csv and figure5.png."""
    study = study_table()
    if runs_dir is None:
        table, beside = study, None
    else:
        table, beside = table_from_runs(collect_runs(runs_dir), study, str(runs_dir)), study
    block = complete_block(table)
    out_dir = Path(out_dir)
    files = [out_dir / n for n in ("table12.md", "table12.csv", "cells.csv", "figure5.png")]
    atomic_write_text(files[0], markdown(table, beside, block))
    atomic_write_text(files[1], table12_csv(table))
    atomic_write_text(files[2], cells_csv(table, beside))
    who = "the study (LoRA Land)" if runs_dir is None else str(runs_dir)
    plot_figure5(table, files[3], f"Figure 5: lift of the best fine-tuned adapter per task — {who}")
    return ReportResult(table, files)
