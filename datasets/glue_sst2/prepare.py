"""glue_sst2: one row per movie-review sentence of GLUE SST-2; the target is the integer label
as text (1 positive, 0 negative). Upstream columns: sentence, label, idx. Test labels are hidden
(-1), so only train and validation are prepared; the reader and its decisions (whitespace
stripped, upstream order) are shared with the other GLUE tasks in llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv with the header `sentence<TAB>label`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("negative", "positive"))
TSV = TsvColumns({"sentence": "sentence"}, "label")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
