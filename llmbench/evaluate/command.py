"""`llmbench eval` (one model on one task) and `eval-grid` (base and adapter, many pairs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import (
    adapter_source_option,
    count,
    datasets_option,
    http_url,
    names,
    runs_option,
    seconds,
    share,
)
from llmbench.errors import LLMBenchError
from llmbench.workdir import ADAPTER_ID


def seed(text: str) -> int:
    """argparse type: an integer >= 0 (a sample's seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer seed >= 0, got {text!r}")
    return value


def configure(command: str, p: argparse.ArgumentParser) -> None:
    if command == "eval-grid":
        p.epilog = (
            "example: llmbench eval-grid --models tiny --tasks gsm8k glue_sst2 "
            "--endpoint http://127.0.0.1:8080"
        )
        p.add_argument("--models", nargs="+", action="append", required=True)
        p.add_argument("--tasks", nargs="+", action="append", required=True)
        p.add_argument("--endpoint", required=True, type=http_url)
        p.add_argument(
            "--adapter-id-format",
            default=ADAPTER_ID,
            help=f"adapter id per pair (default: {ADAPTER_ID}, the sweep's layout)",
        )
        p.add_argument("--skip-adapters", action="store_true", help="base models only")
        _eval_options(p, with_model=False)
        p.set_defaults(handler=cmd_eval_grid)
        return
    p.epilog = (
        "example: llmbench eval --task gsm8k --endpoint http://127.0.0.1:8080 "
        "--model tiny --adapter-id tiny/gsm8k"
    )
    p.add_argument("--task", required=True)
    p.add_argument(
        "--endpoint",
        required=True,
        type=http_url,
        help="a LoRAX or OpenAI-compatible server URL (http or https)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--adapter-id", help="the adapter to evaluate")
    who.add_argument("--base", action="store_true", help="evaluate the base model")
    _eval_options(p)
    p.add_argument("--max-new-tokens", type=count, help="default: the task card's")
    p.add_argument("--max-attempts", type=count, default=5, help="tries per example (default 5)")
    p.add_argument(
        "--chat",
        action="store_true",
        help="openai backend: send the prompt as a chat message (e.g. GPT-4)",
    )
    p.add_argument("--out", help="default: <runs>/eval/<model>/<task>/<adapter or base>")
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> None:
    from llmbench.evaluate.harness import EvalSettings, check_failed_share, evaluate

    _allow_weak_sandbox(args)

    settings = EvalSettings(
        task=args.task,
        endpoint=args.endpoint,
        model=args.model,
        adapter_id=None if args.base else args.adapter_id,
        backend=args.backend,
        limit=args.limit,
        sample=args.sample,
        seed=args.seed,
        concurrency=args.concurrency,
        max_new_tokens=args.max_new_tokens,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        chat=args.chat,
        adapter_source=args.adapter_source,
        constrained=args.constrained,
    )
    out = Path(args.out) if args.out else None
    result = evaluate(settings, args.runs, out, **_resume_options(args), datasets_dir=args.datasets)
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
                (r.settings.adapter_id or "(base)")
                + (" constrained" if r.settings.constrained else ""),
                r.metric,
                r.n,
                r.n_failed,
                f"{r.score:.4f}",
                r.out_dir,
            )
            for r in results
        ],
    )
    for note in dict.fromkeys(note for r in results for note in r.notes):  # base, adapter alike
        console.print(f"note: {note}", markup=False)
    for r in results:
        if r.unscorable:
            console.print(
                f"{r.settings.task}: {r.unscorable} of {r.n + r.unscorable} "
                f"{r.settings.adapter_id or 'base'} example(s) have no reference; left out",
                markup=False,
            )
        if r.failed_ids:
            shown = ", ".join(map(str, r.failed_ids[:20]))
            more = " …" if len(r.failed_ids) > 20 else ""
            console.print(
                f"{r.settings.task} {r.settings.adapter_id or 'base'}: failed example "
                f"ids (scored 0): {shown}{more}"
            )


def cmd_eval_grid(args: argparse.Namespace) -> None:
    from llmbench.evaluate.harness import EvalSettings, check_failed_share, evaluate

    _allow_weak_sandbox(args)

    results = []
    for model in names(args.models):
        for task in names(args.tasks):
            adapter = args.adapter_id_format.format(model=model, task=task)
            for adapter_id in [None] if args.skip_adapters else [None, adapter]:
                settings = EvalSettings(
                    task=task,
                    endpoint=args.endpoint,
                    model=model,
                    adapter_id=adapter_id,
                    backend=args.backend,
                    limit=args.limit,
                    sample=args.sample,
                    seed=args.seed,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                    adapter_source=args.adapter_source,
                    constrained=args.constrained,
                )
                results.append(
                    evaluate(
                        settings, args.runs, **_resume_options(args), datasets_dir=args.datasets
                    )
                )
    _print_eval(results)
    problems = []
    for result in results:
        try:
            check_failed_share(result, args.max_failed_share)
        except LLMBenchError as exc:
            problems += exc.problems
    if problems:
        raise LLMBenchError(*problems)


def _allow_weak_sandbox(args: argparse.Namespace) -> None:
    if args.unsafe_weak_sandbox:
        from llmbench.sandbox import allow_weak_isolation

        allow_weak_isolation()


def _eval_options(p: argparse.ArgumentParser, with_model: bool = True) -> None:
    from llmbench.evaluate.harness import DEFAULT_MAX_FAILED_SHARE  # a light module

    if with_model:
        p.add_argument(
            "--model",
            required=True,
            help="the base model (registry name: its prompt markup is used; other "
            "names, e.g. gpt-4, get the plain completion prompt)",
        )
    p.add_argument("--backend", choices=("lorax", "openai"), default="lorax")
    rows = p.add_mutually_exclusive_group()
    rows.add_argument(
        "--sample",
        type=count,
        help="score a seeded random sample of N eval examples, stratified by label for a "
        "classification task (the whole split when it is smaller; default: the whole split)",
    )
    rows.add_argument(
        "--limit", type=count, help="only the first N eval examples (a quick look, not a score)"
    )
    p.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="the sample's seed (default 0): the same seed and size give the same rows, for "
        "the base model and every adapter",
    )
    p.add_argument("--concurrency", type=count, default=8, help="requests in flight (default 8)")
    p.add_argument(
        "--constrained",
        action="store_true",
        help="restrict every answer to the task card's labels with the server's structured "
        "output (a classification task's; a task without labels is refused), into "
        "constrained/ inside the free run's folder (see docs/evaluation.md)",
    )
    p.add_argument("--timeout", type=seconds, default=60.0, help="seconds per request (default 60)")
    runs_option(p)
    datasets_option(p)
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
        type=share,
        default=DEFAULT_MAX_FAILED_SHARE,
        help=f"exit 2 when more than this share of examples failed (default "
        f"{DEFAULT_MAX_FAILED_SHARE:g}; 1: never)",
    )
    adapter_source_option(p)
