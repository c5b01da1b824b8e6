"""`llmbench eval`: a task's eval split -> requests -> responses.jsonl -> scores.

Recipe: realize each eval example's prompt exactly as training did (`realize_prompt`) -> send the
ones not answered yet, concurrently, retrying transient failures with bounded exponential
backoff -> append each outcome to `responses.jsonl` the moment it arrives -> score every example
with the task's metric (a failed or unreadable response scores 0 and is counted, never dropped)
-> write `scores.json`, `examples.csv` and print a summary.

A rerun resumes: examples already answered are not sent again; failed ones are (unless
`retry_failed=False`). Each run that records anything first appends a settings line, and a rerun
whose answer-changing settings (`ANSWER_SETTINGS`) differ from the file's is refused, so one
file never mixes runs; `restart=True` moves the old file aside and starts over. The endpoint is
recorded but does not count: the same server may come back on another port. Each record also
carries its prompt's digest, so a changed prepared table or template is refused the same way.
Which rows are scored is decided before any request: the whole eval split, its first `limit`
rows, or a seeded random `sample` of it (`llmbench.evaluate.sampling`: the same size and seed
give the same rows, for the base model and its adapter alike). The sample's size and seed are
recorded in the settings line, and a rerun with another size or seed is refused like any other
changed setting, so one file never holds two samples' rows.
With `constrained`, every answer is restricted to the card's labels by the server's structured
output (`llmbench.evaluate.constrained`) and scored as the label it names; the run has its own
folder (`constrained/` inside the free run's), so free and constrained answers never mix.
A run killed mid-write leaves at most a partial last line, which the next run drops; any other
broken line is an error, and the file is left as it is.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from llmbench.errors import LLMBenchError
from llmbench.evaluate.clients import (
    BACKENDS,
    Refused,
    Rejected,
    Request,
    Transient,
    auth_headers,
    make_backend,
)
from llmbench.evaluate.responses import (
    ResponseLog,
    check_same_run,
    last_known,
    outcome_record,
    public_endpoint,
    read_response_file,
    read_responses,
    start_over,
    to_send,
    write_error,
)
from llmbench.evaluate.sampling import Sample, draw_sample, is_classification
from llmbench.paths import DATASETS_DIR, DEFAULT_WORK_DIR, atomic_write_text
from llmbench.tasks.cards import TaskCard
from llmbench.tasks.models import BaseModel
from llmbench.workdir import Workdir

RESPONSES, SCORES, EXAMPLES = "responses.jsonl", "scores.json", "examples.csv"
DEFAULT_MAX_FAILED_SHARE = 0.5  # `eval` exits 2 when more than this share of examples failed
# What decides an answer: the request a server sees, less where it is sent (a server may come
# back on another port) and how patiently (timeouts, attempts, concurrency). Decoding is greedy.
ANSWER_SETTINGS = (
    "task", "model", "adapter_id", "adapter_source", "backend", "chat", "max_new_tokens",
    "adapter_weights", "constrained",
)  # fmt: skip
# What decides which rows are answered: recorded and compared like ANSWER_SETTINGS (the seed only
# where there is a sample: without one it draws nothing).
ROW_SETTINGS = ("sample", "seed")


@dataclass(frozen=True)
class EvalSettings:
    task: str
    endpoint: str
    model: str  # the base model: its markup realizes prompts; OpenAI requests name it
    adapter_id: str | None = None  # None: the base model itself
    backend: str = "lorax"
    limit: int | None = None  # the first N rows (a quick look); `sample` for a scored run
    sample: int | None = None  # a seeded random draw of N rows (None: the whole split)
    seed: int = 0  # the sample's seed
    concurrency: int = 8
    max_new_tokens: int | None = None  # None: the card's
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5  # seconds before the first retry; doubles, capped at backoff_cap
    backoff_cap: float = 8.0
    chat: bool = False
    adapter_source: str | None = None  # LoRAX's, sent with every request when set (lorax backend)
    # The adapter's weights digest (train.training.adapter_digest), when the caller can read the
    # folder the server loads (the bake-off can): answers of other weights are never mixed in.
    adapter_weights: str | None = None
    constrained: bool = False  # answers restricted to the card's labels (its own folder)

    def __post_init__(self) -> None:
        problems = [
            f"eval settings: {name}: expected {expected}, got {getattr(self, name)!r}"
            for name, (valid, expected) in _SETTING_CHECKS.items()
            if not valid(getattr(self, name))
        ]
        if self.limit is not None and self.sample is not None:
            problems.append(
                "eval settings: limit and sample: both given; expected one (limit takes the "
                "first N rows, sample a seeded random draw of N)"
            )
        if problems:
            raise LLMBenchError(*problems)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_optional_count(value) -> bool:
    return value is None or _is_count(value)


def _is_seed(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value, low: float = 0.0, inclusive: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value >= low if inclusive else value > low


_SETTING_CHECKS = {
    "concurrency": (_is_count, "an integer >= 1"),
    "max_attempts": (_is_count, "an integer >= 1"),
    "limit": (_is_optional_count, "an integer >= 1, or None for every example"),
    "sample": (_is_optional_count, "an integer >= 1, or None for the whole split"),
    "seed": (_is_seed, "an integer >= 0"),
    "max_new_tokens": (_is_optional_count, "an integer >= 1, or None for the card's"),
    "timeout": (_is_seconds, "a finite number of seconds > 0"),
    "backoff": (lambda v: _is_seconds(v, inclusive=True), "a finite number of seconds >= 0"),
    "backoff_cap": (lambda v: _is_seconds(v, inclusive=True), "a finite number of seconds >= 0"),
    "backend": (lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    "constrained": (lambda v: isinstance(v, bool), "true or false"),
}


@dataclass(frozen=True)
class Example:
    id: int
    prompt: str
    target: str

    @property
    def prompt_sha(self) -> str:
        """A short digest of the prompt: a record answered for another prompt is detected."""
        return hashlib.sha256(self.prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class EvalResult:
    settings: EvalSettings
    out_dir: Path
    metric: str
    n: int
    n_failed: int
    score: float
    failed_ids: list[int] = field(default_factory=list)
    truncated_ids: list[int] = field(default_factory=list)
    unscorable: int = 0  # rows of the eval split without a reference, left out
    sample: Sample | None = None  # which rows were drawn
    answers: dict = field(default_factory=dict)  # answer_stats: the answers' distribution
    # constrained: answers that name none of the labels (cut off, or the server ignored the
    # schema), scored 0
    off_label_ids: list[int] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What a reader should know about the rows scored: a sample that took the split, and
        constrained answers that name no label."""
        notes = [self.sample.note] if self.sample and self.sample.note else []
        if self.off_label_ids:
            who = self.settings.adapter_id or "base"
            notes.append(
                f"{self.settings.task} {who} (constrained): {len(self.off_label_ids)} of "
                f"{self.n} answers name none of the labels, scored 0 (cut off by max_new_tokens, "
                "or the server did not enforce the schema)"
            )
        return notes


class Resolved(NamedTuple):
    """What a run's prompts are made from: the task's card and the model whose markup wraps
    them (the registry's model, or the plain markup's for a name outside it such as gpt-4)."""

    card: TaskCard
    model: BaseModel


@dataclass(frozen=True)
class EvalRows:
    """The rows a run scores: its examples (sampled), the metric, the split's rows without a
    reference (left out before sampling) and what was drawn."""

    examples: list[Example]
    metric: str
    unscorable: int
    sample: Sample


def run_dir(settings: EvalSettings, work_dir: Path = DEFAULT_WORK_DIR) -> Path:
    """<runs>/eval/<model>/<task>/<adapter or base>/, and constrained/ inside it for a
    constrained run (see Workdir.eval_run)."""
    return Workdir(work_dir).eval_run(
        settings.model, settings.task, settings.adapter_id, settings.constrained
    )


def load_examples(
    settings: EvalSettings,
    work_dir: Path,
    datasets_dir: Path = DATASETS_DIR,
    resolved: Resolved | None = None,
) -> tuple[list[Example], str]:
    """The eval examples a run scores (the sample, when one is asked for), prompts realized
    for the base model; and the metric's name."""
    rows = load_rows(settings, work_dir, datasets_dir, resolved)
    return rows.examples, rows.metric


def load_rows(
    settings: EvalSettings,
    work_dir: Path,
    datasets_dir: Path = DATASETS_DIR,
    resolved: Resolved | None = None,
) -> EvalRows:
    """The eval split's scorable examples, then the sample `settings` asks for drawn from them."""
    examples, metric, rows = load_eval_split(settings, work_dir, datasets_dir, resolved)
    picked, sample = draw_sample(
        examples, settings.sample, settings.seed, is_classification(metric), f"{settings.task}"
    )
    return EvalRows(picked, metric, rows - len(examples), sample)


def load_eval_split(
    settings: EvalSettings,
    work_dir: Path,
    datasets_dir: Path = DATASETS_DIR,
    resolved: Resolved | None = None,
) -> tuple[list[Example], str, int]:
    """The task's eval examples, the metric's name, and the number of rows they came from.

    Every input must hold a value and every target text: a missing input would otherwise be
    sent as the text "nan" or "None", and a bad target found only after every request. An
    example whose target is empty (WebNLG's test split has 1,779 entries without a reference)
    has nothing to be scored against: it is left out (the rows minus the examples count them);
    example ids stay the row numbers of the split.
    """
    from llmbench.tasks.prompts import realize_prompt

    card, model = resolved or resolve(settings, datasets_dir)
    table, path = _read_eval_table(card, work_dir)
    if table.empty:
        raise LLMBenchError(f"task {card.name}: the prepared {card.eval_split} split is empty")
    if settings.limit:
        table = table.head(settings.limit)
    _check_eval_table(table, card, path)
    examples = [
        Example(i, realize_prompt(card, model, row), row[card.target_col])
        for i, row in enumerate(table.to_dict("records"))
        if row[card.target_col].strip()
    ]
    if not examples:
        raise LLMBenchError(
            f"{path}: {card.target_col}: every {card.eval_split} example is empty; expected "
            f"reference text to score against; run `llmbench prepare --task {card.name}` again"
        )
    return examples, card.metric_name, len(table)


def _read_eval_table(card, work_dir: Path):
    import pyarrow as pa

    from llmbench.prepare.tables import read_prepared

    path = Workdir(work_dir).prepared(card.name)
    try:
        return read_prepared(card.name, work_dir, split=card.split_column_value), path
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise LLMBenchError(
            f"{path}: not a readable Parquet table ({reason}); "
            f"run `llmbench prepare --task {card.name}` again"
        ) from None


def _check_eval_table(table, card, path: Path) -> None:
    """One line per bad column: its first bad row (an example id) and how many more."""
    fix = f"run `llmbench prepare --task {card.name}` again"
    missing = [c for c in (*card.input_columns, card.target_col) if c not in table.columns]
    if missing:
        raise LLMBenchError(
            f"{path}: missing column(s) {', '.join(missing)}; expected the task's inputs "
            f"({', '.join(card.input_columns)}) and target ({card.target_col}); {fix}"
        )
    checks = [(c, _is_missing, "holds no value") for c in card.input_columns]
    checks.append((card.target_col, lambda v: not isinstance(v, str), "is not text"))
    problems = []
    for column, bad, what in checks:
        values = table[column].tolist()  # Python's own types, as prompts and metrics see them
        rows = [i for i, value in enumerate(values) if bad(value)]
        if rows:
            value = values[rows[0]]
            more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
            problems.append(
                f"{path}: {column}: {card.eval_split} example {rows[0]}{more} {what} "
                f"({value!r}, {type(value).__name__}); expected text; {fix}"
            )
    if problems:
        raise LLMBenchError(*problems)


def _is_missing(value) -> bool:
    """None, NaN or pandas' NA: what str() would turn into "None", "nan" or "<NA>"."""
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def resolve(settings: EvalSettings, datasets_dir: Path = DATASETS_DIR) -> Resolved:
    """The task's card and the model whose markup wraps its prompts, by the settings' names."""
    from llmbench.tasks.cards import get_card

    return Resolved(get_card(settings.task, datasets_dir), _markup_model(settings.model))


def _markup_model(name: str):
    """The registry model whose markup wraps prompts; names outside it (gpt-4) get plain."""
    from llmbench.tasks.models import get_model, load_registry

    if name in load_registry():
        return get_model(name)
    return next(m for m in load_registry().values() if m.markup_name == "plain")


async def _send(
    backend, request: Request, settings: EvalSettings
) -> tuple[str | None, str | None, int]:
    """(output, error, attempts): retries transient failures with capped exponential backoff."""
    delay, error = settings.backoff, "no attempt"
    for attempt in range(1, settings.max_attempts + 1):
        try:
            output = await backend.generate(request)  # gives up after settings.timeout seconds
        except Transient as exc:
            error = str(exc)
        except Rejected as exc:
            return None, f"rejected: {exc}", attempt
        else:
            if isinstance(output, str):
                return output, None, attempt
            error = f"the server answered {type(output).__name__}, not text"
        if attempt < settings.max_attempts:
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, settings.backoff_cap)
    return None, f"failed after {settings.max_attempts} attempts: {error}", settings.max_attempts


async def collect(
    settings: EvalSettings,
    examples: list[Example],
    log: ResponseLog,
    progress: bool = True,
    labels: tuple[str, ...] | None = None,
) -> None:
    """Send every example concurrently (constrained to `labels` when given) and log each
    outcome as it arrives."""
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
                backend, Request(example.prompt, max_new, settings.adapter_id, labels), settings
            )
            log.append(
                outcome_record(example, output, error, attempts, time.perf_counter() - started)
            )
            bar.update(1)

    with tqdm(
        total=len(examples), desc=f"eval {settings.task}", unit=" ex", disable=not progress
    ) as bar:
        tasks = [asyncio.create_task(one(e)) for e in examples]
        try:
            await asyncio.gather(*tasks)
        except Refused as exc:
            who = f"adapter '{settings.adapter_id}'" if settings.adapter_id else "the base model"
            raise LLMBenchError(f"{settings.endpoint}: refused {who}: {exc}") from None
        finally:
            for task in tasks:  # after any failure: stop the rest, and collect every outcome
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await backend.close()


def check_reachable(settings: EvalSettings) -> None:
    """Fail fast, with one line, when the endpoint is not http(s) or nothing answers there."""
    import requests

    if urlsplit(settings.endpoint).scheme not in ("http", "https"):
        raise LLMBenchError(
            f"endpoint: expected an http:// or https:// URL, got {settings.endpoint!r}"
        )
    url = settings.endpoint.rstrip("/") + ("/health" if settings.backend == "lorax" else "")
    try:
        requests.get(url, headers=auth_headers(settings.backend), timeout=min(settings.timeout, 10))
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise LLMBenchError(
            f"{public_endpoint(settings.endpoint)}: unreachable ({reason}); is the server up?"
        ) from None


def pending_examples(
    settings: EvalSettings,
    work_dir: Path = DEFAULT_WORK_DIR,
    out_dir: Path | None = None,
    retry_failed: bool = True,
    datasets_dir: Path = DATASETS_DIR,
    resolved: Resolved | None = None,
) -> int:
    """How many eval examples a run would send (0: a rerun sends nothing)."""
    examples, _ = load_examples(settings, work_dir, datasets_dir, resolved)
    out = Path(out_dir) if out_dir else run_dir(settings, work_dir)
    return len(to_send(examples, read_responses(out / RESPONSES), retry_failed))


def evaluate(
    settings: EvalSettings,
    work_dir: Path = DEFAULT_WORK_DIR,
    out_dir: Path | None = None,
    progress: bool = True,
    *,
    retry_failed: bool = True,
    restart: bool = False,
    datasets_dir: Path = DATASETS_DIR,
    resolved: Resolved | None = None,
) -> EvalResult:
    """Run (or resume) one evaluation and write its scores.

    Resuming sends the examples with no record, and the failed ones unless `retry_failed` is
    False; responses made with other answer-changing settings are refused unless `restart`.
    `resolved`: the task's card and the model, already loaded (else looked up by name).
    """
    from llmbench.evaluate.constrained import card_labels, check_targets
    from llmbench.tasks.metrics import get_metric

    resolved = resolved or resolve(settings, datasets_dir)
    labels = card_labels(resolved.card) if settings.constrained else None
    rows = load_rows(settings, work_dir, datasets_dir, resolved)
    examples, metric = rows.examples, rows.metric
    if labels:
        check_targets(resolved.card, examples, metric)
    get_metric(metric).preflight()  # before any request: e.g. a sandbox that cannot isolate
    if settings.max_new_tokens is None:
        settings = _with(settings, max_new_tokens=resolved.card.max_new_tokens)
    out = Path(out_dir) if out_dir else run_dir(settings, work_dir)
    responses_path = out / RESPONSES
    if restart:
        start_over(responses_path)
    found = read_response_file(responses_path)
    check_same_run(responses_path, found, answer_settings(settings), examples)
    pending = to_send(examples, found.records, retry_failed)
    if pending:
        check_reachable(settings)
        _collect_into(responses_path, settings, pending, progress, labels)
        found = read_response_file(responses_path)
    return score_run(
        settings, examples, metric, found.records, out, rows.unscorable, rows.sample, labels
    )


def _collect_into(
    path: Path,
    settings: EvalSettings,
    pending: list[Example],
    progress: bool,
    labels: tuple[str, ...] | None = None,
) -> None:
    """Append this run's settings line and every pending example's outcome to `path`."""
    line = {
        **answer_settings(settings),
        "endpoint": public_endpoint(settings.endpoint),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    log = ResponseLog(path, first_line={"settings": line})
    try:
        asyncio.run(collect(settings, pending, log, progress, labels))
    finally:
        log.close()


UNRECORDED = "unrecorded"  # answers made before llmbench recorded the adapter's weights digest


def recorded_weights(settings: EvalSettings, work_dir: Path = DEFAULT_WORK_DIR) -> str | None:
    """The adapter weights digest that the run's recorded answers were made with: None when
    there are no answers yet, UNRECORDED when none of their settings lines has one."""
    found = read_response_file(run_dir(settings, work_dir) / RESPONSES)
    if not found.records:
        return None
    return last_known(found, "adapter_weights") or UNRECORDED


def answer_settings(settings: EvalSettings) -> dict:
    """The settings that decide an answer (ANSWER_SETTINGS) and which rows are answered
    (ROW_SETTINGS), as a settings line holds them."""
    rows = {"sample": settings.sample, "seed": settings.seed if settings.sample else None}
    return {**{name: getattr(settings, name) for name in ANSWER_SETTINGS}, **rows}


def _with(settings: EvalSettings, **changes) -> EvalSettings:
    return EvalSettings(**{**asdict(settings), **changes})


def check_failed_share(result: EvalResult, max_share: float = DEFAULT_MAX_FAILED_SHARE) -> None:
    """Raise when more than `max_share` of the examples failed (the scores are still written)."""
    if result.n and result.n_failed / result.n > max_share:
        who = result.settings.adapter_id or "base"
        raise LLMBenchError(
            f"{result.out_dir / SCORES}: {result.n_failed} of {result.n} examples failed "
            f"({result.settings.task} {who}), more than --max-failed-share {max_share:g}; "
            f"the errors are in {RESPONSES}, and a rerun retries them"
        )


def score_run(
    settings: EvalSettings,
    examples: list[Example],
    metric_name: str,
    responses: dict[int, dict],
    out: Path,
    unscorable: int = 0,
    sample: Sample | None = None,
    labels: tuple[str, ...] | None = None,
) -> EvalResult:
    """Score every example (missing or failed: 0), then write scores.json and examples.csv;
    `unscorable` rows of the split had no reference and were left out; `sample` says which
    rows were drawn. With `labels` (a constrained run) the answer scored is the label the
    output names, and an output that names none scores 0 and is counted (`off_label_ids`)."""
    from llmbench.evaluate.answers import answer_stats
    from llmbench.evaluate.constrained import chosen_label
    from llmbench.tasks.metrics import get_metric

    metric = get_metric(metric_name)
    rows, failed, truncated, off_label, given = [], [], [], [], []
    for example in examples:
        record = responses.get(example.id, {"output": None, "error": "no response recorded"})
        output = record.get("output")
        answer = output if labels is None or output is None else chosen_label(output, labels)
        if output is None:
            failed.append(example.id)
        elif answer is None:
            off_label.append(example.id)
        value = 0.0 if answer is None else float(metric.score(answer, example.target))
        given.append(output if answer is None else answer)
        if record.get("truncated_from_bytes"):
            truncated.append(example.id)
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
    answers = answer_stats(given, [e.target for e in examples], is_classification(metric_name))
    result = EvalResult(
        settings, out, metric_name, n, len(failed), score, failed, truncated, unscorable,
        sample, answers, off_label,
    )  # fmt: skip
    _write_outputs(result, rows)
    return result


def _write_outputs(result: EvalResult, rows: list[tuple]) -> None:
    settings = result.settings
    summary = {
        "task": settings.task,
        "model": settings.model,
        "adapter": settings.adapter_id,
        "constrained": settings.constrained,
        "metric": result.metric,
        "n": result.n,
        "n_failed": result.n_failed,
        "score": result.score,
        "failed_ids": result.failed_ids,
        "n_truncated": len(result.truncated_ids),
        "n_unscorable": result.unscorable,
        "truncated_ids": result.truncated_ids,
        "sample": result.sample.as_record() if result.sample else None,
        "answers": result.answers,
        "n_off_label": len(result.off_label_ids),  # constrained: answers naming no label
        # the rows scored, in order, and each one's score: the report's paired bootstrap
        "ids": [r[0] for r in rows],
        "example_scores": [r[-1] for r in rows],
        "settings": {
            **{k: v for k, v in asdict(settings).items() if k not in {"task", "model"}},
            "endpoint": public_endpoint(settings.endpoint),
        },
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "prompt", "target", "output", "error", "score"])
    writer.writerows(rows)
    try:
        atomic_write_text(result.out_dir / SCORES, json.dumps(summary, indent=2) + "\n")
        atomic_write_text(result.out_dir / EXAMPLES, buffer.getvalue())
    except OSError as exc:
        raise write_error(result.out_dir / SCORES, exc) from None
