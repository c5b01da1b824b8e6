"""glue_cola: one row per sentence of GLUE CoLA; the target is the integer label as text
(1 acceptable, 0 unacceptable).

Upstream: nyu-mll/glue, one file per split (`<split>.jsonl|.parquet|.csv`) with the task's text
columns (here `sentence`; the glue_* cards name their input columns exactly as GLUE does),
`label` (int) and `idx`. Test labels are hidden (-1), so only train and validation are
prepared; the reader and its decisions are shared with the other GLUE tasks in
llmbench/prepare/readers/glue.py.

GLUE's TSV folder: train.tsv and dev.tsv without a header line, the columns source, label,
original mark and sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.readers.glue import ClassLabel, TsvColumns, read_glue

LABEL = ClassLabel(("unacceptable", "acceptable"))
TSV = TsvColumns({"sentence": "sentence"}, "label", ("source", "label", "mark", "sentence"))


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    return read_glue(source, card, LABEL, TSV)
