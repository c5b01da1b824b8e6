"""The GLUE tasks' rows: the card's input columns as published and the label as the target.

Two upstream layouts are read, told apart by the file names in `source`:
- the GLUE distribution's TSV folder for the task (what GLUE's download script writes):
  train.tsv, dev.tsv (MNLI: dev_matched.tsv, dev_mismatched.tsv), test.tsv, each task with its
  own columns (`TsvColumns`), CoLA's without a header line, MRPC's starting with a BOM. Quote
  characters are text, as in GLUE's own reader. GLUE's dev is the Hugging Face validation.
- the Hugging Face export of nyu-mll/glue, one file per split (`<split>.jsonl|.parquet|.csv`)
  with the card's input columns, `label` (int; a float score for stsb) and `idx`.

Decisions shared by the eight glue_* tasks:
- Only labelled splits are prepared. GLUE hides its test labels (every test row has label -1),
  so the cards map train and validation only; the study evaluates on validation. A label of -1
  in a split that is read is an error, never a row.
- Text keeps its upstream wording; surrounding whitespace is stripped (SST-2 sentences end in a
  space).
- `a+b` in source.splits reads split a, then split b (mnli's validation is validation_matched
  followed by validation_mismatched).
Nothing is sampled or shuffled: rows come in upstream order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import class_index, hf_rows, read_csv, row_text

HIDDEN_LABEL = -1
# The Hugging Face split each file of the GLUE distribution holds.
TSV_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
    "test": "test.tsv",
}


class TsvColumns(NamedTuple):
    """Where a task's GLUE TSV files keep its columns: `inputs` maps each of the card's input
    columns to the TSV column holding it, `label` names the label's column, and `header` names
    the columns of files that have no header line (CoLA)."""

    inputs: dict[str, str]
    label: str
    header: tuple[str, ...] | None = None


class ClassLabel(NamedTuple):
    """Integer classes: label i means names[i]."""

    names: tuple[str, ...]

    def target(self, value) -> str | None:
        """The label as text ('0', '1', ...), or None when it is not one of the classes. A class
        name counts as its number (GLUE's MNLI and QNLI files name their labels)."""
        if isinstance(value, str) and value in self.names:
            return str(self.names.index(value))
        index = class_index(value, len(self.names))
        return None if index is None else str(index)

    @property
    def expected(self) -> str:
        *first, last = (f"{i} ({name})" for i, name in enumerate(self.names))
        return f"{', '.join(first)} or {last}"


class SimilarityScore:
    """STS-B's score, a float in [0, 5], written with up to three decimals (3.8, 0, 4.125)."""

    expected = "a similarity score between 0 and 5"

    def target(self, value) -> str | None:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 5:
            return None
        return f"{value:.3f}".rstrip("0").rstrip(".")


def read_glue(
    source: Path, card, label: ClassLabel | SimilarityScore, tsv: TsvColumns
) -> Iterator[tuple[str, dict]]:
    """Rows of a GLUE task: the card's input columns as published, the target from `label`;
    from the GLUE TSV folder when `source` holds one of its files (where `tsv` says the columns
    are), else from a Hugging Face export."""
    columns = card.input_columns
    records = _tsv_records if _is_tsv_folder(source, card) else _hf_records
    for split, path, number, unit, row in records(source, card, tsv):
        target = label.target(row["label"])
        if target is None:
            hint = ""
            if _is_hidden(row["label"]):
                hint = " (-1 marks a hidden GLUE test label; test splits are not prepared)"
            raise LLMBenchError(
                f"{path}: {unit} {number}: label {row['label']!r}; expected {label.expected}{hint}"
            )
        inputs = {column: row_text(row, column, path, number, unit) for column in columns}
        yield split, {**inputs, card.target_col: target}


def _is_tsv_folder(source: Path, card) -> bool:
    return any(
        (Path(source) / TSV_FILES.get(part, f"{part}.tsv")).is_file()
        for upstream in card.source["splits"].values()
        for part in upstream.split("+")
    )


def _hf_records(source: Path, card, tsv: TsvColumns) -> Iterator[tuple[str, Path, int, str, dict]]:
    required = (*card.input_columns, "label")
    for split, path, number, row in hf_rows(source, card.source["splits"], required):
        yield split, path, number, "row", row


def _tsv_records(source: Path, card, tsv: TsvColumns) -> Iterator[tuple[str, Path, int, str, dict]]:
    """(our split, file, line, "line", row with the card's columns and `label`) from GLUE's TSV
    files."""
    required = (*tsv.inputs.values(), tsv.label)
    for split, upstream in card.source["splits"].items():
        for part in upstream.split("+"):
            path = Path(source) / TSV_FILES.get(part, f"{part}.tsv")
            records = read_csv(path, required, "\t", fieldnames=tsv.header, quoting=csv.QUOTE_NONE)
            for number, record in records:
                row = {ours: record[theirs] for ours, theirs in tsv.inputs.items()}
                yield split, path, number, "line", {**row, "label": record[tsv.label]}


def _is_hidden(value) -> bool:
    try:
        return float(value) == HIDDEN_LABEL
    except (TypeError, ValueError):
        return False
