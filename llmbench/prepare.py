"""`llmbench prepare`: a task's upstream data -> one prepared table (inputs, target, split).

Each task's own code lives beside its card in `datasets/<task>/prepare.py` and defines

    def read_rows(source: Path, card: TaskCard) -> Iterator[tuple[str, dict]]:
        '''(split name, row) pairs read from `source`, a file or folder in the upstream format.'''

where the split name is train, validation or test and each row holds the card's input columns
and target column as text. This module streams those rows into
`<out>/prepared/<task>.parquet` in bounded batches, checks them, and renames the file into place
only when the whole table is good, so a failure never leaves half a table behind.

The prepared table's split column holds Ludwig's fixed-split codes: 0 train, 1 validation, 2 test.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR, DEFAULT_WORK_DIR
from llmbench.tasks import SPLIT_NAMES, TaskCard, get_card

SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}
FIXTURE_DIR = "fixture"
BATCH_ROWS = 8192


@dataclass
class PrepareResult:
    task: str
    path: Path
    counts: dict[str, int] = field(default_factory=dict)


def task_module(task: str, datasets_dir: Path = DATASETS_DIR) -> ModuleType:
    """The task's own preparation code, `datasets/<task>/prepare.py`, imported by path."""
    path = Path(datasets_dir) / task / "prepare.py"
    if not path.is_file():
        raise LLMBenchError(f"{path}: file not found; expected the task's preparation code")
    # One module per file: a user's folder may hold a task of the same name as ours.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"llmbench_tasks.{task}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import does (dataclasses look themselves up there).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if not callable(getattr(module, "read_rows", None)):
        raise LLMBenchError(f"{path}: read_rows: not defined; expected read_rows(source, card)")
    return module


def prepared_path(task: str, out_dir: Path = DEFAULT_WORK_DIR) -> Path:
    """Where `prepare` writes a task's table."""
    return Path(out_dir) / "prepared" / f"{task}.parquet"


def fixture_source(card: TaskCard) -> Path:
    """The task's shipped fixture: a small copy in the upstream format, written by the team."""
    return card.folder / FIXTURE_DIR


def prepare_task(
    task: str,
    source: Path | None = None,
    out_dir: Path = DEFAULT_WORK_DIR,
    datasets_dir: Path = DATASETS_DIR,
    progress: bool = True,
) -> PrepareResult:
    """Prepare one task from `source` (its upstream, fetched when None) into a Parquet table."""
    card = get_card(task, datasets_dir)
    module = task_module(task, datasets_dir)
    if source is None:
        from llmbench.fetch import fetch_upstream

        source = fetch_upstream(card, out_dir)
    source = Path(source)
    if not source.exists():
        raise LLMBenchError(f"{source}: not found; expected the task's upstream file or folder")
    rows = module.read_rows(source, card)
    target = prepared_path(task, out_dir)
    counts = _write_table(card, rows, target, progress)
    return PrepareResult(task=task, path=target, counts=counts)


def _columns(card: TaskCard) -> list[str]:
    return [*card.input_columns, card.target_col, card.split_column]


def _write_table(
    card: TaskCard, rows: Iterator[tuple[str, dict]], target: Path, progress: bool
) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    text_columns = [*card.input_columns, card.target_col]
    schema = pa.schema(
        [*(pa.field(c, pa.string()) for c in text_columns), pa.field(card.split_column, pa.int8())]
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    counts: Counter[str] = Counter()
    try:
        with (
            pq.ParquetWriter(tmp_name, schema, compression="zstd") as writer,
            tqdm(desc=f"prepare {card.name}", unit=" rows", disable=not progress) as bar,
        ):
            batch: dict[str, list] = {c: [] for c in _columns(card)}
            for split, row in rows:
                _add_row(card, batch, split, row)
                counts[split] += 1
                if len(batch[card.split_column]) >= BATCH_ROWS:
                    bar.update(_flush(writer, schema, batch))
            bar.update(_flush(writer, schema, batch))
        _check_splits(card, counts)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return {name: counts.get(name, 0) for name in SPLIT_CODES if name in card.source["splits"]}


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

    path = prepared_path(task, out_dir)
    if not path.is_file():
        raise LLMBenchError(f"{path}: not prepared yet; run `llmbench prepare --task {task}`")
    frame = pq.read_table(path).to_pandas()
    if split is not None:
        split_column = frame.columns[-1]
        frame = frame[frame[split_column] == split].reset_index(drop=True)
    return frame
