"""viggo: one row per upstream row, i.e. per (meaning representation, reference) pair.

A row: meaning_representation = the MR as published (`inform(name[...], genres[...], ...)`);
reference = that row's single human reference. An MR with several references appears once per
reference (5103 / 714 / 1083 rows); ROUGE compares each generation with its own row's reference.
Text is kept as published; an empty MR or reference is an error.

Two upstream layouts are read, told apart by the file names in `source`:
- the slug2slug CSVs (jjuraska/slug2slug, data/video_game): train.csv, valid.csv, test.csv with
  the columns mr, ref (recognised by valid.csv, since a Hugging Face CSV export would also have
  train.csv and test.csv);
- the Hugging Face export of GEM/viggo, one file per split (train/validation/test
  .jsonl/.parquet/.csv) with the columns meaning_representation and target (its references
  column repeats the target and is not used).
Reading is `mr_ref_rows` (llmbench/prepare/readers/generation.py), shared with e2e_nlg: the two
tasks' upstreams have the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.generation import mr_ref_rows

CSV_FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}
HF_COLUMNS = ("meaning_representation", "target")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    csv_layout = (source / CSV_FILES["validation"]).is_file()
    yield from mr_ref_rows(source, card, CSV_FILES if csv_layout else None, HF_COLUMNS)


# Online: GEM/viggo has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
