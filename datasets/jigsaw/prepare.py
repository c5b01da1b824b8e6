"""jigsaw: one row per comment of Kaggle's jigsaw-toxic-comment-classification-challenge, the
competition whose files match the study's counts (train.csv 159571 rows, test.csv 153164); the
input comment_text is as published.

The target is 'yes' when the comment's `toxic` label is 1 and 'no' when it is 0: from
train.csv for train, and for test from test_labels.csv, matched to test.csv by id. Kaggle marks
the test comments it never scored with -1 in every label column; they have no answer, so they
are left out: the test split keeps the 63978 scored comments of the study's 153164. Any other
label value, or a test id without a labels row, is an error.

The Kaggle download ships each file zipped (train.csv.zip ...); unzip them first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import read_csv

TRAIN_FILE, TEST_FILE, TEST_LABELS_FILE = "train.csv", "test.csv", "test_labels.csv"
TARGETS = {"1": "yes", "0": "no"}
UNSCORED = "-1"


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    source = Path(source)
    for split in card.source["splits"]:
        if split == "train":
            yield from _train_rows(upstream_file(source, TRAIN_FILE))
        else:
            yield from _test_rows(
                upstream_file(source, TEST_FILE), upstream_file(source, TEST_LABELS_FILE), split
            )


def upstream_file(source: Path, name: str) -> Path:
    """`source/name`; a file Kaggle ships zipped and not yet unzipped gets a clear error."""
    path = source / name
    if not path.is_file() and (source / f"{name}.zip").is_file():
        raise LLMBenchError(f"{source / name}.zip: zipped; unzip it so that {path} exists")
    return path


def _train_rows(path: Path) -> Iterator[tuple[str, dict]]:
    for line, row in read_csv(path, ("comment_text", "toxic")):
        target = TARGETS.get(row["toxic"].strip())
        if target is None:
            raise _label_error(path, line, row["toxic"], "0 or 1")
        yield "train", {"comment_text": row["comment_text"], "toxic": target}


def _test_rows(path: Path, labels_path: Path, split: str) -> Iterator[tuple[str, dict]]:
    labels = _test_labels(labels_path)
    for line, row in read_csv(path, ("id", "comment_text")):
        label = labels.get(row["id"])
        if label is None:
            raise LLMBenchError(
                f"{path}: line {line}: id {row['id']} has no row in {labels_path.name}; "
                "expected a label for every test comment"
            )
        if label != UNSCORED:
            yield split, {"comment_text": row["comment_text"], "toxic": TARGETS[label]}


def _test_labels(path: Path) -> dict[str, str]:
    """id -> toxic label ('1', '0' or '-1' for unscored) of every test comment."""
    labels = {}
    for line, row in read_csv(path, ("id", "toxic")):
        value = row["toxic"].strip()
        if value not in TARGETS and value != UNSCORED:
            raise _label_error(path, line, row["toxic"], "0, 1 or -1 (unscored)")
        labels[row["id"]] = value
    return labels


def _label_error(path: Path, line: int, value: str, expected: str) -> LLMBenchError:
    return LLMBenchError(f"{path}: line {line}: toxic '{value}' unknown; expected {expected}")
