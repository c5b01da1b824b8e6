"""`llmbench complexity`, `correlate` and `predict`: each handler a few lines around one library
call, importing the analysis modules only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import datasets_option, runs_option
from llmbench.errors import LLMBenchError
from llmbench.workdir import Workdir


def cmd_complexity(args: argparse.Namespace) -> None:
    from llmbench.analysis.complexity import (
        complexity_path,
        not_the_study,
        task_complexity,
        write_complexity,
    )
    from llmbench.analysis.correlate import fixture_note
    from llmbench.console import console
    from llmbench.tasks.cards import load_cards

    workdir = Workdir(args.runs)
    if args.task == "all":
        names = sorted(load_cards(args.datasets))
        tasks = [n for n in names if workdir.prepared(n).is_file()]
        if not tasks:
            raise LLMBenchError(
                f"{workdir.prepared_dir}: no prepared table for any task; run "
                "`llmbench prepare` first"
            )
    else:
        names = tasks = [args.task]
    rows = [
        task_complexity(t, args.runs, args.split, args.datasets, args.workers, progress=True)
        for t in tasks
    ]
    out = complexity_path(args.out, args.split) if args.out else workdir.complexity(args.split)
    write_complexity(rows, out)
    _print_complexity(rows, args.split)
    if len(tasks) < len(names):
        console.print(f"not prepared, skipped: {', '.join(sorted(set(names) - set(tasks)))}")
    note = fixture_note(not_the_study(rows), len(rows))
    if note:
        console.print(f"note: {note}", style="bold", markup=False)
    console.print(f"written to {out}")


def _print_complexity(rows: list[dict], split: str) -> None:
    from llmbench.console import print_table

    def trio(row: dict, name: str) -> str:
        return "/".join(f"{row[f'{name}_{s}']:.1f}" for s in ("p95", "mean", "sd"))

    print_table(
        f"dataset complexity ({split} split; tokens in cl100k_base; input = filled prompt "
        "template)",
        (
            "task",
            "examples",
            "input p95/mean/sd",
            "output p95/mean/sd",
            "example p95/mean/sd",
            "ROUGE-L mean/sd",
            "compressibility mean/sd",
        ),
        [
            (
                r["task"],
                r["n_examples"],
                trio(r, "input_tokens"),
                trio(r, "output_tokens"),
                trio(r, "example_tokens"),
                f"{r['io_rougeL_mean']:.3f}/{r['io_rougeL_sd']:.3f}",
                f"{r['compressibility_mean']:.3f}/{r['compressibility_sd']:.3f}",
            )
            for r in rows
        ],
    )


def cmd_correlate(args: argparse.Namespace) -> None:
    from llmbench.analysis.correlate import correlate, fixture_note
    from llmbench.console import console

    complexity = args.complexity or Workdir(args.runs).complexity()
    out = args.out or Workdir(args.runs).correlate
    result = correlate(args.scores, complexity, out)
    _print_strongest(result)
    for evaluation in result.predictions:
        console.print(evaluation.verdict(), markup=False)
        console.print(f"  {evaluation.carriers()}", markup=False)
    for note in [fixture_note(result.not_study, len(result.tasks)), *result.notes]:
        if note:
            console.print(f"note: {note}", style="bold", markup=False)
    console.print(f"written to {out}: {', '.join(p.name for p in result.files)}")


def _print_strongest(result) -> None:
    from llmbench.analysis.complexity import HEURISTICS
    from llmbench.analysis.correlate import QUALITY
    from llmbench.console import print_table

    block = result.pearson.loc[list(QUALITY), list(HEURISTICS)]
    rows = []
    for measure, label in QUALITY.items():
        ranked = block.loc[measure].abs().sort_values(ascending=False, na_position="last")
        rows.append((label, *(f"{h} {block.at[measure, h]:+.2f}" for h in ranked.index[:3])))
    print_table(
        f"strongest Pearson correlations over {len(result.tasks)} tasks "
        "(all in pearson.csv, figure8.png)",
        ("quality measure", "1st", "2nd", "3rd"),
        rows,
    )


def cmd_predict(args: argparse.Namespace) -> None:
    from llmbench.analysis.correlate import PAPER, known_tasks
    from llmbench.analysis.predict import predict_outcomes

    if args.check:
        cmd_predict_check(args)
        return
    _check_dataset_flags(args)
    scores = args.scores or PAPER
    complexity = args.complexity or Workdir(args.runs).complexity()
    known, not_study = known_tasks(scores, complexity)
    result = predict_outcomes(_dataset_heuristics(args), known)
    _print_prediction(result, not_study, scores)


def cmd_predict_check(args: argparse.Namespace) -> None:
    from llmbench.analysis.predict_check import check_predict, verdict
    from llmbench.console import console

    given = [f for f in ("task", "dataset", "input_columns", "target_col") if getattr(args, f)]
    if given or args.prompt_template is not None:
        flags = ", ".join(f"--{f.replace('_', '-')}" for f in given) or "--prompt-template"
        raise LLMBenchError(
            f"--check: forecasts the tasks of --scores; expected it without {flags}"
        )
    # the bake-off's own scores (llmbench.bakeoff.pipeline.OWN names that folder)
    scores = args.scores or Workdir(args.runs).correlation("bakeoff") / "scores.csv"
    complexity = args.complexity or Workdir(args.runs).complexity()
    out = args.out or Path(scores).parent / "predict-check"
    result = check_predict(scores, complexity, out, args.model, progress=True)
    _print_check(result)
    for check in result.checks:
        console.print(verdict(check), markup=False)
    console.print(
        f"for scale: the mean of the other tasks scores R² {result.baseline_r2:+.3f} by "
        f"construction; an always-positive forecast gets {result.positive} signs right",
        markup=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", style="bold", markup=False)
    console.print(f"written to {out}: {', '.join(p.name for p in result.files)}")


def _print_check(result) -> None:
    from llmbench.console import print_table

    columns = {f.task: [f"{f.measured:+.3f}"] for f in result.refit.forecasts}
    for check in result.checks:
        for f in check.forecasts:
            columns[f.task].append(f"{f.forecast:+.3f}")
    print_table(
        f"predict, checked out of sample: the {result.lift}, each task forecast without it",
        ("task", "measured", *(f"forecast ({c.fit})" for c in result.checks)),
        [(task, *cells) for task, cells in columns.items()],
    )


def _check_dataset_flags(args: argparse.Namespace) -> None:
    if args.task and (
        args.dataset or args.input_columns or args.target_col or args.prompt_template is not None
    ):
        raise LLMBenchError(
            "--task: names a prepared task; expected it without --dataset, "
            "--input-columns, --target-col and --prompt-template"
        )
    if not args.task and not (args.dataset and args.input_columns and args.target_col):
        raise LLMBenchError(
            "predict: expected --task T, or --dataset FILE with --input-columns and --target-col"
        )


def _dataset_heuristics(args: argparse.Namespace) -> dict:
    from llmbench.analysis.complexity import joined_template, task_complexity, texts_complexity
    from llmbench.analysis.predict import read_user_dataset

    if args.task:
        return task_complexity(args.task, args.runs, "train", args.datasets, args.workers)
    columns = [c for group in args.input_columns for c in group]
    frame = read_user_dataset(Path(args.dataset), columns, args.target_col)
    if args.prompt_template is None:
        names = [f"c{i}" for i in range(len(columns))]  # any column name, safe in a template
        template = joined_template(names)
    else:
        names, template = columns, _checked_template(args.prompt_template, columns)
    return texts_complexity(
        Path(args.dataset).stem,
        template,
        names,
        [frame[c].tolist() for c in columns],
        frame[args.target_col].tolist(),
        args.workers,
    )


def _checked_template(template: str, columns: list[str]) -> str:
    from llmbench.tasks.cards import template_fields

    try:
        fields = template_fields(template)
    except ValueError as exc:
        raise LLMBenchError(
            f"--prompt-template: {exc}; use {{{{ and }}}} for literal braces"
        ) from None
    unknown = [f for f in fields if f not in columns]
    if unknown:
        raise LLMBenchError(
            f"--prompt-template: placeholder(s) {', '.join(unknown)} are not "
            f"input columns; expected some of {', '.join(columns)}"
        )
    return template


def _print_prediction(result, not_study: list[str], scores: str) -> None:
    from llmbench.analysis.correlate import fixture_note
    from llmbench.analysis.predict import RANGE, TARGETS
    from llmbench.console import console, print_table

    print_table(
        f"{result.name}: predicted outcome of fine-tuning (fitted on {len(result.known_tasks)} "
        f"known tasks, scores: {'the study' if scores == 'paper' else scores})",
        ("target", "predicted", f"{RANGE[1] - RANGE[0]}% range (CV errors)", "model"),
        [
            (TARGETS[p.target], f"{p.value:.3f}", f"{p.low:.3f} .. {p.high:.3f}", p.model)
            for p in result.predictions
        ],
    )
    print_table(
        "most similar known tasks (standardized heuristics)",
        ("task", "distance", "average fine-tuned score", "average base-model lift"),
        [(t, f"{d:.2f}", f"{ft:.3f}", f"{lift:+.3f}") for t, d, ft, lift in result.neighbours],
    )
    for evaluation in result.evaluations:
        console.print(evaluation.verdict(), markup=False)
    study = result.heuristics.get("study_n_train")
    console.print(
        f"{result.name}: heuristics from {result.heuristics['n_examples']} training "
        f"rows{f' (the study had {study})' if study else ''}",
        markup=False,
    )
    note = fixture_note([t for t in not_study if t in result.known_tasks], len(result.known_tasks))
    if note:
        console.print(f"note: known tasks' {note}", style="bold", markup=False)


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "complexity":
        p.epilog = "example: llmbench complexity --task all --runs runs"
        p.add_argument("--task", required=True, help="a task name, or all (every prepared task)")
        p.add_argument(
            "--split",
            default="train",
            choices=("train", "validation", "test"),
            help="which split to measure (default: train, as the study)",
        )
        runs_option(p, " holding prepared/")
        p.add_argument(
            "--out", type=Path, help="folder for <split>.csv (default: <runs>/complexity)"
        )
        _common(p)
        p.set_defaults(handler=cmd_complexity)
    elif command == "correlate":
        p.epilog = (
            "example: llmbench correlate --scores paper --complexity runs/complexity/train.csv"
        )
        p.add_argument(
            "--scores",
            default="paper",
            help="scores CSV in the Table 12 layout, or paper for the study's (default)",
        )
        p.add_argument(
            "--complexity",
            type=Path,
            help="`llmbench complexity` CSV (default: <runs>/complexity/train.csv)",
        )
        runs_option(p)
        p.add_argument("--out", type=Path, help="output folder (default: <runs>/correlate)")
        p.set_defaults(handler=cmd_correlate)
    else:
        p.epilog = (
            "examples: llmbench predict --task glue_mnli; llmbench predict --dataset mine.jsonl "
            "--input-columns question context --target-col answer; llmbench predict --check "
            "--runs runs (each task of a bake-off forecast from the others)"
        )
        p.add_argument("--task", help="a prepared task")
        p.add_argument("--dataset", help="your dataset: a CSV, JSONL or Parquet file")
        p.add_argument(
            "--input-columns",
            nargs="+",
            action="append",
            help="with --dataset: its input columns",
        )
        p.add_argument("--target-col", help="with --dataset: its target column")
        p.add_argument(
            "--prompt-template",
            help="with --dataset: a template over the input columns, "
            "e.g. '### Question:\\n{question}\\n### Answer:' (default: columns joined)",
        )
        p.add_argument(
            "--check",
            action="store_true",
            help="instead: leave one task out: forecast each task of --scores from the others "
            "and compare with its measured lift (R², signs, a plot)",
        )
        p.add_argument(
            "--scores",
            help="scores to fit on, in the Table 12 layout (default: paper, the study's; with "
            "--check, the bake-off's <runs>/correlate/bakeoff/scores.csv)",
        )
        p.add_argument(
            "--complexity",
            type=Path,
            help="heuristics of the known tasks (default: <runs>/complexity/train.csv)",
        )
        p.add_argument(
            "--model",
            help="with --check: the base model whose lift is checked (default: the mean lift "
            "over the models of --scores)",
        )
        p.add_argument(
            "--out",
            type=Path,
            help="with --check: output folder (default: predict-check/ beside the scores)",
        )
        runs_option(p)
        _common(p)
        p.set_defaults(handler=cmd_predict)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes (default: 1 below 50,000 rows, else up to 4 cores)",
    )
    datasets_option(p)
