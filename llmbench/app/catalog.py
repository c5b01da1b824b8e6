"""What the LoRA Land page offers: adapters by task, their scores, example rows, token counts.

Load inputs (task cards, the adapters folder or map, the base model) -> build a Catalog the web
service reads. Nothing here talks to the endpoint; `stream.py` does that.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError, did_you_mean
from llmbench.tasks.cards import TaskCard, load_cards
from llmbench.tasks.models import BaseModel, load_registry
from llmbench.tasks.prompts import realize_prompt, realized_template
from llmbench.validation import read_yaml
from llmbench.workdir import Workdir
from llmbench.workdir import adapter_id as sweep_adapter_id

EXAMPLES_SHOWN = 5
ADAPTER_CONFIG = "adapter_config.json"
# The study's demo base model: whose Table 12 scores stand in when yours has none in the study.
STUDY_STAND_IN = "mistral-7b"
LINK_PREFIXES = {
    "hf://": "https://huggingface.co/datasets/",
    "kaggle://": "https://www.kaggle.com/",
    "github://": "https://github.com/",
}


# --- the base model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """The served base model: `name` files results (`<runs>/eval/<name>/...`), `markup` wraps
    prompts, `tokenizer_dir` (a local folder) counts tokens exactly when there is one."""

    name: str
    markup: BaseModel
    tokenizer_dir: Path | None


def resolve_base(name: str, results: Path | None) -> Base:
    """`--base-model`: a registry name, a registry hub id, or a local model folder."""
    registry = load_registry()
    by_hub_id = {m.hub_id: m for m in registry.values() if m.hub_id}
    if name in registry or name in by_hub_id:
        model = registry.get(name) or by_hub_id[name]
        workdir = Workdir(results) if results else Workdir()
        local = workdir.local_model(model) if model.local_path else None
        has_local = local is not None and (local / "config.json").is_file()
        return Base(model.name, model, local if has_local else None)
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        # A local folder named like a registry model (runs/models/tiny) takes that model's markup.
        markup = registry.get(folder.name) or _plain_model(registry)
        return Base(folder.name, markup, folder)
    raise LLMBenchError(
        f"--base-model {name}: not a registry model{did_you_mean(name, registry)} nor a local "
        f"model folder (with a config.json); expected one of {', '.join(registry)} or a folder"
    )


def _plain_model(registry: dict[str, BaseModel]) -> BaseModel:
    return next(m for m in registry.values() if m.markup_name == "plain")


class TokenCounter:
    """Counts a realized prompt's tokens with the base model's own tokenizer when it is local,
    else with tiktoken's cl100k_base (the study's tokenizer for its statistics)."""

    def __init__(self, tokenizer_dir: Path | None):
        self.tokenizer = None
        if tokenizer_dir is None:
            self.name = (
                "cl100k_base (tiktoken): an estimate, the base model's tokenizer is not local"
            )
            return
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        self.name = (
            f"the base model's own tokenizer ({Path(tokenizer_dir).name}), special tokens included"
        )

    def count(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text)["input_ids"])
        from llmbench.tasks.tokens import count_tokens

        return count_tokens([text], threads=1)[0]


# --- adapters -> tasks --------------------------------------------------------------------------


def adapters_from_dir(root: Path, cards: dict[str, TaskCard], model: str) -> dict[str, str]:
    """task -> adapter id, read from the folder the server serves: `<root>/<task>/` (a flat
    folder of task-named adapters) or `<root>/<model>/<task>/` (the sweep's runs/train)."""
    root = Path(root)
    if not root.is_dir():
        raise LLMBenchError(f"--adapters {root}: not a folder")
    found = {}
    for task in cards:
        for adapter_id in (task, sweep_adapter_id(model, task)):
            folder = root / adapter_id
            if folder.is_dir() and next(folder.rglob(ADAPTER_CONFIG), None) is not None:
                found[task] = adapter_id
                break
    if not found:
        raise LLMBenchError(
            f"--adapters {root}: no trained adapter found; expected <task>/ or {model}/<task>/ "
            f"folders holding an {ADAPTER_CONFIG} (or use --adapter-map)"
        )
    return found


def adapters_from_map(path: Path, cards: dict[str, TaskCard]) -> dict[str, str]:
    """task -> adapter id from a YAML or JSON mapping; every bad entry reported at once."""
    document = read_yaml(path)
    if not isinstance(document, dict) or not document:
        raise LLMBenchError(f"{path}: expected a mapping of task name to adapter id")
    problems = []
    for task, adapter_id in document.items():
        if task not in cards:
            problems.append(
                f"{path}: {task}: unknown task{did_you_mean(str(task), cards)}; "
                "expected a task name (`llmbench tasks list`)"
            )
        if not isinstance(adapter_id, str) or not adapter_id:
            problems.append(f"{path}: {task}: expected an adapter id (text), got {adapter_id!r}")
    if problems:
        raise LLMBenchError(*problems)
    return dict(sorted(document.items()))


# --- scores -------------------------------------------------------------------------------------


def scores(task: str, adapter_id: str, model: str, results: Path | None) -> dict:
    """The fine-tuned and base scores: from your `llmbench eval` results where they exist, else
    the study's Table 12; each number says where it comes from. Yours carry their 95% interval
    (the report's paired bootstrap, the same numbers), and the adapter's lift over the base
    model with its interval where both are yours, scored on the same rows."""
    from llmbench.evaluate.harness import SCORES
    from llmbench.report.table12 import read_run

    runs = {}
    if results is not None:
        for side, adapter in (("adapter", adapter_id), ("base", None)):
            path = Workdir(results).eval_run(model, task, adapter) / SCORES
            if path.is_file():
                runs[side] = read_run(path)
    study = _study_scores(task, model)
    found = {side: study[side] for side in ("adapter", "base")}
    found["lift"], found["method"] = None, None
    if not runs:
        return found
    from llmbench.report.intervals import cell_intervals, method_text

    cell = cell_intervals(runs.get("adapter"), runs.get("base"), (task, model))
    for side, interval in (("adapter", cell.ft), ("base", cell.base)):
        if side in runs:
            found[side] = _your_score(runs[side], interval)
    if cell.ft or cell.base:
        found["method"] = method_text()
    if cell.lift is not None:
        lift = runs["adapter"].score - runs["base"].score
        found["lift"] = {
            "score": lift,
            "interval": [cell.lift.low, cell.lift.high],
            "source": f"your results, paired on the same {runs['base'].n} examples",
        }
    return found


def _your_score(run, interval) -> dict:
    return {
        "score": run.score,
        "interval": [interval.low, interval.high] if interval else None,
        "source": f"your results ({run.n} examples)",
        "path": str(run.path),
    }


def _study_scores(task: str, model: str) -> dict:
    table = _study_table()
    who = model if model in table.models else STUDY_STAND_IN
    if task not in table.tasks:
        return {"adapter": None, "base": None}
    label = f"the study's Table 12 ({who})"
    if who != model:
        label = f"the study's Table 12, for {who} (the study has no {model})"
    return {
        "adapter": {"score": float(table.ft.loc[task, who]), "source": label},
        "base": {"score": float(table.base.loc[task, who]), "source": label},
    }


@functools.cache
def _study_table():
    from llmbench.report.table12 import study_table

    return study_table()


# --- examples -----------------------------------------------------------------------------------


def example_rows(card: TaskCard, results: Path | None, limit: int = EXAMPLES_SHOWN) -> dict:
    """The first rows of the task's eval split: from `<results>/prepared/` when prepared there,
    else from the task's fixture, prepared on the fly into a temporary folder."""
    from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared

    prepared = Workdir(results).prepared(card.name) if results is not None else None
    if prepared is not None and prepared.is_file():
        frame = read_prepared(card.name, results, split=card.split_column_value)
        source = f"the prepared {card.eval_split} split ({prepared})"
    else:
        with tempfile.TemporaryDirectory(prefix="llmbench-app-") as work:
            try:
                # the card's own folder of cards: a user's task prepares with its own code
                prepare_task(
                    card.name,
                    fixture_source(card),
                    Path(work),
                    datasets_dir=card.folder.parent,
                    progress=False,
                )
            except LLMBenchError as exc:
                return {"rows": [], "source": f"none: the fixture did not prepare ({exc})"}
            frame = read_prepared(card.name, Path(work), split=card.split_column_value)
        source = f"the task's fixture ({card.eval_split} split)"
    rows = [
        {"fields": {c: row[c] for c in card.input_columns}, "target": row[card.target_col]}
        for row in frame.head(limit).to_dict("records")
    ]
    return {"rows": rows, "source": source}


def dataset_url(link: str) -> str | None:
    """A browsable https address for a card's dataset_link (hf://, kaggle://, github://)."""
    address = link.split(" ")[0]
    for prefix, site in LINK_PREFIXES.items():
        if address.startswith(prefix):
            return site + address[len(prefix) :]
    return address if address.startswith("https://") else None


# --- the catalog --------------------------------------------------------------------------------


@dataclass
class Catalog:
    """Everything the page shows, built once at start-up (examples on first use)."""

    endpoint: str
    base: Base
    adapters: dict[str, str]  # task -> adapter id
    cards: dict[str, TaskCard]
    counter: TokenCounter
    results: Path | None = None
    _examples: dict[str, dict] = field(default_factory=dict)

    def card(self, task: str) -> TaskCard:
        if task not in self.adapters:
            raise LLMBenchError(
                f"task '{task}' has no adapter here{did_you_mean(task, self.adapters)}"
            )
        return self.cards[task]

    def summary(self) -> dict:
        categories = sorted({c.category for c in self.cards.values()})
        return {
            "endpoint": self.endpoint,
            "base_model": self.base.name,
            "tokenizer": self.counter.name,
            "categories": categories,
            "adapters": [
                {
                    "task": task,
                    "adapter_id": adapter_id,
                    "category": self.cards[task].category,
                    "description": self.cards[task].description,
                }
                for task, adapter_id in self.adapters.items()
            ],
        }

    def details(self, task: str) -> dict:
        card = self.card(task)
        if task not in self._examples:
            self._examples[task] = example_rows(card, self.results)
        return {
            "task": task,
            "adapter_id": self.adapters[task],
            "category": card.category,
            "description": card.description,
            "metric": card.metric_name,
            "dataset_link": card.dataset_link,
            "dataset_url": dataset_url(card.dataset_link),
            "prompt_template": realized_template(card, self.base.markup),
            "input_columns": list(card.input_columns),
            "max_new_tokens": card.max_new_tokens,
            "scores": scores(task, self.adapters[task], self.base.name, self.results),
            "examples": self._examples[task],
        }

    def realized_prompt(self, task: str, fields: dict) -> str:
        card = self.card(task)
        if not all(isinstance(v, str) for v in fields.values()):
            raise LLMBenchError("fields: expected text for every input column")
        return realize_prompt(card, self.base.markup, fields)


def build_catalog(
    endpoint: str,
    base_model: str,
    adapters_dir: Path | None = None,
    adapter_map: Path | None = None,
    results: Path | None = None,
    datasets_dir: Path | None = None,
) -> Catalog:
    """Read the cards, the adapters (a folder or a map) and the base model into a Catalog."""
    if not endpoint.startswith(("http://", "https://")):
        raise LLMBenchError(f"--endpoint {endpoint}: expected an http:// or https:// URL")
    if (adapters_dir is None) == (adapter_map is None):
        raise LLMBenchError("give --adapters DIR or --adapter-map FILE (one of them)")
    cards = load_cards(datasets_dir) if datasets_dir else load_cards()
    base = resolve_base(base_model, results)
    adapters = (
        adapters_from_dir(adapters_dir, cards, base.name)
        if adapters_dir is not None
        else adapters_from_map(adapter_map, cards)
    )
    return Catalog(
        endpoint.rstrip("/"), base, adapters, cards, TokenCounter(base.tokenizer_dir), results
    )
