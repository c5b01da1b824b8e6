"""conllpp: one row per sentence; the target lists its named entities as a JSON object.

The target's keys are person (PER), organization (ORG), location (LOC), miscellaneous (MISC) in
that order; the row and target conventions (one span per mention, in order of mention, as the
study's processed file has them; deduplicating its lists gives our earlier without-repeats
target exactly) are every NER task's, in llmbench/prepare/readers/ner.py.

Two upstream layouts are read, told apart by the file names in `source`:
- CrossWeigh's CoNLL-2003 files (what the Hugging Face loader downloads): conllpp_train.txt,
  conllpp_dev.txt, conllpp_test.txt with `token POS chunk NER` per line, a blank line between
  sentences; -DOCSTART- lines separate documents and are not sentences.
- the Hugging Face export, one file per split (train/validation/test .jsonl/.parquet/.csv) with
  tokens and ner_tags (label ids of the dataset's ClassLabel, listed in HF_LABELS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.ner import hf_token_rows, token_block_rows

ENTITY_KEYS = {"PER": "person", "ORG": "organization", "LOC": "location", "MISC": "miscellaneous"}
HF_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
CONLL_FILES = {
    "train": "conllpp_train.txt",
    "validation": "conllpp_dev.txt",
    "test": "conllpp_test.txt",
}
CONLL_COLUMNS = 4


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    if any((source / name).is_file() for name in CONLL_FILES.values()):
        for split in card.source["splits"]:
            yield from token_block_rows(
                source / CONLL_FILES[split],
                split,
                CONLL_COLUMNS,
                ENTITY_KEYS,
                skip_prefix="-DOCSTART-",
            )
    else:
        for split, upstream_split in card.source["splits"].items():
            yield from hf_token_rows(
                source, split, upstream_split, "ner_tags", HF_LABELS, ENTITY_KEYS
            )


# Online: conllpp has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
