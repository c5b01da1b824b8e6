"""A user's own task, in a folder of their own outside datasets/: what `--datasets DIR` is for.

`capital_of` asks for the capital of a country; its card, its preparation code and a small
JSONL copy of its "upstream" are written here the way a user would write them, nothing taken
from the project's task folders.
"""

from __future__ import annotations

import json
from pathlib import Path

TASK = "capital_of"

CARD = """\
version: 1
name: capital_of
description: Name the capital city of a country
category: Knowledge
dataset_link: a team member's list of capitals
source:
  kind: local
  id: capitals.jsonl
  splits:
    train: train.jsonl
    validation: validation.jsonl
    test: test.jsonl
prompt_template: |-
  Name the capital city of the country.

  ### Country:
  {country}

  ### Capital:
input_columns: [country]
target_col: capital
metric_name: rouge
split_column: split
split_column_value: 2
split_counts: {train: null, validation: null, test: null}
max_new_tokens: 8
study_tokens: {min: 20, max: 40, p95: 30}
"""

PREPARE = '''\
"""capital_of: one JSON object per line, {"country": ..., "capital": ...}, one file per split."""

import json


def read_rows(source, card):
    for split, name in card.source["splits"].items():
        with open(source / name, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                yield split, {"country": row["country"], "capital": row["capital"]}
'''

CAPITALS = [
    ("France", "Paris"),
    ("Spain", "Madrid"),
    ("Italy", "Rome"),
    ("Portugal", "Lisbon"),
    ("Germany", "Berlin"),
    ("Austria", "Vienna"),
    ("Poland", "Warsaw"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Greece", "Athens"),
    ("Ireland", "Dublin"),
    ("Egypt", "Cairo"),
    ("Japan", "Tokyo"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
]


def write_user_task(root: Path) -> Path:
    """`<root>/capital_of/` (card, prepare.py, fixture/); returns `root`, the folder of cards."""
    folder = Path(root) / TASK
    (folder / "fixture").mkdir(parents=True)
    (folder / "metadata.yaml").write_text(CARD, encoding="utf-8")
    (folder / "prepare.py").write_text(PREPARE, encoding="utf-8")
    parts = {"train": CAPITALS[:10], "validation": CAPITALS[10:13], "test": CAPITALS[13:]}
    for split, rows in parts.items():
        lines = [json.dumps({"country": c, "capital": k}) for c, k in rows]
        (folder / "fixture" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return Path(root)
