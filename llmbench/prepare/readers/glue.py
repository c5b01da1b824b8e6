"""The GLUE tasks' rows: the card's input columns as published and the label as the target.

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

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import class_index, hf_rows, row_text

HIDDEN_LABEL = -1


class ClassLabel(NamedTuple):
    """Integer classes: label i means names[i]."""

    names: tuple[str, ...]

    def target(self, value) -> str | None:
        """The label as text ('0', '1', ...), or None when it is not one of the classes."""
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
    source: Path, card, label: ClassLabel | SimilarityScore
) -> Iterator[tuple[str, dict]]:
    """Rows of a GLUE task: the card's input columns as published, the target from `label`."""
    columns = card.input_columns
    for split, path, number, row in hf_rows(source, card.source["splits"], (*columns, "label")):
        target = label.target(row["label"])
        if target is None:
            hint = ""
            if _is_hidden(row["label"]):
                hint = " (-1 marks a hidden GLUE test label; test splits are not prepared)"
            raise LLMBenchError(
                f"{path}: row {number}: label {row['label']!r}; expected {label.expected}{hint}"
            )
        inputs = {column: row_text(row, column, path, number) for column in columns}
        yield split, {**inputs, card.target_col: target}


def _is_hidden(value) -> bool:
    try:
        return float(value) == HIDDEN_LABEL
    except (TypeError, ValueError):
        return False
