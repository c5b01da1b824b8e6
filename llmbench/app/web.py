"""The LoRA Land web service: the page, a small JSON API over the Catalog, and the streamed run.

Routes: `/` the page; `/static/*` its script and style (nothing loads from elsewhere);
`GET /api/catalog`; `GET /api/tasks/{task}`; `POST /api/prompt` (the realized prompt and its
token count); `POST /api/run` (both answers as server-sent events).

Guards: a request whose `Host` is not one of the allowed names gets a 400 (a page on another
site cannot reach this one through DNS rebinding); a body over MAX_BODY_BYTES gets a 413 before
it is read whole, and a prompt field over MAX_FIELD_CHARS a 422.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.middleware.trustedhost import TrustedHostMiddleware

from llmbench.app.catalog import Catalog
from llmbench.app.stream import side_by_side
from llmbench.errors import LLMBenchError

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Everything from this origin, nothing inline, nothing elsewhere: a model's answer that slipped
# into the page as HTML still could not run or fetch anything.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# A prompt field holds what a person types or an example row: far below these. The realized
# prompt is sent twice (adapter and base), so a field's size is paid twice at the endpoint.
MAX_FIELD_CHARS = 32_768
MAX_BODY_BYTES = 256 * 1024
# The names this machine answers to; `llmbench app --allowed-host NAME` adds more (a proxy's).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class PromptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Annotated[str, StringConstraints(max_length=256)]
    fields: dict[
        Annotated[str, StringConstraints(max_length=256)],
        Annotated[str, StringConstraints(max_length=MAX_FIELD_CHARS)],
    ]


class BodyLimit:
    """ASGI middleware: a 413 for a body over `limit` bytes, declared or streamed, before the
    application reads it whole."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._too_large(send)
        seen, answered = 0, False

        async def limited():
            nonlocal seen, answered
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not answered:  # streamed past the limit: answer, hang up
                answered = True
                await self._too_large(send)
                return {"type": "http.disconnect"}
            return message

        async def unless_answered(message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, limited, unless_answered)
        except Exception:
            if not answered:  # the application's own failure, not the hang-up's
                raise

    async def _too_large(self, send) -> None:
        body = json.dumps({"error": f"request body over {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(catalog: Catalog, allowed_hosts: tuple[str, ...] = ()) -> FastAPI:
    """The web service for one catalog (one endpoint, one base model, its adapters), answering
    requests addressed to this machine or to one of `allowed_hosts`."""
    app = FastAPI(title="LoRA Land", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimit)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOCAL_HOSTS, *allowed_hosts])

    @app.middleware("http")
    async def secure(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(LLMBenchError)
    async def refused(request: Request, exc: LLMBenchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/api/catalog")
    def summary() -> dict:
        return catalog.summary()

    @app.get("/api/tasks/{task}")
    def details(task: str) -> dict:
        return catalog.details(task)

    @app.post("/api/prompt")
    def prompt(body: PromptRequest) -> dict:
        realized = catalog.realized_prompt(body.task, body.fields)
        return {
            "realized_prompt": realized,
            "tokens": catalog.counter.count(realized),
            "tokenizer": catalog.counter.name,
        }

    @app.post("/api/run")
    async def run(body: PromptRequest) -> StreamingResponse:
        realized = catalog.realized_prompt(body.task, body.fields)
        card = catalog.card(body.task)
        events = side_by_side(
            catalog.endpoint, realized, catalog.adapters[body.task], card.max_new_tokens
        )
        return StreamingResponse(
            _server_sent(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app


async def _server_sent(events):
    async for event in events:
        yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    yield 'data: {"type": "end"}\n\n'
