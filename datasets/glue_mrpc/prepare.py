"""glue_mrpc: one row per sentence pair of GLUE MRPC; the target is the integer label as text
(1 equivalent, 0 not equivalent). Upstream columns: sentence1, sentence2, label, idx. Test labels
are hidden (-1), so only train and validation are prepared; the reader and its decisions are
shared with the other GLUE tasks in datasets/glue_cola/prepare.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.task_code import task_module

GLUE = task_module("glue_cola", Path(__file__).resolve().parents[1])
LABEL = GLUE.ClassLabel(("not_equivalent", "equivalent"))


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return GLUE.read_glue(source, card, LABEL)
