"""`llmbench bakeoff`: the study end to end from one YAML config (default: the embedded one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import names, runs_option


def configure(command: str, p: argparse.ArgumentParser) -> None:
    p.epilog = "example: llmbench bakeoff --config my-bakeoff.yaml --runs runs"
    p.add_argument(
        "--config",
        help="bake-off settings (default: the embedded default, smollm2-135m on the demo rows)",
    )
    runs_option(p)
    p.add_argument(
        "--datasets",
        type=Path,
        help="folder of task cards, <DIR>/<task>/metadata.yaml (default: the config's "
        "`datasets`, else the project's own)",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        action="append",
        help="run only these of the config's tasks, the rest of the config as it is: a long "
        "bake-off in pieces into the same --runs (the report covers every task scored there)",
    )
    p.set_defaults(handler=cmd_bakeoff)


def cmd_bakeoff(args: argparse.Namespace) -> None:
    from llmbench.bakeoff.pipeline import load_config, only_tasks, run_bakeoff
    from llmbench.console import console, print_table
    from llmbench.report.seeds import Spread

    config = load_config(args.config and Path(args.config))
    if args.tasks:
        config = only_tasks(config, names(args.tasks), args.config or "the default bake-off")
    if args.datasets:
        config.datasets = str(args.datasets)
    result = run_bakeoff(config, args.runs)
    columns = ("model", "task", "metric", "n", "base", "adapter", "lift", "failed", "across seeds")
    rows = [
        (
            s.model,
            s.task,
            s.metric,
            s.n,
            f"{s.base:.3f}",
            f"{s.adapter:.3f}",
            f"{s.lift:+.3f}",
            s.failed,
            f"{len(s.seed_scores)}: {Spread(s.seed_scores).text()}"
            if len(s.seed_scores) > 1
            else "",
        )
        for s in result.scores
    ]
    if any(s.base_constrained is not None for s in result.scores):
        columns += ("base constrained", "adapter constrained")
        rows = [
            (*row, _score_text(s.base_constrained), _score_text(s.adapter_constrained))
            for row, s in zip(rows, result.scores, strict=True)
        ]
    print_table(f"bake-off ({args.runs})", columns, rows)
    if any(len(s.seed_scores) > 1 for s in result.scores):
        console.print("adapter and lift: seed 1's; across seeds: the adapters' scores")
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    for name, folder in result.correlate_dirs.items():
        console.print(f"correlation ({name} scores): {folder}/figure8.png", markup=False)
    console.print(f"report: {result.report_dir}/table12.md, {result.report_dir}/figure5.png")
    if "tiny" in config.models:
        console.print("The tiny model's scores show the pipeline working, not model quality.")


def _score_text(score: float | None) -> str:
    return "" if score is None else f"{score:.3f}"
