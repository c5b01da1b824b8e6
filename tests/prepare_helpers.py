"""Helpers shared by the preparation tests: prepare a task, slice its splits, edit fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared
from llmbench.tasks.cards import get_card

SPLIT_CODE = {"train": 0, "validation": 1, "test": 2}


def prepare(task: str, source: Path, out: Path):
    """Prepare `task` from `source` into `out`; the prepared table."""
    prepare_task(task, source=source, out_dir=out, progress=False)
    return read_prepared(task, out)


def rows_of(frame, split: str):
    return frame[frame["split"] == SPLIT_CODE[split]].reset_index(drop=True)


def counts_of(frame) -> dict[str, int]:
    return {
        name: int((frame["split"] == code).sum())
        for name, code in SPLIT_CODE.items()
        if (frame["split"] == code).any()
    }


def copy_fixture(task: str, tmp_path: Path) -> Path:
    """A writable copy of the task's fixture (links resolved) to break on purpose."""
    folder = tmp_path / "source"
    shutil.copytree(fixture_source(get_card(task)), folder)
    return folder


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
