"""The LoRA Land web service: the page, a small JSON API over the Catalog, and the streamed run.

Routes: `/` the page; `/static/*` its script and style (nothing loads from elsewhere);
`GET /api/catalog`; `GET /api/tasks/{task}`; `POST /api/prompt` (the realized prompt and its
token count); `POST /api/run` (both answers as server-sent events).
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

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


class PromptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str
    fields: dict[str, str]


def create_app(catalog: Catalog) -> FastAPI:
    """The web service for one catalog (one endpoint, one base model, its adapters)."""
    app = FastAPI(title="LoRA Land", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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
