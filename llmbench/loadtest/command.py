"""`llmbench loadtest`: latency and throughput across concurrent users and adapter counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import adapter_source_option, names, seconds
from llmbench.evaluate.clients import BACKENDS
from llmbench.workdir import Workdir


def configure(command: str, p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "example: llmbench loadtest --endpoint http://127.0.0.1:8080 --users 1,4,16 "
        "--adapters 1,25 --adapter-ids a1,a2,...,a25 --duration 60"
    )
    p.add_argument("--endpoint", required=True)
    p.add_argument("--backend", choices=BACKENDS, default="lorax")
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
    p.add_argument(
        "--timeout",
        type=seconds,
        default=120.0,
        help="seconds a request may take, from sending it to its last token (default 120)",
    )
    p.add_argument(
        "--health-timeout",
        type=seconds,
        default=120.0,
        help="seconds to wait for GET /health before giving up",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", help="openai backend: the base model's served name")
    adapter_source_option(p)
    p.add_argument(
        "--allow-remote", action="store_true", help="allow an endpoint that is not on this machine"
    )
    p.add_argument("--out", default=str(Workdir().loadtest), help="default: %(default)s")
    p.set_defaults(handler=cmd_loadtest)


def cmd_loadtest(args: argparse.Namespace) -> None:
    from llmbench.console import console, print_table
    from llmbench.loadtest.runner import (
        COLUMNS,
        LoadSettings,
        parse_counts,
        parse_range,
        run_loadtest,
    )

    adapter_ids = tuple(names(args.adapter_ids) or ())
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
    print_table(f"load test: {args.endpoint}", COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
    console.print(
        f"results in {args.out} (requests.json, summary.md, throughput.png, latency_p90.png)"
    )
