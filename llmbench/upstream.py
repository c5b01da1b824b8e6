"""Readers for upstream file formats, shared by the tasks' preparation code.

Each reader streams rows and turns a malformed file into one LLMBenchError line naming the file,
the line (or column) and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError

HF_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".jsonl.gz", ".csv.gz")


def open_text(path: Path, encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file (gzip when it ends in .gz), decoding strictly; a missing file is named."""
    path = Path(path)
    if not path.is_file():
        raise LLMBenchError(f"{path}: file not found; expected the upstream file here")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def _decode_error(path: Path, line: int, exc: UnicodeDecodeError) -> LLMBenchError:
    return LLMBenchError(f"{path}: line {line}: undecodable bytes ({exc.reason}); expected UTF-8")


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; each object must hold `required` keys."""
    number = 0
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LLMBenchError(
                        f"{path}: line {number}: bad JSON ({exc.msg}); expected one JSON object"
                    ) from None
                if not isinstance(row, dict):
                    raise LLMBenchError(f"{path}: line {number}: expected a JSON object")
                missing = [key for key in required if key not in row]
                if missing:
                    raise LLMBenchError(
                        f"{path}: line {number}: missing key(s) {', '.join(missing)}; "
                        f"expected {', '.join(required)}"
                    )
                yield number, row
        except UnicodeDecodeError as exc:
            raise _decode_error(path, number + 1, exc) from None


def read_csv(
    path: Path, required: tuple[str, ...] = (), delimiter: str = ",", encoding: str = "utf-8"
) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for each CSV record; the header must name every `required` column
    and every record must have as many fields as the header."""
    with open_text(path, encoding) as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise LLMBenchError(
                    f"{path}: missing column(s) {', '.join(missing)}; header has "
                    f"{', '.join(header) or 'nothing'}"
                )
            for row in reader:
                if None in row or None in row.values():
                    count = "more" if None in row else "fewer"
                    raise LLMBenchError(
                        f"{path}: line {reader.line_num}: {count} fields than the header's "
                        f"{len(header)}"
                    )
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise _decode_error(path, reader.line_num + 1, exc) from None
        except csv.Error as exc:
            raise LLMBenchError(f"{path}: line {reader.line_num}: broken CSV ({exc})") from None


def read_token_blocks(
    path: Path, columns: int, skip_prefix: str | None = None, delimiter: str | None = None
) -> Iterator[tuple[int, list[list[str]]]]:
    """Sentences of a CoNLL/IOB file: (first line number, rows of fields), blank-line separated.

    Every non-blank line must have `columns` fields; lines starting with `skip_prefix`
    (e.g. -DOCSTART-) end the current sentence and are dropped.
    """
    block: list[list[str]] = []
    start = number = 0
    with open_text(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                text = line.rstrip("\r\n")
                if not text.strip() or (skip_prefix and text.startswith(skip_prefix)):
                    if block:
                        yield start, block
                    block = []
                    continue
                fields = text.split(delimiter)
                if len(fields) != columns:
                    raise LLMBenchError(
                        f"{path}: line {number}: {len(fields)} field(s); expected {columns} "
                        f"(a broken block?)"
                    )
                if not block:
                    start = number
                block.append(fields)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, number + 1, exc) from None
    if block:
        yield start, block


def find_split_file(folder: Path, split: str) -> Path:
    """The file holding one split of a Hugging Face dataset copied locally.

    Accepted names: `<split>.<ext>` or the hub's parquet export `<split>-00000-of-00001.parquet`
    (one shard), with ext one of parquet, jsonl, json, csv (optionally .gz).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LLMBenchError(f"{folder}: not a directory; expected a folder with one file per split")
    candidates = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.name.endswith(HF_SUFFIXES)
        and (p.name.split(".")[0] == split or p.name.startswith(f"{split}-"))
    )
    if not candidates:
        raise LLMBenchError(
            f"{folder}: no file for split '{split}'; expected {split}.jsonl, {split}.parquet or "
            f"{split}.csv"
        )
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise LLMBenchError(f"{folder}: several files for split '{split}' ({names}); expected one")
    return candidates[0]


def read_hf_split(
    folder: Path, split: str, required: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict]]:
    """(row number, row) of one split of a locally copied Hugging Face dataset."""
    path = find_split_file(folder, split)
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        yield from read_csv(path, required)
    elif name.endswith(".parquet"):
        yield from _read_parquet(path, required)
    else:
        yield from read_jsonl(path, required)


def _read_parquet(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        # No pre-buffering: it reads whole row groups ahead and lifts peak memory.
        table_file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise LLMBenchError(f"{path}: not a readable Parquet file ({exc})") from None
    names = table_file.schema_arrow.names
    missing = [c for c in required if c not in names]
    if missing:
        raise LLMBenchError(
            f"{path}: missing column(s) {', '.join(missing)}; file has {', '.join(names)}"
        )
    number = 0
    for batch in table_file.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row


# ---- rows of a local Hugging Face copy, shared by the hub-hosted tasks ----------------------


def hf_rows(
    folder: Path, splits: dict[str, str], required: tuple[str, ...]
) -> Iterator[tuple[str, Path, int, dict]]:
    """(our split, file, row number, row) for every row of a local Hugging Face copy.

    `splits` maps our split to the upstream split (card.source["splits"]); `a+b` reads a, then b.
    Every row must hold the `required` columns.
    """
    for split, upstream in splits.items():
        for part in upstream.split("+"):
            path = find_split_file(folder, part)
            for number, row in read_hf_split(folder, part, required):
                yield split, path, number, row


def row_text(row: dict, column: str, path: Path, number: int) -> str:
    """The row's text in `column`, surrounding whitespace stripped; anything else is an error."""
    value = row[column]
    if not isinstance(value, str):
        raise LLMBenchError(
            f"{path}: row {number}: {column} is {type(value).__name__}; expected text"
        )
    return value.strip()


def class_index(value, count: int) -> int | None:
    """An integer class label in [0, count) (digits in a CSV copy), or None when it is not one."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count:
        return value
    return None
