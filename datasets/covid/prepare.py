"""covid: one row per tweet of Kaggle's datatattle/covid-19-nlp-text-classification
(Corona_NLP_train.csv -> train, Corona_NLP_test.csv -> test); the input tweet is OriginalTweet
as published, the target its Sentiment label as published (one of five).

Both files are Latin-1 encoded (not UTF-8), so they are read here with a Latin-1 CSV reader
rather than the shared strict-UTF-8 one; every byte decodes in Latin-1, so the checks that
matter are the header, the field count of each record and the label.

Counts: the test file has 3798 rows, as in the study. The train file has 41157 rows and all are
kept: the study's 37361 is its stated total (41159) minus the test count (3798), with no rule
for dropping rows given, so no subset can be reproduced.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError

ENCODING = "latin-1"
REQUIRED = ("OriginalTweet", "Sentiment")
SENTIMENTS = ("Extremely Negative", "Negative", "Neutral", "Positive", "Extremely Positive")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, file_name in card.source["splits"].items():
        path = Path(source) / file_name
        for line, row in read_latin1_csv(path, REQUIRED):
            label = row["Sentiment"].strip()
            if label not in SENTIMENTS:
                raise LLMBenchError(
                    f"{path}: line {line}: Sentiment '{row['Sentiment']}' unknown; expected one "
                    f"of {', '.join(SENTIMENTS)}"
                )
            yield split, {"tweet": row["OriginalTweet"], "sentiment": label}


def read_latin1_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a Latin-1 CSV file whose header names every `required` column."""
    if not path.is_file():
        raise LLMBenchError(f"{path}: file not found; expected the upstream file here")
    with open(path, encoding=ENCODING, newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise LLMBenchError(
                    f"{path}: missing column(s) {', '.join(missing)}; header has "
                    f"{', '.join(header) or 'nothing'}"
                )
            for row in reader:
                if None in row or None in row.values():
                    count = "more" if None in row else "fewer"
                    raise LLMBenchError(
                        f"{path}: line {reader.line_num}: {count} fields than the header's "
                        f"{len(header)}"
                    )
                yield reader.line_num, row
        except csv.Error as exc:
            raise LLMBenchError(f"{path}: line {reader.line_num}: broken CSV ({exc})") from None
