"""dbpedia: one row per Wikipedia entry of fancyzhx/dbpedia_14 (train 560000, test 70000); the
target is the class name of the upstream integer label.

Upstream: one file per split with columns label (int 0-13, in the order of CLASSES below, the
dataset's own ClassLabel names), title and content. Contents begin with a space upstream;
surrounding whitespace is stripped. Rows come in upstream order, read as a stream (train alone
is 560000 rows). DBpedia-14 publishes no validation split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import class_index, hf_rows, row_text

CLASSES = (
    "Company",
    "EducationalInstitution",
    "Artist",
    "Athlete",
    "OfficeHolder",
    "MeanOfTransportation",
    "Building",
    "NaturalPlace",
    "Village",
    "Animal",
    "Plant",
    "Album",
    "Film",
    "WrittenWork",
)


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    required = ("label", "title", "content")
    for split, path, number, row in hf_rows(source, card.source["splits"], required):
        index = class_index(row["label"], len(CLASSES))
        if index is None:
            raise LLMBenchError(
                f"{path}: row {number}: label {row['label']!r}; expected an integer 0-13"
            )
        yield (
            split,
            {
                "title": row_text(row, "title", path, number),
                "content": row_text(row, "content", path, number),
                "label": CLASSES[index],
            },
        )
