"""glue_wnli: one row per sentence pair of GLUE WNLI; the target is the integer label as text
(1 entailment, 0 not_entailment). Upstream columns: sentence1, sentence2, label, idx. Test labels
are hidden (-1), so only train and validation are prepared; the reader and its decisions are
shared with the other GLUE tasks in llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv with the header
`index sentence1 sentence2 label`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("not_entailment", "entailment"))
TSV = TsvColumns({"sentence1": "sentence1", "sentence2": "sentence2"}, "label")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
