"""tldr_content_gen: one row per news item; the input is its headline, the target its content.

A row: headline = the item's headline, content = its body text, both stripped of surrounding
whitespace (upstream headlines often end with a space). category is not used. Reading is
`tldr_items` (llmbench/prepare/readers/generation.py), shared with tldr_headline_gen, which
swaps input and target.

Two upstream layouts are read:
- tldr_news_full.csv.gz (or .csv) from JulesBelveze/tldr_news -- `source` is the file itself or
  a folder holding it -- with the columns split, headline, content, category; split holds
  Ludwig's split codes (0 train, 2 test; 7138 / 794 rows), mapped through llmbench's split names;
- the Hugging Face export, one file per split (train/test .jsonl/.parquet/.csv) with the columns
  headline, content, category.
Rows keep the file order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.generation import tldr_items


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, headline, content in tldr_items(source, card):
        yield split, {"headline": headline, "content": content}


# Online: JulesBelveze/tldr_news has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
