"""Multiple-choice rows: options rendered as lettered lines, and HellaSwag's labelled contexts.

mmlu and arc_combined render their options with `lettered_choices`; hellaswag and
hellaswag_processed read the same HellaSwag rows through `hellaswag_examples` and differ only in
what they keep (all four numbered endings, or the right one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import class_index, hf_rows, row_text

LETTERS = "ABCDE"


def option_texts(value, column: str, path: Path, number: int) -> list[str]:
    """The options of a multiple-choice row: a list of 2 to 5 texts."""
    if (
        not isinstance(value, list)
        or not 2 <= len(value) <= len(LETTERS)
        or not all(isinstance(option, str) for option in value)
    ):
        raise LLMBenchError(
            f"{path}: row {number}: {column} is {value!r:.60}; expected a list of 2 to "
            f"{len(LETTERS)} texts"
        )
    return value


def lettered_choices(options: list[str]) -> str:
    """Options as lines 'A. first', 'B. second', ..., each stripped of surrounding whitespace."""
    return "\n".join(f"{LETTERS[i]}. {option.strip()}" for i, option in enumerate(options))


# ---- HellaSwag ------------------------------------------------------------------------------

ENDINGS = 4
HELLASWAG_COLUMNS = ("ctx", "endings", "label")


class Example(NamedTuple):
    """One labelled HellaSwag context: endings[label] is the right continuation."""

    context: str
    endings: list[str]
    label: int


def hellaswag_examples(source: Path, card) -> Iterator[tuple[str, Example]]:
    """(our split, example) for every row of the splits the card maps, in upstream order.

    Upstream columns used: ctx, endings (a list of four texts) and label (text '0'-'3'; '' in
    the unlabelled test split, an error in any split that is read). Texts are stripped.
    """
    for split, path, number, row in hf_rows(source, card.source["splits"], HELLASWAG_COLUMNS):
        endings = row["endings"]
        if not (
            isinstance(endings, list)
            and len(endings) == ENDINGS
            and all(isinstance(e, str) for e in endings)
        ):
            raise LLMBenchError(
                f"{path}: row {number}: endings is {endings!r:.60}; expected a list of "
                f"{ENDINGS} texts"
            )
        label = class_index(row["label"], ENDINGS)
        if label is None:
            hint = " (an empty label marks the unlabelled test split)" if row["label"] == "" else ""
            raise LLMBenchError(
                f"{path}: row {number}: label {row['label']!r}; expected '0' to "
                f"'{ENDINGS - 1}'{hint}"
            )
        context = row_text(row, "ctx", path, number)
        yield split, Example(context, [e.strip() for e in endings], label)


def numbered_endings(endings: list[str]) -> str:
    """Endings as lines '0. first', '1. second', ..."""
    return "\n".join(f"{i}. {ending}" for i, ending in enumerate(endings))
