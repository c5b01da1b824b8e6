"""/health, /info and /metrics: the server's state, in LoRAX's shapes and Prometheus text."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from llmbench.serving.engine import ServingEngine
from llmbench.serving.protocol import MAX_BEST_OF, MAX_STOP_SEQUENCES

VERSION = "0.1.0"


def add_status_routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(request: Request):
        if await request.app.state.engine.healthy():
            return Response(status_code=200)
        return JSONResponse(
            {"error": "the engine is not running", "error_type": "unhealthy"}, status_code=503
        )

    @app.get("/info")
    async def info(request: Request):
        return model_info(request.app.state.engine)

    @app.get("/metrics")
    async def metrics(request: Request):
        text = prometheus_text(request.app.state.engine)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def model_info(engine: ServingEngine) -> dict:
    """LoRAX's Info object, plus the adapters loaded now and how many may be.

    `model_id` is the base model's name (a local folder's name, not its path). The loaded
    adapters' names are shown on purpose: the server has no notion of users, and anyone who can
    reach it may name any adapter under the root (see docs/serving.md, "Who may see what")."""
    return {
        "model_id": engine.model_name,
        "model_sha": None,
        "model_dtype": engine.dtype,
        "model_device_type": _device_type(),
        "model_pipeline_tag": "lorax",
        "max_concurrent_requests": engine.max_concurrent_requests,
        "max_best_of": MAX_BEST_OF,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
        "max_input_length": engine.max_model_len - 1,
        "max_total_tokens": engine.max_model_len,
        "waiting_served_ratio": 0.0,
        "max_batch_total_tokens": engine.max_model_len,
        "max_waiting_tokens": 0,
        "validation_workers": 1,
        "version": f"llmbench-serve {VERSION}",
        "sha": None,
        "docker_label": None,
        "max_loaded_adapters": engine.adapters.capacity,
        "loaded_adapters": list(engine.adapters.loaded),
    }


def _device_type() -> str:
    try:
        from vllm.platforms import current_platform

        return str(current_platform.device_type)
    except Exception:  # reporting only; never fail /info over it
        return "unknown"


def prometheus_text(engine: ServingEngine) -> str:
    """Prometheus text exposition of the counters (LoRAX's metric names where it has them)."""
    c, adapters = engine.counters, engine.adapters
    table = [
        ("lorax_request_count", "counter", "Requests received", c.requests),
        ("lorax_request_failure", "counter", "Requests refused or failed, by error type",
         _labelled("err", c.failures)),
        ("lorax_request_duration_seconds_sum", "counter", "Seconds spent on requests",
         round(c.request_seconds, 6)),
        ("lorax_request_queue_duration_seconds_sum", "counter", "Seconds requests waited",
         round(c.queue_seconds, 6)),
        ("lorax_request_generated_tokens_sum", "counter", "Tokens generated", c.generated_tokens),
        ("lorax_request_input_length_sum", "counter", "Prompt tokens", c.prompt_tokens),
        ("llmbench_truncated_prompts_total", "counter", "Prompts cut by `truncate`",
         c.truncated_prompts),
        ("llmbench_requests_in_flight", "gauge", "Requests admitted and not finished",
         c.in_flight),
        ("llmbench_requests_abandoned_total", "counter",
         "Non-streaming requests whose client left first (their generation aborted)", c.abandoned),
        ("llmbench_requests_by_adapter_total", "counter", 'Requests per adapter ("" is the base)',
         _labelled("adapter_id", c.by_adapter)),
        ("llmbench_adapters_loaded", "gauge", "Adapters loaded now", len(adapters.loaded)),
        ("llmbench_adapter_loads_total", "counter", "Adapter loads", adapters.loads),
        ("llmbench_adapter_evictions_total", "counter", "Adapters evicted (least recently used)",
         adapters.evictions),
    ]  # fmt: skip
    lines = []
    for name, kind, help_text, samples in table:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples if isinstance(samples, list) else [("", samples)]:
            lines.append(f"{name}{labels} {value}")
    return "\n".join(lines) + "\n"


def _labelled(label: str, counts: dict[str, int]) -> list[tuple[str, int]]:
    escaped = {
        k.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"): v
        for k, v in counts.items()
    }
    return [(f'{{{label}="{k}"}}', v) for k, v in sorted(escaped.items())] or [("", 0)]
