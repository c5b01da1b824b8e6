"""`llmbench loadtest`: latency and throughput of an endpoint across users and adapter counts.

The study's benchmark, as a command: wait for /health (bounded), warm up, then for each number
of concurrent users and each number of adapters, ramp the users up over `ramp` seconds and hold
for `duration` seconds. Each virtual user loops: a random text of 90-110 words from the shipped
word list, a random max_new_tokens of 90-110, one streaming request (for an adapter picked at
random among the first N, or the base model when N is 0), then a pause of `think_time`.

Everything is bounded: a user stops starting requests when the hold ends, each request has a
timeout, and no user sends more than `max_requests_per_user`. Endpoints off this machine are
refused unless `allow_remote` is set. Random streams are seeded per (level, user).

Results: `requests.json` (every request), `summary.md` (one row per users x adapters:
requests/s, output tokens/s, TTFT and latency p50/p90/p99, error rate), and PNG plots of
throughput and p90 latency against users, one line per adapter count. Percentiles are numpy's
linear interpolation over the completed requests of a cell.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from llmbench.errors import LLMBenchError
from llmbench.paths import atomic_write_text

TIMING_HEADERS = (
    "x-time-to-first-token",
    "x-time-per-output-token",
    "x-queue-time",
    "x-inference-time",
    "x-total-time",
    "x-prompt-tokens",
    "x-generated-tokens",
)


@dataclass(frozen=True)
class LoadSettings:
    endpoint: str
    backend: str = "lorax"
    users: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    adapter_counts: tuple[int, ...] = (0,)
    adapter_ids: tuple[str, ...] = ()
    duration: float = 60.0
    ramp: float = 1.0
    input_words: tuple[int, int] = (90, 110)
    max_new_tokens: tuple[int, int] = (90, 110)
    think_time: float = 1.0
    timeout: float = 120.0
    health_timeout: float = 120.0
    max_requests_per_user: int = 10_000
    seed: int = 0
    model: str = ""  # openai backend: the base model's name on the server
    allow_remote: bool = False
    adapter_source: str | None = None  # lorax backend: sent with adapter requests when set


@dataclass
class RequestRecord:
    users: int
    adapters: int
    user: int
    adapter_id: str | None
    input_words: int
    max_new_tokens: int
    start: float
    ttft: float | None = None
    latency: float | None = None
    streaming: float | None = None
    tokens: int = 0
    error: str | None = None
    headers: dict = field(default_factory=dict)


def parse_range(text: str, name: str) -> tuple[int, int]:
    """'90-110' (or '100') as (low, high); anything else is an LLMBenchError naming the flag."""
    try:
        low, _, high = text.partition("-")
        pair = (int(low), int(high or low))
    except ValueError:
        raise LLMBenchError(
            f"{name}: '{text}' is not a range; expected LOW-HIGH, e.g. 90-110"
        ) from None
    if pair[0] < 1 or pair[1] < pair[0]:
        raise LLMBenchError(f"{name}: '{text}' is not a range of positive numbers, low <= high")
    return pair


def parse_counts(text: str, name: str, minimum: int) -> tuple[int, ...]:
    """'1,2,4' as (1, 2, 4), each at least `minimum`."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise LLMBenchError(f"{name}: '{text}' is not a comma-separated list of integers") from None
    if not values or min(values) < minimum:
        raise LLMBenchError(f"{name}: '{text}': expected integers >= {minimum}")
    return values


def check_endpoint(endpoint: str, allow_remote: bool) -> None:
    """Refuse endpoints off this machine unless the user says otherwise."""
    host = urlparse(endpoint).hostname or ""
    if allow_remote or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise LLMBenchError(
        f"--endpoint: {endpoint} is not on this machine (loopback); a load test sends a lot of "
        "traffic: pass --allow-remote if this server is yours"
    )


def word_list() -> list[str]:
    text = resources.files("llmbench").joinpath("data/words.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


class Streamer:
    """One streaming request through the chosen client; returns (ttft, tokens, headers)."""

    def __init__(self, settings: LoadSettings):
        from llmbench.evaluate.clients import auth_headers

        self.settings = settings
        if settings.backend == "lorax":
            from lorax import AsyncClient

            self.lorax = AsyncClient(
                settings.endpoint.rstrip("/"), headers=auth_headers(), timeout=int(settings.timeout)
            )
        else:
            import os

            from openai import AsyncOpenAI

            base = settings.endpoint.rstrip("/")
            self.openai = AsyncOpenAI(
                base_url=base if base.endswith("/v1") else base + "/v1",
                api_key=os.environ.get("OPENAI_API_KEY", "none"),
                timeout=settings.timeout,
                max_retries=0,
            )

    async def stream(
        self, prompt: str, max_new_tokens: int, adapter_id: str | None, started: float
    ):
        if self.settings.backend == "lorax":
            return await self._lorax(prompt, max_new_tokens, adapter_id, started)
        return await self._openai(prompt, max_new_tokens, adapter_id, started)

    async def _lorax(self, prompt, max_new_tokens, adapter_id, started):
        ttft, tokens = None, 0
        async for _event in self.lorax.generate_stream(
            prompt,
            adapter_id=adapter_id,
            max_new_tokens=max_new_tokens,
            adapter_source=self.settings.adapter_source if adapter_id else None,
        ):
            # Every generated token counts, the end-of-sequence one too (as LoRAX counts them).
            tokens += 1
            if ttft is None:
                ttft = time.perf_counter() - started
        return ttft, tokens, {}

    async def _openai(self, prompt, max_new_tokens, adapter_id, started):
        ttft, tokens = None, 0
        raw = await self.openai.completions.with_raw_response.create(
            model=adapter_id or self.settings.model,
            prompt=prompt,
            max_tokens=max_new_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        headers = {k: raw.headers[k] for k in TIMING_HEADERS if k in raw.headers}
        usage_tokens = None
        async for chunk in raw.parse():
            if chunk.choices:
                tokens += 1
                if ttft is None:
                    ttft = time.perf_counter() - started
            if getattr(chunk, "usage", None):
                usage_tokens = chunk.usage.completion_tokens
        return ttft, usage_tokens if usage_tokens is not None else tokens, headers

    async def close(self) -> None:
        if self.settings.backend != "lorax":
            await self.openai.close()


async def _user(
    streamer: Streamer,
    settings: LoadSettings,
    words: list[str],
    users: int,
    adapters: int,
    user: int,
    hold_end: float,
    records: list,
) -> None:
    rng = random.Random(f"{settings.seed}:{users}:{adapters}:{user}")
    await asyncio.sleep(settings.ramp * user / users)
    choices = settings.adapter_ids[:adapters]
    for _ in range(settings.max_requests_per_user):
        if time.perf_counter() >= hold_end:
            return
        n_words = rng.randint(*settings.input_words)
        prompt = " ".join(rng.choice(words) for _ in range(n_words))
        record = RequestRecord(
            users,
            adapters,
            user,
            rng.choice(choices) if choices else None,
            n_words,
            rng.randint(*settings.max_new_tokens),
            time.time(),
        )
        started = time.perf_counter()
        try:
            ttft, tokens, headers = await asyncio.wait_for(
                streamer.stream(prompt, record.max_new_tokens, record.adapter_id, started),
                settings.timeout,
            )
            record.latency = time.perf_counter() - started
            record.ttft, record.tokens, record.headers = ttft, tokens, headers
            if ttft is not None:
                record.streaming = record.latency - ttft
        except Exception as exc:  # noqa: BLE001 - every failure is a recorded error, not a crash
            record.latency = time.perf_counter() - started
            record.error = f"{type(exc).__name__}: {exc}"[:300]
        records.append(record)
        await asyncio.sleep(settings.think_time)


async def _run_cell(streamer, settings, words, users, adapters, records) -> float:
    hold_end = time.perf_counter() + settings.ramp + settings.duration
    cell: list[RequestRecord] = []
    await asyncio.gather(
        *(
            _user(streamer, settings, words, users, adapters, u, hold_end, cell)
            for u in range(users)
        )
    )
    records.extend(cell)
    return settings.ramp + settings.duration


def wait_for_health(settings: LoadSettings) -> None:
    import requests

    url = settings.endpoint.rstrip("/") + "/health"
    deadline = time.time() + settings.health_timeout
    while True:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.time() >= deadline:
            raise LLMBenchError(
                f"{settings.endpoint}: not healthy within "
                f"{settings.health_timeout:.0f} s (GET /health); is it running?"
            )
        time.sleep(1)


async def _warm_up(streamer: Streamer, settings: LoadSettings) -> None:
    """One one-token request for the base model and for each adapter in play."""
    top = max(settings.adapter_counts)
    for adapter_id in (None, *settings.adapter_ids[:top]):
        try:
            await asyncio.wait_for(
                streamer.stream("warm up", 1, adapter_id, time.perf_counter()), settings.timeout
            )
        except Exception as exc:  # noqa: BLE001
            who = f"adapter '{adapter_id}'" if adapter_id else "the base model"
            raise LLMBenchError(f"{settings.endpoint}: warm-up for {who} failed: {exc}") from None


def run_loadtest(settings: LoadSettings, out: Path) -> list[dict]:
    """Run every (users, adapters) cell; write requests.json, summary.md and the plots."""
    check_endpoint(settings.endpoint, settings.allow_remote)
    if max(settings.adapter_counts) > len(settings.adapter_ids):
        raise LLMBenchError(
            f"--adapters: asks for {max(settings.adapter_counts)} adapters but "
            f"{len(settings.adapter_ids)} adapter id(s) were given (--adapter-ids)"
        )
    wait_for_health(settings)
    words = word_list()
    records: list[RequestRecord] = []
    durations: dict[tuple[int, int], float] = {}

    async def main() -> None:
        streamer = Streamer(settings)
        try:
            await _warm_up(streamer, settings)
            for adapters in settings.adapter_counts:
                for users in settings.users:
                    durations[(users, adapters)] = await _run_cell(
                        streamer, settings, words, users, adapters, records
                    )
        finally:
            await streamer.close()

    asyncio.run(main())
    rows = summarize(records, durations)
    write_results(out, settings, records, rows)
    return rows


def percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(values, q)), 4) if values else None


def summarize(records: list[RequestRecord], durations: dict) -> list[dict]:
    """One row per (users, adapters) cell."""
    rows = []
    for (users, adapters), seconds in durations.items():
        cell = [r for r in records if (r.users, r.adapters) == (users, adapters)]
        ok = [r for r in cell if r.error is None]
        ttfts = [r.ttft for r in ok if r.ttft is not None]
        latencies = [r.latency for r in ok]
        rows.append(
            {
                "users": users,
                "adapters": adapters,
                "requests": len(cell),
                "errors": len(cell) - len(ok),
                "error_rate": round((len(cell) - len(ok)) / len(cell), 4) if cell else 0.0,
                "requests_per_s": round(len(ok) / seconds, 4),
                "output_tokens_per_s": round(sum(r.tokens for r in ok) / seconds, 2),
                **{f"ttft_p{q}": percentile(ttfts, q) for q in (50, 90, 99)},
                **{f"latency_p{q}": percentile(latencies, q) for q in (50, 90, 99)},
            }
        )
    return rows


def write_results(out: Path, settings: LoadSettings, records, rows: list[dict]) -> None:
    out = Path(out)
    safe = {k: v for k, v in asdict(settings).items()}
    atomic_write_text(
        out / "requests.json",
        json.dumps({"settings": safe, "requests": [asdict(r) for r in records]}, indent=1) + "\n",
    )
    columns = [
        "users",
        "adapters",
        "requests",
        "error_rate",
        "requests_per_s",
        "output_tokens_per_s",
        "ttft_p50",
        "ttft_p90",
        "ttft_p99",
        "latency_p50",
        "latency_p90",
        "latency_p99",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join("-" if row[c] is None else str(row[c]) for c in columns) + " |"
        for row in rows
    ]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    _plot(out, rows, "output_tokens_per_s", "output tokens / s", "throughput.png")
    _plot(out, rows, "latency_p90", "p90 latency (s)", "latency_p90.png")


def _plot(out: Path, rows: list[dict], key: str, label: str, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for adapters in sorted({r["adapters"] for r in rows}):
        points = sorted(
            (r["users"], r[key]) for r in rows if r["adapters"] == adapters and r[key] is not None
        )
        if points:
            ax.plot(
                *zip(*points, strict=True),
                marker="o",
                label=f"{adapters} adapter{'s' if adapters != 1 else ''}",
            )
    ax.set_xlabel("concurrent users")
    ax.set_ylabel(label)
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / name)
    plt.close(fig)
