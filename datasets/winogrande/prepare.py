"""winogrande: one row per sentence of allenai/winogrande, config winogrande_debiased; the
target is the upstream answer, '1' or '2' (which option fills the blank '_').

Upstream: one file per split with columns sentence, option1, option2 and answer (text '1' or
'2'; '' in the test split, whose answers are hidden). Splits: our train is upstream train
(9248 rows); our test, the split the study evaluated on (1267 rows), is the labelled upstream
validation. The unlabelled upstream test (1767 rows, the study's 'validation' count) is not
prepared: its rows could not be scored, and an empty answer in a split that is read is an
error. Texts have surrounding whitespace stripped; rows come in upstream order.

Two upstream layouts are read, told apart by the file names in `source`:
- AI2's WinoGrande 1.1 release: train_<size>.jsonl (the config's size: train_debiased.jsonl for
  winogrande_debiased), dev.jsonl (the hub's validation), test.jsonl; keys qID, sentence,
  option1, option2, answer;
- the Hugging Face export, one file per split (train/validation/test .jsonl/.parquet/.csv).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.formats import hf_rows, read_jsonl, row_text

ANSWERS = ("1", "2")
INPUTS = ("sentence", "option1", "option2")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, path, number, row in _rows(Path(source), card):
        answer = str(row["answer"]).strip()
        if answer not in ANSWERS:
            hint = " (an empty answer marks the unlabelled test split)" if answer == "" else ""
            raise LLMBenchError(
                f"{path}: row {number}: answer {row['answer']!r}; expected '1' or '2'{hint}"
            )
        yield split, {**{c: row_text(row, c, path, number) for c in INPUTS}, "answer": answer}


def ai2_files(card) -> dict[str, str]:
    """The AI2 release's file name for each upstream split of the card's config."""
    size = card.source["config"].removeprefix("winogrande_")
    return {"train": f"train_{size}.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}


def _rows(source: Path, card):
    """(our split, file, line or row number, row) from whichever layout `source` holds."""
    files = ai2_files(card)
    if not (source / files["train"]).is_file():
        yield from hf_rows(source, card.source["splits"], (*INPUTS, "answer"))
        return
    for split, upstream in card.source["splits"].items():
        path = source / files[upstream]
        for number, row in read_jsonl(path, (*INPUTS, "answer")):
            yield split, path, number, row


# Online: allenai/winogrande has had a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
