"""The base-model registry: the study's ten models with their hub ids and markups, plus tiny."""

from __future__ import annotations

import csv

import pytest

from llmbench.errors import LLMBenchError
from llmbench.tasks.models import get_model, load_registry, study_models


def test_registry_holds_the_study_models(shared_dir):
    with open(shared_dir / "paper" / "base_models.csv", newline="") as handle:
        expected = {row["name"]: row for row in csv.DictReader(handle)}
    models = {m.name: m for m in study_models()}
    assert sorted(models) == sorted(expected)
    for name, row in expected.items():
        model = models[name]
        assert (model.hub_id, model.creator, model.parameters, model.released, model.kind) == (
            row["hf_id"],
            row["creator"],
            row["parameters"],
            row["released"],
            row["kind"],
        )


def test_base_models_use_plain_markup_and_instruct_models_their_own():
    for model in study_models():
        assert (model.markup_name == "plain") == (model.kind == "base"), model.name


@pytest.mark.parametrize(
    ("name", "prefix", "suffix"),
    [
        ("llama-2-7b-chat", "[INST] ", " [/INST]"),
        ("mistral-7b-instruct", "[INST] ", " [/INST]"),
        ("zephyr-7b-beta", "<|user|>\n", "</s>\n<|assistant|>\n"),
        ("gemma-2b-instruct", "<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"),
        ("mistral-7b", "", ""),
    ],
)
def test_family_markup_wraps_the_prompt(name, prefix, suffix):
    assert get_model(name).markup == prefix + "{prompt}" + suffix


def test_tiny_is_local_and_not_in_the_study():
    tiny = load_registry()["tiny"]
    assert tiny.local_path and not tiny.hub_id and not tiny.in_study
    assert "tiny" not in {m.name for m in study_models()}


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(
        LLMBenchError, match=r"unknown model 'mistral-7' \(did you mean 'mistral-7b'"
    ):
        get_model("mistral-7")


def test_a_broken_registry_names_file_and_field(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "version: 1\nmarkups: {plain: '{prompt}'}\nmodels:\n"
        "  - {name: m, hub_id: a/b, family: f, creator: c, parameters: 7B, released: '2024-01-01',"
        " kind: base, markup: fancy, context_length: 2048}\n"
    )
    with pytest.raises(
        LLMBenchError, match=r"models\.yaml: models\.0\.markup: unknown markup 'fancy'"
    ):
        load_registry(path)
