"""An HTTP proxy on loopback that forwards to a real server and injects faults.

Per request, drawn from a seeded stream: answer 503 with an HTML body, stall past the client's
timeout, or cut the connection half-way through the response body; otherwise forward as is.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

from aiohttp import ClientSession, ClientTimeout, web


class FaultyProxy:
    def __init__(
        self,
        upstream: str,
        *,
        p_503: float = 0.10,
        p_stall: float = 0.05,
        p_cut: float = 0.05,
        stall_seconds: float = 30.0,
        seed: int = 0,
    ):
        self.upstream = upstream.rstrip("/")
        self.p_503, self.p_stall, self.p_cut = p_503, p_stall, p_cut
        self.stall_seconds = stall_seconds
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()  # requests, by "METHOD /path"
        self.authorizations: Counter[str] = Counter()  # Authorization headers as received
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    def _fault(self) -> str:
        draw = self.random.random()
        if draw < self.p_503:
            return "503"
        if draw < self.p_503 + self.p_stall:
            return "stall"
        if draw < self.p_503 + self.p_stall + self.p_cut:
            return "cut"
        return "ok"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._fault() if request.method == "POST" else "ok"
        self.counts[fault] += 1
        self.paths[f"{request.method} {request.path}"] += 1
        self.authorizations[request.headers.get("Authorization", "")] += 1
        if fault == "503":
            return web.Response(
                status=503, text="<html>upstream unavailable</html>", content_type="text/html"
            )
        if fault == "stall":
            await asyncio.sleep(self.stall_seconds)
        body = await request.read()
        async with ClientSession(timeout=ClientTimeout(total=120)) as session:
            async with session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": "application/json"},
            ) as upstream:
                payload = await upstream.read()
                headers = {"Content-Type": upstream.headers.get("Content-Type", "text/plain")}
                if fault != "cut":
                    return web.Response(status=upstream.status, body=payload, headers=headers)
        response = web.StreamResponse(
            status=200, headers={**headers, "Content-Length": str(len(payload))}
        )
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        request.transport.close()
        return response

    def start(self) -> str:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        self._ready.wait(10)
        return self.url

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._loop:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
