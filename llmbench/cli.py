"""The `llmbench` command: one small handler per subcommand around one library call.

Heavy libraries (torch, ludwig) are imported inside the handlers, so `llmbench --help` is instant.
An LLMBenchError is printed on one line per problem, without a traceback, and exits 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from llmbench.errors import LLMBenchError

EXIT_USAGE = 2


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _count(text: str) -> int:
    """argparse type: an integer >= 1 (concurrency, attempts, limits, tokens)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """argparse type: a finite number > 0 (timeouts)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _share(text: str) -> float:
    """argparse type: a fraction in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def _http_url(text: str) -> str:
    """argparse type: an http:// or https:// URL with a host."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _names(values: list[list[str]] | None) -> list[str] | None:
    """Flatten `--models a,b --models c` and `--models a b` alike."""
    if not values:
        return None
    return [name for group in values for item in group for name in _csv(item)]


def cmd_tasks_list(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.tasks import load_cards

    cards = load_cards(args.dir)
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
    print_table(f"{len(rows)} tasks ({args.dir})", columns, rows)


def cmd_tasks_show(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.tasks import get_card

    card = get_card(args.task, args.dir)
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
    from llmbench.tasks import load_cards

    cards = load_cards(args.dir)
    console.print(f"{len(cards)} task cards valid in {args.dir}")


def cmd_tasks_stats(args: argparse.Namespace) -> None:
    from llmbench.console import console, print_table
    from llmbench.models import get_model
    from llmbench.prepare import prepared_path
    from llmbench.stats import stats_path, task_token_stats, write_stats
    from llmbench.tasks import get_card, load_cards

    names = [args.task] if args.task else sorted(load_cards(args.dir))
    prepared = [n for n in names if prepared_path(n, args.data).is_file()]
    if not prepared:
        raise LLMBenchError(
            f"{args.data}/prepared: no prepared table for {', '.join(names)}; "
            "run `llmbench prepare` first"
        )
    model = get_model(args.model)
    rows = [r for n in prepared for r in task_token_stats(get_card(n, args.dir), model, args.data)]
    out = Path(args.out) if args.out else stats_path(args.data)
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


def cmd_models_list(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.models import load_registry

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
    from llmbench.local_models import build_model

    path = build_model(args.name, Path(args.out or f"runs/models/{args.name}"))
    console.print(f"{args.name} written to {path}")


def cmd_render_configs(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.render import hub_is_offline, render_configs

    rendered = render_configs(
        models=_names(args.models),
        tasks=_names(args.tasks),
        out_dir=Path(args.out),
        datasets_dir=Path(args.datasets),
        token_stats=Path(args.token_stats) if args.token_stats else None,
    )
    note = (
        " (offline: base_model checked against the registry, not the hub)"
        if hub_is_offline()
        else ""
    )
    console.print(f"{len(rendered)} Ludwig configs rendered and validated into {args.out}{note}")


def cmd_prepare(args: argparse.Namespace) -> None:
    from llmbench.console import console, errors, print_table
    from llmbench.prepare import fixture_source, prepare_task
    from llmbench.tasks import get_card, load_cards

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
            out_dir=Path(args.out),
            datasets_dir=Path(args.datasets),
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


def cmd_train(args: argparse.Namespace) -> None:
    if args.config or args.dataset:
        _train_one(args)
    else:
        _train_sweep(args)


def _train_one(args: argparse.Namespace) -> None:
    from llmbench.console import console
    from llmbench.training import train

    if not (args.config and args.dataset) or args.models or args.tasks:
        raise LLMBenchError(
            "train: give --config and --dataset (one job), or --models and --tasks (a sweep), "
            "not a mix"
        )
    adapter = train(
        Path(args.config),
        Path(args.dataset),
        Path(args.output_directory),
        experiment_name=args.experiment_name,
        resume=args.resume,
    )
    console.print(f"adapter written to {adapter}")


def _train_sweep(args: argparse.Namespace) -> None:
    from llmbench.console import print_table
    from llmbench.models import study_models
    from llmbench.sweep import FAILED, plan_jobs, run_sweep
    from llmbench.tasks import load_cards

    models = _names(args.models) or [m.name for m in study_models()]
    tasks = _names(args.tasks) or sorted(load_cards())
    runs = Path(args.runs)
    jobs = plan_jobs(models, tasks, runs, Path(args.configs))
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


def cmd_eval(args: argparse.Namespace) -> None:
    from llmbench.evaluate import EvalSettings, check_failed_share, evaluate

    _allow_weak_sandbox(args)

    settings = EvalSettings(
        task=args.task,
        endpoint=args.endpoint,
        model=args.model,
        adapter_id=None if args.base else args.adapter_id,
        backend=args.backend,
        limit=args.limit,
        concurrency=args.concurrency,
        max_new_tokens=args.max_new_tokens,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        chat=args.chat,
        adapter_source=args.adapter_source,
    )
    out = Path(args.out) if args.out else None
    result = evaluate(settings, Path(args.data), out, **_resume_options(args))
    _print_eval([result])
    check_failed_share(result, args.max_failed_share)


def _resume_options(args: argparse.Namespace) -> dict:
    return {"retry_failed": not args.no_retry_failed, "restart": args.restart}


def _print_eval(results) -> None:
    from llmbench.console import console, print_table

    print_table(
        "evaluation",
        ("model", "task", "adapter", "metric", "n", "failed", "score", "results"),
        [
            (
                r.settings.model,
                r.settings.task,
                r.settings.adapter_id or "(base)",
                r.metric,
                r.n,
                r.n_failed,
                f"{r.score:.4f}",
                r.out_dir,
            )
            for r in results
        ],
    )
    for r in results:
        if r.failed_ids:
            shown = ", ".join(map(str, r.failed_ids[:20]))
            more = " …" if len(r.failed_ids) > 20 else ""
            console.print(
                f"{r.settings.task} {r.settings.adapter_id or 'base'}: failed example "
                f"ids (scored 0): {shown}{more}"
            )


def cmd_eval_grid(args: argparse.Namespace) -> None:
    from llmbench.evaluate import EvalSettings, check_failed_share, evaluate

    _allow_weak_sandbox(args)

    results = []
    for model in _names(args.models):
        for task in _names(args.tasks):
            adapter = args.adapter_id_format.format(model=model, task=task)
            for adapter_id in [None] if args.skip_adapters else [None, adapter]:
                settings = EvalSettings(
                    task=task,
                    endpoint=args.endpoint,
                    model=model,
                    adapter_id=adapter_id,
                    backend=args.backend,
                    limit=args.limit,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                    adapter_source=args.adapter_source,
                )
                results.append(evaluate(settings, Path(args.data), **_resume_options(args)))
    _print_eval(results)
    problems = []
    for result in results:
        try:
            check_failed_share(result, args.max_failed_share)
        except LLMBenchError as exc:
            problems += exc.problems
    if problems:
        raise LLMBenchError(*problems)


def cmd_loadtest(args: argparse.Namespace) -> None:
    from llmbench.console import console, print_table
    from llmbench.loadtest import LoadSettings, parse_counts, parse_range, run_loadtest

    adapter_ids = tuple(_names(args.adapter_ids) or ())
    counts = (
        parse_counts(args.adapters, "--adapters", 0)
        if args.adapters
        else ((len(adapter_ids),) if adapter_ids else (0,))
    )
    settings = LoadSettings(
        endpoint=args.endpoint,
        backend=args.backend,
        users=parse_counts(args.users, "--users", 1),
        adapter_counts=counts,
        adapter_ids=adapter_ids,
        duration=args.duration,
        ramp=args.ramp,
        input_words=parse_range(args.input_words, "--input-words"),
        max_new_tokens=parse_range(args.max_new_tokens, "--max-new-tokens"),
        think_time=args.think_time,
        timeout=args.timeout,
        health_timeout=args.health_timeout,
        seed=args.seed,
        model=args.model,
        allow_remote=args.allow_remote,
        adapter_source=args.adapter_source,
    )
    rows = run_loadtest(settings, Path(args.out))
    keys = (
        "users",
        "adapters",
        "requests",
        "error_rate",
        "requests_per_s",
        "output_tokens_per_s",
        "ttft_p50",
        "ttft_p90",
        "latency_p50",
        "latency_p90",
        "latency_p99",
    )
    print_table(f"load test: {args.endpoint}", keys, [[row[k] for k in keys] for row in rows])
    console.print(
        f"results in {args.out} (requests.json, summary.md, throughput.png, latency_p90.png)"
    )


def cmd_bakeoff(args: argparse.Namespace) -> None:
    from llmbench.bakeoff import load_config, run_bakeoff
    from llmbench.console import console, print_table

    config = load_config(Path(args.config) if args.config else None)
    result = run_bakeoff(config, Path(args.runs))
    print_table(
        f"bake-off ({args.runs})",
        ("model", "task", "metric", "n", "base", "adapter", "lift", "failed"),
        [
            (
                s.model,
                s.task,
                s.metric,
                s.n,
                f"{s.base:.3f}",
                f"{s.adapter:.3f}",
                f"{s.lift:+.3f}",
                s.failed,
            )
            for s in result.scores
        ],
    )
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    console.print(f"report: {result.report_dir}/table12.md, {result.report_dir}/figure5.png")
    if "tiny" in config.models:
        console.print("The tiny model's scores show the pipeline working, not model quality.")


def cmd_serve(args: argparse.Namespace) -> None:
    from llmbench.serving.launch import serve

    extra = ["--max-lora-rank", str(args.max_lora_rank), "--dtype", args.dtype]
    if args.max_model_len:
        extra += ["--max-model-len", str(args.max_model_len)]
    serve(
        args.base_model,
        args.adapters,
        args.host,
        args.port,
        args.max_loaded_adapters,
        log_path=args.log,
        extra_args=extra,
    )


def _allow_weak_sandbox(args: argparse.Namespace) -> None:
    if args.unsafe_weak_sandbox:
        from llmbench.sandbox import allow_weak_isolation

        allow_weak_isolation()


def _eval_options(p: argparse.ArgumentParser, with_model: bool = True) -> None:
    from llmbench.evaluate import DEFAULT_MAX_FAILED_SHARE  # a light module

    if with_model:
        p.add_argument(
            "--model",
            required=True,
            help="the base model (registry name: its prompt markup is used; other "
            "names, e.g. gpt-4, get the plain completion prompt)",
        )
    p.add_argument("--backend", choices=("lorax", "openai"), default="lorax")
    p.add_argument("--limit", type=_count, help="only the first N eval examples")
    p.add_argument("--concurrency", type=_count, default=8, help="requests in flight (default 8)")
    p.add_argument(
        "--timeout", type=_seconds, default=60.0, help="seconds per request (default 60)"
    )
    p.add_argument("--data", default="runs", help="work directory (default: runs)")
    p.add_argument(
        "--unsafe-weak-sandbox",
        action="store_true",
        help="where the code sandbox cannot make its namespaces, run generated code with "
        "rlimits only (it can then reach the network and the host; see docs/evaluation.md)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start over: move responses.jsonl aside (to responses.previous.jsonl) instead of "
        "resuming; needed when answer-changing settings differ from the recorded ones",
    )
    p.add_argument(
        "--no-retry-failed",
        action="store_true",
        help="keep failed examples as recorded (default: a rerun sends them again)",
    )
    p.add_argument(
        "--max-failed-share",
        type=_share,
        default=DEFAULT_MAX_FAILED_SHARE,
        help=f"exit 2 when more than this share of examples failed (default "
        f"{DEFAULT_MAX_FAILED_SHARE:g}; 1: never)",
    )
    _adapter_source_option(p)


def _adapter_source_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adapter-source",
        choices=("local", "hub", "s3", "pbase"),
        help="lorax backend: where the server finds adapters (default: the server's own; "
        "real LoRAX defaults to hub, `llmbench serve` to local)",
    )


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to look), exit status 2,
    like every other input error; subcommand parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    from llmbench.paths import CONFIGS_DIR, DATASETS_DIR

    parser = OneLineParser(
        prog="llmbench",
        description="Fine-tune small open models with 4-bit LoRA, serve many adapters, "
        "and measure them against their base models and GPT-4.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = sub.add_parser("tasks", help="list, show and validate task cards").add_subparsers(
        dest="tasks_command", required=True, metavar="ACTION"
    )
    for name, handler, help_text in [
        ("list", cmd_tasks_list, "a table of every task: category, metric, eval split, counts"),
        ("show", cmd_tasks_show, "one task card with its prompt template"),
        ("validate", cmd_tasks_validate, "validate every <dir>/<task>/metadata.yaml"),
        ("stats", cmd_tasks_stats, "token lengths per task and split (cl100k_base), as CSV"),
    ]:
        p = tasks.add_parser(name, help=help_text)
        if name == "show":
            p.add_argument("task")
        if name == "stats":
            p.add_argument("--task", help="one task (default: every prepared task)")
            p.add_argument(
                "--model",
                default="mistral-7b",
                help="whose prompt markup to realize (default: mistral-7b, plain)",
            )
            p.add_argument(
                "--data",
                type=Path,
                default=Path("runs"),
                help="work directory holding prepared/ (default: runs)",
            )
            p.add_argument("--out", help="CSV to write (default: <data>/stats/token_stats.csv)")
        if name == "validate":
            p.add_argument("dir", nargs="?", type=Path, default=DATASETS_DIR)
        else:
            p.add_argument("--dir", type=Path, default=DATASETS_DIR, help="folder of task cards")
        p.set_defaults(handler=handler)

    models = sub.add_parser("models", help="the base-model registry").add_subparsers(
        dest="models_command", required=True, metavar="ACTION"
    )
    models.add_parser("list", help="a table of the base models").set_defaults(
        handler=cmd_models_list
    )

    p = sub.add_parser(
        "build-model",
        help="build a local model of the registry offline (tiny, smollm2-135m)",
        epilog="example: llmbench build-model smollm2-135m --out runs/models/smollm2-135m",
    )
    p.add_argument("name", help="tiny or smollm2-135m")
    p.add_argument("--out", help="the folder to write (default runs/models/NAME)")
    p.set_defaults(handler=cmd_build_model)

    p = sub.add_parser(
        "render-configs",
        help="render one Ludwig config per (model, task)",
        epilog="example: llmbench render-configs --models tiny --tasks gsm8k --out runs/configs",
    )
    p.add_argument(
        "--models", nargs="+", action="append", help="model names (default: the study's 10)"
    )
    p.add_argument("--tasks", nargs="+", action="append", help="task names (default: all)")
    p.add_argument(
        "--out", default=str(CONFIGS_DIR), help="output folder (default: ludwig_configs/)"
    )
    p.add_argument("--datasets", default=str(DATASETS_DIR), help="folder of task cards")
    p.add_argument(
        "--token-stats",
        help="size sequence lengths from this `tasks stats` CSV (default: the study's figures)",
    )
    p.set_defaults(handler=cmd_render_configs)

    p = sub.add_parser(
        "prepare",
        help="turn a task's upstream data into a prepared table",
        epilog="example: llmbench prepare --task glue_sst2 --source datasets/glue_sst2/demo",
    )
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
    p.add_argument("--out", default="runs", help="work directory (default: runs)")
    p.add_argument("--datasets", default=str(DATASETS_DIR), help="folder of task cards")
    p.set_defaults(handler=cmd_prepare)

    p = sub.add_parser(
        "train",
        help="fine-tune one config, or sweep models x tasks (resumable; locally or on Ray)",
        epilog="examples: llmbench train --config ludwig_configs/mistral-7b/gsm8k.yaml "
        "--dataset runs/prepared/gsm8k.parquet | llmbench train --models tiny --tasks gsm8k "
        "glue_sst2 --max-parallel 2",
    )
    one = p.add_argument_group("one job")
    one.add_argument("--config", help="a rendered Ludwig config")
    one.add_argument("--dataset", help="the task's prepared table")
    one.add_argument("--output-directory", default="runs/train", help="default: runs/train")
    one.add_argument("--experiment-name", default="run")
    one.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its checkpoint"
    )
    sweep = p.add_argument_group("a sweep (state in <runs>/train/manifest.json)")
    sweep.add_argument("--models", nargs="+", action="append", help="default: the study's 10")
    sweep.add_argument("--tasks", nargs="+", action="append", help="default: all 31")
    sweep.add_argument("--runs", default="runs", help="work directory (default: runs)")
    sweep.add_argument(
        "--configs",
        default=str(CONFIGS_DIR),
        help="rendered configs (default: ludwig_configs/; missing ones are rendered into "
        "<runs>/configs)",
    )
    sweep.add_argument("--max-parallel", type=_count, default=1, help="local jobs at once")
    sweep.add_argument("--ray-address", help="run each job as a task on this Ray cluster")
    sweep.add_argument(
        "--gpus-per-job",
        type=float,
        default=1.0,
        help="GPUs each Ray task asks for (default 1; 0 on a CPU cluster)",
    )
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "eval",
        help="score an adapter or a base model on a task's eval split through an endpoint",
        epilog="example: llmbench eval --task gsm8k --endpoint http://127.0.0.1:8080 "
        "--model tiny --adapter-id tiny/gsm8k",
    )
    p.add_argument("--task", required=True)
    p.add_argument(
        "--endpoint",
        required=True,
        type=_http_url,
        help="a LoRAX or OpenAI-compatible server URL (http or https)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--adapter-id", help="the adapter to evaluate")
    who.add_argument("--base", action="store_true", help="evaluate the base model")
    _eval_options(p)
    p.add_argument("--max-new-tokens", type=_count, help="default: the task card's")
    p.add_argument("--max-attempts", type=_count, default=5, help="tries per example (default 5)")
    p.add_argument(
        "--chat",
        action="store_true",
        help="openai backend: send the prompt as a chat message (e.g. GPT-4)",
    )
    p.add_argument("--out", help="default: <data>/eval/<model>/<task>/<adapter or base>")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser(
        "eval-grid",
        help="evaluate base and adapter for many (model, task) pairs, resumable",
        epilog="example: llmbench eval-grid --models tiny --tasks gsm8k glue_sst2 "
        "--endpoint http://127.0.0.1:8080",
    )
    p.add_argument("--models", nargs="+", action="append", required=True)
    p.add_argument("--tasks", nargs="+", action="append", required=True)
    p.add_argument("--endpoint", required=True, type=_http_url)
    p.add_argument(
        "--adapter-id-format",
        default="{model}/{task}",
        help="adapter id per pair (default: {model}/{task}, the sweep's layout)",
    )
    p.add_argument("--skip-adapters", action="store_true", help="base models only")
    _eval_options(p, with_model=False)
    p.set_defaults(handler=cmd_eval_grid)

    p = sub.add_parser(
        "loadtest",
        help="latency and throughput across concurrent users and adapter counts",
        epilog="example: llmbench loadtest --endpoint http://127.0.0.1:8080 --users 1,4,16 "
        "--adapters 1,25 --adapter-ids a1,a2,...,a25 --duration 60",
    )
    p.add_argument("--endpoint", required=True)
    p.add_argument("--backend", choices=("lorax", "openai"), default="lorax")
    p.add_argument("--users", default="1,2,4,8,16,32", help="concurrent users per level")
    p.add_argument("--adapters", help="adapter counts to sweep, e.g. 0,1,25 (0: base model)")
    p.add_argument(
        "--adapter-ids",
        nargs="+",
        action="append",
        help="the adapters requests pick from (the first N for a count of N)",
    )
    p.add_argument("--duration", type=float, default=60.0, help="hold seconds per level")
    p.add_argument("--ramp", type=float, default=1.0, help="ramp-up seconds per level")
    p.add_argument("--input-words", default="90-110")
    p.add_argument("--max-new-tokens", default="90-110")
    p.add_argument("--think-time", type=float, default=1.0, help="pause between requests")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument(
        "--health-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for GET /health before giving up",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", help="openai backend: the base model's served name")
    _adapter_source_option(p)
    p.add_argument(
        "--allow-remote", action="store_true", help="allow an endpoint that is not on this machine"
    )
    p.add_argument("--out", default="runs/loadtest")
    p.set_defaults(handler=cmd_loadtest)

    p = sub.add_parser(
        "bakeoff",
        help="the study end to end: prepare, train, serve, evaluate, complexity, report",
        epilog="example: llmbench bakeoff --config my-bakeoff.yaml --runs runs",
    )
    p.add_argument(
        "--config",
        help="bake-off settings (default: the embedded default, smollm2-135m on the demo rows)",
    )
    p.add_argument("--runs", default="runs", help="work directory (default: runs)")
    p.set_defaults(handler=cmd_bakeoff)

    p = sub.add_parser(
        "serve",
        help="serve a base model and its LoRA adapters with LoRAX's REST API (vLLM's engine)",
        epilog="example: llmbench serve --base-model runs/models/tiny --adapters runs/train "
        "--max-loaded-adapters 8   (needs .venv-serve: bash scripts/setup-serve.sh)",
    )
    p.add_argument("--base-model", required=True, help="local model folder or hub id")
    p.add_argument(
        "--adapters",
        required=True,
        help="the adapters root: each adapter_id names a folder under it",
    )
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="default 8080; 0 picks a free port")
    p.add_argument(
        "--max-loaded-adapters",
        type=int,
        default=8,
        help="adapters kept loaded; the least recently used is evicted (default 8)",
    )
    p.add_argument(
        "--max-lora-rank", type=int, default=16, help="largest adapter rank (default 16)"
    )
    p.add_argument("--max-model-len", type=int, help="context length (default: the model's)")
    p.add_argument("--dtype", default="auto", help="engine dtype (default auto: bfloat16 on a CPU)")
    p.add_argument("--log", help="write the server's log to this file (default: the terminal)")
    p.set_defaults(handler=cmd_serve)

    from llmbench.analysis_cli import add_parsers
    from llmbench.app.cli import add_parser as add_app_parser
    from llmbench.report import add_parser as add_report_parser

    add_parsers(sub)
    add_report_parser(sub)
    add_app_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except LLMBenchError as exc:
        from llmbench.console import errors

        for problem in exc.problems:
            errors.print(f"error: {problem}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
