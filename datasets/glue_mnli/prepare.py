"""glue_mnli: one row per premise-hypothesis pair of GLUE MNLI; the target is the integer label
as text (0 entailment, 1 neutral, 2 contradiction). Upstream columns: premise, hypothesis, label,
idx. Our validation is validation_matched followed by validation_mismatched (9815 + 9832 rows).
Test labels (test_matched, test_mismatched) are hidden (-1), so they are not prepared. Train
(392702 rows) is read as a stream; the reader and its decisions are shared with the other GLUE
tasks in datasets/glue_cola/prepare.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.task_code import task_module

GLUE = task_module("glue_cola", Path(__file__).resolve().parents[1])
LABEL = GLUE.ClassLabel(("entailment", "neutral", "contradiction"))


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return GLUE.read_glue(source, card, LABEL)
