"""hellaswag: one row per context of Rowan/hellaswag with its four candidate endings; the target
is the upstream label, the number (0-3) of the right ending, as text.

Inputs: context is the upstream ctx (ctx_a and ctx_b joined upstream; activity_label left out),
endings are rendered as four lines '0. ...' to '3. ...'. `examples` is shared with
hellaswag_processed, which keeps only the right ending.

Upstream: one file per split with columns ind, activity_label, ctx_a, ctx_b, ctx, endings (a list
of four texts), source_id, split, split_type and label (text '0'-'3'; '' in the test split,
whose labels are hidden). Only train (39905) and validation (10042 labelled rows) are prepared;
the unlabelled test split (10003) could not be scored, and an empty label in a split that is
read is an error. Texts have surrounding whitespace stripped; rows come in upstream order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers import class_index, hf_rows, row_text

ENDINGS = 4
REQUIRED = ("ctx", "endings", "label")


class Example(NamedTuple):
    """One labelled HellaSwag context: endings[label] is the right continuation."""

    context: str
    endings: list[str]
    label: int


def examples(source: Path, card) -> Iterator[tuple[str, Example]]:
    """(our split, example) for every row of the splits the card maps, in upstream order."""
    for split, path, number, row in hf_rows(source, card.source["splits"], REQUIRED):
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


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, example in examples(source, card):
        yield (
            split,
            {
                "context": example.context,
                "endings": numbered_endings(example.endings),
                "label": str(example.label),
            },
        )
