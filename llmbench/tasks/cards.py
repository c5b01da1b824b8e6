"""Task cards: discovery of `<dir>/<task>/metadata.yaml`, validation, and the TaskCard type."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from llmbench.errors import LLMBenchError, did_you_mean, unknown_name
from llmbench.paths import DATASETS_DIR
from llmbench.tasks.metrics import METRICS
from llmbench.validation import load_schema, read_yaml, schema_problems

CARD_FILE = "metadata.yaml"
SPLIT_NAMES = {0: "train", 1: "validation", 2: "test"}


def template_fields(template: str) -> list[str]:
    """The placeholder names of a template, in order of first use; raises on broken syntax."""
    names: list[str] = []
    for _, field_name, format_spec, conversion in string.Formatter().parse(template):
        if field_name is None:
            continue
        if not field_name.isidentifier() or format_spec or conversion:
            raise ValueError(f"placeholder '{{{field_name}}}' must be a plain column name")
        if field_name not in names:
            names.append(field_name)
    return names


@dataclass(frozen=True)
class TaskCard:
    """One validated task card; `path` is the metadata.yaml it came from."""

    path: Path
    version: int
    name: str
    description: str
    category: str
    dataset_link: str
    source: dict
    prompt_template: str
    input_columns: tuple[str, ...]
    target_col: str
    metric_name: str
    split_column: str
    split_column_value: int
    split_counts: dict
    max_new_tokens: int
    study_tokens: dict
    notes: str = ""
    labels: tuple[str, ...] | None = None  # a classification task's label set, when it has one

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def eval_split(self) -> str:
        """The name of the split the study evaluated on."""
        return SPLIT_NAMES[self.split_column_value]


def load_card(path: Path) -> TaskCard:
    """Read and validate one card; every problem in it is reported in one LLMBenchError."""
    path = Path(path)
    document = read_yaml(path)
    problems = schema_problems(document, load_schema("task_card"), path)
    if isinstance(document, dict):
        problems += _cross_field_problems(document, path)
    if problems:
        raise LLMBenchError(*problems)
    document["input_columns"] = tuple(document["input_columns"])
    if "labels" in document:
        document["labels"] = tuple(document["labels"])
    return TaskCard(path=path, **document)


def _cross_field_problems(card: dict, path: Path) -> list[str]:
    """Checks across fields; each runs only when the fields it reads are well-formed (the schema
    reports the rest), so one pass reports everything."""
    problems = []
    for check in (
        _name_problems,
        _metric_problems,
        _template_problems,
        _column_problems,
        _split_problems,
        _label_problems,
    ):
        try:
            problems += check(card, path)
        except (KeyError, TypeError, AttributeError):
            continue
    return problems


def _name_problems(card: dict, path: Path) -> list[str]:
    if card["name"] == path.parent.name:
        return []
    return [
        f"{path}: name: '{card['name']}' differs from its folder '{path.parent.name}'; "
        "expected the folder name"
    ]


def _metric_problems(card: dict, path: Path) -> list[str]:
    name = card["metric_name"]
    if not isinstance(name, str) or name in METRICS:
        return []
    return [
        f"{path}: metric_name: unknown metric '{name}'{did_you_mean(name, METRICS)}; "
        f"expected one of {', '.join(sorted(METRICS))}"
    ]


def _column_problems(card: dict, path: Path) -> list[str]:
    if (
        card["target_col"] not in card["input_columns"]
        and card["target_col"] != card["split_column"]
    ):
        return []
    return [
        f"{path}: target_col: '{card['target_col']}' is also an input or split column; "
        "expected a column of its own"
    ]


def _split_problems(card: dict, path: Path) -> list[str]:
    eval_split = SPLIT_NAMES[card["split_column_value"]]
    splits = card["source"]["splits"]
    if eval_split in splits:
        return []
    return [
        f"{path}: split_column_value: evaluates on '{eval_split}' but source.splits has no "
        f"'{eval_split}'; expected one of {', '.join(splits)}"
    ]


def _label_problems(card: dict, path: Path) -> list[str]:
    """Each label is an answer its card's metric scores as right against itself: a label the
    metric cannot read (a word where it reads a number) could never be scored right."""
    labels, metric = card.get("labels"), METRICS[card["metric_name"]]
    if not isinstance(labels, list):  # absent, or the schema reports it
        return []
    unread = []
    for label in labels:
        try:
            right = metric.score(label, label) == 1
        except LLMBenchError:
            right = False
        if not right:
            unread.append(label)
    if not unread:
        return []
    return [
        f"{path}: labels: {', '.join(map(repr, unread))} not scored as right against itself by "
        f"{metric.name}; expected labels written as the targets are"
    ]


def _template_problems(card: dict, path: Path) -> list[str]:
    if not isinstance(card["prompt_template"], str) or not isinstance(card["input_columns"], list):
        return []
    try:
        fields = template_fields(card["prompt_template"])
    except ValueError as exc:
        return [f"{path}: prompt_template: {exc}; use {{{{ and }}}} for literal braces"]
    columns = card["input_columns"]
    problems = [
        f"{path}: prompt_template: placeholder '{{{name}}}' is not an input column"
        f"{did_you_mean(name, columns)}; expected one of {', '.join(columns)}"
        for name in fields
        if name not in columns
    ]
    problems += [
        f"{path}: input_columns: '{name}' never appears in prompt_template; "
        f"expected a '{{{name}}}' placeholder"
        for name in columns
        if name not in fields
    ]
    return problems


def discover_cards(root: Path = DATASETS_DIR) -> list[Path]:
    """Every `<root>/<task>/metadata.yaml`, sorted by task name."""
    root = Path(root)
    if not root.is_dir():
        raise LLMBenchError(f"{root}: not a directory; expected a folder of <task>/{CARD_FILE}")
    return sorted(root.glob(f"*/{CARD_FILE}"))


def load_cards(root: Path = DATASETS_DIR) -> dict[str, TaskCard]:
    """All cards under `root` by task name; all problems in all cards reported together."""
    cards, problems = {}, []
    for path in discover_cards(root):
        try:
            card = load_card(path)
        except LLMBenchError as exc:
            problems += exc.problems
            continue
        if card.name in cards:
            problems.append(
                f"{path}: name: task '{card.name}' also defined in {cards[card.name].path}"
            )
        cards[card.name] = card
    if problems:
        raise LLMBenchError(*problems)
    if not cards:
        raise LLMBenchError(f"{root}: no task cards found; expected <task>/{CARD_FILE} folders")
    return cards


def get_card(name: str, root: Path = DATASETS_DIR) -> TaskCard:
    """One task's card by name; an unknown name lists the tasks that exist."""
    path = Path(root) / name / CARD_FILE
    if not path.is_file():
        raise unknown_name("task", name, [p.parent.name for p in discover_cards(root)])
    return load_card(path)


def as_card(task: str | TaskCard, root: Path = DATASETS_DIR) -> TaskCard:
    """`task` itself when it is a card already loaded (the bake-off resolves each once), else
    its card by name from `root`."""
    return task if isinstance(task, TaskCard) else get_card(task, root)
