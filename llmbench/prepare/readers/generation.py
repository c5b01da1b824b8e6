"""Generation rows read by more than one task.

- `mr_ref_rows`: (meaning representation, reference) pairs, as e2e_nlg and viggo publish them,
  either as challenge CSVs with the columns mr, ref or as Hugging Face split files;
- `tldr_items`: TLDR news items (headline, content), which tldr_content_gen and
  tldr_headline_gen read with input and target swapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import find_split_file, read_csv, read_hf_split
from llmbench.tasks.cards import SPLIT_NAMES

MR_REF_COLUMNS = ("mr", "ref")


def mr_ref_rows(
    source: Path, card, csv_files: dict[str, str] | None, hf_columns: tuple[str, str]
) -> Iterator[tuple[str, dict]]:
    """(split, {meaning_representation, reference}) from CSV files with the columns mr, ref
    (`csv_files`: our split -> file name) or, when `csv_files` is None, from Hugging Face split
    files with `hf_columns` (MR column, reference column). Text is kept as published; an empty
    MR or reference is an error."""
    for split, upstream_split in card.source["splits"].items():
        if csv_files is not None:
            path, columns = source / csv_files[split], MR_REF_COLUMNS
            records = read_csv(path, columns)
        else:
            path, columns = find_split_file(source, upstream_split), hf_columns
            records = read_hf_split(source, upstream_split, columns)
        unit = "row" if path.suffix == ".parquet" else "line"
        for number, record in records:
            mr, ref = (record[column] for column in columns)
            for column, value in zip(columns, (mr, ref), strict=True):
                if not isinstance(value, str) or not value.strip():
                    raise LLMBenchError(
                        f"{path}: {unit} {number}: {column} is empty; expected text"
                    )
            yield split, {"meaning_representation": mr, "reference": ref}


# ---- TLDR news ------------------------------------------------------------------------------

TLDR_FULL_FILES = ("tldr_news_full.csv.gz", "tldr_news_full.csv")
TLDR_COLUMNS = ("headline", "content")


def tldr_items(source: Path, card) -> Iterator[tuple[str, str, str]]:
    """(split, headline, content) for each news item, stripped and checked non-empty.

    `source` is tldr_news_full.csv(.gz) or a folder holding it (its split column holds Ludwig's
    split codes, mapped through llmbench's split names), or a Hugging Face export with one file
    per split. Rows keep the file order.
    """
    full = _tldr_full_file(source)
    if full is not None:
        records = (
            (_csv_split(full, number, row, card), full, number, row)
            for number, row in read_csv(full, ("split", *TLDR_COLUMNS))
        )
    else:
        records = (
            (split, find_split_file(source, upstream), number, row)
            for split, upstream in card.source["splits"].items()
            for number, row in read_hf_split(source, upstream, TLDR_COLUMNS)
        )
    for split, path, number, row in records:
        headline, content = (_text(row, column, path, number) for column in TLDR_COLUMNS)
        yield split, headline, content


def _tldr_full_file(source: Path) -> Path | None:
    if source.is_file():
        return source
    return next((source / name for name in TLDR_FULL_FILES if (source / name).is_file()), None)


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
