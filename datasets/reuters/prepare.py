"""reuters: one row per article of the Hugging Face `reuters21578` ModLewis configuration
(train 13625, test 6188; its 'unused' split is left out, as in the study); inputs title and
text as published.

The target is the article's `topics` list joined with ', ' in upstream order, e.g.
'grain, wheat'; an article with no topic gets 'none' (the project's convention, so that no
target is empty). A topic that is not a non-blank string is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.upstream import read_hf_split

REQUIRED = ("title", "text", "topics")
NO_TOPIC = "none"


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, upstream_split in card.source["splits"].items():
        for number, row in read_hf_split(source, upstream_split, REQUIRED):
            where = f"{source}/{upstream_split}: row {number}"
            yield split, {
                "title": _text(row["title"]),
                "text": _text(row["text"]),
                "topics": joined_topics(row["topics"], where),
            }


def joined_topics(topics, where: str) -> str:
    """The topic codes joined with ', ', or 'none' for an empty list."""
    if not isinstance(topics, list) or not all(
        isinstance(t, str) and t.strip() for t in topics
    ):
        raise LLMBenchError(
            f"{where}: topics is {topics!r}; expected a list of topic codes such as ['earn']"
        )
    return ", ".join(t.strip() for t in topics) or NO_TOPIC


def _text(value) -> str:
    # A few articles have no title or no body; the export stores an empty string, some
    # re-exports a null.
    return "" if value is None else value
