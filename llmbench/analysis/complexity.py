"""`llmbench complexity`: the study's dataset-complexity heuristics of a task's training rows.

Per example, with input = the card's `prompt_template` filled with the row's input columns (the
realized prompt without any model's markup; a user's dataset without a template joins its input
columns with a blank line) and output = the target:

- input, output and example (input + output) lengths in tiktoken cl100k_base tokens;
- the ROUGE-L F-measure between input and output: the `rouge` metric's (tokenized as
  rouge-score does: lowercase, runs of characters other than a-z and 0-9 split words, no
  stemming);
- compressibility: zlib (level 9) compressed size over raw size of the example's UTF-8 text
  (input, a newline, output); short texts can exceed 1 because of zlib's fixed overhead.

Per task: mean, population standard deviation (ddof 0) and 95th percentile (linear
interpolation) of the lengths, mean and sd of ROUGE-L and compressibility, and the number of
examples. Large tables are read in bounded batches and measured by a pool of worker processes;
small ones in this process.
"""

from __future__ import annotations

import csv
import io
import os
import string
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmbench.errors import LLMBenchError
from llmbench.paths import DEFAULT_WORK_DIR, atomic_write_text
from llmbench.tasks.cards import TaskCard, template_fields
from llmbench.tasks.metrics import rouge

COMPRESSOR = "zlib-9"
INPUT_FROM_TEMPLATE = "prompt_template"
INPUT_FROM_COLUMNS = "input_columns"
CHUNK_ROWS = 20_000
PARALLEL_FROM_ROWS = 50_000
PROGRESS_FROM_ROWS = 10_000
MAX_WORKERS = 4

LENGTHS = ("input_tokens", "output_tokens", "example_tokens")
HEURISTICS = (
    *(f"{length}_{stat}" for length in LENGTHS for stat in ("p95", "mean", "sd")),
    "io_rougeL_mean",
    "io_rougeL_sd",
    "compressibility_mean",
    "compressibility_sd",
    "n_examples",
)
COLUMNS = ("task", "split", *HEURISTICS, "compressor", "input_text", "study_n_train")


# --- one example --------------------------------------------------------------------------------


def compressibility(text: str) -> float:
    """zlib level-9 compressed size over raw size of the UTF-8 text."""
    raw = text.encode("utf-8")
    return len(zlib.compress(raw, 9)) / max(len(raw), 1)


def example_text(input_text: str, output_text: str) -> str:
    """The text whose compressibility is measured: input, a newline, output."""
    return f"{input_text}\n{output_text}"


# --- a batch of examples (runs in worker processes) ---------------------------------------------


@dataclass
class Batch:
    """Rows to measure: the template, its column names, the columns' values and the targets."""

    template: str
    columns: tuple[str, ...]
    values: list[list[str]]
    targets: list[str]


def token_counts(texts: Sequence[str]) -> list[int]:
    """cl100k_base counts, as `llmbench.tasks.tokens.count_tokens` gives them, in this thread.

    Worker processes already use every core; count_tokens' thread pool would only add a
    hand-off per text, which for prompt-sized texts costs more than encoding them (measured:
    1.1 s against 0.64 s of CPU for 20,000 glue_mnli-sized prompts).
    """
    from llmbench.tasks.tokens import cl100k

    encode = cl100k().encode_ordinary
    return [len(encode(text)) for text in texts]


def template_pieces(template: str) -> list[str]:
    """The template cut into sub-templates whose token counts add up to the filled whole's.

    cl100k_base splits text into pre-tokens by a regular expression and encodes each on its own.
    Right after a newline that is followed by a non-space character there is always a split:
    no pattern carries a newline on into a visible character, and the patterns that read ahead
    (whitespace to the end, whitespace not before a visible character) only decide among
    whitespace, which ends at that newline. So a cut where the template's own text has a newline
    then a visible ASCII character (as before every `### Header:`) is exact whatever the filled
    values are, and a piece without placeholders — the instruction — is counted once per task
    instead of once per example.
    """
    pieces, current = [], ""
    for literal, name, _, _ in string.Formatter().parse(template):
        start = 0
        for cut in range(1, len(literal)):
            if literal[cut - 1] == "\n" and "!" <= literal[cut] <= "~":
                pieces.append(current + _escaped(literal[start:cut]))
                current, start = "", cut
        current += _escaped(literal[start:]) + ("" if name is None else f"{{{name}}}")
    return [piece for piece in [*pieces, current] if piece]


def _escaped(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def input_token_counts(batch: Batch) -> np.ndarray:
    """Token counts of the filled template per row, counting placeholder-free pieces once."""
    counts = np.zeros(len(batch.targets), dtype=np.int64)
    rows = None
    for piece in template_pieces(batch.template):
        if not template_fields(piece):
            counts += token_counts([piece.format()])[0]
            continue
        if rows is None:
            rows = [
                dict(zip(batch.columns, row, strict=True))
                for row in zip(*batch.values, strict=True)
            ]
        counts += token_counts([piece.format_map(row) for row in rows])
    return counts


def measure_batch(batch: Batch) -> np.ndarray:
    """Per example: input tokens, output tokens, ROUGE-L(input, output), compressibility."""
    inputs = [
        batch.template.format_map(dict(zip(batch.columns, row, strict=True)))
        for row in zip(*batch.values, strict=True)
    ]
    measures = np.empty((len(inputs), 4), dtype=np.float64)
    measures[:, 0] = input_token_counts(batch)
    measures[:, 1] = token_counts(batch.targets)
    measures[:, 2] = [rouge(i, o) for i, o in zip(inputs, batch.targets, strict=True)]
    measures[:, 3] = [
        compressibility(example_text(i, o)) for i, o in zip(inputs, batch.targets, strict=True)
    ]
    return measures


def measure_batches(batches: Iterable[Batch], workers: int = 1, progress=None) -> np.ndarray:
    """measure_batch over every batch, in order, in `workers` processes (1: this process).

    At most two batches per worker are in flight, so memory stays bounded by the batch size
    whatever the table's length.
    """
    parts: list[np.ndarray] = []

    def keep(part: np.ndarray) -> None:
        parts.append(part)
        if progress is not None:
            progress(len(part))

    if workers <= 1:
        for batch in batches:
            keep(measure_batch(batch))
    else:
        _measure_in_pool(batches, workers, keep)
    return np.concatenate(parts) if parts else np.empty((0, 4))


def _measure_in_pool(batches: Iterable[Batch], workers: int, keep) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold pyarrow's and tiktoken's threads
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        in_flight: deque = deque()
        for batch in batches:
            in_flight.append(pool.submit(measure_batch, batch))
            if len(in_flight) >= 2 * workers:
                keep(in_flight.popleft().result())
        while in_flight:
            keep(in_flight.popleft().result())


def default_workers(rows: int) -> int:
    """Worker processes worth starting for `rows` examples (start-up costs about a second)."""
    if rows < PARALLEL_FROM_ROWS:
        return 1
    return max(1, min(MAX_WORKERS, available_cores()))


def available_cores() -> int:
    """Cores this process may run on (all cores where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --- per task -----------------------------------------------------------------------------------


def summarize(measures: np.ndarray) -> dict[str, float]:
    """The task's heuristics from its per-example measures (see measure_batch)."""
    if len(measures) == 0:
        raise ValueError("no examples to summarize")
    lengths = {
        "input_tokens": measures[:, 0],
        "output_tokens": measures[:, 1],
        "example_tokens": measures[:, 0] + measures[:, 1],
    }
    row: dict[str, float] = {}
    for name, values in lengths.items():
        row[f"{name}_p95"] = float(np.percentile(values, 95))
        row[f"{name}_mean"] = float(values.mean())
        row[f"{name}_sd"] = float(values.std())
    row["io_rougeL_mean"] = float(measures[:, 2].mean())
    row["io_rougeL_sd"] = float(measures[:, 2].std())
    row["compressibility_mean"] = float(measures[:, 3].mean())
    row["compressibility_sd"] = float(measures[:, 3].std())
    row["n_examples"] = len(measures)
    return {key: round(value, 6) for key, value in row.items()}


def task_complexity(
    task: str | TaskCard,
    work_dir: Path = DEFAULT_WORK_DIR,
    split: str = "train",
    datasets_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict:
    """One row of heuristics for a prepared task's `split` (see the module docstring); `task`
    is its name, or its card already loaded."""
    from llmbench.paths import DATASETS_DIR
    from llmbench.prepare.tables import SPLIT_CODES
    from llmbench.tasks.cards import as_card
    from llmbench.workdir import Workdir

    card = as_card(task, datasets_dir or DATASETS_DIR)
    task = card.name
    path = Workdir(work_dir).prepared(task)
    if not path.is_file():
        raise LLMBenchError(f"{path}: not prepared yet; run `llmbench prepare --task {task}`")
    if split not in SPLIT_CODES:
        raise LLMBenchError(f"--split: '{split}' unknown; expected train, validation or test")
    rows = _split_rows(path, card.split_column, SPLIT_CODES[split])
    if rows == 0:
        raise LLMBenchError(
            f"{path}: task {task} has no {split} rows; expected at least one "
            f"(prepare it from a source with a {split} split)"
        )
    batches = _prepared_batches(path, card, SPLIT_CODES[split])
    measures = _measure_with_progress(batches, rows, workers, progress, f"complexity {task}")
    return {
        "task": task,
        "split": split,
        **summarize(measures),
        "compressor": COMPRESSOR,
        "input_text": INPUT_FROM_TEMPLATE,
        "study_n_train": card.split_counts.get("train") if split == "train" else None,
    }


def texts_complexity(
    name: str,
    template: str,
    columns: Sequence[str],
    values: Sequence[Sequence[str]],
    targets: Sequence[str],
    workers: int | None = None,
) -> dict:
    """Heuristics of in-memory rows: `values` holds one list per column of `columns`."""
    if not targets:
        raise LLMBenchError(f"{name}: no rows; expected at least one example")
    batches = (
        Batch(
            template,
            tuple(columns),
            [list(v[i : i + CHUNK_ROWS]) for v in values],
            list(targets[i : i + CHUNK_ROWS]),
        )
        for i in range(0, len(targets), CHUNK_ROWS)
    )
    measures = _measure_with_progress(batches, len(targets), workers, False, name)
    input_text = (
        INPUT_FROM_TEMPLATE if template != joined_template(columns) else (INPUT_FROM_COLUMNS)
    )
    return {
        "task": name,
        "split": "train",
        **summarize(measures),
        "compressor": COMPRESSOR,
        "input_text": input_text,
        "study_n_train": None,
    }


def joined_template(columns: Sequence[str]) -> str:
    """The template of a dataset without one: its input columns joined by a blank line."""
    return "\n\n".join(f"{{{column}}}" for column in columns)


def _measure_with_progress(batches, rows: int, workers, progress: bool, label: str):
    from tqdm import tqdm

    workers = default_workers(rows) if workers is None else workers
    quiet = not progress or rows < PROGRESS_FROM_ROWS
    with tqdm(total=rows, desc=label, unit=" rows", disable=quiet) as bar:
        return measure_batches(batches, workers, progress=bar.update)


def _split_rows(path: Path, split_column: str, code: int) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=[split_column]).column(split_column)
    return int(pc.sum(pc.equal(column, code)).as_py() or 0)


def _prepared_batches(path: Path, card, code: int) -> Iterator[Batch]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = [*card.input_columns, card.target_col, card.split_column]
    for record_batch in pq.ParquetFile(path).iter_batches(CHUNK_ROWS, columns=columns):
        part = record_batch.filter(pc.equal(record_batch.column(card.split_column), code))
        if part.num_rows:
            yield Batch(
                card.prompt_template,
                tuple(card.input_columns),
                [part.column(c).to_pylist() for c in card.input_columns],
                part.column(card.target_col).to_pylist(),
            )


# --- the table of every task --------------------------------------------------------------------


def complexity_path(folder: Path, split: str = "train") -> Path:
    """One split's table in a folder given with `complexity --out` (in the work directory:
    Workdir.complexity)."""
    return Path(folder) / f"{split}.csv"


def write_complexity(rows: Sequence[dict], path: Path) -> list[dict]:
    """Merge `rows` into the CSV at `path` (a task's new row replaces its old one); returns all."""
    merged = {(r["task"], r["split"]): r for r in _read_rows(path)} if Path(path).is_file() else {}
    merged |= {(r["task"], r["split"]): r for r in rows}
    ordered = [merged[key] for key in sorted(merged)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    writer.writerows(ordered)
    atomic_write_text(path, buffer.getvalue())
    return ordered


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_complexity(path: Path):
    """A complexity CSV as a DataFrame indexed by task, heuristics as floats; checked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise LLMBenchError(f"{path}: not found; run `llmbench complexity --task all` first")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("task", *HEURISTICS) if c not in frame.columns]
    if missing:
        raise LLMBenchError(
            f"{path}: missing column(s) {', '.join(missing)}; expected a `llmbench complexity` CSV"
        )
    if frame["task"].duplicated().any():
        twice = sorted(set(frame["task"][frame["task"].duplicated()]))
        raise LLMBenchError(
            f"{path}: task(s) {', '.join(twice)} appear twice; expected one row "
            "per task (one split per file)"
        )
    problems = []
    for column in HEURISTICS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        for task, text in zip(
            frame["task"][numbers.isna()], frame[column][numbers.isna()], strict=True
        ):
            problems.append(f"{path}: task {task}: {column} '{text}' is not a number")
        frame[column] = numbers
    if problems:
        raise LLMBenchError(*problems)
    return frame.set_index("task")


def not_the_study(rows: Iterable[dict]) -> list[str]:
    """Tasks whose heuristics came from fewer (or more) training rows than the study had."""
    return [
        row["task"]
        for row in rows
        if str(row.get("study_n_train") or "") not in ("", "None")
        and int(float(row["n_examples"])) != int(float(row["study_n_train"]))
    ]
