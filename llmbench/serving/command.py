"""`llmbench serve`: a base model and its LoRA adapters behind LoRAX's REST API (vLLM's engine)."""

from __future__ import annotations

import argparse


def configure(command: str, p: argparse.ArgumentParser) -> None:
    from llmbench.serving.limits import (
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_CONCURRENT_REQUESTS,
        DEFAULT_READ_TIMEOUT_S,
    )

    p.epilog = (
        "example: llmbench serve --base-model runs/models/tiny --adapters runs/train "
        "--max-loaded-adapters 8   (needs .venv-serve: bash scripts/setup-serve.sh)"
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
    p.add_argument(
        "--dtype",
        default="auto",
        help="engine dtype (default auto: float32 on a CPU, see docs/serving.md)",
    )
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        help="requests admitted at once, base and adapters alike; beyond it 429 (default "
        f"{DEFAULT_MAX_CONCURRENT_REQUESTS})",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body; beyond it 413 (default {DEFAULT_MAX_BODY_BYTES:,}, LoRAX's)",
    )
    p.add_argument(
        "--read-timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT_S,
        help="seconds a client has to send its headers, and again its body (default "
        f"{DEFAULT_READ_TIMEOUT_S:g})",
    )
    p.add_argument("--log", help="write the server's log to this file (default: the terminal)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> None:
    from llmbench.serving.launch import serve

    extra = ["--max-lora-rank", str(args.max_lora_rank), "--dtype", args.dtype]
    extra += ["--max-concurrent-requests", str(args.max_concurrent_requests)]
    extra += [
        "--max-body-bytes",
        str(args.max_body_bytes),
        "--read-timeout",
        str(args.read_timeout),
    ]
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
