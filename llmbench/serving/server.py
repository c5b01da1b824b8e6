"""The LoRAX-compatible REST server: FastAPI routes over vLLM's engine, run by `llmbench serve`.

Runs in the serving environment (.venv-serve, Python 3.11) as
`python -m llmbench.serving.server --base-model M --adapters DIR` with the repository root on
PYTHONPATH; it imports only this subpackage from llmbench. Routes and shapes follow LoRAX's
OpenAPI description: /generate, /generate_stream (server-sent events, one token per event),
/ (what lorax-client posts to), /health, /info, /metrics, /v1/completions and
/v1/chat/completions (`model` names the adapter). Errors are LoRAX's {"error", "error_type"}.
Every request is admitted (or refused with 429) as it arrives, its body bounded in size and time
(limits.py), and a non-streaming request whose client leaves is aborted in the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from llmbench.serving import cpu_lora
from llmbench.serving.engine import Admission, RequestError, ServingEngine
from llmbench.serving.events import Finish, Output, Step, Token
from llmbench.serving.limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_READ_TIMEOUT_S,
    RequestLimits,
    timed_http_protocol,
)
from llmbench.serving.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    GenerateParameters,
    GenerateRequest,
    sampling_options,
)
from llmbench.serving.status import VERSION, add_status_routes
from llmbench.serving.structured import SchemaError, lorax_schema, openai_schema

# At import, so in each of vLLM's processes too: on a CPU vLLM spawns them, and a spawned process
# imports the module its parent ran (this one) before it runs vLLM's code.
if os.environ.get(cpu_lora.OFF_SWITCH) != "1":
    cpu_lora.install()
cpu_lora.use_every_core()  # before vLLM reads its settings; its processes inherit them

CHAT_MESSAGES = TypeAdapter(Annotated[list[ChatMessage], Field(min_length=1)])
# Printable ASCII but "%": what a header value may carry as it is; the rest is percent-encoded.
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def create_app(settings: argparse.Namespace) -> FastAPI:
    """The FastAPI app; vLLM's engine starts (and warms up) in its lifespan, before /health."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = ServingEngine.start(
            settings.base_model,
            Path(settings.adapters),
            settings.max_loaded_adapters,
            max_lora_rank=settings.max_lora_rank,
            max_model_len=settings.max_model_len,
            dtype=settings.dtype,
            max_concurrent_requests=settings.max_concurrent_requests,
        )
        await engine.warm_up()
        app.state.engine = engine
        try:
            yield
        finally:
            engine.shutdown()

    app = FastAPI(title="llmbench serve (LoRAX-compatible)", version=VERSION, lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(HTTPException, _http_error)
    _add_lorax_routes(app)
    _add_openai_routes(app)
    add_status_routes(app)
    return app


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()
    )
    _engine(request).fail("validation")
    return _error(422, "validation", f"Input validation error: {problems}")


async def _request_error(request: Request, error: RequestError) -> JSONResponse:
    if error.error_type != "generation":  # generation failures are counted where they happen
        _engine(request).fail(error.error_type)
    return _error(error.status, error.error_type, str(error))


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    """FastAPI's own refusals (a body it could not parse, an unknown route) in LoRAX's shape.
    A body nested deeper than Python's JSON parser goes (about 1,000 levels) is one of them."""
    message = str(error.detail)
    if isinstance(error.__cause__, RecursionError):
        message = "body: JSON nested too deeply to parse"
    error_type = {400: "validation", 404: "not_found"}.get(error.status_code, "http")
    return _error(error.status_code, error_type, message)


def _schema(make, *args) -> dict | None:
    """The request's JSON schema (structured.py), or its problem as a one-line 400."""
    try:
        return make(*args)
    except SchemaError as error:
        raise RequestError(400, "invalid_schema", str(error)) from None


def _engine(request: Request) -> ServingEngine:
    return request.app.state.engine


def _header_value(adapter_id: str | None) -> str:
    """An adapter name as a header value: any name a folder may have (non-Latin-1 letters,
    spaces, newlines) is percent-encoded UTF-8, never a failure after the generation."""
    return quote(adapter_id or "", safe=HEADER_SAFE, errors="backslashreplace")


async def _until_disconnected(request: Request) -> None:
    """Returns when the client has gone (its body was read before: see limits.RequestLimits)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _finish(events, request: Request, admission: Admission) -> Finish | None:
    """The Finish of a non-streaming generation, or None when its client left first (the
    generation is then cancelled, which aborts it in vLLM). Errors (a refused adapter, say)
    are raised as they come, before any answer is sent. The admission is released either way
    (the generation releases it too, but one cancelled before its first step never ran)."""
    try:
        finish = await _finish_or_abort(events, request)
    finally:
        admission.release()
    if finish is None:
        _engine(request).counters.abandoned += 1
    return finish


async def _finish_or_abort(events, request: Request) -> Finish | None:

    async def collect():
        event = None
        while not isinstance(event, Finish):
            event = await anext(events)
        return event

    collecting = asyncio.ensure_future(collect())
    watching = asyncio.ensure_future(_until_disconnected(request))
    try:
        await asyncio.wait({collecting, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
    if collecting.done():
        return collecting.result()
    collecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await collecting
    await events.aclose()
    return None


# ---- LoRAX: /generate, /generate_stream, / ----------------------------------------------------


def _add_lorax_routes(app: FastAPI) -> None:
    @app.post("/generate")
    async def generate(body: GenerateRequest, request: Request):
        return await _generate(request, body, as_list=False)

    @app.post("/generate_stream")
    async def generate_stream(body: GenerateRequest, request: Request):
        return await _generate_stream(_engine(request), body)

    @app.post("/")
    async def compat_generate(body: GenerateRequest, request: Request):
        # lorax-client posts every request here; `stream` chooses the answer's form.
        if body.stream:
            return await _generate_stream(_engine(request), body)
        return await _generate(request, body, as_list=True)


async def _admitted(engine: ServingEngine, handle):
    """`handle(admission)` with a place among the requests in flight (429 when none is left),
    taken before anything is awaited; given back here if `handle` fails, else by the
    generation it started."""
    admission = engine.admit()
    try:
        return await handle(admission)
    except BaseException:
        admission.release()
        raise


async def _start(engine: ServingEngine, body: GenerateRequest, *, stream: bool):
    """Admit, validate, then start generating. A stream's first event is awaited here, so that
    its errors come before the 200; a non-streaming answer's wait is `_finish`'s."""

    async def start(admission: Admission):
        return await _start_admitted(engine, body, stream, admission)

    return await _admitted(engine, start)


async def _start_admitted(engine: ServingEngine, body: GenerateRequest, stream: bool, admission):
    p: GenerateParameters = body.parameters
    best_of = p.best_of or 1
    if stream and best_of > 1:
        raise RequestError(
            422, "validation", "Input validation error: `best_of` != 1 is not supported when "
            "streaming tokens"
        )  # fmt: skip
    response_format = p.response_format.model_dump(by_alias=True) if p.response_format else None
    schema = _schema(lorax_schema, response_format, p.schema_)
    prompt = _lorax_prompt(engine, body)
    ids, max_new = await engine.prompt_ids(prompt, p.max_new_tokens, p.truncate)
    options = sampling_options(
        max_new_tokens=max_new,
        do_sample=p.do_sample,
        temperature=p.temperature,
        top_k=p.top_k,
        top_p=p.top_p,
        typical_p=p.typical_p,
        seed=p.seed,
        best_of=best_of,
        stop=p.stop,
        repetition_penalty=p.repetition_penalty,
        frequency_penalty=p.frequency_penalty,
        presence_penalty=p.presence_penalty,
        ignore_eos=p.ignore_eos_token,
    )
    if schema is not None:
        options["json_schema"] = schema
    events = engine.generate(
        ids,
        options,
        adapter_id=p.adapter_id,
        adapter_source=p.adapter_source,
        merged_adapters=p.merged_adapters,
        output=Output(
            stream=stream,
            # lorax-client requires a logprob in stream events; best_of ranks samples by them
            logprobs=stream or p.details or best_of > 1,
            prompt_logprobs=p.decoder_input_details and p.details,
            alternatives=p.alternatives(),
        ),
        admission=admission,
    )
    first = await anext(events) if stream else None
    return events, first, admission


def _lorax_prompt(engine: ServingEngine, body: GenerateRequest) -> str:
    """`inputs`; with apply_chat_template, as in LoRAX, `inputs` holds chat messages (a JSON
    list of {"role", "content"}) that the model's chat template turns into the prompt."""
    if not body.parameters.apply_chat_template:
        return body.inputs
    try:
        messages = CHAT_MESSAGES.validate_json(body.inputs)
    except ValidationError:
        raise RequestError(
            422, "validation", "Input validation error: inputs: with `apply_chat_template`, a "
            'JSON list of {"role", "content"} messages is expected'
        ) from None  # fmt: skip
    return _chat_prompt(engine, [m.model_dump() for m in messages])


async def _generate(request: Request, body: GenerateRequest, *, as_list: bool):
    events, _, admission = await _start(_engine(request), body, stream=False)
    event = await _finish(events, request, admission)
    if event is None:
        return Response(status_code=499)  # nobody reads it: nginx's "client closed request"
    p = body.parameters
    prefix = body.inputs if p.return_full_text else ""
    answer = {"generated_text": prefix + event.generated_text}
    if p.details:
        answer["details"] = _details_json(event, p, prefix)
    headers = _timing_headers(event) | {"x-adapter-id": _header_value(p.adapter_id)}
    return JSONResponse([answer] if as_list else answer, headers=headers)


def _details_json(event: Finish, p: GenerateParameters, prefix: str) -> dict:
    """LoRAX's details: the counts, the tokens (with their alternatives and TGI's top_tokens
    when asked) and, with best_of, the samples not chosen, each with its seed."""
    details = {
        "finish_reason": event.finish_reason,
        "prompt_tokens": event.prompt_tokens,
        "generated_tokens": event.generated_tokens,
        "seed": event.seed,
        "prefill": [_prefill_json(t) for t in event.prefill],
        "tokens": [_token_json(t, p.return_k_alternatives) for t in event.tokens],
    }
    if p.top_n_tokens:
        details["top_tokens"] = [_top_tokens_json(t, p.top_n_tokens) for t in event.tokens]
    if event.best_of_sequences:
        details["best_of_sequences"] = [
            {
                "generated_text": prefix + other.generated_text,
                "finish_reason": other.finish_reason,
                "generated_tokens": other.generated_tokens,
                "seed": other.seed,
                "prefill": details["prefill"],
                "tokens": [_token_json(t, p.return_k_alternatives) for t in other.tokens],
            }
            for other in event.best_of_sequences
        ]
    return details


async def _generate_stream(engine: ServingEngine, body: GenerateRequest):
    events, first, _ = await _start(engine, body, stream=True)
    p = body.parameters
    prefix = body.inputs if p.return_full_text else ""

    async def sse() -> AsyncIterator[str]:
        pending: Step | None = None
        try:
            async for event in _chain(first, events):
                if isinstance(event, Step):
                    if pending is not None:
                        yield _sse(_stream_event(pending.token, p, None, None))
                    pending = event
                    continue
                # The last token's event carries the whole text and the details, as LoRAX's does.
                last = pending.token if pending else Token(0, "", 0.0, True)
                details = {
                    "finish_reason": event.finish_reason,
                    "prompt_tokens": event.prompt_tokens,
                    "generated_tokens": event.generated_tokens,
                    "seed": event.seed,
                }
                text = prefix + event.generated_text
                yield _sse(_stream_event(last, p, text, details if p.details else None))
        except RequestError as error:
            yield _sse({"error": str(error), "error_type": error.error_type})

    headers = {"x-adapter-id": _header_value(p.adapter_id), "x-accel-buffering": "no"}
    return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)


async def _chain(first, events):
    yield first
    async for event in events:
        yield event


def _sse(payload: dict) -> str:
    return f"data:{json.dumps(payload)}\n\n"


def _stream_event(token: Token, p: GenerateParameters, text: str | None, details) -> dict:
    event = {
        "token": _token_json(token, p.return_k_alternatives),
        "generated_text": text,
        "details": details,
    }
    if p.top_n_tokens:
        event["top_tokens"] = _top_tokens_json(token, p.top_n_tokens)
    return event


def _token_json(token: Token, alternatives: int | None = None) -> dict:
    """LoRAX's Token; with `alternatives` (return_k_alternatives), its alternative_tokens."""
    # lorax-client requires a float logprob; vLLM gives one for every sampled token.
    logprob = token.logprob if token.logprob is not None else 0.0
    answer = {"id": token.id, "text": token.text, "logprob": logprob, "special": token.special}
    if alternatives:
        answer["alternative_tokens"] = [
            {"id": a.id, "text": a.text, "logprob": a.logprob}
            for a in token.alternatives[:alternatives]
        ]
    return answer


def _top_tokens_json(token: Token, n: int) -> list[dict]:
    """TGI's top_tokens for one position: the n most likely, each a Token."""
    return [_token_json(a) for a in token.alternatives[:n]]


def _prefill_json(token: Token) -> dict:
    return {"id": token.id, "text": token.text, "logprob": token.logprob}


def _timing_headers(finish: Finish) -> dict[str, str]:
    """LoRAX's timing headers, in milliseconds, and the token counts."""
    per_token = finish.inference_time / finish.generated_tokens if finish.generated_tokens else 0.0
    return {
        "x-time-to-first-token": _ms(finish.time_to_first_token),
        "x-time-per-output-token": _ms(per_token),
        "x-queue-time": _ms(finish.queue_time),
        "x-inference-time": _ms(finish.inference_time),
        "x-total-time": _ms(finish.total_time),
        "x-prompt-tokens": str(finish.prompt_tokens),
        "x-generated-tokens": str(finish.generated_tokens),
    }


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


# ---- OpenAI-compatible: /v1/completions, /v1/chat/completions --------------------------------


def _add_openai_routes(app: FastAPI) -> None:
    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        async def answer(admission: Admission):
            return await _openai(request, body, body.prompt, chat=False, admission=admission)

        return await _admitted(_engine(request), answer)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        async def answer(admission: Admission):
            prompt = _chat_prompt(_engine(request), [m.model_dump() for m in body.messages])
            return await _openai(request, body, prompt, chat=True, admission=admission)

        return await _admitted(_engine(request), answer)


def _chat_prompt(engine: ServingEngine, messages: list[dict]) -> str:
    """The model's chat template, or plain "role: content" lines when it has none."""
    template = getattr(engine.tokenizer, "chat_template", None)
    if template:
        return engine.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nassistant:"


async def _openai(request: Request, body, prompt: str, *, chat: bool, admission):
    engine = _engine(request)
    try:
        stop = body.stop_list()
    except ValueError as error:
        raise RequestError(422, "validation", f"Input validation error: stop: {error}") from None
    response_format = (
        body.response_format.model_dump(by_alias=True) if body.response_format else None
    )
    schema = _schema(openai_schema, response_format)
    ids, max_new = await engine.prompt_ids(prompt, body.max_tokens)
    options = sampling_options(
        max_new_tokens=max_new,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=stop,
        ignore_eos=body.ignore_eos,
    )
    if schema is not None:
        options["json_schema"] = schema
    adapter_id = None if engine.is_base(body.model) else body.model
    events = engine.generate(
        ids,
        options,
        adapter_id=adapter_id,
        adapter_source=body.adapter_source,
        output=Output(stream=body.stream, include_stop=False),
        admission=admission,
    )
    meta = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": body.model or engine.model_name,
    }
    if body.stream:
        first = await anext(events)
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _openai_stream(_chain(first, events), meta, chat, usage),
            media_type="text/event-stream",
        )
    event = await _finish(events, request, admission)
    if event is None:
        return Response(status_code=499)  # nobody reads it: nginx's "client closed request"
    finish = "length" if event.finish_reason == "length" else "stop"
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": event.generated_text},
            "finish_reason": finish,
        }
    else:
        choice = {
            "index": 0,
            "text": event.generated_text,
            "logprobs": None,
            "finish_reason": finish,
        }
    answer = meta | {
        "object": "chat.completion" if chat else "text_completion",
        "choices": [choice],
        "usage": _usage(event),
    }
    headers = _timing_headers(event) | {"x-adapter-id": _header_value(adapter_id)}
    return JSONResponse(answer, headers=headers)


def _usage(finish: Finish) -> dict:
    return {
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.generated_tokens,
        "total_tokens": finish.prompt_tokens + finish.generated_tokens,
    }


async def _openai_stream(
    events, meta: dict, chat: bool, include_usage: bool = False
) -> AsyncIterator[str]:
    kind = "chat.completion.chunk" if chat else "text_completion"
    try:
        async for event in events:
            if isinstance(event, Step):
                text, finish = event.token.text, None
            else:
                text, finish = "", "length" if event.finish_reason == "length" else "stop"
                if include_usage:  # OpenAI's shape: a last chunk with no choices, only usage
                    usage = _usage(event)
            if chat:
                choice = {
                    "index": 0,
                    "delta": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            yield f"data: {json.dumps(meta | {'object': kind, 'choices': [choice]})}\n\n"
        if include_usage:
            yield f"data: {json.dumps(meta | {'object': kind, 'choices': [], 'usage': usage})}\n\n"
    except RequestError as error:
        yield f"data: {json.dumps({'error': str(error), 'error_type': error.error_type})}\n\n"
    yield "data: [DONE]\n\n"


# ---- entry point ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-model", required=True, help="local folder or hub id of the base model"
    )
    parser.add_argument(
        "--adapters", required=True, help="folder whose subfolders are the adapters"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--max-loaded-adapters",
        type=int,
        default=8,
        help="adapters kept loaded; the least recently used beyond it is evicted",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        help="requests admitted at once, base and adapters alike; beyond it 429 (LoRAX's flag)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body; beyond it 413 (LoRAX's payload limit)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=DEFAULT_READ_TIMEOUT_S,
        help="seconds a client has to send a request's headers, and again its body",
    )
    parser.add_argument("--max-lora-rank", type=int, default=16)
    parser.add_argument(
        "--max-model-len", type=int, default=None, help="context length (default: the model's)"
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        help="weights' dtype in the engine (auto: bfloat16 on a CPU, float16 on a GPU)",
    )
    args = parser.parse_args(argv)
    for flag in ("max_loaded_adapters", "max_concurrent_requests", "max_body_bytes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.read_timeout <= 0:
        parser.error("--read-timeout must be above 0 seconds")
    if not Path(args.adapters).is_dir():
        parser.error(f"--adapters {args.adapters}: not a folder")
    return args


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    settings = parse_args(argv)
    app = RequestLimits(create_app(settings), settings.max_body_bytes, settings.read_timeout)
    with _profiled(os.environ.get(PROFILE_ENV)):
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http=timed_http_protocol(settings.read_timeout),
        )


# Set to a file name, the server profiles its event loop's thread (cProfile) and writes the
# statistics there when it stops; bench/bench_serve.py --profile uses it.
PROFILE_ENV = "LLMBENCH_SERVE_PROFILE"


@contextlib.contextmanager
def _profiled(path: str | None):
    if not path:
        yield
        return
    import cProfile
    import signal

    def stop(signum, frame):
        raise SystemExit(0)

    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default handler
    # the process would die there, before the statistics are written.
    previous = signal.signal(signal.SIGTERM, stop)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
