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
    from llmbench.report.document import FAILED, report
    from llmbench.report.table12 import per_task

    if args.paper and args.runs is not None:
        raise LLMBenchError("report: --runs and --paper both given; expected one or the other")
    workdir = Workdir(args.runs) if args.runs else Workdir()
    out = args.out or (workdir.report_paper if args.paper else workdir.report)
    result = report(None if args.paper else workdir.root, out)
    table, lifts = result.table, per_task(result.table)["lift_over_gpt4"].dropna()
    console.print(
        f"Table 12 of {len(table.tasks)} tasks × {len(table.models)} models: the best adapter "
        f"beats GPT-4 on {(lifts > 0).sum()} of {len(lifts)} tasks",
        markup=False,
    )
    if table.failed:
        console.print(f"{len(table.failed)} run(s) with failed requests, flagged {FAILED}")
    console.print(f"written to {out}: {', '.join(p.name for p in result.files)}", markup=False)
