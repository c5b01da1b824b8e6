"""The client layer that eval, loadtest and the app share: a stalled server is given up on at the
configured number of seconds, and every user sends the same credentials.

The server here is a loopback socket that reads each request, answers a GET (/health) with 200,
and never answers a POST: a server that accepted the work and hung.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import lorax  # noqa: F401 - imported up front, so that no timing below includes an import
import openai
import pytest

from llmbench.errors import LLMBenchError
from llmbench.evaluate.clients import Request, Transient, make_backend

TIMEOUT = 1.0
# Given up on at the timeout, not minutes later: the slack is for a busy 2-core machine.
LATEST = TIMEOUT + 1.5
BACKENDS = ("lorax", "openai")
SECRET = "sk-llmbench-test-5e6f7a8b"
TOKEN_VARIABLE = {"lorax": "LLMBENCH_API_TOKEN", "openai": "OPENAI_API_KEY"}


class StalledServer:
    """Loopback HTTP that records each request's line and Authorization header, answers a GET
    (a health check) with 200, and holds every other request open without a byte of answer."""

    def __init__(self):
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self.handlers: set[asyncio.Task] = set()
        self.loop = asyncio.new_event_loop()
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handlers.add(asyncio.current_task())
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(
                    line.split(": ", 1) for line in lines[1:] if ": " in line
                )  # fmt: skip
                headers = {name.lower(): value for name, value in headers.items()}
                self.requests.append((method, path, headers.get("authorization", "")))
                if method != "GET":
                    await reader.read()  # until the client gives up and hangs up
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def _stop(self) -> None:
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def __enter__(self) -> StalledServer:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def stalled():
    with StalledServer() as server:
        yield server


def timed(work) -> tuple[object, float]:
    """(what `work` returned or raised, seconds it took); a hard stop at 20 s keeps a broken
    timeout from hanging the suite (and fails the elapsed-time check)."""
    started = time.perf_counter()
    try:
        outcome = asyncio.run(asyncio.wait_for(work, 20))
    except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
        outcome = exc
    return outcome, time.perf_counter() - started


async def _generate(backend: str, url: str):
    client = make_backend(backend, url, TIMEOUT, model="tiny")
    try:
        return await client.generate(Request("Hello", 4, "alpha"))
    finally:
        await client.close()


async def _timed_call(backend: str, url: str, method: str) -> tuple[object, float]:
    """A request through the layer, timed from sending it to the answer or the failure."""
    client = make_backend(backend, url, TIMEOUT, model="tiny")
    started = time.perf_counter()
    try:
        outcome = await getattr(client, method)(Request("Hello", 4, "alpha"))
    except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
        outcome = exc
    elapsed = time.perf_counter() - started
    await client.close()
    return outcome, elapsed


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["generate", "stream"])
def test_a_stalled_server_is_given_up_on_at_the_configured_seconds(stalled, backend, method):
    outcome, elapsed = asyncio.run(_timed_call(backend, stalled.url, method))
    assert isinstance(outcome, Transient), outcome
    assert str(outcome) == f"no complete answer from {stalled.url} within 1 s"
    assert TIMEOUT * 0.9 <= elapsed < LATEST
    assert [method for method, _, _ in stalled.requests] == ["POST"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_real_clients_own_timeout_is_the_configured_seconds(stalled, backend):
    """lorax-client counts minutes; the layer converts, so the client itself gives up at the
    same time as the layer's deadline (not 60 times later)."""
    client = make_backend(backend, stalled.url, TIMEOUT, model="tiny")
    if backend == "lorax":
        call = client.client.generate("Hello", max_new_tokens=4)
    else:
        call = client.client.completions.create(model="tiny", prompt="Hello", max_tokens=4)
    outcome, elapsed = timed(call)
    expected = TimeoutError if backend == "lorax" else openai.APITimeoutError
    assert isinstance(outcome, expected), outcome
    assert TIMEOUT * 0.9 <= elapsed < LATEST, (type(outcome).__name__, elapsed)


@pytest.fixture
def work(tmp_path):
    """A work directory with gsm8k prepared from its fixture."""
    from llmbench.prepare.tables import fixture_source, prepare_task
    from llmbench.tasks.cards import get_card

    prepare_task("gsm8k", source=fixture_source(get_card("gsm8k")), out_dir=tmp_path,
                 progress=False)  # fmt: skip
    return tmp_path


def test_the_harness_gives_each_attempt_the_configured_seconds(stalled, work):
    from llmbench.evaluate.harness import RESPONSES, EvalSettings, evaluate

    settings = EvalSettings(task="gsm8k", endpoint=stalled.url, model="tiny", limit=2,
                            concurrency=2, timeout=TIMEOUT, max_attempts=2, backoff=0)  # fmt: skip
    started = time.perf_counter()
    result = evaluate(settings, work, progress=False)
    assert result.n == 2 and result.n_failed == 2
    records = [json.loads(line) for line in (result.out_dir / RESPONSES).read_text().splitlines()]
    records = [r for r in records if "id" in r]
    assert len(records) == 2
    for record in records:
        assert (
            record["error"]
            == f"failed after 2 attempts: no complete answer from {stalled.url} within 1 s"
        )
        assert 2 * TIMEOUT * 0.9 <= record["seconds"] < 2 * LATEST
    assert time.perf_counter() - started < 2 * LATEST + 5


def test_the_load_test_gives_up_on_a_stalled_warm_up_at_the_configured_seconds(stalled, tmp_path):
    from llmbench.loadtest.runner import LoadSettings, run_loadtest

    started = time.perf_counter()
    with pytest.raises(
        LLMBenchError, match=r"warm-up for the base model failed: no complete answer .* 1 s"
    ):
        run_loadtest(LoadSettings(endpoint=stalled.url, timeout=TIMEOUT), tmp_path)
    assert time.perf_counter() - started < LATEST + 1


def test_the_app_shows_a_stalled_answer_as_an_error_at_the_configured_seconds(stalled):
    from llmbench.app.stream import side_by_side

    async def events():
        return [e async for e in side_by_side(stalled.url, "Hello", "alpha", 4, TIMEOUT)]

    outcome, elapsed = timed(events())
    assert sorted(e["panel"] for e in outcome) == ["adapter", "base"]
    for event in outcome:
        assert event["type"] == "error"
        assert event["message"] == f"no complete answer from {stalled.url} within 1 s"
    assert TIMEOUT * 0.9 <= elapsed < LATEST


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_loadtest_and_the_app_send_the_same_credentials(stalled, work, monkeypatch, backend):
    from llmbench.app.stream import side_by_side
    from llmbench.evaluate.harness import EvalSettings, evaluate
    from llmbench.loadtest.runner import LoadSettings, run_loadtest

    monkeypatch.setenv(TOKEN_VARIABLE[backend], SECRET)
    seen: dict[str, list] = {}

    def sent_by(user: str) -> None:
        seen[user], stalled.requests[:] = list(stalled.requests), []

    # Each user's health check (a GET) and its request (a POST, which times out).
    evaluate(EvalSettings(task="gsm8k", endpoint=stalled.url, model="tiny", backend=backend,
                          limit=1, timeout=0.5, max_attempts=1), work, progress=False)  # fmt: skip
    sent_by("eval")
    with pytest.raises(LLMBenchError):
        run_loadtest(LoadSettings(endpoint=stalled.url, backend=backend, timeout=0.5), work / "lt")
    sent_by("loadtest")
    if backend == "lorax":  # the page talks to a LoRAX-compatible endpoint
        timed(_collect(side_by_side(stalled.url, "Hello", "alpha", 4, 0.5, backend)))
        sent_by("app")
    for user, requests in seen.items():
        assert len(requests) >= 2, (user, requests)
        assert {auth for _, _, auth in requests} == {f"Bearer {SECRET}"}, user


async def _collect(events) -> list:
    return [event async for event in events]


def test_without_a_token_lorax_requests_carry_no_authorization(stalled, monkeypatch):
    monkeypatch.delenv("LLMBENCH_API_TOKEN", raising=False)
    timed(_generate("lorax", stalled.url))
    assert [auth for _, _, auth in stalled.requests] == [""]


def test_an_unreachable_endpoint_is_transient_and_says_so():
    for backend in BACKENDS:
        outcome, _ = timed(_generate(backend, "http://user:pw@127.0.0.1:9"))
        assert isinstance(outcome, Transient)
        assert (
            str(outcome) == "cannot reach the endpoint http://127.0.0.1:9: is the server running?"
        )


def test_an_unknown_backend_is_an_error_with_a_hint():
    with pytest.raises(LLMBenchError, match=r"unknown backend 'loraxx' \(did you mean 'lorax'\?\)"):
        make_backend("loraxx", "http://127.0.0.1:9", TIMEOUT)
