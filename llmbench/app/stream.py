"""One prompt, two answers at once: the adapter's and the base model's, streamed as events.

Both answers come from the endpoint through llmbench's client layer (`evaluate.clients`, the
lorax backend: `/generate_stream`, greedy, with LLMBENCH_API_TOKEN's bearer token when it is
set), as eval and loadtest talk to it. Events are plain dicts: `{"panel", "type": "token",
"text"}` per token, then one `{"type": "done", latency...}` or `{"type": "error", "message"}` per
panel, so a server that is down, refuses the adapter, stops mid-answer or never answers shows as
a message, never as silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llmbench.evaluate.clients import Refused, Rejected, Request, Token, Transient, make_backend

ANSWER_TIMEOUT_S = 120.0  # seconds one answer may take, from sending it to its last token
ADAPTER, BASE = "adapter", "base"


def describe_failure(exc: Exception) -> str:
    """A one-line reason for the page: unreachable, cut off, too slow, or the server's refusal."""
    if isinstance(exc, Transient):
        return str(exc)  # the client layer's reason already reads as one
    if isinstance(exc, Rejected | Refused):
        return f"the server refused: {exc}"
    return f"the request failed: {type(exc).__name__}: {exc}"


async def side_by_side(
    endpoint: str,
    prompt: str,
    adapter_id: str,
    max_new_tokens: int,
    timeout: float = ANSWER_TIMEOUT_S,
    backend: str = "lorax",
) -> AsyncIterator[dict]:
    """Both answers at once, their events interleaved as they arrive, each tagged with its panel.

    Leaving early (the page went away) cancels both requests.
    """
    client = make_backend(backend, endpoint, timeout)
    queue: asyncio.Queue = asyncio.Queue()

    async def answer(panel: str, adapter: str | None) -> None:
        def show(token: Token) -> None:
            if not token.special:
                queue.put_nowait({"panel": panel, "type": "token", "text": token.text})

        try:
            done = await client.stream(Request(prompt, max_new_tokens, adapter), show)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong is shown in the panel
            queue.put_nowait({"panel": panel, "type": "error", "message": describe_failure(exc)})
        else:
            queue.put_nowait(
                {
                    "panel": panel,
                    "type": "done",
                    "first_token_s": round(done.first_token_s or 0.0, 3),
                    "total_s": round(done.total_s, 3),
                    "tokens": done.tokens,
                    "finish_reason": done.finish_reason,
                }
            )
        finally:
            queue.put_nowait(None)

    workers = [
        asyncio.create_task(answer(ADAPTER, adapter_id)),
        asyncio.create_task(answer(BASE, None)),
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
        await asyncio.gather(*workers, return_exceptions=True)
        await client.close()
