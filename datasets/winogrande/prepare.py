"""winogrande: one row per sentence of allenai/winogrande, config winogrande_debiased; the
target is the upstream answer, '1' or '2' (which option fills the blank '_').

Upstream: one file per split with columns sentence, option1, option2 and answer (text '1' or
'2'; '' in the test split, whose answers are hidden). Splits: our train is upstream train
(9248 rows); our test, the split the study evaluated on (1267 rows), is the labelled upstream
validation. The unlabelled upstream test (1767 rows, the study's 'validation' count) is not
prepared: its rows could not be scored, and an empty answer in a split that is read is an
error. Texts have surrounding whitespace stripped; rows come in upstream order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.upstream import hf_rows, row_text

ANSWERS = ("1", "2")
INPUTS = ("sentence", "option1", "option2")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, path, number, row in hf_rows(source, card.source["splits"], (*INPUTS, "answer")):
        answer = str(row["answer"]).strip()
        if answer not in ANSWERS:
            hint = " (an empty answer marks the unlabelled test split)" if answer == "" else ""
            raise LLMBenchError(
                f"{path}: row {number}: answer {row['answer']!r}; expected '1' or '2'{hint}"
            )
        yield split, {**{c: row_text(row, c, path, number) for c in INPUTS}, "answer": answer}
