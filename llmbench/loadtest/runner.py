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
from llmbench.evaluate.clients import (
    Client,
    Refused,
    Rejected,
    Request,
    Transient,
    auth_headers,
    make_backend,
)
from llmbench.paths import atomic_write_text

# summary.md's columns and the printed table's, in order: one row per (users, adapters) cell.
COLUMNS = (
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
    timeout: float = 120.0  # seconds a request may take, from sending it to its last token
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


def make_client(settings: LoadSettings) -> Client:
    """The endpoint client for the chosen backend (the one eval and the app use too)."""
    return make_backend(
        settings.backend,
        settings.endpoint,
        settings.timeout,
        settings.model,
        adapter_source=settings.adapter_source,
    )


async def _user(
    client: Client,
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
            answer = await client.stream(Request(prompt, record.max_new_tokens, record.adapter_id))
            record.latency = time.perf_counter() - started
            record.ttft, record.tokens, record.headers = (
                answer.first_token_s,
                answer.tokens,
                answer.headers,
            )
            if answer.first_token_s is not None:
                record.streaming = record.latency - answer.first_token_s
        except (Transient, Rejected, Refused) as exc:  # each a recorded error, not a crash
            record.latency = time.perf_counter() - started
            record.error = f"{type(exc).__name__}: {exc}"[:300]
        records.append(record)
        await asyncio.sleep(settings.think_time)


async def _run_cell(client, settings, words, users, adapters, records) -> float:
    hold_end = time.perf_counter() + settings.ramp + settings.duration
    cell: list[RequestRecord] = []
    await asyncio.gather(
        *(_user(client, settings, words, users, adapters, u, hold_end, cell) for u in range(users))
    )
    records.extend(cell)
    return settings.ramp + settings.duration


def wait_for_health(settings: LoadSettings) -> None:
    import requests

    url = settings.endpoint.rstrip("/") + "/health"
    headers = auth_headers(settings.backend)
    deadline = time.time() + settings.health_timeout
    while True:
        try:
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.time() >= deadline:
            raise LLMBenchError(
                f"{settings.endpoint}: not healthy within "
                f"{settings.health_timeout:.0f} s (GET /health); is it running?"
            )
        time.sleep(1)


async def _warm_up(client: Client, settings: LoadSettings) -> None:
    """One one-token request for the base model and for each adapter in play."""
    top = max(settings.adapter_counts)
    for adapter_id in (None, *settings.adapter_ids[:top]):
        try:
            await client.stream(Request("warm up", 1, adapter_id))
        except (Transient, Rejected, Refused) as exc:
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
        client = make_client(settings)
        try:
            await _warm_up(client, settings)
            for adapters in settings.adapter_counts:
                for users in settings.users:
                    durations[(users, adapters)] = await _run_cell(
                        client, settings, words, users, adapters, records
                    )
        finally:
            await client.close()

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
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [
        "| " + " | ".join("-" if row[c] is None else str(row[c]) for c in COLUMNS) + " |"
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
