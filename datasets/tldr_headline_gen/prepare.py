"""tldr_headline_gen: one row per news item; the input is its content, the target its headline.

The same rows as tldr_content_gen with input and target swapped, read by `tldr_items`
(llmbench/prepare/readers/generation.py): headline and content stripped of surrounding
whitespace (upstream headlines often end with a space); the upstream's split codes 0 and 2 (or
its train/test split files) give train and test (7138 / 794 rows). category is not used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.generation import tldr_items


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, headline, content in tldr_items(source, card):
        yield split, {"content": content, "headline": headline}


# Online: JulesBelveze/tldr_news has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
