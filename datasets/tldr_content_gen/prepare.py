"""tldr_content_gen: one row per news item; the input is its headline, the target its content.

A row: headline = the item's headline, content = its body text, both stripped of surrounding
whitespace (upstream headlines often end with a space). category is not used. tldr_headline_gen
reads the same rows through `tldr_items`, with input and target swapped.

Two upstream layouts are read:
- tldr_news_full.csv.gz (or .csv) from JulesBelveze/tldr_news -- `source` is the file itself or
  a folder holding it -- with the columns split, headline, content, category; split holds
  Ludwig's split codes (0 train, 2 test; 7138 / 794 rows), mapped through llmbench's split names;
- the Hugging Face export, one file per split (train/test .jsonl/.parquet/.csv) with the columns
  headline, content, category.
Rows keep the file order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers import find_split_file, read_csv, read_hf_split
from llmbench.tasks.cards import SPLIT_NAMES

FULL_FILES = ("tldr_news_full.csv.gz", "tldr_news_full.csv")
COLUMNS = ("headline", "content")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, headline, content in tldr_items(source, card):
        yield split, {"headline": headline, "content": content}


def tldr_items(source: Path, card) -> Iterator[tuple[str, str, str]]:
    """(split, headline, content) for each news item, stripped and checked non-empty."""
    full = _full_file(source)
    if full is not None:
        records = (
            (_csv_split(full, number, row, card), full, number, row)
            for number, row in read_csv(full, ("split", *COLUMNS))
        )
    else:
        records = (
            (split, find_split_file(source, upstream), number, row)
            for split, upstream in card.source["splits"].items()
            for number, row in read_hf_split(source, upstream, COLUMNS)
        )
    for split, path, number, row in records:
        headline, content = (_text(row, column, path, number) for column in COLUMNS)
        yield split, headline, content


def _full_file(source: Path) -> Path | None:
    if source.is_file():
        return source
    return next((source / name for name in FULL_FILES if (source / name).is_file()), None)


def _csv_split(path: Path, number: int, row: dict, card) -> str:
    value = row["split"].strip()
    codes = {str(code): name for code, name in SPLIT_NAMES.items() if name in card.source["splits"]}
    if value not in codes:
        raise LLMBenchError(
            f"{path}: line {number}: split '{value}' unknown; expected "
            + " or ".join(f"{code} ({name})" for code, name in codes.items())
        )
    return codes[value]


def _text(row: dict, column: str, path: Path, number: int) -> str:
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        unit = "row" if path.suffix == ".parquet" else "line"
        raise LLMBenchError(f"{path}: {unit} {number}: {column} is empty; expected text")
    return value.strip()
