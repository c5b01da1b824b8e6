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
`mr_ref_rows` also serves viggo, whose upstream has the same two shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers import find_split_file, read_csv, read_hf_split

CSV_FILES = {"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"}
CSV_COLUMNS = ("mr", "ref")
HF_COLUMNS = ("meaning_representation", "human_reference")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    csv_layout = any((source / name).is_file() for name in CSV_FILES.values())
    yield from mr_ref_rows(source, card, CSV_FILES if csv_layout else None, HF_COLUMNS)


def mr_ref_rows(
    source: Path, card, csv_files: dict[str, str] | None, hf_columns: tuple[str, str]
) -> Iterator[tuple[str, dict]]:
    """(split, {meaning_representation, reference}) from CSV files with the columns mr, ref
    (`csv_files`: our split -> file name) or, when `csv_files` is None, from Hugging Face split
    files with `hf_columns` (MR column, reference column)."""
    for split, upstream_split in card.source["splits"].items():
        if csv_files is not None:
            path, columns = source / csv_files[split], CSV_COLUMNS
            records = read_csv(path, columns)
        else:
            path, columns = find_split_file(source, upstream_split), hf_columns
            records = read_hf_split(source, upstream_split, columns)
        unit = "row" if path.suffix == ".parquet" else "line"
        for number, record in records:
            mr, ref = (record[column] for column in columns)
            for column, value in zip(columns, (mr, ref), strict=True):
                if not isinstance(value, str) or not value.strip():
                    raise LLMBenchError(
                        f"{path}: {unit} {number}: {column} is empty; expected text"
                    )
            yield split, {"meaning_representation": mr, "reference": ref}
