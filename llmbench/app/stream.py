"""One prompt, two answers at once: the adapter's and the base model's, streamed as events.

Each answer comes from the endpoint through lorax-client's AsyncClient (`/generate_stream`).
Events are plain dicts: `{"panel", "type": "token", "text"}` per token, then one
`{"type": "done", latency...}` or `{"type": "error", "message"}` per panel, so a server that is
down, refuses the adapter or stops mid-answer shows as a message, never as silence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

CLIENT_TIMEOUT_MINUTES = 2  # lorax-client counts its timeout in minutes
ADAPTER, BASE = "adapter", "base"


async def answer_events(
    endpoint: str, prompt: str, adapter_id: str | None, max_new_tokens: int
) -> AsyncIterator[dict]:
    """One model's answer as token events, then `done` with its latency, or an `error`."""
    from lorax import AsyncClient

    client = AsyncClient(endpoint, timeout=CLIENT_TIMEOUT_MINUTES)
    start = time.perf_counter()
    first_token_s, tokens, finished = None, 0, None
    try:
        async for response in client.generate_stream(
            prompt, adapter_id=adapter_id, max_new_tokens=max_new_tokens
        ):
            if first_token_s is None:
                first_token_s = time.perf_counter() - start
            tokens += 1
            if not response.token.special:
                yield {"type": "token", "text": response.token.text}
            if response.generated_text is not None:
                finished = response
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is shown in the panel
        yield {"type": "error", "message": describe_failure(exc, endpoint)}
        return
    if finished is None:
        yield {
            "type": "error",
            "message": "the answer stopped before it was complete: the server closed the "
            "stream (did it stop?)",
        }
        return
    reason = getattr(finished.details, "finish_reason", None)
    yield {
        "type": "done",
        "first_token_s": round(first_token_s, 3),
        "total_s": round(time.perf_counter() - start, 3),
        "tokens": tokens,
        "finish_reason": str(getattr(reason, "value", reason) or ""),
    }


def describe_failure(exc: Exception, endpoint: str) -> str:
    """A one-line reason for the page: unreachable, cut off, refused, or the server's message."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot reach the endpoint {endpoint}: is the server running?"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the server closed the connection mid-answer (did it stop?)"
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer from {endpoint} within {CLIENT_TIMEOUT_MINUTES} minutes"
    if isinstance(exc, aiohttp.ClientError):
        return f"the connection to {endpoint} failed: {type(exc).__name__}: {exc}"
    return f"the server refused: {type(exc).__name__}: {exc}"


async def side_by_side(
    endpoint: str, prompt: str, adapter_id: str, max_new_tokens: int
) -> AsyncIterator[dict]:
    """Both answers at once, their events interleaved as they arrive, each tagged with its panel.

    Leaving early (the page went away) cancels both requests.
    """
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(panel: str, adapter: str | None) -> None:
        try:
            async for event in answer_events(endpoint, prompt, adapter, max_new_tokens):
                await queue.put({"panel": panel, **event})
        finally:
            await queue.put(None)

    workers = [
        asyncio.create_task(pump(ADAPTER, adapter_id)),
        asyncio.create_task(pump(BASE, None)),
    ]
    try:
        running = len(workers)
        while running:
            event = await queue.get()
            if event is None:
                running -= 1
            else:
                yield event
    finally:
        for worker in workers:
            worker.cancel()
