"""Task cards: all 31 of the study's tasks ship valid cards, and broken cards fail loudly."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR
from llmbench.tasks.cards import load_card, load_cards
from llmbench.tasks.metrics import METRICS

EVAL_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2, "human_eval": 2}


def study_tasks(shared: Path) -> dict[str, dict]:
    with open(shared / "paper" / "tasks.csv", newline="") as handle:
        return {row["task"]: row for row in csv.DictReader(handle)}


def test_every_study_task_has_a_valid_card(shared_dir):
    cards = load_cards()
    assert sorted(cards) == sorted(study_tasks(shared_dir))


def test_cards_carry_the_study_facts(shared_dir):
    cards = load_cards()
    for name, row in study_tasks(shared_dir).items():
        card = cards[name]
        assert card.category == row["category"], name
        assert card.dataset_link == row["dataset_link"], name
        assert card.split_column_value == EVAL_SPLIT_CODES[row["eval_split"]], name
        for split, column in [
            ("train", "n_train"),
            ("validation", "n_validation"),
            ("test", "n_test"),
        ]:
            expected = int(row[column]) if row[column] else None
            assert card.split_counts[split] == expected, (name, split)
        assert card.study_tokens == {
            "min": int(row["tokens_min"]),
            "max": int(row["tokens_max"]),
            "p95": int(row["tokens_p95"]),
        }, name


def test_every_card_names_a_known_metric():
    assert {card.metric_name for card in load_cards().values()} <= set(METRICS)


def write_card(root: Path, name: str, **changes) -> Path:
    """A copy of the gsm8k card under root/<name>/ with some keys changed (None deletes)."""
    card = yaml.safe_load((DATASETS_DIR / "gsm8k" / "metadata.yaml").read_text())
    card["name"] = name
    for key, value in changes.items():
        if value is None:
            card.pop(key)
        else:
            card[key] = value
    path = root / name / "metadata.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(LLMBenchError) as caught:
        load_card(path)
    return caught.value.problems


def test_a_valid_user_card_loads(tmp_path):
    card = load_card(write_card(tmp_path, "my_task"))
    assert card.name == "my_task" and card.eval_split == "test"


def test_missing_field_is_named(tmp_path):
    (problem,) = problems_of(write_card(tmp_path, "t", target_col=None))
    assert "metadata.yaml" in problem and "'target_col' is a required property" in problem


def test_wrong_type_is_named(tmp_path):
    (problem,) = problems_of(write_card(tmp_path, "t", max_new_tokens="many"))
    assert "max_new_tokens" in problem and "not of type 'integer'" in problem


def test_unknown_key_gets_a_did_you_mean(tmp_path):
    (problem,) = problems_of(write_card(tmp_path, "t", metric_nme="rouge"))
    assert "unknown key 'metric_nme'" in problem and "did you mean 'metric_name'" in problem


def test_placeholder_that_is_not_an_input_column(tmp_path):
    path = write_card(tmp_path, "t", prompt_template="### Q:\n{question}\n{questoin}\n### A:")
    (problem,) = problems_of(path)
    assert "prompt_template" in problem and "'{questoin}' is not an input column" in problem
    assert "did you mean 'question'" in problem


def test_input_column_missing_from_the_template(tmp_path):
    path = write_card(tmp_path, "t", input_columns=["question", "context"])
    (problem,) = problems_of(path)
    assert "input_columns" in problem and "'context' never appears" in problem


def test_unbalanced_brace_in_template(tmp_path):
    (problem,) = problems_of(write_card(tmp_path, "t", prompt_template="{question} {oops"))
    assert "prompt_template" in problem and "literal braces" in problem


def test_unknown_metric(tmp_path):
    (problem,) = problems_of(write_card(tmp_path, "t", metric_name="rogue"))
    assert "metric_name: unknown metric 'rogue'" in problem and "did you mean 'rouge'" in problem


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "t" / "metadata.yaml"
    path.parent.mkdir()
    path.write_text("name: t\ndescription: [unclosed\nversion: 1\n")
    (problem,) = problems_of(path)
    assert str(path) in problem and "invalid YAML" in problem and "line" in problem


def test_all_problems_of_a_card_are_reported_together(tmp_path):
    path = write_card(tmp_path, "t", max_new_tokens="many", category="Poetry", version=None)
    assert len(problems_of(path)) == 3


def test_folder_and_name_must_agree(tmp_path):
    path = write_card(tmp_path, "t")
    shutil.move(path.parent, tmp_path / "other")
    (problem,) = problems_of(tmp_path / "other" / "metadata.yaml")
    assert "differs from its folder 'other'" in problem


def test_validating_a_folder_reports_every_broken_card(tmp_path):
    write_card(tmp_path, "good")
    write_card(tmp_path, "bad_one", metric_name="nope")
    write_card(tmp_path, "bad_two", target_col=None)
    with pytest.raises(LLMBenchError) as caught:
        load_cards(tmp_path)
    text = str(caught.value)
    assert "bad_one" in text and "bad_two" in text and len(caught.value.problems) == 2
