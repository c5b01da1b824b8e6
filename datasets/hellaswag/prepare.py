"""hellaswag: one row per context of Rowan/hellaswag with its four candidate endings; the target
is the upstream label, the number (0-3) of the right ending, as text.

Inputs: context is the upstream ctx (ctx_a and ctx_b joined upstream; activity_label left out),
endings are rendered as four lines '0. ...' to '3. ...'. The reader, `hellaswag_examples` in
llmbench/prepare/readers/choices.py, is shared with hellaswag_processed, which keeps only the
right ending.

Upstream: one file per split with columns ind, activity_label, ctx_a, ctx_b, ctx, endings (a list
of four texts), source_id, split, split_type and label (text '0'-'3'; '' in the test split,
whose labels are hidden). Only train (39905) and validation (10042 labelled rows) are prepared;
the unlabelled test split (10003) could not be scored, and an empty label in a split that is
read is an error. Texts have surrounding whitespace stripped; rows come in upstream order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.choices import hellaswag_examples, numbered_endings


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, example in hellaswag_examples(source, card):
        yield (
            split,
            {
                "context": example.context,
                "endings": numbered_endings(example.endings),
                "label": str(example.label),
            },
        )


# Online: Rowan/hellaswag has had a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
