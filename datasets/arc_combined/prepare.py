"""arc_combined: one row per question of allenai/ai2_arc, ARC-Challenge and ARC-Easy together
(train 1119 + 2251, validation 299 + 570, test 1172 + 2376).

Local copy layout: one folder per config, each holding either AI2's release files (the
ARC-V1-Feb2018 folders, JSONL) or one Hugging Face export file per split (the layout a fetch of
this two-config card writes):

    <source>/ARC-Challenge/ARC-Challenge-{Train,Dev,Test}.jsonl   (AI2: Dev is validation)
    <source>/ARC-Easy/ARC-Easy-{Train,Dev,Test}.jsonl
or
    <source>/ARC-Challenge/{train,validation,test}.jsonl   (or .parquet / .csv)
    <source>/ARC-Easy/{train,validation,test}.jsonl

An AI2 line holds id, question {stem, choices: [{text, label}, ...]} and answerKey; it is read
as the Hugging Face loader reads it (question = the stem, choices = the texts and labels).

The configs come from the card's source.config ('ARC-Challenge+ARC-Easy'); each of our splits is
the Challenge rows followed by the Easy rows, in upstream order.

Upstream columns: id, question, choices {text: [...], label: [...]}, answerKey. Inputs: the
question, and the choices rendered by `lettered_choices` (llmbench/prepare/readers/choices.py)
as lines 'A. ...' in upstream order (3 to 5 options). The target is the letter at the
answerKey's position among the choice labels, so the few questions labelled '1'-'5' (answerKey
'1'-'5') get letters A-E like the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.choices import LETTERS, lettered_choices, option_texts
from llmbench.prepare.readers.formats import hf_rows, read_jsonl, row_text

REQUIRED = ("question", "choices", "answerKey")
AI2_SPLITS = {"train": "Train", "validation": "Dev", "test": "Test"}


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    configs = config_folders(source, card)
    for split, upstream in card.source["splits"].items():
        for folder in configs:
            for path, number, row in config_rows(folder, split, upstream):
                options, labels = choice_lists(row["choices"], path, number)
                yield (
                    split,
                    {
                        "question": row_text(row, "question", path, number),
                        "choices": lettered_choices(options),
                        "answer": answer_letter(row["answerKey"], labels, path, number),
                    },
                )


def config_folders(source: Path, card) -> list[Path]:
    """`<source>/<config>` for each config in source.config, which must all exist."""
    configs = card.source["config"].split("+")
    missing = [c for c in configs if not (Path(source) / c).is_dir()]
    if missing:
        raise LLMBenchError(
            f"{source}: no folder {', '.join(missing)}; expected one folder per ARC config "
            f"({', '.join(configs)}), each with one file per split"
        )
    return [Path(source) / c for c in configs]


def config_rows(folder: Path, split: str, upstream: str) -> Iterator[tuple[Path, int, dict]]:
    """(file, row number, row with question, choices and answerKey) of one config's split: from
    AI2's `<config>-<Train|Dev|Test>.jsonl` when the folder holds AI2 files, else from the
    Hugging Face export."""
    ai2_files = [folder / f"{folder.name}-{name}.jsonl" for name in AI2_SPLITS.values()]
    if not any(path.is_file() for path in ai2_files):
        for _, path, number, row in hf_rows(folder, {split: upstream}, REQUIRED):
            yield path, number, row
        return
    path = folder / f"{folder.name}-{AI2_SPLITS[upstream]}.jsonl"
    for number, line in read_jsonl(path, ("question", "answerKey")):
        yield path, number, ai2_row(line, path, number)


def ai2_row(line: dict, path: Path, number: int) -> dict:
    """An AI2 line in the Hugging Face row's shape: the stem as question, the choices as lists."""
    question = line["question"]
    choices = question.get("choices") if isinstance(question, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise LLMBenchError(
            f"{path}: row {number}: question is {question!r:.60}; expected an object "
            "{stem, choices: [{text, label}, ...]}"
        )
    return {
        "question": question.get("stem"),
        "choices": {
            "text": [c.get("text") for c in choices],
            "label": [c.get("label") for c in choices],
        },
        "answerKey": line["answerKey"],
    }


def choice_lists(choices, path: Path, number: int) -> tuple[list[str], list[str]]:
    """The option texts and their labels, two lists of equal length."""
    if not isinstance(choices, dict) or not isinstance(choices.get("label"), list):
        raise LLMBenchError(
            f"{path}: row {number}: choices is {choices!r:.60}; expected an object "
            "{text: [...], label: [...]}"
        )
    options = option_texts(choices.get("text"), "choices.text", path, number)
    if len(choices["label"]) != len(options):
        raise LLMBenchError(
            f"{path}: row {number}: choices has {len(options)} texts but "
            f"{len(choices['label'])} labels; expected one label per text"
        )
    return options, [str(label).strip() for label in choices["label"]]


def answer_letter(key, labels: list[str], path: Path, number: int) -> str:
    """The letter of the answerKey's position among the choice labels ('C' for key 'C' or '3')."""
    key = str(key).strip()
    if key not in labels:
        raise LLMBenchError(
            f"{path}: row {number}: answerKey {key!r} is not a choice label; expected one of "
            f"{', '.join(labels)}"
        )
    return LETTERS[labels.index(key)]


def fetch(card, folder: Path) -> None:
    """Online: each ARC config's splits into `<folder>/<config>/<split>.parquet`."""
    from llmbench.prepare.fetch import save_hf_split, upstream_split_names

    for config in card.source["config"].split("+"):
        for split in upstream_split_names(card):
            save_hf_split(card.source["id"], config, split, folder / config / f"{split}.parquet")
