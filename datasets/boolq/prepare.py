"""boolq: one row per passage-question pair of google/boolq (train 9427, validation 3270); the
target is 'yes' for an upstream answer of true and 'no' for false.

Upstream: one file per split with columns question (lower case, no question mark, kept as
published), answer (a boolean; 'True'/'False' text in a CSV copy) and passage. Surrounding
whitespace of the texts is stripped; rows come in upstream order. BoolQ publishes no test split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import hf_rows, row_text

ANSWERS = {"true": "yes", "false": "no"}


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    required = ("question", "answer", "passage")
    for split, path, number, row in hf_rows(source, card.source["splits"], required):
        yield (
            split,
            {
                "passage": row_text(row, "passage", path, number),
                "question": row_text(row, "question", path, number),
                "answer": yes_no(row["answer"], path, number),
            },
        )


def yes_no(value, path: Path, number: int) -> str:
    """'yes' for true, 'no' for false; anything but a boolean is an error."""
    key = str(value).strip().lower() if isinstance(value, bool | str) else None
    if key not in ANSWERS:
        raise LLMBenchError(f"{path}: row {number}: answer {value!r}; expected true or false")
    return ANSWERS[key]
