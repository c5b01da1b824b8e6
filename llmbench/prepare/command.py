"""`llmbench tasks` (the task cards and their token lengths) and `llmbench prepare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import datasets_option, runs_option
from llmbench.errors import LLMBenchError


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "tasks":
        actions = p.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
        for name, handler, help_text in [
            ("list", cmd_tasks_list, "a table of every task: category, metric, eval split, counts"),
            ("show", cmd_tasks_show, "one task card with its prompt template"),
            ("validate", cmd_tasks_validate, "validate every <datasets>/<task>/metadata.yaml"),
            ("stats", cmd_tasks_stats, "token lengths per task and split (cl100k_base), as CSV"),
        ]:
            a = actions.add_parser(name, help=help_text)
            if name == "show":
                a.add_argument("task")
            if name == "stats":
                a.add_argument("--task", help="one task (default: every prepared task)")
                a.add_argument(
                    "--model",
                    default="mistral-7b",
                    help="whose prompt markup to realize (default: mistral-7b, plain)",
                )
                runs_option(a, " holding prepared/")
                a.add_argument(
                    "--out", type=Path, help="CSV to write (default: <runs>/stats/token_stats.csv)"
                )
            datasets_option(a)
            a.set_defaults(handler=handler)
        return
    p.epilog = "example: llmbench prepare --task glue_sst2 --source datasets/glue_sst2/demo"
    p.add_argument("--task", required=True, help="a task name, or all")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--source", help="a local copy of the upstream (file or folder, as published)"
    )
    where.add_argument("--fixture", action="store_true", help="use the task's shipped fixture")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2, table not written) when a split's row count is not the study's "
        "(a fixture's counts are recorded, never compared)",
    )
    runs_option(p, ", where prepared/ is written")
    datasets_option(p)
    p.set_defaults(handler=cmd_prepare)


def cmd_tasks_list(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.tasks.cards import load_cards

    cards = load_cards(args.datasets)
    rows = [
        (
            c.name,
            c.category,
            c.metric_name,
            c.eval_split,
            *(
                c.split_counts[s] if c.split_counts[s] is not None else "-"
                for s in ("train", "validation", "test")
            ),
        )
        for c in cards.values()
    ]
    columns = ("task", "category", "metric", "eval split", "train", "validation", "test")
    print_table(f"{len(rows)} tasks ({args.datasets})", columns, rows)


def cmd_tasks_show(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.tasks.cards import get_card

    card = get_card(args.task, args.datasets)
    console.print(f"[bold]{card.name}[/bold] — {card.description}  ({card.path})")
    fields = [
        ("category", card.category),
        ("dataset", f"{card.dataset_link}  [{card.source['kind']}: {card.source['id']}]"),
        ("input columns", ", ".join(card.input_columns)),
        ("target column", card.target_col),
        ("metric", card.metric_name),
        ("eval split", f"{card.eval_split} ({card.split_column} == {card.split_column_value})"),
        ("study counts", ", ".join(f"{k} {v}" for k, v in card.split_counts.items() if v)),
        ("max new tokens", card.max_new_tokens),
    ]
    for key, value in fields:
        console.print(f"  {key:<15} {value}", markup=False)
    console.print("prompt template:", style="bold")
    console.print(card.prompt_template, markup=False)
    if card.notes:
        console.print(f"notes: {card.notes}", markup=False)


def cmd_tasks_validate(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.tasks.cards import load_cards

    cards = load_cards(args.datasets)
    console.print(f"{len(cards)} task cards valid in {args.datasets}")


def cmd_tasks_stats(args: argparse.Namespace) -> None:
    from llmbench.console import console, print_table
    from llmbench.prepare.stats import task_token_stats, write_stats
    from llmbench.tasks.cards import get_card, load_cards
    from llmbench.tasks.models import get_model
    from llmbench.workdir import Workdir

    workdir = Workdir(args.runs)
    names = [args.task] if args.task else sorted(load_cards(args.datasets))
    prepared = [n for n in names if workdir.prepared(n).is_file()]
    if not prepared:
        raise LLMBenchError(
            f"{workdir.prepared_dir}: no prepared table for {', '.join(names)}; "
            "run `llmbench prepare` first"
        )
    model = get_model(args.model)
    rows = [
        r for n in prepared for r in task_token_stats(get_card(n, args.datasets), model, args.runs)
    ]
    out = args.out or workdir.token_stats
    write_stats(rows, out)
    print_table(
        f"tokens (cl100k_base), prompts realized for {model.name}",
        (
            "task",
            "split",
            "rows",
            "prompt min/max/mean/p95",
            "target min/max/mean/p95",
            "example min/max/mean/p95",
        ),
        [
            (
                r.task,
                r.split,
                r.rows,
                f"{r.prompt_min}/{r.prompt_max}/{r.prompt_mean}/{r.prompt_p95}",
                f"{r.target_min}/{r.target_max}/{r.target_mean}/{r.target_p95}",
                f"{r.example_min}/{r.example_max}/{r.example_mean}/{r.example_p95}",
            )
            for r in rows
        ],
    )
    skipped = sorted(set(names) - set(prepared))
    if skipped:
        console.print(f"not prepared, skipped: {', '.join(skipped)}")
    console.print(f"written to {out}")


def cmd_prepare(args: argparse.Namespace) -> None:
    from llmbench.console import console, errors, print_table
    from llmbench.prepare.tables import fixture_source, prepare_task
    from llmbench.tasks.cards import get_card, load_cards

    tasks = sorted(load_cards(args.datasets)) if args.task == "all" else [args.task]
    if args.source and len(tasks) > 1:
        raise LLMBenchError("--source: names one task's upstream copy; expected --task T, not all")
    rows = []
    for task in tasks:
        source = Path(args.source) if args.source else None
        if args.fixture:
            source = fixture_source(get_card(task, args.datasets))
        result = prepare_task(
            task,
            source=source,
            out_dir=args.runs,
            datasets_dir=args.datasets,
            strict=args.strict,
        )
        for difference in result.differences:
            errors.print(f"warning: {difference}", markup=False)
        rows.append(
            (
                task,
                *(result.counts.get(s, "-") for s in ("train", "validation", "test")),
                result.path,
            )
        )
    print_table("prepared", ("task", "train", "validation", "test", "table"), rows)
    console.print(f"{len(rows)} task(s) prepared")
