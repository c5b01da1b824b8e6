"""`llmbench report`: Table 12 and Figure 5 from the evaluation runs under `--runs`, or
the study's own scores with `--paper`."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.workdir import Workdir


def configure(command: str, p: argparse.ArgumentParser) -> None:
    p.epilog = "examples: llmbench report --runs runs --out runs/report; llmbench report --paper"
    p.add_argument(
        "--runs", type=Path, help=f"work directory holding eval/ (default: {Workdir().root})"
    )
    p.add_argument(
        "--paper", action="store_true", help="render the study's own scores instead of runs"
    )
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default: <runs>/report, or runs/report-paper with --paper)",
    )
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.report.document import FAILED, FLAGGED, report
    from llmbench.report.table12 import per_task

    if args.paper and args.runs is not None:
        raise LLMBenchError("report: --runs and --paper both given; expected one or the other")
    workdir = Workdir(args.runs) if args.runs else Workdir()
    out = args.out or (workdir.report_paper if args.paper else workdir.report)
    result = report(None if args.paper else workdir.root, out)
    table, lifts = result.table, per_task(result.table)["lift_over_gpt4"].dropna()
    if not args.paper:
        _print_cells(result)
    console.print(
        f"Table 12 of {len(table.tasks)} tasks × {len(table.models)} models: the best adapter "
        f"beats GPT-4 on {(lifts > 0).sum()} of {len(lifts)} tasks",
        markup=False,
    )
    if table.failed:
        console.print(f"{len(table.failed)} run(s) with failed requests, flagged {FAILED}")
    flagged = [r for r in [*table.ft_runs.values(), *table.base_runs.values()] if r.flag]
    if flagged:
        console.print(
            f"{len(flagged)} run(s) with degenerate answers, flagged {FLAGGED} (see table12.md)"
        )
    console.print(f"written to {out}: {', '.join(p.name for p in result.files)}", markup=False)


def _print_cells(result) -> None:
    """Every cell of your runs: scores and lift with their 95% intervals, the flags, and the
    adapter's scores across training seeds where it has several."""
    import math

    from llmbench.console import console, print_table
    from llmbench.report.document import FLAGGED, flags_of
    from llmbench.report.intervals import method_text, with_interval

    table, intervals = result.table, result.intervals
    rows = []
    for t in table.tasks:
        for m in table.models:
            ft, base = table.ft.at[t, m], table.base.at[t, m]
            if math.isnan(ft) and math.isnan(base):
                continue
            cell = intervals.cells.get((t, m))
            flags = ", ".join(who for who, _, _ in flags_of(table, t, m))
            spread = result.spreads.get((t, m))
            rows.append(
                (
                    t,
                    m,
                    with_interval(ft, cell and cell.ft),
                    with_interval(base, cell and cell.base),
                    with_interval(ft - base, cell and cell.lift, "+.3f"),
                    f"{FLAGGED} {flags}" if flags else "",
                    spread.ft.text() if spread and spread.several else "",
                )
            )
    for m in table.models:
        lift = table.lift[m].mean()
        if not math.isnan(lift):
            found = intervals.mean_lift.get(m)
            rows.append(("mean lift", m, "", "", with_interval(lift, found, "+.3f"), "", ""))
    columns = ("task", "model", "fine-tuned", "base", "lift", "flag", "fine-tuned across seeds")
    if not any(spread.several for spread in result.spreads.values()):
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    print_table("Table 12 cells", columns, rows)
    if intervals.any:
        console.print(method_text(), markup=False)
    _print_constrained(result)


def _print_constrained(result) -> None:
    """The cells with constrained runs: free and constrained scores side by side."""
    from llmbench.console import console, print_table
    from llmbench.report.constrained import COLUMNS, off_label_notes, side_by_side

    if not result.constrained:
        return
    rows = side_by_side(result.table, result.intervals, result.constrained)
    print_table("constrained to the labels, beside free", COLUMNS, rows)
    for note in off_label_notes(result.constrained):
        console.print(f"note: {note}", markup=False)
