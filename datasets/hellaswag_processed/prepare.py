"""hellaswag_processed: the rows of hellaswag without the options; context is the upstream ctx
and the target is the right ending, endings[label] (stripped of surrounding whitespace).

Reading, checks and decisions are hellaswag's (`hellaswag_examples` in
llmbench/prepare/readers/choices.py): train (39905) and the labelled validation (10042) are
prepared; the unlabelled test is not, as it has no right ending to take.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.choices import hellaswag_examples


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, example in hellaswag_examples(source, card):
        yield split, {"context": example.context, "ending": example.endings[example.label]}


# Online: Rowan/hellaswag has had a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
