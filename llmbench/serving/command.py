"""`llmbench serve`: a base model and its LoRA adapters behind LoRAX's REST API (vLLM's engine)."""

from __future__ import annotations

import argparse


def configure(command: str, p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--dtype", default="auto", help="engine dtype (default auto: bfloat16 on a CPU)")
    p.add_argument("--log", help="write the server's log to this file (default: the terminal)")
    p.set_defaults(handler=cmd_serve)


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
