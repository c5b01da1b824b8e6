"""glue_qnli: one row per question-sentence pair of GLUE QNLI; the target is the integer label
as text (0 entailment: the sentence answers the question, 1 not_entailment). Upstream columns:
question, sentence, label, idx. Test labels are hidden (-1), so only train and validation are
prepared; the reader and its decisions are shared with the other GLUE tasks in
llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv with the header `index question sentence label`,
the label a class name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("entailment", "not_entailment"))
TSV = TsvColumns({"question": "question", "sentence": "sentence"}, "label")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
