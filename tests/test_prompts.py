"""Prompt realization: what Ludwig trains on and what evaluation sends are the same bytes."""

from __future__ import annotations

import pandas as pd
import pytest

from llmbench.errors import LLMBenchError
from llmbench.tasks.cards import get_card, load_cards, template_fields
from llmbench.tasks.models import get_model, study_models
from llmbench.tasks.prompts import realize_prompt, realized_template

# Values that could go wrong: braces, quotes, backslashes, newlines, unicode, numbers as text.
AWKWARD = [
    "say {hi} and {{x}}",
    'quote " and \\n backslash',
    "line one\nline two\n",
    "Zoë – 東京",
    "05",
    "  padded  ",
]


def ludwig_prompts(template: str, frame: pd.DataFrame, feature_column: str) -> list[str]:
    """Prompts as Ludwig's own preprocessing builds them from `prompt.template`."""
    from ludwig.backend import LocalBackend
    from ludwig.data.prompt import format_input_with_prompt

    series = format_input_with_prompt(
        feature_column, frame, LocalBackend(), task_str=None, template=template
    )
    return list(series)


def awkward_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: [f"{v} ({c})" for v in AWKWARD] for c in columns}, dtype=object)


LOCAL_MODELS = ["tiny", "smollm2-135m"]


@pytest.mark.parametrize("model_name", [m.name for m in study_models()] + LOCAL_MODELS)
def test_ludwig_and_realize_prompt_agree_byte_for_byte(model_name):
    model = get_model(model_name)
    for card in load_cards().values():
        frame = awkward_frame(card.input_columns)
        ours = [realize_prompt(card, model, row) for row in frame.to_dict("records")]
        theirs = ludwig_prompts(realized_template(card, model), frame, card.input_columns[0])
        assert ours == theirs, (model_name, card.name)


def test_realized_prompt_is_markup_around_the_filled_task_prompt():
    card = get_card("gsm8k")
    prompt = realize_prompt(card, get_model("gemma-7b-instruct"), {"question": "What is {2+2}?"})
    assert prompt.startswith("<start_of_turn>user\nSolve the grade-school math")
    assert "### Problem:\nWhat is {2+2}?\n\n### Solution:<end_of_turn>\n" in prompt
    assert prompt.endswith("<start_of_turn>model\n")


def test_base_model_prompt_is_the_task_prompt_alone():
    card = get_card("gsm8k")
    row = {"question": "Q?"}
    assert realize_prompt(card, get_model("mistral-7b"), row) == card.prompt_template.format(**row)


def test_missing_input_column_is_a_clear_error():
    with pytest.raises(LLMBenchError, match="lacks input column\\(s\\) question"):
        realize_prompt(get_card("gsm8k"), get_model("mistral-7b"), {"answer": "4"})


def test_template_fields_in_order_without_repeats():
    assert template_fields("{b} then {a}, again {b}; {{literal}}") == ["b", "a"]


@pytest.mark.parametrize("bad", ["{a.b}", "{a!r}", "{a:>5}", "{0}", "{}"])
def test_only_plain_column_placeholders_are_allowed(bad):
    with pytest.raises(ValueError, match="plain column name"):
        template_fields(bad)
