"""`llmbench prepare`: a task's upstream data -> one prepared table (inputs, target, split).

Each task's own code lives beside its card in `datasets/<task>/prepare.py` and defines

    def read_rows(source: Path, card: TaskCard) -> Iterator[tuple[str, dict]]:
        '''(split name, row) pairs read from `source`, a file or folder in the upstream format.'''

where the split name is train, validation or test and each row holds the card's input columns
and target column as text. This module streams those rows into
`<runs>/prepared/<task>.parquet` in bounded batches, checks them, and renames the file into place
only when the whole table is good. A failure leaves nothing behind: no half table, no temporary
file, no folder it made, and an earlier good table as it was. Files get the user's umask.

The prepared table's split column holds Ludwig's fixed-split codes: 0 train, 1 validation, 2 test.
Beside it, `<task>.manifest.json` records where the rows came from and each split's row count
next to the study's (the card's split_counts); a count that differs is reported, and under
`strict` it fails the preparation before the table is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR, DEFAULT_WORK_DIR
from llmbench.prepare.task_code import task_module
from llmbench.tasks.cards import SPLIT_NAMES, TaskCard, as_card
from llmbench.workdir import Workdir

SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}
FIXTURE_DIR = "fixture"
BATCH_ROWS = 8192
# Seconds before the progress bar first shows: a quick failure prints only its error line.
PROGRESS_DELAY = 0.5


@dataclass
class PrepareResult:
    task: str
    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    # One line per prepared split whose row count is not the study's.
    differences: list[str] = field(default_factory=list)


def prepared_path(task: str, out_dir: Path = DEFAULT_WORK_DIR) -> Path:
    """Where `prepare` writes a task's table (see Workdir.prepared)."""
    return Workdir(out_dir).prepared(task)


def manifest_path(task: str, out_dir: Path = DEFAULT_WORK_DIR) -> Path:
    """Where `prepare` records the source and row counts of a task's table."""
    return Workdir(out_dir).prepared_manifest(task)


def fixture_source(card: TaskCard) -> Path:
    """The task's shipped fixture: a small copy in the upstream format, written by the team."""
    return card.folder / FIXTURE_DIR


def prepare_task(
    task: str | TaskCard,
    source: Path | None = None,
    out_dir: Path = DEFAULT_WORK_DIR,
    datasets_dir: Path = DATASETS_DIR,
    progress: bool = True,
    strict: bool = False,
) -> PrepareResult:
    """Prepare one task (by name, or its card already loaded) from `source` (its upstream,
    fetched when None) into a Parquet table and its manifest. With `strict`, a split whose row
    count is not the study's is an error and the table is not written."""
    card = as_card(task, datasets_dir)
    task = card.name
    module = task_module(task, datasets_dir)
    check_work_dir(Path(out_dir))
    workdir = Workdir(out_dir)
    if source is None:
        from llmbench.prepare.fetch import fetch_upstream

        source = fetch_upstream(card, out_dir)
    source = Path(source)
    if not source.exists():
        raise LLMBenchError(f"{source}: not found; expected the task's upstream file or folder")
    rows = module.read_rows(source, card)
    target = workdir.prepared(task)
    # A fixture is small by design: its counts are recorded, not held to the study's.
    compare = source.resolve() != fixture_source(card).resolve()
    with folders_made_for(target):
        counts = _write_table(card, rows, target, progress, strict and compare)
    differences = count_differences(card, counts) if compare else []
    write_manifest(card, source, counts, workdir.prepared_manifest(task))
    return PrepareResult(task=task, path=target, counts=counts, differences=differences)


def count_differences(card: TaskCard, counts: dict[str, int]) -> list[str]:
    """'webnlg test: 1,779 rows; the study had 5,713' for each prepared split whose row count
    differs from the card's split_counts (splits the study gives no count for are not compared)."""
    return [
        f"{card.name} {split}: {rows:,} rows; the study had {card.split_counts[split]:,}"
        for split, rows in counts.items()
        if card.split_counts.get(split) is not None and rows != card.split_counts[split]
    ]


def write_manifest(card: TaskCard, source: Path, counts: dict[str, int], path: Path) -> None:
    """The manifest beside the table: task, card version, source, and per split our row count
    next to the study's."""
    manifest = {
        "task": card.name,
        "card_version": card.version,
        "source": str(Path(source).resolve()),
        "rows": counts,
        "study_rows": {split: card.split_counts.get(split) for split in counts},
    }
    temp = new_temp_file(path)
    try:
        temp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def check_work_dir(out_dir: Path) -> None:
    """The work directory is a folder, or can be made as one, before anything is read or fetched."""
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LLMBenchError(
            f"{existing}: is a file; expected a work directory (--runs) or a folder to make it in"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LLMBenchError(
            f"{existing}: not writable; expected a work directory (--runs) llmbench can write in"
        )


@contextlib.contextmanager
def folders_made_for(path: Path) -> Iterator[None]:
    """Make `path`'s missing parent folders; when the block fails, remove those left empty."""
    made = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LLMBenchError(
            f"{path.parent}: cannot be created ({exc.strerror}); expected a folder llmbench "
            "can write in (--runs)"
        ) from None
    try:
        yield
    except BaseException:
        for folder in made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: someone else may have written there meanwhile
        raise


def new_temp_file(target: Path) -> Path:
    """An empty hidden file beside `target`, created with the user's umask (mkstemp's is 0600,
    which os.replace would carry over to the finished file)."""
    while True:
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise LLMBenchError(
                f"{temp.parent}: cannot write a file there ({exc.strerror}); expected a folder "
                "llmbench can write in (--runs)"
            ) from None


def _columns(card: TaskCard) -> list[str]:
    return [*card.input_columns, card.target_col, card.split_column]


def _write_table(
    card: TaskCard, rows: Iterator[tuple[str, dict]], target: Path, progress: bool, strict: bool
) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_columns = [*card.input_columns, card.target_col]
    schema = pa.schema(
        [*(pa.field(c, pa.string()) for c in text_columns), pa.field(card.split_column, pa.int8())]
    )
    temp = new_temp_file(target)
    counts: Counter[str] = Counter()
    try:
        with (
            pq.ParquetWriter(str(temp), schema, compression="zstd") as writer,
            _progress(f"prepare {card.name}", progress) as bar,
        ):
            batch: dict[str, list] = {c: [] for c in _columns(card)}
            for split, row in rows:
                _add_row(card, batch, split, row)
                counts[split] += 1
                if len(batch[card.split_column]) >= BATCH_ROWS:
                    bar.update(_flush(writer, schema, batch))
            bar.update(_flush(writer, schema, batch))
        _check_splits(card, counts)
        counted = {n: counts.get(n, 0) for n in SPLIT_CODES if n in card.source["splits"]}
        if strict and (differences := count_differences(card, counted)):
            raise LLMBenchError(
                *(f"{d} (--strict: every count must be the study's)" for d in differences)
            )
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return counted


@contextlib.contextmanager
def _progress(desc: str, enabled: bool):
    """A row counter on a terminal (none in a log: disable=None), shown after PROGRESS_DELAY;
    on failure it is wiped, so the error line is not preceded by half a bar."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=" rows", disable=None if enabled else True, delay=PROGRESS_DELAY)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()


def _add_row(card: TaskCard, batch: dict[str, list], split: str, row: dict) -> None:
    if split not in SPLIT_CODES:
        raise LLMBenchError(
            f"task {card.name}: split '{split}' unknown; expected train, validation or test"
        )
    for column in (*card.input_columns, card.target_col):
        value = row.get(column)
        if not isinstance(value, str):
            raise LLMBenchError(
                f"task {card.name}: column '{column}' is {type(value).__name__} in a {split} row; "
                "expected text"
            )
        batch[column].append(value)
    batch[card.split_column].append(SPLIT_CODES[split])


def _flush(writer, schema, batch: dict[str, list]) -> int:
    import pyarrow as pa

    size = len(next(iter(batch.values())))
    if size:
        writer.write_table(pa.table(batch, schema=schema))
        for values in batch.values():
            values.clear()
    return size


def _check_splits(card: TaskCard, counts: Counter[str]) -> None:
    empty = [s for s in card.source["splits"] if counts.get(s, 0) == 0]
    if empty:
        raise LLMBenchError(
            f"task {card.name}: split(s) {', '.join(empty)} came out empty; expected rows for "
            f"every split in source.splits ({', '.join(card.source['splits'])})"
        )


def read_prepared(task: str, out_dir: Path = DEFAULT_WORK_DIR, split: int | None = None):
    """A prepared table as a pandas DataFrame (text columns as str), optionally one split."""
    import pyarrow.parquet as pq

    path = Workdir(out_dir).prepared(task)
    if not path.is_file():
        raise LLMBenchError(f"{path}: not prepared yet; run `llmbench prepare --task {task}`")
    frame = pq.read_table(path).to_pandas()
    if split is not None:
        split_column = frame.columns[-1]
        frame = frame[frame[split_column] == split].reset_index(drop=True)
    return frame
