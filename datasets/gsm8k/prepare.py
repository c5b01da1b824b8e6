"""gsm8k: one row per problem; the target is the published answer (worked solution, then
'#### <number>'). Upstream files: train.jsonl and test.jsonl with keys question and answer
(the GitHub release and the Hugging Face export share them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import find_split_file, read_hf_split


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, upstream_split in card.source["splits"].items():
        path = find_split_file(source, upstream_split)
        unit = "row" if path.suffix == ".parquet" else "line"
        for number, row in read_hf_split(source, upstream_split, ("question", "answer")):
            if "####" not in row["answer"]:
                raise LLMBenchError(
                    f"{path}: {unit} {number}: answer has no '####' final-answer marker; "
                    "expected '<solution> #### <number>'"
                )
            yield split, {"question": row["question"], "answer": row["answer"]}
