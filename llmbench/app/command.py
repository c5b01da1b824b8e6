"""`llmbench app`: serve the LoRA Land page for an endpoint, its base model and adapters."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmbench.arguments import datasets_option


def cmd_app(args: argparse.Namespace) -> None:
    import uvicorn

    from llmbench.app.catalog import build_catalog
    from llmbench.app.web import create_app
    from llmbench.console import console

    catalog = build_catalog(
        args.endpoint,
        args.base_model,
        adapters_dir=Path(args.adapters) if args.adapters else None,
        adapter_map=Path(args.adapter_map) if args.adapter_map else None,
        results=args.runs,
        datasets_dir=args.datasets,
    )
    console.print(
        f"LoRA Land: {len(catalog.adapters)} adapter(s) on {catalog.base.name} via "
        f"{catalog.endpoint}; open http://{args.host}:{args.port}/  (Ctrl-C stops it)"
    )
    hosts = tuple(args.allowed_host or ())
    if args.host not in ("0.0.0.0", "::"):  # noqa: S104 - a bind address, compared
        hosts += (args.host,)
    app = create_app(catalog, allowed_hosts=hosts)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def configure(command: str, p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "example: llmbench app --endpoint http://127.0.0.1:8080 --base-model tiny "
        "--adapters runs/train --runs runs"
    )
    p.add_argument("--endpoint", required=True, help="the LoRAX-compatible server's URL")
    p.add_argument(
        "--base-model",
        required=True,
        help="the served base model: a registry name (its prompt markup), its hub id, or a "
        "local model folder (its tokenizer then counts tokens exactly)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--adapters",
        help="the adapters root the server serves: <task>/ folders, or <model>/<task>/ as "
        "`llmbench train` writes runs/train",
    )
    which.add_argument("--adapter-map", help="a YAML or JSON file: task -> adapter id")
    p.add_argument(
        "--runs",
        type=Path,
        help="work directory with `llmbench eval` scores and prepared data (default: the "
        "study's scores, examples from each task's fixture)",
    )
    datasets_option(p)
    p.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=7860, help="default: 7860")
    p.add_argument(
        "--allowed-host",
        action="append",
        help="a host name the page may be reached by besides this machine's (localhost, "
        "127.0.0.1, ::1, --host); repeat for more; requests naming another get a 400",
    )
    p.set_defaults(handler=cmd_app)
