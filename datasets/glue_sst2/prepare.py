"""glue_sst2: one row per movie-review sentence of GLUE SST-2; the target is the integer label
as text (1 positive, 0 negative). Upstream columns: sentence, label, idx. Test labels are hidden
(-1), so only train and validation are prepared; the reader and its decisions (whitespace
stripped, upstream order) are shared with the other GLUE tasks in datasets/glue_cola/prepare.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.task_code import task_module

GLUE = task_module("glue_cola", Path(__file__).resolve().parents[1])
LABEL = GLUE.ClassLabel(("negative", "positive"))


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return GLUE.read_glue(source, card, LABEL)
