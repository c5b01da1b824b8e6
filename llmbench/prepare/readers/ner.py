"""Named-entity rows: one row per sentence, the target a JSON object of its entities.

A row: sentence = the sentence's tokens joined by single spaces; entities = compact JSON
(`json.dumps(..., ensure_ascii=False)`, default separators) mapping each entity key, in the
task's order, to the list of that type's BIO spans (tokens joined by single spaces), one per
mention in order of mention, so a repeated entity is listed each time, as in the study's
processed conllpp file; a type with no span maps to []. An I- tag that does not continue a span
of its own type starts one (the IOB1 reading), so IOB1 and IOB2 files read the same.

Two upstream shapes are read: CoNLL-style token files (`token_block_rows`: one token per line,
its tag in the last field, a blank line between sentences) and Hugging Face token-classification
splits (`hf_token_rows`: tokens plus label ids).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import find_split_file, read_hf_split, read_token_blocks


def token_block_rows(
    path: Path,
    split: str,
    columns: int,
    keys: dict[str, str],
    skip_prefix: str | None = None,
    delimiter: str | None = None,
) -> Iterator[tuple[str, dict]]:
    """Rows of a CoNLL-style file: the first field of a line is the token, the last its tag;
    lines starting with `skip_prefix` (-DOCSTART-) are not sentences."""
    blocks = read_token_blocks(path, columns, skip_prefix=skip_prefix, delimiter=delimiter)
    for start, block in blocks:
        tokens = [fields[0] for fields in block]
        tags = [fields[-1] for fields in block]
        entities = entities_json(
            tokens, tags, keys, lambda index, start=start: f"{path}: line {start + index}"
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
