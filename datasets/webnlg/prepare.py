"""webnlg: one row per upstream entry (a set of DBpedia triples with its lexicalisations).

A row: triples = the entry's modified triple set (modified_triple_sets.mtriple_set[0]), one
'subject | property | object' line each, in upstream order; reference = the entry's first
lexicalisation (lex.text[0]); the other lexicalisations are not used. The counts are entry counts
(13211 / 1667 / 5713).

The Hugging Face test split of release_v3.0_en joins three test sets (see each entry's
test_category): RDF-to-text with references, the same inputs without references, and the
semantic-parsing set. Entries without a lexicalisation get an empty reference, so the test split
keeps the study's 5713 rows; in train and validation an entry without one is an error.

Upstream layout: the Hugging Face export of web_nlg (config release_v3.0_en), one file per split
(train/dev/test .jsonl/.parquet) with its nested columns modified_triple_sets
{mtriple_set: [[triple, ...]]} and lex {comment, lid, text, lang: [...]}.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import find_split_file, read_hf_split

COLUMNS = ("modified_triple_sets", "lex")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, upstream_split in card.source["splits"].items():
        path = find_split_file(source, upstream_split)
        for number, entry in read_hf_split(source, upstream_split, COLUMNS):
            where = f"{path}: {'row' if path.suffix == '.parquet' else 'line'} {number}"
            triples = _triples(entry["modified_triple_sets"], where)
            texts = _lexicalisations(entry["lex"], where)
            if not texts and split != "test":
                raise LLMBenchError(f"{where}: lex.text is empty; expected a lexicalisation")
            yield split, {"triples": "\n".join(triples), "reference": texts[0] if texts else ""}


def _triples(sets, where: str) -> list[str]:
    triple_sets = sets.get("mtriple_set") if isinstance(sets, dict) else None
    if not triple_sets or not isinstance(triple_sets[0], list) or not triple_sets[0]:
        raise LLMBenchError(
            f"{where}: modified_triple_sets.mtriple_set has no triples; expected "
            "{'mtriple_set': [['subject | property | object', ...]]}"
        )
    for triple in triple_sets[0]:
        if not isinstance(triple, str) or triple.count(" | ") < 2:
            raise LLMBenchError(
                f"{where}: modified_triple_sets: {triple!r} is not a triple; expected "
                "'subject | property | object'"
            )
    return triple_sets[0]


def _lexicalisations(lex, where: str) -> list[str]:
    texts = lex.get("text") if isinstance(lex, dict) else None
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise LLMBenchError(
            f"{where}: lex.text is not a list of texts; expected {{'text': ['...', ...], ...}}"
        )
    return texts
