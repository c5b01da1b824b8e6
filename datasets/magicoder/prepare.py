"""magicoder: train on Magicoder-OSS-Instruct-75K, evaluate on HumanEval.

A train row: problem and solution of one Magicoder-OSS-Instruct-75K record as published (all
languages; the solution often holds a fenced code block). 75197 rows.

A test row: one HumanEval problem, in the file's order (HumanEval/0 ... HumanEval/163):
problem = its prompt (imports, signature and docstring); solution = the problem as the
humaneval_pass_at_1 metric scores it, `llmbench.tasks.metrics.humaneval_target(prompt, test,
entry_point)` (JSON text), so that the prepared table alone is enough to score pass@1. Test rows
are never trained on (split 2), so no model learns from this JSON.

Upstream files in `source` (one folder):
- the Magicoder JSONL as the Hugging Face repository ships it,
  data-oss_instruct-decontaminated.jsonl, or a Hugging Face export of its train split
  (train.jsonl/.parquet); keys lang, raw_index, index, seed, openai_fingerprint, problem,
  solution;
- HumanEval.jsonl.gz (or HumanEval.jsonl) from openai/human-eval, the card's test split name,
  with task_id, prompt, entry_point, canonical_solution, test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.formats import find_split_file, read_hf_split, read_jsonl
from llmbench.tasks.metrics import humaneval_target

MAGICODER_FILE = "data-oss_instruct-decontaminated.jsonl"
TRAIN_KEYS = ("problem", "solution")
HUMANEVAL_KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    for split, upstream_split in card.source["splits"].items():
        if split == "train":
            yield from _magicoder_rows(source, upstream_split)
        else:
            yield from _humaneval_rows(humaneval_file(source, upstream_split), split)


def _magicoder_rows(source: Path, upstream_split: str) -> Iterator[tuple[str, dict]]:
    if (source / MAGICODER_FILE).is_file():
        path = source / MAGICODER_FILE
        records = read_jsonl(path, TRAIN_KEYS)
    else:
        path = find_split_file(source, upstream_split)
        records = read_hf_split(source, upstream_split, TRAIN_KEYS)
    for number, record in records:
        _check_text(record, TRAIN_KEYS, path, number)
        yield "train", {"problem": record["problem"], "solution": record["solution"]}


def humaneval_file(source: Path, name: str) -> Path:
    """`<name>.jsonl.gz` as openai/human-eval ships it, or `<name>.jsonl` uncompressed."""
    for candidate in (f"{name}.jsonl.gz", f"{name}.jsonl"):
        if (Path(source) / candidate).is_file():
            return Path(source) / candidate
    raise LLMBenchError(
        f"{source}: no file {name}.jsonl.gz; expected HumanEval as openai/human-eval ships it "
        f"({name}.jsonl.gz, or {name}.jsonl uncompressed) beside the Magicoder data"
    )


def _humaneval_rows(path: Path, split: str) -> Iterator[tuple[str, dict]]:
    for number, record in read_jsonl(path, HUMANEVAL_KEYS):
        _check_text(record, HUMANEVAL_KEYS, path, number)
        prompt = record["prompt"]
        target = humaneval_target(prompt, record["test"], record["entry_point"])
        yield split, {"problem": prompt, "solution": target}


def _check_text(record: dict, keys: tuple[str, ...], path: Path, number: int) -> None:
    unit = "row" if path.suffix == ".parquet" else "line"
    for key in keys:
        if not isinstance(record[key], str) or not record[key].strip():
            raise LLMBenchError(f"{path}: {unit} {number}: {key} is empty; expected text")


HUMANEVAL_ID = "openai/openai_humaneval"


def fetch(card, folder: Path) -> None:
    """Online: the Magicoder training split as train.parquet, and HumanEval (from its Hugging
    Face copy, test split) as HumanEval.jsonl in openai/human-eval's own layout."""
    import json

    from llmbench.prepare.fetch import load_hf_split, save_hf_split

    save_hf_split(
        card.source["id"],
        card.source.get("config"),
        card.source["splits"]["train"],
        folder / "train.parquet",
    )
    problems = load_hf_split(HUMANEVAL_ID, None, "test")
    lines = [json.dumps({key: problem[key] for key in HUMANEVAL_KEYS}) for problem in problems]
    (folder / "HumanEval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
