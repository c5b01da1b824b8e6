"""mmlu: one row per question of cais/mmlu, config all (57 subjects); train is its
auxiliary_train (99842 rows), validation 1531, test 14042.

Inputs: the question, and the choices rendered as lines 'A. ...', 'B. ...' (`lettered_choices`
in llmbench/prepare/readers/choices.py, shared with arc_combined). The target is the letter of
the upstream integer answer (0 -> A, 3 -> D). The subject column is not used.

Upstream: one file per split with columns question, subject, choices (a list of texts) and answer
(int). Some exports of auxiliary_train wrap each row in a `train` object
({"train": {"question": ..., "choices": ..., "answer": ...}}); such rows are unwrapped. Texts
and choices have surrounding whitespace stripped; rows come in upstream order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.choices import LETTERS, lettered_choices, option_texts
from llmbench.prepare.readers.formats import class_index, hf_rows, row_text

REQUIRED = ("question", "choices", "answer")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, path, number, row in hf_rows(source, card.source["splits"], ()):
        row = unwrapped(row, path, number)
        options = option_texts(row["choices"], "choices", path, number)
        index = class_index(row["answer"], len(options))
        if index is None:
            raise LLMBenchError(
                f"{path}: row {number}: answer {row['answer']!r}; expected an integer 0-"
                f"{len(options) - 1} (the index of the correct choice)"
            )
        yield (
            split,
            {
                "question": row_text(row, "question", path, number),
                "choices": lettered_choices(options),
                "answer": LETTERS[index],
            },
        )


def unwrapped(row: dict, path: Path, number: int) -> dict:
    """The row itself, or its `train` object (auxiliary_train's wrapped form); checks columns."""
    if "question" not in row and isinstance(row.get("train"), dict):
        row = row["train"]
    missing = [column for column in REQUIRED if column not in row]
    if missing:
        raise LLMBenchError(
            f"{path}: row {number}: missing column(s) {', '.join(missing)}; expected "
            f"{', '.join(REQUIRED)}"
        )
    return row
