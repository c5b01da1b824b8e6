"""wikisql: one row per question; the inputs are the table and the question, the target its SQL.

A row: table = the question's table as text: the header line, then one line per table row,
cells separated by ' | ' (cells as str(), as the Hugging Face loader stores them); question =
the question as published; sql = the query rendered as text the way the Hugging Face loader
builds sql.human_readable from the structured query (after WikiSQL's lib/query.py):
`SELECT <agg> <column> FROM table [WHERE <column> <op> <value> AND ...]` with the aggregation
table AGG_OPS ('', MAX, MIN, COUNT, SUM, AVG), the operator table COND_OPS (=, >, <, OP), column
names from the header, values as str(), and runs of whitespace collapsed to one space (so an
empty aggregation leaves no double space). Counts: 56355 / 8421 / 15878.

Two upstream layouts are read, told apart by the file names in `source`:
- the original release (salesforce/WikiSQL data.tar.bz2): train/dev/test.jsonl (phase,
  table_id, question, sql {sel, agg, conds: [[column, operator, value], ...]}) beside
  train/dev/test.tables.jsonl (id, header, rows, ...); recognised by train.tables.jsonl. Each
  split's tables file is read into memory (one dict by id), its questions are streamed;
- the Hugging Face export, one file per split (train/validation/test .jsonl/.parquet) with the
  nested columns table {header, rows, ...} and sql {sel, agg, conds: {column_index,
  operator_index, condition}, human_readable}; the target is rendered from the structured
  fields, which gives the same text as human_readable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.formats import find_split_file, read_hf_split, read_jsonl

AGG_OPS = ("", "MAX", "MIN", "COUNT", "SUM", "AVG")
COND_OPS = ("=", ">", "<", "OP")
ORIGINAL_FILES = {"train": "train", "validation": "dev", "test": "test"}


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    original = (source / "train.tables.jsonl").is_file()
    for split, upstream_split in card.source["splits"].items():
        if original:
            yield from _original_rows(source, split, ORIGINAL_FILES[split])
        else:
            yield from _hf_rows(source, split, upstream_split)


def _original_rows(source: Path, split: str, name: str) -> Iterator[tuple[str, dict]]:
    tables_path = source / f"{name}.tables.jsonl"
    tables = {table["id"]: table for _, table in read_jsonl(tables_path, ("id", "header", "rows"))}
    path = source / f"{name}.jsonl"
    for number, row in read_jsonl(path, ("table_id", "question", "sql")):
        where = f"{path}: line {number}"
        table = tables.get(row["table_id"])
        if table is None:
            raise LLMBenchError(f"{where}: table_id '{row['table_id']}' is not in {tables_path}")
        sql = row["sql"]
        conds = _field(sql, "conds", list, where)
        if not all(isinstance(c, list) and len(c) == 3 for c in conds):
            raise LLMBenchError(f"{where}: sql.conds: expected [[column, operator, value], ...]")
        yield split, _row(table, row["question"], sql, conds, where)


def _hf_rows(source: Path, split: str, upstream_split: str) -> Iterator[tuple[str, dict]]:
    path = find_split_file(source, upstream_split)
    for number, row in read_hf_split(source, upstream_split, ("question", "table", "sql")):
        where = f"{path}: {'row' if path.suffix == '.parquet' else 'line'} {number}"
        sql = _field(row, "sql", dict, where)
        conds = _field(sql, "conds", dict, where)
        columns = [
            _field(conds, key, list, where)
            for key in ("column_index", "operator_index", "condition")
        ]
        if len({len(values) for values in columns}) != 1:
            raise LLMBenchError(
                f"{where}: sql.conds: column_index, operator_index and "
                "condition differ in length; expected one entry per condition"
            )
        yield (
            split,
            _row(
                _field(row, "table", dict, where),
                row["question"],
                sql,
                list(zip(*columns, strict=True)),
                where,
            ),
        )


def _row(table: dict, question, sql: dict, conds: list, where: str) -> dict:
    header = _field(table, "header", list, where)
    rows = _field(table, "rows", list, where)
    if not isinstance(question, str) or not question.strip():
        raise LLMBenchError(f"{where}: question is empty; expected text")
    return {
        "table": render_table(header, rows),
        "question": question,
        "sql": render_sql(sql, header, conds, where),
    }


def render_table(header: list, rows: list) -> str:
    """The header line, then one line per row, cells joined by ' | '."""
    lines = [" | ".join(str(cell) for cell in header)]
    lines += [" | ".join(str(cell) for cell in row) for row in rows]
    return "\n".join(lines)


def render_sql(sql: dict, header: list, conds: list, where: str) -> str:
    """SELECT <agg> <column> FROM table [WHERE <column> <op> <value> AND ...], spaces collapsed."""
    sel = _index(sql.get("sel"), header, "sql.sel", where)
    agg = _index(sql.get("agg"), AGG_OPS, "sql.agg", where)
    text = f"SELECT {AGG_OPS[agg]} {header[sel]} FROM table"
    if conds:
        text += " WHERE " + " AND ".join(
            f"{header[_index(column, header, 'sql.conds column', where)]} "
            f"{COND_OPS[_index(operator, COND_OPS, 'sql.conds operator', where)]} {value}"
            for column, operator, value in conds
        )
    return " ".join(text.split())


def _index(value, choices, name: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(choices):
        raise LLMBenchError(
            f"{where}: {name}: {value!r} is out of range; expected an index 0-{len(choices) - 1}"
        )
    return value


def _field(record, key: str, kind: type, where: str):
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind):
        raise LLMBenchError(
            f"{where}: {key}: missing or not a {kind.__name__}; expected the upstream's structure"
        )
    return value


# Online: wikisql has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
