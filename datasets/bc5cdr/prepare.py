"""bc5cdr: one row per sentence; the target lists its chemicals and diseases as a JSON object.

A row: sentence = the sentence's tokens joined by single spaces; entities = compact JSON with
the keys chemical then disease, each mapped to the list of that type's BIO spans, one per
mention in order of mention -- the same convention as conllpp, through the shared NER reader
(llmbench/prepare/readers/ner.py, one convention for every NER task). The study's processed
bc5cdr file is not available to check; its conllpp file keeps repeats, and both tasks' targets
come from one convention, so bc5cdr keeps them too.

Two upstream layouts are read, told apart by the file names in `source`:
- the IOB release (cambridgeltl/MTL-Bioinformatics-2016, BC5CDR-IOB): train.tsv, devel.tsv,
  test.tsv with `token<TAB>tag` per line (O, B-/I-Chemical, B-/I-Disease), a blank line between
  sentences. Its sentence split differs from tner/bc5cdr's (4560 / 4581 / 4797 sentences).
- the Hugging Face export of tner/bc5cdr, one file per split (train/validation/test
  .jsonl/.parquet/.csv) with tokens and tags, label ids as in tner's label2id (TNER_LABELS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.ner import hf_token_rows, token_block_rows

ENTITY_KEYS = {"Chemical": "chemical", "Disease": "disease"}
TNER_LABELS = ("O", "B-Chemical", "B-Disease", "I-Disease", "I-Chemical")
IOB_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    if any((source / name).is_file() for name in IOB_FILES.values()):
        for split in card.source["splits"]:
            yield from token_block_rows(
                source / IOB_FILES[split], split, 2, ENTITY_KEYS, delimiter="\t"
            )
    else:
        for split, upstream_split in card.source["splits"].items():
            yield from hf_token_rows(
                source, split, upstream_split, "tags", TNER_LABELS, ENTITY_KEYS
            )


# Online: tner/bc5cdr has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
