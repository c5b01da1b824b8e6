"""drop: one row per question of the Hugging Face `ucinlp/drop` export (train 77400, validation
9535); inputs passage and question as published.

The target is `answers_spans.spans`, each stripped of surrounding blanks, with repeats dropped
(first occurrence kept, upstream order), joined with ', ': a multi-span answer reads
'Smith, Jones'. Repeats matter on validation, where the export concatenates the spans of every
validated answer (one list per annotator): two annotators agreeing on '4' give spans
['4', '4'], which becomes '4'. An empty span list (the export drops such questions, so it means
a broken copy) is an error. The study's own script kept only the first span; the card asks for
all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import read_hf_split

REQUIRED = ("passage", "question", "answers_spans")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, upstream_split in card.source["splits"].items():
        for number, row in read_hf_split(source, upstream_split, REQUIRED):
            where = f"{source}/{upstream_split}: row {number}"
            yield (
                split,
                {
                    "passage": row["passage"],
                    "question": row["question"],
                    "answer": joined_answer(row["answers_spans"], where),
                },
            )


def joined_answer(answers_spans, where: str) -> str:
    """The distinct spans in upstream order, joined with ', '."""
    spans = answers_spans.get("spans") if isinstance(answers_spans, dict) else None
    if not isinstance(spans, list) or not all(isinstance(s, str) for s in spans):
        raise LLMBenchError(
            f"{where}: answers_spans is {type(answers_spans).__name__}; expected an object "
            "{spans: [text, ...], types: [...]}"
        )
    distinct = list(dict.fromkeys(span.strip() for span in spans if span.strip()))
    if not distinct:
        raise LLMBenchError(f"{where}: answers_spans.spans is empty; expected at least one span")
    return ", ".join(distinct)
