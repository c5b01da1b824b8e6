"""glue_mrpc: one row per sentence pair of GLUE MRPC; the target is the integer label as text
(1 equivalent, 0 not equivalent). Upstream columns: sentence1, sentence2, label, idx. Test labels
are hidden (-1), so only train and validation are prepared; the reader and its decisions are
shared with the other GLUE tasks in llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv (starting with a BOM) with the header
`Quality  #1 ID  #2 ID  #1 String  #2 String`; Quality is the label, the strings the sentences.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("not_equivalent", "equivalent"))
TSV = TsvColumns({"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
