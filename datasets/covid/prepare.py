"""covid: one row per tweet of Kaggle's datatattle/covid-19-nlp-text-classification
(Corona_NLP_train.csv -> train, Corona_NLP_test.csv -> test); the input tweet is OriginalTweet
as published, the target its Sentiment label as published (one of five).

Encoding: each file is decoded as what it is. Copies in circulation differ: UTF-8 with a BOM
(re-saved after download), UTF-8 without one, and Windows-1252 bytes such as Kaggle's original
is commonly read as. A file whose bytes are all UTF-8 is read as UTF-8 (a BOM dropped); only
otherwise as Latin-1, which decodes any byte. Tweet text then has the re-save accidents these
copies carry undone (`llmbench.prepare.readers.undo_mojibake`): UTF-8 once read as Windows-1252
(`canÂ’t`)
and C1 control characters standing for Windows-1252 punctuation (U+0092 for ’), so all three
copies give `can’t`. Location and other columns are not used.

Counts: the test file has 3798 rows, as in the study. The train file has 41157 rows and all are
kept: the study's 37361 is its stated total (41159) minus the test count (3798), with no rule
for dropping rows given, so no subset can be reproduced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import read_csv, sniff_encoding, undo_mojibake

REQUIRED = ("OriginalTweet", "Sentiment")
SENTIMENTS = ("Extremely Negative", "Negative", "Neutral", "Positive", "Extremely Positive")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, file_name in card.source["splits"].items():
        path = Path(source) / file_name
        encoding = sniff_encoding(path)
        for line, row in read_csv(path, REQUIRED, encoding=encoding):
            label = row["Sentiment"].strip()
            if label not in SENTIMENTS:
                raise LLMBenchError(
                    f"{path}: line {line}: Sentiment '{row['Sentiment']}' unknown; expected one "
                    f"of {', '.join(SENTIMENTS)}"
                )
            yield split, {"tweet": undo_mojibake(row["OriginalTweet"]), "sentiment": label}
