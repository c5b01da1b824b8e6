"""reuters: one row per article of Reuters-21578 in the ModLewis selection (train 13625, test
6188; the 722 NOT-USED articles and those with TOPICS="BYPASS" are left out, as in the study);
inputs title and text as published.

The target is the article's topics joined with ', ' in upstream order, e.g. 'grain, wheat'; an
article with no topic gets 'none' (the project's convention, so that no target is empty). A topic
that is not a non-blank string is an error.

Two upstream layouts are read, told apart by the file names in `source`:
- the publisher's SGML distribution (Reuters-21578 Distribution 1.0): reut2-000.sgm ...
  reut2-021.sgm, each `<REUTERS TOPICS= LEWISSPLIT= ...>` element holding `<TOPICS><D>..</D>`,
  `<TITLE>` and `<BODY>` (or a `<TEXT TYPE="UNPROC">` without them). ModLewis: LEWISSPLIT TRAIN
  or TEST with TOPICS YES or NO. Fields are read as the Hugging Face `reuters21578` loader reads
  them, so both layouts give the same rows: character references (`&lt;`) stay as written; a
  title over several lines (TYPE="BRIEF" articles) is its lines joined by spaces; text is the
  BODY (or the UNPROC text) without the `&#2;`/`&#3;` start- and end-of-text codes; a BRIEF
  article has the text ''.
- the Hugging Face export of `reuters21578` (config ModLewis), one file per split
  (train/test .jsonl/.parquet) with title, text and topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.formats import read_hf_split, sniff_encoding, text_lines

REQUIRED = ("title", "text", "topics")
NO_TOPIC = "none"
SGML_GLOB = "reut2-*.sgm"
# Our split -> LEWISSPLIT; an article is in ModLewis when its TOPICS attribute is YES or NO.
LEWIS_SPLITS = {"train": "TRAIN", "test": "TEST"}
MODLEWIS_TOPICS = ("YES", "NO")
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
TOPIC = re.compile(r"<D>(.*?)</D>")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    if sorted(Path(source).glob(SGML_GLOB)):
        yield from sgml_rows(Path(source), card.source["splits"])
        return
    for split, upstream_split in card.source["splits"].items():
        for number, row in read_hf_split(source, upstream_split, REQUIRED):
            where = f"{source}/{upstream_split}: row {number}"
            yield (
                split,
                {
                    "title": _text(row["title"]),
                    "text": _text(row["text"]),
                    "topics": joined_topics(row["topics"], where),
                },
            )


def joined_topics(topics, where: str) -> str:
    """The topic codes joined with ', ', or 'none' for an empty list."""
    if not isinstance(topics, list) or not all(isinstance(t, str) and t.strip() for t in topics):
        raise LLMBenchError(
            f"{where}: topics is {topics!r}; expected a list of topic codes such as ['earn']"
        )
    return ", ".join(t.strip() for t in topics) or NO_TOPIC


def _text(value) -> str:
    # A few articles have no title or no body; the export stores an empty string, some
    # re-exports a null.
    return "" if value is None else value


def sgml_rows(source: Path, splits: dict[str, str]) -> Iterator[tuple[str, dict]]:
    """The ModLewis rows of the SGML files, in file order; train and test as they come."""
    wanted = {LEWIS_SPLITS[split]: split for split in splits}
    for path in sorted(source.glob(SGML_GLOB)):
        for line, attributes, body in sgml_articles(path):
            lewis = attributes.get("LEWISSPLIT")
            if lewis not in (*LEWIS_SPLITS.values(), "NOT-USED"):
                raise LLMBenchError(
                    f"{path}: line {line}: LEWISSPLIT is {lewis!r}; expected TRAIN, TEST or "
                    "NOT-USED"
                )
            if lewis in wanted and attributes.get("TOPICS") in MODLEWIS_TOPICS:
                yield wanted[lewis], article_row(body)


def sgml_articles(path: Path) -> Iterator[tuple[int, dict, str]]:
    """(line of <REUTERS, its attributes, the text up to </REUTERS>) of each article."""
    start, attributes, lines = 0, None, []
    for number, line in text_lines(path, sniff_encoding(path)):
        if line.startswith("<REUTERS"):
            if attributes is not None:
                raise LLMBenchError(
                    f"{path}: line {number}: <REUTERS> inside the article "
                    f"opened on line {start}; expected </REUTERS> first"
                )
            start, attributes, lines = number, dict(ATTRIBUTE.findall(line)), []
        elif line.startswith("</REUTERS>"):
            if attributes is None:
                raise LLMBenchError(f"{path}: line {number}: </REUTERS> without <REUTERS>")
            yield start, attributes, "".join(lines)
            attributes = None
        elif attributes is not None:
            lines.append(line)
    if attributes is not None:
        raise LLMBenchError(f"{path}: line {start}: article not closed; expected </REUTERS>")


def article_row(body: str) -> dict:
    """title, text and joined topics of one article's SGML."""
    topics = re.search(r"<TOPICS>(.*?)</TOPICS>", body, re.S)
    title = re.search(r"<TITLE>(.*?)</TITLE>", body, re.S)
    text = re.search(r"<BODY>(.*?)</BODY>", body, re.S) or re.search(
        r'<TEXT TYPE="UNPROC">(.*?)</TEXT>', body, re.S
    )
    return {
        "title": " ".join(part for part in title.group(1).split("\n") if part) if title else "",
        "text": _without_codes(text.group(1)) if text else "",
        "topics": ", ".join(TOPIC.findall(topics.group(1)) if topics else []) or NO_TOPIC,
    }


def _without_codes(text: str) -> str:
    # &#2; and &#3; are the wire's start- and end-of-text codes, not article text.
    return text.removeprefix("&#2;\n").removesuffix("&#3;")


# Online: reuters21578 has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
