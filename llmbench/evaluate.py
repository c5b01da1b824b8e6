"""`llmbench eval`: a task's eval split -> requests -> responses.jsonl -> scores.

Recipe: realize each eval example's prompt exactly as training did (`realize_prompt`) -> send the
ones not answered yet, concurrently, retrying transient failures with bounded exponential
backoff -> append each outcome to `responses.jsonl` the moment it arrives -> score every example
with the task's metric (a failed or unreadable response scores 0 and is counted, never dropped)
-> write `scores.json`, `examples.csv` and print a summary.

A rerun resumes: examples already in responses.jsonl are not sent again. A run killed mid-write
leaves at most a partial last line, which the next run drops; any other broken line is an
error, and the file is left as it is.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmbench.backends import Refused, Rejected, Request, Transient, make_backend
from llmbench.errors import LLMBenchError
from llmbench.paths import DEFAULT_WORK_DIR, atomic_write_text

RESPONSES, SCORES, EXAMPLES = "responses.jsonl", "scores.json", "examples.csv"


@dataclass(frozen=True)
class EvalSettings:
    task: str
    endpoint: str
    model: str  # the base model: its markup realizes prompts; OpenAI requests name it
    adapter_id: str | None = None  # None: the base model itself
    backend: str = "lorax"
    limit: int | None = None
    concurrency: int = 8
    max_new_tokens: int | None = None  # None: the card's
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5  # seconds before the first retry; doubles, capped at backoff_cap
    backoff_cap: float = 8.0
    chat: bool = False
    adapter_source: str | None = None  # LoRAX's, sent with every request when set (lorax backend)


@dataclass(frozen=True)
class Example:
    id: int
    prompt: str
    target: str


@dataclass
class EvalResult:
    settings: EvalSettings
    out_dir: Path
    metric: str
    n: int
    n_failed: int
    score: float
    failed_ids: list[int] = field(default_factory=list)


def run_dir(settings: EvalSettings, work_dir: Path = DEFAULT_WORK_DIR) -> Path:
    """runs/eval/<model>/<task>/<adapter or base>/ (an adapter id's slashes become '__')."""
    leaf = settings.adapter_id.replace("/", "__") if settings.adapter_id else "base"
    return Path(work_dir) / "eval" / settings.model / settings.task / leaf


def load_examples(settings: EvalSettings, work_dir: Path) -> tuple[list[Example], str]:
    """The task's eval split, prompts realized for the base model; and the metric's name."""
    from llmbench.models import get_model
    from llmbench.prepare import read_prepared
    from llmbench.prompts import realize_prompt
    from llmbench.tasks import get_card

    card = get_card(settings.task)
    model = _markup_model(settings.model, get_model)
    table = read_prepared(settings.task, work_dir, split=card.split_column_value)
    if table.empty:
        raise LLMBenchError(f"task {card.name}: the prepared {card.eval_split} split is empty")
    if settings.limit:
        table = table.head(settings.limit)
    examples = [
        Example(i, realize_prompt(card, model, row), row[card.target_col])
        for i, row in enumerate(table.to_dict("records"))
    ]
    return examples, card.metric_name


def _markup_model(name: str, get_model):
    """The registry model whose markup wraps prompts; names outside it (gpt-4) get plain."""
    from llmbench.models import load_registry

    if name in load_registry():
        return get_model(name)
    return next(m for m in load_registry().values() if m.markup_name == "plain")


def read_responses(path: Path) -> dict[int, dict]:
    """Responses already collected, by example id; drops a partial last line (a killed write)."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    complete, _, partial = data.rpartition(b"\n")
    if partial:
        with open(path, "r+b") as handle:  # cut the torn line so appends start clean
            handle.truncate(len(complete) + (1 if complete else 0))
    records: dict[int, dict] = {}
    for number, line in enumerate(complete.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[int(record["id"])] = record
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise LLMBenchError(
                f"{path}: line {number}: not a response record; expected JSON with an 'id' "
                "(move the file aside to start over)"
            ) from None
    return records


class ResponseLog:
    """Appends one JSON line per outcome, handed to the OS before the next is written.

    A flush per line is what survives the process being killed (the OS keeps the data); the
    file is synced to disk once, on close, since a sync per line costs more than the requests.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, record: dict) -> None:
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


async def _send(
    backend, request: Request, settings: EvalSettings
) -> tuple[str | None, str | None, int]:
    """(output, error, attempts): retries transient failures with capped exponential backoff."""
    delay = settings.backoff
    for attempt in range(1, settings.max_attempts + 1):
        try:
            return (
                await asyncio.wait_for(backend.generate(request), settings.timeout),
                None,
                attempt,
            )
        except (TimeoutError, Transient) as exc:
            error = str(exc) or "timeout"
        except Rejected as exc:
            return None, f"rejected: {exc}", attempt
        if attempt < settings.max_attempts:
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, settings.backoff_cap)
    return None, f"failed after {settings.max_attempts} attempts: {error}", settings.max_attempts


async def collect(
    settings: EvalSettings, examples: list[Example], log: ResponseLog, progress: bool = True
) -> None:
    """Send every example concurrently and log each outcome as it arrives."""
    from tqdm import tqdm

    backend = make_backend(
        settings.backend, settings.endpoint, settings.timeout, settings.model, settings.chat,
        adapter_source=settings.adapter_source,
    )  # fmt: skip
    gate = asyncio.Semaphore(settings.concurrency)
    max_new = settings.max_new_tokens

    async def one(example: Example) -> None:
        async with gate:
            started = time.perf_counter()
            output, error, attempts = await _send(
                backend, Request(example.prompt, max_new, settings.adapter_id), settings
            )
            log.append(
                {
                    "id": example.id,
                    "output": output,
                    "error": error,
                    "attempts": attempts,
                    "seconds": round(time.perf_counter() - started, 4),
                }
            )
            bar.update(1)

    with tqdm(
        total=len(examples), desc=f"eval {settings.task}", unit=" ex", disable=not progress
    ) as bar:
        tasks = [asyncio.create_task(one(e)) for e in examples]
        try:
            await asyncio.gather(*tasks)
        except Refused as exc:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            who = f"adapter '{settings.adapter_id}'" if settings.adapter_id else "the base model"
            raise LLMBenchError(f"{settings.endpoint}: refused {who}: {exc}") from None
        finally:
            await backend.close()


def check_reachable(settings: EvalSettings) -> None:
    """Fail fast, with one line, when nothing answers at the endpoint."""
    import requests

    url = settings.endpoint.rstrip("/") + ("/health" if settings.backend == "lorax" else "")
    try:
        requests.get(url, timeout=min(settings.timeout, 10))
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise LLMBenchError(
            f"{settings.endpoint}: unreachable ({reason}); is the server up?"
        ) from None


def pending_examples(
    settings: EvalSettings, work_dir: Path = DEFAULT_WORK_DIR, out_dir: Path | None = None
) -> int:
    """How many eval examples have no recorded response yet (0: a rerun sends nothing)."""
    examples, _ = load_examples(settings, work_dir)
    out = Path(out_dir) if out_dir else run_dir(settings, work_dir)
    done = read_responses(out / RESPONSES)
    return sum(1 for e in examples if e.id not in done)


def evaluate(
    settings: EvalSettings,
    work_dir: Path = DEFAULT_WORK_DIR,
    out_dir: Path | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run (or resume) one evaluation and write its scores."""
    from llmbench.tasks import get_card

    examples, metric = load_examples(settings, work_dir)
    if settings.max_new_tokens is None:
        settings = _with(settings, max_new_tokens=get_card(settings.task).max_new_tokens)
    out = Path(out_dir) if out_dir else run_dir(settings, work_dir)
    responses_path = out / RESPONSES
    done = read_responses(responses_path)
    pending = [e for e in examples if e.id not in done]
    if pending:
        check_reachable(settings)
        log = ResponseLog(responses_path)
        try:
            asyncio.run(collect(settings, pending, log, progress))
        finally:
            log.close()
        done = read_responses(responses_path)
    return score_run(settings, examples, metric, done, out)


def _with(settings: EvalSettings, **changes) -> EvalSettings:
    return EvalSettings(**{**asdict(settings), **changes})


def score_run(
    settings: EvalSettings,
    examples: list[Example],
    metric_name: str,
    responses: dict[int, dict],
    out: Path,
) -> EvalResult:
    """Score every example (missing or failed: 0), then write scores.json and examples.csv."""
    from llmbench.metrics import get_metric

    metric = get_metric(metric_name)
    rows, failed = [], []
    for example in examples:
        record = responses.get(example.id, {"output": None, "error": "no response recorded"})
        output = record.get("output")
        if output is None:
            failed.append(example.id)
            value = 0.0
        else:
            value = float(metric.score(output, example.target))
        rows.append(
            (
                example.id,
                example.prompt,
                example.target,
                output or "",
                record.get("error") or "",
                value,
            )
        )
    n = len(rows)
    score = sum(r[-1] for r in rows) / n
    result = EvalResult(settings, out, metric_name, n, len(failed), score, failed)
    _write_outputs(result, rows)
    return result


def _write_outputs(result: EvalResult, rows: list[tuple]) -> None:
    settings = result.settings
    summary = {
        "task": settings.task,
        "model": settings.model,
        "adapter": settings.adapter_id,
        "metric": result.metric,
        "n": result.n,
        "n_failed": result.n_failed,
        "score": result.score,
        "failed_ids": result.failed_ids,
        "settings": {k: v for k, v in asdict(settings).items() if k not in {"task", "model"}},
    }
    atomic_write_text(result.out_dir / SCORES, json.dumps(summary, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "prompt", "target", "output", "error", "score"])
    writer.writerows(rows)
    atomic_write_text(result.out_dir / EXAMPLES, buffer.getvalue())
