"""Prompt realization: the task's prompt template inside the base model's markup, filled in.

Training (Ludwig fills `prompt.template` of the rendered config) and evaluation (llmbench sends
`realize_prompt(...)`) must produce the same text byte for byte. Both go through the same two
steps defined here: `realized_template` builds the template that the rendered config carries,
and filling it uses Python's `str.format` with every field's value as `str`, exactly as
Ludwig's `format_input_with_prompt` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmbench.errors import LLMBenchError
from llmbench.tasks.cards import TaskCard
from llmbench.tasks.models import PROMPT_SLOT, BaseModel


def realized_template(card: TaskCard, model: BaseModel) -> str:
    """The task's prompt template wrapped in the model family's markup, still unfilled."""
    return model.markup.replace(PROMPT_SLOT, card.prompt_template)


def realize_prompt(card: TaskCard, model: BaseModel, row: Mapping[str, Any]) -> str:
    """The exact text a model sees for one example of `card`: training and evaluation alike."""
    missing = [c for c in card.input_columns if c not in row]
    if missing:
        raise LLMBenchError(
            f"task {card.name}: example lacks input column(s) {', '.join(missing)}; "
            f"expected columns {', '.join(card.input_columns)}"
        )
    return realized_template(card, model).format(**{c: str(row[c]) for c in card.input_columns})
