"""What one client may cost the server: the size of a request body and the time to send it.

`RequestLimits` wraps the whole ASGI app: a body longer than `max_body_bytes` is a 413 (refused
from its Content-Length before a byte is read, or as soon as a chunked body passes the limit),
and a body not finished within `read_timeout_s` is a 408. Either answer is LoRAX's one-line
`{"error", "error_type"}`. The body is read here once and handed on, so the route's own later
`receive()` calls see only the client leaving (which lets a non-streaming request be aborted).

`TimedHttpProtocol` is uvicorn's HTTP protocol with a deadline on the request line and headers:
a connection that opens and sends nothing, or sends half its headers and stalls (slowloris, a
half-open connection), is closed after `read_timeout_s`. uvicorn itself only times out idle
keep-alive connections.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

# LoRAX's (and text-generation-inference's) default payload limit, in bytes.
DEFAULT_MAX_BODY_BYTES = 2_000_000
DEFAULT_READ_TIMEOUT_S = 10.0
# LoRAX's default --max-concurrent-requests: requests admitted and not yet finished, base and
# adapter alike, counted from the moment a request arrives (see engine.ServingEngine.admit).
DEFAULT_MAX_CONCURRENT_REQUESTS = 128


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class RequestLimits:
    """ASGI middleware: a bounded body (413), read within a deadline (408)."""

    def __init__(self, app: Any, max_body_bytes: int, read_timeout_s: float):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, "payload_too_large", self._too_large(declared))
            return
        try:
            body = await asyncio.wait_for(
                _read_body(receive, self.max_body_bytes), self.read_timeout_s
            )
        except _TooLarge:
            await _refuse(send, 413, "payload_too_large", self._too_large(None))
            return
        except TimeoutError:
            message = f"the request body was not sent within {self.read_timeout_s:g} s"
            await _refuse(send, 408, "timeout", message, close=True)
            return
        except _ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self, declared: int | None) -> str:
        size = f"{declared:,} bytes" if declared is not None else "the request body"
        return f"{size} is over the limit of {self.max_body_bytes:,} bytes (--max-body-bytes)"


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive, limit: int) -> bytes:
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive):
    """A receive() whose first message is the whole body; later calls wait on the client's."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send, status: int, error_type: str, message: str, close: bool = False) -> None:
    """LoRAX's error answer. After a 413 the connection stays open: uvicorn then reads the rest
    of the body and drops it unkept, so the client, still sending, gets to read the answer (a
    close would reset its connection mid-send). A stalled body's 408 closes it."""
    payload = json.dumps({"error": message, "error_type": error_type}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def timed_http_protocol(read_timeout_s: float):
    """uvicorn's httptools protocol class with a deadline on each request's headers."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedHttpProtocol(HttpToolsProtocol):
        # Between requests uvicorn's keep-alive timeout applies (it closes an idle connection);
        # the deadline restarts when the next request's first byte arrives.
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._start_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._start_deadline()

        def on_headers_complete(self) -> None:
            self._cancel_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def _start_deadline(self) -> None:
            self._cancel_deadline()
            self._header_deadline = self.loop.call_later(read_timeout_s, self._headers_too_slow)

        def _cancel_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.cycle is None or self.cycle.response_complete:
                if not self.transport.is_closing():
                    self.transport.close()

    return TimedHttpProtocol
