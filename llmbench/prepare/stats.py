"""`llmbench tasks stats`: token lengths of realized prompts, targets and whole examples.

Counts are in tiktoken's cl100k_base tokens, the study's unit. A whole example is the realized
prompt followed by the target; its length is the sum of the two counts (BPE may merge across the
seam, so this can exceed the joined text's count by a token).
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR, DEFAULT_WORK_DIR, atomic_write_text
from llmbench.tasks.cards import SPLIT_NAMES, TaskCard
from llmbench.tasks.models import BaseModel
from llmbench.tasks.prompts import realized_template
from llmbench.workdir import Workdir


@dataclass(frozen=True)
class SplitStats:
    task: str
    model: str
    split: str
    rows: int
    prompt_min: int
    prompt_max: int
    prompt_mean: float
    prompt_p95: float
    target_min: int
    target_max: int
    target_mean: float
    target_p95: float
    example_min: int
    example_max: int
    example_mean: float
    example_p95: float


def stats_path(work_dir: Path = DEFAULT_WORK_DIR) -> Path:
    return Workdir(work_dir).token_stats


def task_token_stats(card: TaskCard, model: BaseModel, work_dir: Path) -> list[SplitStats]:
    """Per split of the task's prepared table: min, max, mean and p95 of each length."""
    import numpy as np

    from llmbench.prepare.tables import read_prepared
    from llmbench.tasks.tokens import count_tokens

    table = read_prepared(card.name, work_dir)
    template = realized_template(card, model)
    columns = list(card.input_columns)
    results = []
    for code, split in SPLIT_NAMES.items():
        part = table[table[card.split_column] == code]
        if part.empty:
            continue
        prompts = [
            template.format(**dict(zip(columns, values, strict=True)))
            for values in part[columns].itertuples(index=False, name=None)
        ]
        prompt = np.array(count_tokens(prompts))
        target = np.array(count_tokens(part[card.target_col].tolist()))
        results.append(
            SplitStats(
                card.name,
                model.name,
                split,
                len(part),
                *_summary(prompt),
                *_summary(target),
                *_summary(prompt + target),
            )
        )
    return results


def _summary(lengths) -> tuple[int, int, float, float]:
    import numpy as np

    return (
        int(lengths.min()),
        int(lengths.max()),
        round(float(lengths.mean()), 2),
        round(float(np.percentile(lengths, 95)), 2),
    )


def write_stats(rows: list[SplitStats], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in fields(SplitStats)])
    writer.writerows(astuple(row) for row in rows)
    atomic_write_text(path, buffer.getvalue())


def longest_examples(path: Path) -> dict[str, int]:
    """Task -> its longest whole example over all splits, from a stats CSV."""
    if not Path(path).is_file():
        raise LLMBenchError(f"{path}: not found; run `llmbench tasks stats` first")
    longest: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"task", "example_max"} - set(reader.fieldnames or [])
        if missing:
            raise LLMBenchError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for number, row in enumerate(reader, start=2):
            try:
                value = int(row["example_max"])
            except ValueError:
                raise LLMBenchError(
                    f"{path}: line {number}: example_max '{row['example_max']}' is not an integer"
                ) from None
            longest[row["task"]] = max(value, longest.get(row["task"], 0))
    return longest


def longest_in_model_tokens(
    task: str | TaskCard,
    model: BaseModel,
    model_dir: Path,
    work_dir: Path,
    datasets_dir: Path = DATASETS_DIR,
) -> tuple[int, str]:
    """The longest whole example of the task's prepared table (the task by name, or its card
    already loaded) in the model's own tokens (its realized prompt, the target and the EOS token
    Ludwig appends), and where it was measured."""
    from transformers import AutoTokenizer

    from llmbench.prepare.tables import read_prepared
    from llmbench.tasks.cards import as_card

    card = as_card(task, datasets_dir)
    task = card.name
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    table = read_prepared(task, work_dir)
    template = realized_template(card, model)
    prompts = [
        template.format(**dict(zip(card.input_columns, values, strict=True)))
        for values in table[list(card.input_columns)].itertuples(index=False, name=None)
    ]
    prompt_ids = tokenizer(prompts).input_ids
    _check_no_pad_token(tokenizer, prompt_ids, model, task)
    prompt_lengths = [len(ids) for ids in prompt_ids]
    target_lengths = [len(ids) for ids in tokenizer(table[card.target_col].tolist()).input_ids]
    longest = max(p + t + 1 for p, t in zip(prompt_lengths, target_lengths, strict=True))
    return longest, f"{Workdir(work_dir).prepared(task)}, {model.name}'s tokenizer"


def _check_no_pad_token(tokenizer, prompt_ids: list[list[int]], model: BaseModel, task: str):
    """Ludwig 0.17 takes a training prompt to start after its last pad token (it strips "left
    padding" up to there), so a pad token inside a prompt silently cuts the prompt."""
    pad = tokenizer.pad_token_id
    if pad is not None and any(pad in ids for ids in prompt_ids):
        raise LLMBenchError(
            f"{model.name}: its pad token {tokenizer.pad_token!r} occurs in {task}'s realized "
            "prompts (for example in the chat markup); Ludwig would train on what follows its "
            "last occurrence only; give the tokenizer a pad token that prompts never hold"
        )
