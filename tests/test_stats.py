"""Token statistics (cl100k_base, offline) and sizing configs from them."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.prepare.stats import longest_examples, stats_path, task_token_stats
from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared
from llmbench.tasks.cards import get_card
from llmbench.tasks.models import get_model
from llmbench.tasks.prompts import realize_prompt
from llmbench.tasks.tokens import cl100k, count_tokens
from llmbench.train.render import render_configs


def test_cl100k_is_the_real_encoding_and_needs_no_download():
    # tiktoken's own documented example for cl100k_base.
    assert cl100k().encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert count_tokens(["hello world", ""]) == [2, 0]


@pytest.fixture
def gsm8k_prepared(tmp_path):
    card = get_card("gsm8k")
    prepare_task("gsm8k", source=fixture_source(card), out_dir=tmp_path, progress=False)
    return tmp_path


def test_stats_per_split_match_a_direct_count(gsm8k_prepared):
    card, model = get_card("gsm8k"), get_model("gemma-7b-instruct")
    stats = {s.split: s for s in task_token_stats(card, model, gsm8k_prepared)}
    assert set(stats) == {"train", "test"}
    test_rows = read_prepared("gsm8k", gsm8k_prepared, split=2)
    prompts = [
        len(cl100k().encode(realize_prompt(card, model, row)))
        for row in test_rows.to_dict("records")
    ]
    targets = [len(cl100k().encode(t)) for t in test_rows["answer"]]
    examples = np.array(prompts) + np.array(targets)
    test = stats["test"]
    assert test.rows == len(test_rows) == 6
    assert (test.prompt_min, test.prompt_max) == (min(prompts), max(prompts))
    assert test.target_mean == round(float(np.mean(targets)), 2)
    assert test.example_p95 == round(float(np.percentile(examples, 95)), 2)
    assert test.example_max == max(examples)


def test_stats_command_writes_a_csv_and_configs_can_be_sized_from_it(gsm8k_prepared, capsys):
    assert main(["tasks", "stats", "--runs", str(gsm8k_prepared)]) == 0
    path = stats_path(gsm8k_prepared)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["split"] for r in rows] == ["train", "test"] and rows[0]["task"] == "gsm8k"
    longest = longest_examples(path)["gsm8k"]
    assert longest == max(int(r["example_max"]) for r in rows)

    (config,) = render_configs(
        ["mistral-7b"], ["gsm8k"], out_dir=gsm8k_prepared / "c", token_stats=path
    )
    text = config.path.read_text()
    assert f"# Sequence length {longest}: the longest prepared example" in text
    assert yaml.safe_load(text)["preprocessing"]["global_max_sequence_length"] == longest
    (fallback,) = render_configs(["mistral-7b"], ["gsm8k"], out_dir=gsm8k_prepared / "d")
    assert "the study's longest example (465 tokens, tasks.csv)" in fallback.path.read_text()


def test_stats_without_prepared_data_is_a_clear_error(tmp_path, capsys):
    assert main(["tasks", "stats", "--task", "gsm8k", "--runs", str(tmp_path)]) == 2
    assert "no prepared table for gsm8k" in capsys.readouterr().err


def test_a_broken_stats_file_is_named(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("task,example_max\ngsm8k,lots\n")
    with pytest.raises(LLMBenchError, match=r"s\.csv: line 2: example_max 'lots' is not an int"):
        longest_examples(path)
