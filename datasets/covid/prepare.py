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

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.upstream import read_csv

ENCODING = "latin-1"
REQUIRED = ("OriginalTweet", "Sentiment")
SENTIMENTS = ("Extremely Negative", "Negative", "Neutral", "Positive", "Extremely Positive")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, file_name in card.source["splits"].items():
        path = Path(source) / file_name
        for line, row in read_csv(path, REQUIRED, encoding=ENCODING):
            label = row["Sentiment"].strip()
            if label not in SENTIMENTS:
                raise LLMBenchError(
                    f"{path}: line {line}: Sentiment '{row['Sentiment']}' unknown; expected one "
                    f"of {', '.join(SENTIMENTS)}"
                )
            yield split, {"tweet": row["OriginalTweet"], "sentiment": label}
