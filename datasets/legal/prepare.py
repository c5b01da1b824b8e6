"""legal: one row per clause of Kaggle's bahushruth/legalclausedataset, which ships one CSV per
clause type (e.g. acceleration.csv) with columns clause_text and clause_type and no split.
The input clause_text and the target clause_type are as published (e.g. 'governing-law').

Split (the project's own, as upstream has none): every CSV under the source folder is read in
sorted path order and pooled; each clause is keyed by '<file path relative to the source>:<line>'
and the keys are shuffled with random.Random(SEED) after sorting, so the result depends only on
the files' names and contents, never on listing order. The study used 20000 clauses
(17000 / 2000 / 1000); the first min(pooled, 20000) shuffled clauses are taken and cut in those
proportions (test 5 %, validation 10 %, rest train), so a full copy gives exactly the study's
counts and a smaller one scaled counts. Within each split rows keep their pooled order.

A row with a blank clause_text or clause_type is an error (nothing to classify, or no label).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import read_csv

SEED = 20240429
STUDY_SIZES = {"train": 17000, "validation": 2000, "test": 1000}
REQUIRED = ("clause_text", "clause_type")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    clauses = pooled_clauses(Path(source))
    assignment = assign_splits(sorted(clauses))
    for split in card.source["splits"]:
        for key in sorted(k for k, s in assignment.items() if s == split):
            yield split, clauses[key]


def pooled_clauses(source: Path) -> dict[tuple[str, int], dict]:
    """(relative file path, line) -> row, for every clause in every CSV under `source`."""
    files = [source] if source.is_file() else sorted(source.rglob("*.csv"))
    if not files:
        raise LLMBenchError(f"{source}: no .csv files; expected one CSV per clause type")
    clauses = {}
    for path in files:
        name = path.name if path == source else path.relative_to(source).as_posix()
        for line, row in read_csv(path, REQUIRED):
            for column in REQUIRED:
                if not row[column].strip():
                    raise LLMBenchError(f"{path}: line {line}: {column} is blank; expected text")
            clauses[(name, line)] = {
                "clause_text": row["clause_text"],
                "clause_type": row["clause_type"].strip(),
            }
    return clauses


def assign_splits(keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """A seeded split of sorted keys, sized like the study's, scaled when fewer exist."""
    order = list(keys)
    random.Random(SEED).shuffle(order)
    total = min(len(order), sum(STUDY_SIZES.values()))
    scale = total / sum(STUDY_SIZES.values())
    n_test = round(STUDY_SIZES["test"] * scale)
    n_validation = round(STUDY_SIZES["validation"] * scale)
    sizes = {"test": n_test, "validation": n_validation, "train": total - n_test - n_validation}
    assignment, start = {}, 0
    for split in ("test", "validation", "train"):
        for key in order[start : start + sizes[split]]:
            assignment[key] = split
        start += sizes[split]
    return assignment
