"""Constrained evaluation: a classification task's answers restricted to its card's labels.

The way lm-evaluation-harness scores multiple choice, a constrained run asks which label the
model prefers, not whether it also writes it in the expected format: the server's structured
output lets the model generate nothing but one of the labels. Each request carries a JSON
schema whose only values are the labels (`label_schema`), as LoRAX's `response_format` (lorax
backend) or OpenAI's `json_schema` (openai backend); `llmbench serve` enforces it with vLLM's
llguidance backend, token by token. The answer is the label as a JSON string (`"1"`), read back
by `chosen_label`. A JSON choice, not a regex: LoRAX's API and `llmbench serve` take a JSON
schema, not a regular expression (docs/evaluation.md, "Constrained evaluation").

A card without `labels` is refused (`card_labels`), and so is one whose labels cannot answer
some eval row right (`check_targets`): a constrained score must be able to reach 1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from llmbench.errors import LLMBenchError

SCHEMA_NAME = "label"  # the name OpenAI's json_schema response format asks for


def label_schema(labels: Sequence[str]) -> dict:
    """The JSON schema of one label: a JSON string whose value is one of `labels`."""
    return {"type": "string", "enum": list(labels)}


def lorax_response_format(labels: Sequence[str]) -> dict:
    """LoRAX's `response_format` restricting the answer to `labels`."""
    return {"type": "json_object", "schema": label_schema(labels)}


def openai_response_format(labels: Sequence[str]) -> dict:
    """OpenAI's `response_format` restricting the answer to `labels`."""
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": label_schema(labels)},
    }


def card_labels(card) -> tuple[str, ...]:
    """The labels a constrained run of `card`'s task restricts answers to; a one-line error,
    naming the task and its card's field, when it has none."""
    if not card.labels:
        raise LLMBenchError(
            f"{card.path}: labels: task {card.name} has no label set, so its answers cannot be "
            "constrained; expected a classification task whose card lists its labels "
            "(e.g. labels: ['0', '1']), or evaluate it without --constrained"
        )
    return card.labels


def check_targets(card, examples: Sequence, metric_name: str) -> None:
    """Every example's target is scored right by some label (else no constrained answer could
    be right on that row); a one-line error naming the card's labels and the first such row."""
    from llmbench.tasks.metrics import get_metric

    score = get_metric(metric_name).score
    missed = [e for e in examples if not any(score(label, e.target) for label in card.labels)]
    if missed:
        more = f" (and {len(missed) - 1} more)" if len(missed) > 1 else ""
        raise LLMBenchError(
            f"{card.path}: labels: {card.eval_split} example {missed[0].id}{more} has the target "
            f"{missed[0].target!r}, which no label answers right under {metric_name}; expected "
            f"labels covering every target, got {', '.join(map(repr, card.labels))}"
        )


def chosen_label(output: str, labels: Sequence[str]) -> str | None:
    """The label a constrained answer names (a JSON string, `"1"`); None when it names none: cut
    off by max_new_tokens, or from a server that did not enforce the schema."""
    try:
        value = json.loads(output)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) and value in labels else None
