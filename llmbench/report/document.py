"""The report: the study's Table 12 and Figure 5 from your evaluation runs (or the study's).

Recipe: read every `<runs>/eval/<model>/<task>/<adapter or base>/scores.json` → one Table 12
(built by `llmbench.report.table12`): per (task, model) the best adapter's fine-tuned score and its
lift over the base model, GPT-4 from your own `gpt-4` base runs or else the study's → per model
averages, per task the best fine-tuned model and its lift over GPT-4 → `table12.md` (with the
study's numbers beside yours), `table12.csv` (the Table 12 layout `llmbench correlate --scores`
reads), `cells.csv` (every cell, long form) and `figure5.png`. `--paper` renders the same from
the study's shipped scores.

Where the runs record their per-example scores, every score, lift and mean lift carries its 95%
interval (`llmbench.report.intervals`: a paired bootstrap over examples), and a run whose
answers look degenerate (`llmbench.evaluate.answers`: one label, or one string, for nearly
every row) is flagged ⚑ and explained, with its answers beside the gold ones.

Where a bake-off trained several seeds per adapter (`seeds`), the cell shows seed 1's adapter
and the spread across seeds (`llmbench.report.seeds`) stands beside its interval: in
table12.md's ## Seeds, table12.csv and cells.csv.

Where a cell's adapter or base model was also evaluated with answers constrained to the task's
labels (`llmbench.report.constrained`), its constrained scores stand beside the free ones, each
with its interval: in table12.md's ## Constrained answers, cells.csv and `llmbench report`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.evaluate.answers import DEGENERATE_SHARE, GOLD_MAJORITY_CAP, percent
from llmbench.paths import atomic_write_bytes, atomic_write_text
from llmbench.report import constrained as constrained_runs
from llmbench.report.intervals import Interval, TableIntervals, method_text, table_intervals
from llmbench.report.seeds import SEED_COLUMNS, SeedSpread, seed_spreads
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
from llmbench.workdir import Workdir

FAILED = "⚠"  # marks a cell whose run had failed requests (scored 0)
FLAGGED = "⚑"  # marks a cell whose run's answers look degenerate (one answer for nearly all)
NO_INTERVALS = TableIntervals({}, {})

# --- outputs ------------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A score as the CSV holds it: up to 6 decimals, the study's own numbers unchanged (a
    count, an int, as it is)."""
    if isinstance(value, int):
        return str(value)
    return "" if math.isnan(value) else repr(round(float(value), 6))


INTERVAL_COLUMNS = ("ft_low", "ft_high", "base_low", "base_high", "lift_low", "lift_high")


def table12_csv(
    table: Table12, intervals: TableIntervals = NO_INTERVALS, spreads: dict | None = None
) -> str:
    """The Table 12 layout of `llmbench correlate --scores`: task, <model>_ft..., <model>_base...,
    the baselines; only the complete block (see complete_block). When the runs have intervals,
    `<model>_ft_low` ... `<model>_lift_high` follow, and when a cell has several training seeds,
    `<model>_seeds` ... `<model>_lift_seed_max` (SEED_COLUMNS; names `correlate` does not read)."""
    tasks, models = complete_block(table)
    spreads = spreads or {}
    several = any(spread.several for spread in spreads.values())
    header = ["task", *(m + FT for m in models), *(m + BASE for m in models), *BASELINES]
    if intervals.any:
        header += [f"{m}_{c}" for m in models for c in INTERVAL_COLUMNS]
    if several:
        header += [f"{m}_{c}" for m in models for c in SEED_COLUMNS]
    lines = [",".join(header)]
    for t in tasks:
        cells = [table.ft.at[t, m] for m in models] + [table.base.at[t, m] for m in models]
        cells += [table.baselines.at[t, b] for b in BASELINES]
        if intervals.any:
            cells += [v for m in models for v in _bounds(intervals, t, m)]
        if several:
            cells += [v for m in models for v in _seed_values(spreads.get((t, m)))]
        lines.append(",".join([t, *map(_num, cells)]))
    return "\n".join(lines) + "\n"


def _seed_values(spread: SeedSpread | None) -> list[float]:
    """A cell's SEED_COLUMNS values, NaN where it has no seeds of the sweep's adapter."""
    return spread.row() if spread else [math.nan] * len(SEED_COLUMNS)


def _bounds(intervals: TableIntervals, task: str, model: str) -> list[float]:
    """A cell's six interval bounds (INTERVAL_COLUMNS), NaN where it has none."""
    cell = intervals.cells.get((task, model))
    found = [cell and cell.ft, cell and cell.base, cell and cell.lift]
    return [x for iv in found for x in ((iv.low, iv.high) if iv else (math.nan, math.nan))]


def cells_csv(
    table: Table12,
    study: Table12 | None,
    intervals: TableIntervals = NO_INTERVALS,
    spreads: dict | None = None,
    constrained: dict | None = None,
) -> str:
    """Every (task, model) cell, long form: yours, the best adapter, failures, the study's;
    then each score's and the lift's interval, the share of the most common answer of the
    adapter and of the base model, the degenerate-answer flag (see `flags_of`), the spread
    across training seeds (SEED_COLUMNS: seeds 1 and SD empty for a cell of one seed; all
    empty where the cell's adapter is not the sweep's), and the constrained runs' scores and
    intervals (constrained.CSV_COLUMNS; empty where the cell has none)."""
    spreads, constrained = spreads or {}, constrained or {}
    lines = [
        "task,model,ft,base,lift,adapter,n_failed,study_ft,study_base,study_lift,"
        + ",".join(INTERVAL_COLUMNS)
        + ",ft_top_answer_share,base_top_answer_share,flag,"
        + ",".join(SEED_COLUMNS + constrained_runs.CSV_COLUMNS)
    ]
    for t in table.tasks:
        for m in table.models:
            ft, base = table.ft.at[t, m], table.base.at[t, m]
            if math.isnan(ft) and math.isnan(base):
                continue
            failed = sum(r.n_failed for r in table.failed if (r.task, r.model) == (t, m))
            theirs = _study_cell(study, t, m)
            values = [ft, base, ft - base]
            shares = [
                _top_share(table.ft_runs.get((t, m))),
                _top_share(table.base_runs.get((t, m))),
            ]
            flags = "; ".join(f"{who}: {why}" for who, why, _ in flags_of(table, t, m))
            lines.append(
                ",".join(
                    [t, m, *map(_num, values), table.adapters.get((t, m), ""), str(failed)]
                    + [_num(v) for v in (*theirs, theirs[0] - theirs[1])]
                    + [_num(v) for v in (*_bounds(intervals, t, m), *shares)]
                    + [_csv_text(flags)]
                    + [_num(v) for v in _seed_values(spreads.get((t, m)))]
                    + [_num(v) for v in _constrained_values(constrained.get((t, m)))]
                )
            )
    return "\n".join(lines) + "\n"


def _constrained_values(cell) -> list[float]:
    """A cell's constrained.CSV_COLUMNS values, NaN where it has no constrained runs."""
    return cell.csv_values() if cell else [math.nan] * len(constrained_runs.CSV_COLUMNS)


def _top_share(run) -> float:
    answers = run.answers if run else None
    return answers["top_answer_share"] if answers else math.nan


def _csv_text(text: str) -> str:
    """A CSV field: quoted when it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def flags_of(table: Table12, task: str, model: str) -> list[tuple[str, str, object]]:
    """(who, why, run) for each run behind a cell whose answers look degenerate."""
    runs = [
        ("adapter", table.ft_runs.get((task, model))),
        ("base", table.base_runs.get((task, model))),
    ]
    return [(who, run.flag, run) for who, run in runs if run is not None and run.flag]


def _study_cell(study: Table12 | None, task: str, model: str) -> tuple[float, float]:
    """The study's (fine-tuned, base) score of a cell; NaN where the study has none."""
    if study is None or task not in study.tasks or model not in study.models:
        return math.nan, math.nan
    return study.ft.at[task, model], study.base.at[task, model]


def _fmt(value: float, spec: str = ".3f") -> str:
    return "" if math.isnan(value) else format(value, spec)


def _cell(
    ft: float,
    lift: float,
    flagged: bool = False,
    ft_interval: Interval | None = None,
    lift_interval: Interval | None = None,
) -> str:
    """ "ft (+lift)" as the study prints it, each followed by its interval where known
    ("0.865 [0.83, 0.89] (+0.680 [0.63, 0.73])"); ⚠ when a run behind it had failed requests."""
    if math.isnan(ft):
        return ""
    lift_text = ""
    if not math.isnan(lift):
        lift_text = f" ({lift:+.3f}{_interval_text(lift_interval, '+.3f')})"
    return f"{ft:.3f}{_interval_text(ft_interval)}{lift_text}" + (f" {FAILED}" if flagged else "")


def _interval_text(found: Interval | None, spec: str = ".3f") -> str:
    return f" {found.text(spec)}" if found else ""


def _model_cell(
    table: Table12,
    task: str,
    model: str,
    intervals: TableIntervals = NO_INTERVALS,
    spreads: dict | None = None,
) -> str:
    """A model's cell of Table 12; "base 0.200" where only the base model was run; ⚑ when a
    run behind it answers degenerately; "· 3 seeds" when its adapter was trained with several
    seeds (the cell is seed 1's; ## Seeds has the spread)."""
    ft, base = table.ft.at[task, model], table.base.at[task, model]
    flagged = table.flagged(task, model)
    found = intervals.cells.get((task, model))
    mark = f" {FLAGGED}" if flags_of(table, task, model) else ""
    spread = (spreads or {}).get((task, model))
    if spread and spread.several:
        mark += f" · {len(spread.seeds)} seeds"
    if math.isnan(ft) and not math.isnan(base):
        text = f"base {base:.3f}{_interval_text(found and found.base)}"
        return text + (f" {FAILED}" if flagged else "") + mark
    if math.isnan(ft):
        return ""
    return _cell(ft, ft - base, flagged, found and found.ft, found and found.lift) + mark


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


def main_table(
    table: Table12, intervals: TableIntervals = NO_INTERVALS, spreads: dict | None = None
) -> list[str]:
    """Table 12 as Markdown lines: a row per task, "ft (+lift)" per model, the best fine-tuned
    model, GPT-4 and the best adapter's lift over it; a bottom row of averages, each model's
    mean lift with its interval where every task has one."""
    tasks = per_task(table)
    lines = _md_header(["task", *table.models, "best fine-tuned", "GPT-4", "lift over GPT-4"])
    for t, row in tasks.iterrows():
        cells = [_model_cell(table, t, m, intervals, spreads) for m in table.models]
        best = _best_cell(row["best_models"], row["best_ft"])
        lines.append(
            _md_row([t, *cells, best, _gpt4_cell(table, t), _fmt(row["lift_over_gpt4"], "+.3f")])
        )
    averages = [
        _cell(avg_ft, avg_lift, lift_interval=intervals.mean_lift.get(model))
        + (f" [{n} of {len(tasks)} tasks]" if 0 < n < len(tasks) else "")
        for model, (avg_ft, avg_lift, n) in zip(
            table.models, per_model(table).itertuples(index=False), strict=True
        )
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


def markdown(
    table: Table12,
    study: Table12 | None,
    csv_block: tuple[list, list],
    intervals: TableIntervals = NO_INTERVALS,
    spreads: dict | None = None,
    curves: list[tuple[str, str]] | None = None,
    constrained: dict | None = None,
) -> str:
    """The whole table12.md: Table 12, its notes, the spread across training seeds where a
    cell has several, the constrained scores beside the free ones where a cell has them, (for
    your runs) the answers' distributions, the study beside it, and links to the adapters'
    learning curves (`curves`: adapter id, path from the report)."""
    if table.source == STUDY:
        title = "# Table 12 — the study's scores (LoRA Land), as shipped with llmbench"
    else:
        title = f"# Table 12 — your scores ({table.source})"
    lines = [
        title,
        "",
        "Each cell: the best adapter's fine-tuned score (its lift over the same base model). "
        "Averages run over the tasks a model has."
        + (" Brackets: 95% intervals (see the notes)." if intervals.any else ""),
        "",
        *main_table(table, intervals, spreads),
        "",
        *_notes(table, csv_block, intervals),
    ]
    seeds = seeds_table(table, spreads or {}, intervals)
    if seeds:
        lines += ["", "## Seeds", "", *seeds]
    if constrained:
        lines += [
            "",
            "## Constrained answers",
            "",
            *constrained_table(table, intervals, constrained),
        ]
    answers = answers_table(table)
    if answers:
        lines += ["", "## Answers", "", *answers]
    beside = beside_table(table, study) if study is not None else []
    if beside:
        lines += ["", "## Yours beside the study", "", "Cells: yours / the study's.", "", *beside]
    if curves:
        lines += ["", "## Learning curves", "", "Each adapter's training loss per step "
                  "(docs/training.md: the CSV beside each plot has the numbers).", ""]  # fmt: skip
        lines += [f"- [{adapter}]({path})" for adapter, path in curves]
    return "\n".join(lines) + "\n"


def _notes(
    table: Table12, csv_block: tuple[list, list], intervals: TableIntervals = NO_INTERVALS
) -> list[str]:
    notes = []
    if intervals.any:
        notes.append(f"- Brackets: {method_text()}.")
        missing = sorted(k for k, c in intervals.cells.items() if (c.ft or c.base) is None)
        if missing:
            notes.append(
                "- No interval where a run records no per-example scores (an older llmbench "
                "made it): " + ", ".join(f"{t} {m}" for t, m in missing) + "."
            )
        notes += [
            f"- {t} {m}: {c.note}." for (t, m), c in sorted(intervals.cells.items()) if c.note
        ]
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
    for t in table.tasks:
        for m in table.models:
            notes += [
                f"- {FLAGGED} {t} {m} {who}: {why} ({run.path})."
                for who, why, run in flags_of(table, t, m)
            ]
    if any(r.flag for r in [*table.ft_runs.values(), *table.base_runs.values()]):
        notes.append(
            f"- {FLAGGED} flags degenerate answers: on a classification task one answer on >= "
            f"{DEGENERATE_SHARE:.0%} of the rows while the gold majority covers < "
            f"{GOLD_MAJORITY_CAP:.0%}; on any other task one output string on >= "
            f"{DEGENERATE_SHARE:.0%} of them. The score alone hides it: see ## Answers."
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


def constrained_table(table: Table12, intervals: TableIntervals, cells: dict) -> list[str]:
    """Per cell with constrained runs: its adapter's and base model's scores and the lift, free
    and constrained side by side, each with its 95% interval; then the runs whose constrained
    answers named no label."""
    rows = constrained_runs.side_by_side(table, intervals, cells)
    notes = [f"- {note}." for note in constrained_runs.off_label_notes(cells)]
    return [
        "The same rows answered twice: free (Table 12's scores) and with each answer restricted "
        "to the task's labels by the server's structured output. Constrained asks which label "
        "the model prefers; free also asks whether it answers in the task's format, so a base "
        "model far better constrained than free knew more than its free answers showed. "
        "Brackets: 95% intervals, each lift's paired (see the notes above).",
        "",
        *_md_header(list(constrained_runs.COLUMNS)),
        *(_md_row(list(row)) for row in rows),
        *([""] + notes if notes else []),
    ]


def seeds_table(table: Table12, spreads: dict, intervals: TableIntervals) -> list[str]:
    """Per cell trained with several seeds: seed 1's adapter score and lift (the main table's)
    with their 95% intervals, beside the mean, SD and range of each across the seeds."""
    rows = []
    for t in table.tasks:
        for m in table.models:
            spread = spreads.get((t, m))
            if spread is None or not spread.several:
                continue
            found = intervals.cells.get((t, m))
            rows.append(
                _md_row(
                    [
                        t,
                        m,
                        ", ".join(map(str, spread.seeds)),
                        f"{spread.ft.values[0]:.3f}{_interval_text(found and found.ft)}",
                        spread.ft.text(),
                        _seed_lift_text(spread, found),
                        "" if math.isnan(spread.lift.mean) else spread.lift.text("+.3f"),
                    ]
                )
            )
    if not rows:
        return []
    header = ["task", "model", "seeds", "adapter, seed 1", "adapter across seeds",
              "lift, seed 1", "lift across seeds"]  # fmt: skip
    return [
        "The main table shows each cell's seed 1 adapter (the sweep's `<model>/<task>`), never "
        "the best seed. Its bracket is the 95% bootstrap interval over examples (other rows, "
        "the same adapter); the columns across seeds give the mean, the sample SD and the "
        "range over the adapters of every training seed, all scored on the same rows (another "
        "training seed, the same rows).",
        "",
        *_md_header(header),
        *rows,
    ]


def _seed_lift_text(spread: SeedSpread, found) -> str:
    lift = spread.lift.values[0]
    if math.isnan(lift):
        return ""
    return f"{lift:+.3f}{_interval_text(found and found.lift, '+.3f')}"


def answers_table(table: Table12) -> list[str]:
    """Per run behind a cell that records its answers: the most common answer and its share,
    the gold majority's, the most common output string's share, and for a classification task
    the answer distribution beside the gold one."""
    rows = []
    for t in table.tasks:
        for m in table.models:
            for who, runs in (("adapter", table.ft_runs), ("base", table.base_runs)):
                run = runs.get((t, m))
                if run is None or not run.answers:
                    continue
                a = run.answers
                rows.append(
                    _md_row(
                        [
                            t,
                            m,
                            who + (f" {FLAGGED}" if run.flag else ""),
                            f"{_md_text(a['top_answer'])} {percent(a['top_answer_share'])}",
                            f"{_md_text(a['gold_majority'])} {percent(a['gold_majority_share'])}",
                            percent(a["top_output_share"]),
                            _distribution_text(a.get("answers"), run.n),
                            _distribution_text(a.get("gold"), run.n),
                        ]
                    )
                )
    if not rows:
        return []
    header = ["task", "model", "run", "most common answer", "gold majority",
              "same output", "answers", "gold"]  # fmt: skip
    return [
        "The most common answer (a classification task's answer line, else the whole output) "
        "and its share of the rows, beside the gold majority's; the share of the most common "
        "exact output; a classification task's answers beside the gold labels.",
        "",
        *_md_header(header),
        *rows,
    ]


def _distribution_text(counts: dict | None, n: int) -> str:
    if not counts:
        return ""
    return ", ".join(f"{_md_text(k)} {percent(v / n)}" for k, v in counts.items())


def _md_text(text: str) -> str:
    """Text in a Markdown table cell: quoted, its pipes escaped."""
    return "'" + text.replace("|", "\\|") + "'"


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
    intervals: TableIntervals = NO_INTERVALS
    spreads: dict = field(default_factory=dict)  # (task, model) -> SeedSpread
    # (task, model) -> constrained.ConstrainedCell, for the cells with constrained runs
    constrained: dict = field(default_factory=dict)


def learning_curve_links(runs_dir: Path, out_dir: Path) -> list[tuple[str, str]]:
    """(adapter id, the plot's path from the report folder) of every trained adapter."""
    import os

    workdir = Workdir(runs_dir)
    return [
        (plot.parent.parent.relative_to(workdir.train).as_posix(), os.path.relpath(plot, out_dir))
        for plot in workdir.learning_curves()
    ]


def report(runs_dir: Path | None, out_dir: Path) -> ReportResult:
    """Table 12 and Figure 5 of your runs under `runs_dir` (None: the study's own), written
    into `out_dir` as table12.md, table12.csv, cells.csv and figure5.png."""
    study = study_table()
    if runs_dir is None:
        table, beside = study, None
    else:
        table, beside = table_from_runs(collect_runs(runs_dir), study, str(runs_dir)), study
    block = complete_block(table)
    intervals = table_intervals(table)
    spreads = seed_spreads(table)
    out_dir = Path(out_dir)
    curves = learning_curve_links(runs_dir, out_dir) if runs_dir is not None else []
    constrained = (
        constrained_runs.constrained_cells(table, runs_dir) if runs_dir is not None else {}
    )
    files = [out_dir / n for n in ("table12.md", "table12.csv", "cells.csv", "figure5.png")]
    atomic_write_text(
        files[0], markdown(table, beside, block, intervals, spreads, curves, constrained)
    )
    atomic_write_text(files[1], table12_csv(table, intervals, spreads))
    atomic_write_text(files[2], cells_csv(table, beside, intervals, spreads, constrained))
    who = "the study (LoRA Land)" if runs_dir is None else str(runs_dir)
    plot_figure5(table, files[3], f"Figure 5: lift of the best fine-tuned adapter per task — {who}")
    return ReportResult(table, files, intervals, spreads, constrained)
