"""glue_stsb: one row per sentence pair of GLUE STS-B; the target is the similarity score (a
float in [0, 5]) as text with up to three decimals and no trailing zeros: 3.8, 0, 4.125 (the
upstream float32 3.799999952 becomes 3.8). Upstream columns: sentence1, sentence2, label, idx.
Test scores are hidden (-1), so only train and validation are prepared; the reader and its
decisions are shared with the other GLUE tasks in llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv with the header
`index genre filename year old_index source1 source2 sentence1 sentence2 score`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import SimilarityScore, TsvColumns, read_glue

LABEL = SimilarityScore()
TSV = TsvColumns({"sentence1": "sentence1", "sentence2": "sentence2"}, "score")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
