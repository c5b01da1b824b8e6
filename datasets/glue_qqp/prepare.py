"""glue_qqp: one row per question pair of GLUE QQP; the target is the integer label as text
(1 duplicate, 0 not duplicate). Upstream columns: question1, question2, label, idx. Test labels
are hidden (-1; 390965 rows), so only train (363846) and validation (40430) are prepared, read
as a stream; the reader and its decisions are shared with the other GLUE tasks in
llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv with the header
`id qid1 qid2 question1 question2 is_duplicate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("not_duplicate", "duplicate"))
TSV = TsvColumns({"question1": "question1", "question2": "question2"}, "is_duplicate")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
