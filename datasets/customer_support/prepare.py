"""customer_support: one row per conversation (sid) of the Gridspace-Stanford Harper Valley
repository, which keeps each conversation in data/transcript/<sid>.json (a list of segments)
and data/metadata/<sid>.json. The source is the repository root, or a folder holding it as
its only subfolder (as GitHub's archive unpacks).

transcript: the segments in `index` order, one line each, '<speaker_role>: <human_transcript>'
(e.g. 'caller: i lost my debit card'); segments without a human transcript (missing, null or
blank) are left out. task_type (the target): the metadata's tasks[0].task_type, one of the eight
task types below. A conversation qualifies when its tasks list is non-empty and at least one
segment has a human transcript; the others are skipped.

Split (the project's own, as upstream has none): the study had 1245 / 245 / 391 conversations
(train / validation / test, 1881 in all); with N qualifying conversations, test gets
round(N * 391 / 1881), validation round(N * 245 / 1881) and train the rest. Conversations are
ranked by sha256('<SEED>:<sid>'), so the partition depends only on the sids, never on listing
order; the first ranked go to test, the next to validation. Rows are written by sid within each
split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError

SEED = 20240429
STUDY_SIZES = {"train": 1245, "validation": 245, "test": 391}
TASK_TYPES = (
    "check balance",
    "get branch hours",
    "order checks",
    "pay bill",
    "replace card",
    "reset password",
    "schedule appointment",
    "transfer money",
)
SPEAKER_ROLES = ("agent", "caller")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    data = data_folder(Path(source))
    rows = {}
    for sid in conversation_ids(data):
        row = conversation_row(data, sid)
        if row is not None:
            rows[sid] = row
    assignment = assign_splits(list(rows))
    for split in card.source["splits"]:
        for sid in sorted(s for s, name in assignment.items() if name == split):
            yield split, rows[sid]


def data_folder(source: Path) -> Path:
    """The repository's data/ folder under `source` (the root, or its only subfolder)."""
    candidates = [source / "data"]
    if source.is_dir():
        candidates += [child / "data" for child in sorted(source.iterdir()) if child.is_dir()]
    found = [c for c in candidates if (c / "metadata").is_dir() and (c / "transcript").is_dir()]
    if len(found) != 1:
        where = "none" if not found else ", ".join(str(f) for f in found)
        raise LLMBenchError(
            f"{source}: expected one data/ folder with metadata/ and transcript/ (the "
            f"repository root); found {where}"
        )
    return found[0]


def conversation_ids(data: Path) -> list[str]:
    """The sids, sorted; every metadata file needs its transcript file and the reverse."""
    metadata = {p.stem for p in (data / "metadata").glob("*.json")}
    transcripts = {p.stem for p in (data / "transcript").glob("*.json")}
    unpaired = (("transcript", metadata - transcripts), ("metadata", transcripts - metadata))
    for folder, sids in unpaired:
        if sids:
            sid = sorted(sids)[0]
            raise LLMBenchError(
                f"{data / folder / sid}.json: file not found ({len(sids)} conversation(s) lack "
                f"their {folder} file); expected one per conversation"
            )
    if not metadata:
        raise LLMBenchError(f"{data / 'metadata'}: no .json files; expected one per conversation")
    return sorted(metadata)


def conversation_row(data: Path, sid: str) -> dict | None:
    """The conversation's row, or None when it does not qualify."""
    task_type = first_task_type(data / "metadata" / f"{sid}.json")
    lines = transcript_lines(data / "transcript" / f"{sid}.json")
    if task_type is None or not lines:
        return None
    return {"transcript": "\n".join(lines), "task_type": task_type}


def first_task_type(path: Path) -> str | None:
    metadata = read_json(path)
    tasks = metadata.get("tasks") if isinstance(metadata, dict) else None
    if not isinstance(tasks, list):
        raise LLMBenchError(f"{path}: key 'tasks' missing or not a list; expected a list of tasks")
    if not tasks:
        return None
    task_type = tasks[0].get("task_type") if isinstance(tasks[0], dict) else None
    if task_type not in TASK_TYPES:
        raise LLMBenchError(
            f"{path}: tasks[0].task_type {task_type!r} unknown; expected one of "
            f"{', '.join(TASK_TYPES)}"
        )
    return task_type


def transcript_lines(path: Path) -> list[str]:
    segments = read_json(path)
    if not isinstance(segments, list):
        raise LLMBenchError(
            f"{path}: top level is {type(segments).__name__}; expected a list of segments"
        )
    lines = []
    for position, segment in enumerate(segments):
        where = f"{path}: segment {position}"
        if not isinstance(segment, dict) or not isinstance(segment.get("index"), int):
            raise LLMBenchError(f"{where}: expected an object with an integer 'index'")
        if segment.get("speaker_role") not in SPEAKER_ROLES:
            raise LLMBenchError(
                f"{where}: speaker_role {segment.get('speaker_role')!r} unknown; expected agent "
                "or caller"
            )
        text = segment.get("human_transcript")
        if isinstance(text, str) and text.strip():
            lines.append((segment["index"], f"{segment['speaker_role']}: {text.strip()}"))
    return [line for _, line in sorted(lines, key=lambda item: item[0])]


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LLMBenchError(f"{path}: undecodable bytes ({exc.reason}); expected UTF-8") from None
    except json.JSONDecodeError as exc:
        raise LLMBenchError(f"{path}: line {exc.lineno}: bad JSON ({exc.msg})") from None


def assign_splits(sids: list[str]) -> dict[str, str]:
    """sid -> split: ranked by a seeded hash, cut in the study's proportions."""
    total = sum(STUDY_SIZES.values())
    n_test = round(len(sids) * STUDY_SIZES["test"] / total)
    n_validation = round(len(sids) * STUDY_SIZES["validation"] / total)
    ranked = sorted(sids, key=lambda sid: hashlib.sha256(f"{SEED}:{sid}".encode()).hexdigest())
    return {
        sid: "test" if rank < n_test else "validation" if rank < n_test + n_validation else "train"
        for rank, sid in enumerate(ranked)
    }
