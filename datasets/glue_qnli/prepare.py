"""glue_qnli: one row per question-sentence pair of GLUE QNLI; the target is the integer label
as text (0 entailment: the sentence answers the question, 1 not_entailment). Upstream columns:
question, sentence, label, idx. Test labels are hidden (-1), so only train and validation are
prepared; the reader and its decisions are shared with the other GLUE tasks in
datasets/glue_cola/prepare.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.task_code import task_module

GLUE = task_module("glue_cola", Path(__file__).resolve().parents[1])
LABEL = GLUE.ClassLabel(("entailment", "not_entailment"))


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return GLUE.read_glue(source, card, LABEL)
