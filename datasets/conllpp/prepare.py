"""conllpp: one row per sentence; the target lists its named entities as a JSON object.

A row: sentence = the sentence's tokens joined by single spaces; entities = compact JSON
(`json.dumps(..., ensure_ascii=False)`, default separators) with the keys person (PER),
organization (ORG), location (LOC), miscellaneous (MISC) in that order, each mapped to the
list of that type's BIO spans (tokens joined by single spaces), one per mention in order of
mention, so a repeated entity is listed each time, as in the study's processed file
(deduplicating its lists gives our earlier without-repeats target exactly); a type with no span
maps to []. An I- tag that does not continue a span of its own type starts one (the IOB1
reading), so both IOB1 and IOB2 files read the same.
`entities_json` is the one convention for every NER task (bc5cdr imports it from here).

Two upstream layouts are read, told apart by the file names in `source`:
- CrossWeigh's CoNLL-2003 files (what the Hugging Face loader downloads): conllpp_train.txt,
  conllpp_dev.txt, conllpp_test.txt with `token POS chunk NER` per line, a blank line between
  sentences; -DOCSTART- lines separate documents and are not sentences.
- the Hugging Face export, one file per split (train/validation/test .jsonl/.parquet/.csv) with
  tokens and ner_tags (label ids of the dataset's ClassLabel, listed in HF_LABELS).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers import find_split_file, read_hf_split, read_token_blocks

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
            yield from _conll_rows(source / CONLL_FILES[split], split)
    else:
        for split, upstream_split in card.source["splits"].items():
            yield from hf_token_rows(
                source, split, upstream_split, "ner_tags", HF_LABELS, ENTITY_KEYS
            )


def _conll_rows(path: Path, split: str) -> Iterator[tuple[str, dict]]:
    for start, block in read_token_blocks(path, CONLL_COLUMNS, skip_prefix="-DOCSTART-"):
        tokens = [fields[0] for fields in block]
        tags = [fields[-1] for fields in block]
        entities = entities_json(
            tokens, tags, ENTITY_KEYS, lambda index, start=start: f"{path}: line {start + index}"
        )
        yield split, {"sentence": " ".join(tokens), "entities": entities}


def hf_token_rows(
    source: Path,
    split: str,
    upstream_split: str,
    tag_column: str,
    labels: Sequence[str],
    keys: dict[str, str],
) -> Iterator[tuple[str, dict]]:
    """Rows of a Hugging Face token-classification split: tokens plus label ids in `tag_column`."""
    path = find_split_file(source, upstream_split)
    for number, row in read_hf_split(source, upstream_split, ("tokens", tag_column)):
        tokens, ids = row["tokens"], row[tag_column]
        if not isinstance(tokens, list) or not isinstance(ids, list) or len(tokens) != len(ids):
            raise LLMBenchError(
                f"{path}: row {number}: tokens and {tag_column} are not two lists of one length; "
                "expected one label id per token"
            )
        tags = []
        for value in ids:
            if not isinstance(value, int) or not 0 <= value < len(labels):
                raise LLMBenchError(
                    f"{path}: row {number}: {tag_column}: label id {value!r} unknown; expected "
                    f"0-{len(labels) - 1} ({', '.join(labels)})"
                )
            tags.append(labels[value])
        entities = entities_json(
            tokens, tags, keys, lambda index, number=number: f"{path}: row {number}"
        )
        yield split, {"sentence": " ".join(tokens), "entities": entities}


def entities_json(
    tokens: Sequence[str],
    tags: Sequence[str],
    keys: dict[str, str],
    where: Callable[[int], str],
) -> str:
    """The NER target: {key: [span, ...]} for every entity type in `keys` (tag type -> key).

    Spans appear once per mention, in order of mention (an entity named three times is listed
    three times), as in the study's processed file; `where(i)` names the place of token i for
    the error raised on a tag that is not O, B-<type> or I-<type>.
    """
    found: dict[str, list[str]] = {key: [] for key in keys.values()}
    for kind, text in bio_spans(tokens, tags, keys, where):
        found[keys[kind]].append(text)
    return json.dumps(found, ensure_ascii=False)


def bio_spans(
    tokens: Sequence[str],
    tags: Sequence[str],
    types: Sequence[str],
    where: Callable[[int], str],
) -> list[tuple[str, str]]:
    """(type, text) of each BIO span, in order; I- after O or another type starts a span."""
    spans: list[tuple[str, str]] = []
    words: list[str] = []
    kind = None
    for index, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
        prefix, _, name = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I") or name not in types):
            raise LLMBenchError(
                f"{where(index)}: tag '{tag}' unknown; expected O, B-X or I-X with X one of "
                f"{', '.join(types)}"
            )
        if prefix == "I" and name == kind:
            words.append(token)
            continue
        if words:
            spans.append((kind, " ".join(words)))
        words, kind = ([token], name) if tag != "O" else ([], None)
    if words:
        spans.append((kind, " ".join(words)))
    return spans
