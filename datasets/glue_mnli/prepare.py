"""glue_mnli: one row per premise-hypothesis pair of GLUE MNLI; the target is the integer label
as text (0 entailment, 1 neutral, 2 contradiction). Upstream columns: premise, hypothesis, label,
idx. Our validation is validation_matched followed by validation_mismatched (9815 + 9832 rows).
Test labels (test_matched, test_mismatched) are hidden (-1), so they are not prepared. Train
(392702 rows) is read as a stream; the reader and its decisions are shared with the other GLUE
tasks in llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv, dev_matched.tsv and dev_mismatched.tsv; premise and hypothesis
are its sentence1 and sentence2, the label its gold_label (a class name).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("entailment", "neutral", "contradiction"))
TSV = TsvColumns({"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
