"""e2e_nlg: one row per (meaning representation, human reference) pair, as upstream ships it.

A row: meaning_representation = the MR string as published (`name[...], eatType[...], ...`);
reference = one human reference. An MR with several references gives several rows, so the
counts are the upstream row counts (42061 / 4672 / 4693; the test split covers 630 distinct
MRs) and ROUGE compares each generation with its own row's reference. Text is kept as published;
an empty MR or reference is an error.

Two upstream layouts are read, told apart by the file names in `source`:
- the challenge CSVs (tuetschek/e2e-dataset): trainset.csv, devset.csv, testset_w_refs.csv
  with the columns mr, ref (recognised by any of those names);
- the Hugging Face export, one file per split (train/validation/test .jsonl/.parquet/.csv) with
  the columns meaning_representation, human_reference.
Reading is `mr_ref_rows` (llmbench/prepare/readers/generation.py), shared with viggo, whose
upstream has the same two shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.generation import mr_ref_rows

CSV_FILES = {"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"}
HF_COLUMNS = ("meaning_representation", "human_reference")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    csv_layout = any((source / name).is_file() for name in CSV_FILES.values())
    yield from mr_ref_rows(source, card, CSV_FILES if csv_layout else None, HF_COLUMNS)


# Online: the e2e_nlg dataset has had a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
