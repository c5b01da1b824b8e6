"""`llmbench models`, `build-model`, `render-configs` and `train` (one job or a sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import count, datasets_option, names, runs_option
from llmbench.errors import LLMBenchError
from llmbench.paths import CHECKOUT_ROOT, CONFIGS_DIR
from llmbench.workdir import Workdir


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "models":
        actions = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
        actions.add_parser("list", help="a table of the base models").set_defaults(
            handler=cmd_models_list
        )
    elif command == "build-model":
        p.epilog = "example: llmbench build-model smollm2-135m --runs runs"
        p.add_argument("name", help="tiny or smollm2-135m")
        runs_option(p, ", where models/NAME is written")
        p.add_argument("--out", type=Path, help="the folder to write (default: <runs>/models/NAME)")
        p.set_defaults(handler=cmd_build_model)
    elif command == "render-configs":
        p.epilog = "example: llmbench render-configs --models tiny --tasks gsm8k --out runs/configs"
        p.add_argument(
            "--models", nargs="+", action="append", help="model names (default: the study's 10)"
        )
        p.add_argument("--tasks", nargs="+", action="append", help="task names (default: all)")
        p.add_argument(
            "--out",
            # a checkout's own ludwig_configs/; an installed copy's is read-only data, so there
            # the configs go to ./ludwig_configs
            default=str(CONFIGS_DIR if CHECKOUT_ROOT else Path("ludwig_configs")),
            help="output folder (default: the checkout's ludwig_configs/, or ./ludwig_configs "
            "when llmbench is installed)",
        )
        datasets_option(p)
        p.add_argument(
            "--token-stats",
            help="size sequence lengths from this `tasks stats` CSV (default: the study's figures)",
        )
        p.set_defaults(handler=cmd_render_configs)
    else:
        _configure_train(p)


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples: llmbench train --config ludwig_configs/mistral-7b/gsm8k.yaml "
        "--dataset runs/prepared/gsm8k.parquet | llmbench train --models tiny --tasks gsm8k "
        "glue_sst2 --max-parallel 2"
    )
    one = p.add_argument_group("one job")
    one.add_argument("--config", help="a rendered Ludwig config")
    one.add_argument("--dataset", help="the task's prepared table")
    one.add_argument("--output-directory", type=Path, help="default: <runs>/train")
    one.add_argument("--experiment-name", default="run")
    one.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its checkpoint"
    )
    one.add_argument(
        "--seed",
        type=count,
        default=1,
        help="the training seed (default 1: Ludwig's default random_seed; k: that + k - 1)",
    )
    p.add_argument(
        "--budget",
        type=budget_seconds,
        help="train each adapter for this long (e.g. 20m, 1h30m, 90s): a warm-up measures the "
        "task's examples/s and sizes the steps (default: the config's train_steps)",
    )
    p.add_argument("--label", help=argparse.SUPPRESS)  # the sweep names its jobs' progress lines
    sweep = p.add_argument_group("a sweep (state in <runs>/train/manifest.json)")
    sweep.add_argument("--models", nargs="+", action="append", help="default: the study's 10")
    sweep.add_argument("--tasks", nargs="+", action="append", help="default: all 31")
    runs_option(sweep)
    datasets_option(sweep)
    sweep.add_argument(
        "--configs",
        default=str(CONFIGS_DIR),
        help="rendered configs (default: ludwig_configs/; missing ones are rendered into "
        "<runs>/configs)",
    )
    sweep.add_argument("--max-parallel", type=count, default=1, help="local jobs at once")
    sweep.add_argument("--ray-address", help="run each job as a task on this Ray cluster")
    sweep.add_argument(
        "--gpus-per-job",
        type=float,
        default=1.0,
        help="GPUs each Ray task asks for (default 1; 0 on a CPU cluster)",
    )
    p.set_defaults(handler=cmd_train)


def cmd_models_list(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.tasks.models import load_registry

    rows = [
        (
            m.name,
            m.source,
            m.family,
            m.parameters,
            m.kind,
            m.markup_name,
            m.context_length,
            "yes" if m.in_study else "no",
        )
        for m in load_registry().values()
    ]
    columns = ("model", "hub id / path", "family", "params", "kind", "markup", "context", "study")
    print_table("base models (templates/models.yaml)", columns, rows)


def cmd_build_model(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.tasks.models import get_model
    from llmbench.train.local_models import build_model

    path = build_model(args.name, args.out or Workdir(args.runs).local_model(get_model(args.name)))
    console.print(f"{args.name} written to {path}")


def cmd_render_configs(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.train.render import render_configs

    rendered = render_configs(
        models=names(args.models),
        tasks=names(args.tasks),
        out_dir=Path(args.out),
        datasets_dir=args.datasets,
        token_stats=Path(args.token_stats) if args.token_stats else None,
        notice=lambda line: console.print(f"note: {line}", markup=False),
    )
    console.print(f"{len(rendered)} Ludwig configs rendered and validated into {args.out}")


def budget_seconds(text: str) -> float:
    """argparse type of --budget: a duration in seconds (a bad one is a usage error, exit 2)."""
    from llmbench.train.budget import parse_budget

    try:
        return parse_budget(text, "--budget")
    except LLMBenchError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--budget: ")) from None


def cmd_train(args: argparse.Namespace) -> None:
    if args.config or args.dataset:
        _train_one(args)
    else:
        _train_sweep(args)


def _train_one(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.train.training import train

    if not (args.config and args.dataset) or args.models or args.tasks:
        raise LLMBenchError(
            "train: give --config and --dataset (one job), or --models and --tasks (a sweep), "
            "not a mix"
        )
    adapter = train(
        Path(args.config),
        Path(args.dataset),
        args.output_directory or Workdir(args.runs).train,
        experiment_name=args.experiment_name,
        resume=args.resume,
        budget_s=args.budget,
        label=args.label,
        seed=args.seed,
    )
    console.print(f"adapter written to {adapter}")


def _train_sweep(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.tasks.cards import load_cards
    from llmbench.tasks.models import study_models
    from llmbench.train.sweep import FAILED, plan_jobs, run_sweep

    models = names(args.models) or [m.name for m in study_models()]
    tasks = names(args.tasks) or sorted(load_cards(args.datasets))
    runs = args.runs
    jobs = plan_jobs(models, tasks, runs, Path(args.configs), args.datasets, budget_s=args.budget)
    manifest = run_sweep(jobs, runs, args.max_parallel, args.ray_address, args.gpus_per_job)
    records = [manifest.jobs[j.key] for j in jobs]
    print_table(
        f"training sweep ({manifest.path})",
        ("model", "task", "state", "attempts", "resumed from", "seconds", "adapter / error"),
        [
            (
                r.model,
                r.task,
                r.state,
                r.attempts,
                r.resumed_from_step or "-",
                r.seconds or "-",
                r.error if r.state == FAILED else r.adapter,
            )
            for r in records
        ],
    )
    failed = [r.key for r in records if r.state == FAILED]
    if failed:
        raise LLMBenchError(
            f"{len(failed)} of {len(records)} job(s) failed: {', '.join(failed)}; "
            f"see their logs and {manifest.path}"
        )
