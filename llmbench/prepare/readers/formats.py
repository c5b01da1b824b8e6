"""Readers for upstream file formats, shared by the tasks' preparation code.

Each reader streams rows and turns a malformed file into one LLMBenchError line naming the file,
the line (or column) and what was expected.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError

HF_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".jsonl.gz", ".csv.gz")


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open an upstream file for reading bytes (decompressed when it ends in .gz); a missing file,
    or a .gz that is not complete gzip data, is an LLMBenchError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LLMBenchError(f"{path}: file not found; expected the upstream file here")
    if path.suffix == ".gz":
        return io.BufferedReader(_CheckedGzip(path))
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


class _CheckedGzip(io.RawIOBase):
    """gzip data whose read errors (not gzip at all, cut off) become one line naming the file."""

    def __init__(self, path: Path):
        self._path = path
        self._gzip = gzip.open(path, "rb")  # noqa: SIM115 - closed in close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._gzip.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise LLMBenchError(
                f"{self._path}: not readable as gzip ({reason}); expected a complete gzip file"
            ) from None

    def close(self) -> None:
        self._gzip.close()
        super().close()


def text_lines(path: Path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, str]]:
    """(line number, line with its line ending) of a text file, each line decoded on its own, so
    that undecodable bytes are reported at their real line. A UTF-8 BOM is never text."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise LLMBenchError(
                    f"{path}: line {number}: undecodable bytes ({exc.reason}); expected "
                    f"{encoding.removesuffix('-sig').upper()}"
                ) from None


def sniff_encoding(path: Path) -> str:
    """'utf-8-sig' when every byte of the file is UTF-8 (a leading BOM is dropped when read),
    else 'latin-1', which decodes any byte. The whole file is checked, in bounded chunks, since
    one non-UTF-8 byte anywhere means the file was not written as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    with open_binary(path) as raw:
        try:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8-sig"


def _cp1252_bytes() -> dict[str, int]:
    """Each character of bytes 0x80-0xFF read as Windows-1252 (Latin-1 where it has none)."""
    table = {}
    for value in range(0x80, 0x100):
        try:
            table[bytes([value]).decode("cp1252")] = value
        except UnicodeDecodeError:
            table[chr(value)] = value
    return table


_CP1252 = _cp1252_bytes()
_CONTINUATION = "".join(sorted(c for c, b in _CP1252.items() if b <= 0xBF))
# A UTF-8 lead byte then continuation bytes, all shown as Windows-1252 characters: UTF-8 text that
# was once read as Windows-1252 and saved again ("canÂ’t").
_DOUBLE_ENCODED = re.compile(f"[\xc2-\xf4][{re.escape(_CONTINUATION)}]+")
_C1_CONTROL = re.compile("[\x80-\x9f]")


def undo_mojibake(text: str) -> str:
    """`text` with two common re-save accidents undone: UTF-8 read as Windows-1252 (`Â’` back to
    the byte sequence's character) and C1 control characters (U+0080-U+009F, what Windows-1252
    bytes such as 0x92 become when read as Latin-1) read as their Windows-1252 characters (`’`).
    A run that does not decode as UTF-8 is left as it is."""
    text = _DOUBLE_ENCODED.sub(_redecode, text)
    return _C1_CONTROL.sub(_c1_as_cp1252, text)


def _redecode(match: re.Match) -> str:
    try:
        return bytes(_CP1252[c] for c in match.group(0)).decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)


def _c1_as_cp1252(match: re.Match) -> str:
    try:
        return bytes([ord(match.group(0))]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D have no Windows-1252 character
        return match.group(0)


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; each object must hold `required` keys."""
    for number, line in text_lines(path):
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


def read_csv(
    path: Path,
    required: tuple[str, ...] = (),
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    *,
    fieldnames: tuple[str, ...] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) for each CSV record; the header must name every `required` column
    and every record must have as many fields as the header. The number is the record's last
    line (a quoted field may span lines).

    `fieldnames` names the columns of a file without a header line (every line is a record);
    `quoting=csv.QUOTE_NONE` reads quote characters as text (the GLUE TSV files)."""
    lines = (line for _, line in text_lines(path, encoding))
    reader = csv.DictReader(lines, fieldnames=fieldnames, delimiter=delimiter, quoting=quoting)
    width = "header's" if fieldnames is None else "expected"
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
                    f"{path}: line {reader.line_num}: {count} fields than the {width} {len(header)}"
                )
            yield reader.line_num, row
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
    start = 0
    for number, line in text_lines(path):
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


def row_text(row: dict, column: str, path: Path, number: int, unit: str = "row") -> str:
    """The row's text in `column`, surrounding whitespace stripped; anything else is an error
    naming the file and the row (or, with `unit="line"`, the line)."""
    value = row[column]
    if not isinstance(value, str):
        raise LLMBenchError(
            f"{path}: {unit} {number}: {column} is {type(value).__name__}; expected text"
        )
    return value.strip()


def class_index(value, count: int) -> int | None:
    """An integer class label in [0, count) (digits in a CSV copy), or None when it is not one."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count:
        return value
    return None
