"""Rendering Ludwig configs: all 310 committed, current, valid by Ludwig, and faithful."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
import yaml

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.paths import CONFIGS_DIR
from llmbench.tasks.cards import load_cards
from llmbench.tasks.models import get_model, study_models
from llmbench.tasks.prompts import realized_template
from llmbench.train.render import render_configs


@pytest.fixture(scope="module")
def fresh_render(tmp_path_factory) -> Path:
    # Rendered from a working directory of its own into ./ludwig_configs, so that each file's
    # header names the same relative path as the committed ones do.
    workdir = tmp_path_factory.mktemp("render")
    before = Path.cwd()
    os.chdir(workdir)
    try:
        rendered = render_configs(out_dir=Path("ludwig_configs"))  # each validated by Ludwig
    finally:
        os.chdir(before)
    assert len(rendered) == 310
    return workdir / "ludwig_configs"


def relative_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))


def test_committed_configs_equal_a_fresh_render(fresh_render):
    committed, fresh = relative_files(CONFIGS_DIR), relative_files(fresh_render)
    assert committed == fresh, "ludwig_configs/ is stale: run `llmbench render-configs`"
    stale = [f for f in fresh if not filecmp.cmp(CONFIGS_DIR / f, fresh_render / f, shallow=False)]
    assert not stale, f"stale configs (run `llmbench render-configs`): {stale[:5]}"


def test_rendering_is_deterministic(fresh_render, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    render_configs(
        ["gemma-2b-instruct"],
        ["conllpp", "wikisql"],
        out_dir=Path("ludwig_configs"),
        validate=False,
    )
    for name in ["conllpp.yaml", "wikisql.yaml"]:
        again = tmp_path / "ludwig_configs" / "gemma-2b-instruct" / name
        assert again.read_bytes() == (fresh_render / "gemma-2b-instruct" / name).read_bytes()


def test_configs_hold_the_study_training_configuration():
    cards = load_cards()
    for model in study_models():
        for card in cards.values():
            config = yaml.safe_load((CONFIGS_DIR / model.name / f"{card.name}.yaml").read_text())
            assert config["base_model"] == model.hub_id
            assert config["prompt"]["template"] == realized_template(card, model)
            assert config["adapter"] == {
                "type": "lora",
                "r": 8,
                "alpha": 16,
                "dropout": 0.05,
                "target_modules": ["q_proj", "v_proj"],
            }
            assert config["quantization"]["bits"] == 4
            assert config["quantization"]["bnb_4bit_compute_dtype"] == "bfloat16"
            trainer = config["trainer"]
            assert (trainer["batch_size"], trainer["gradient_accumulation_steps"]) == (1, 16)
            assert (trainer["learning_rate"], trainer["optimizer"]["type"]) == (0.0002, "adam")
            assert trainer["learning_rate_scheduler"] == {
                "decay": "cosine",
                "warmup_fraction": 0.03,
            }
            assert (trainer["eval_steps"], trainer["steps_per_checkpoint"]) == (100, 1000)
            assert config["output_features"][0]["name"] == card.target_col
            assert config["generation"]["max_new_tokens"] == card.max_new_tokens
            length = config["preprocessing"]["global_max_sequence_length"]
            assert length == min(card.study_tokens["max"], model.context_length, 2048)


def test_each_config_says_how_it_was_made_and_how_to_train_it():
    text = (CONFIGS_DIR / "mistral-7b" / "gsm8k.yaml").read_text()
    assert text.startswith("# Rendered by `llmbench render-configs` from templates/")
    assert "# Train: llmbench train --config ludwig_configs/mistral-7b/gsm8k.yaml" in text


def test_tiny_config_points_at_the_local_model_and_trains_briefly(tmp_path):
    (rendered,) = render_configs(["tiny"], ["gsm8k"], out_dir=tmp_path / "c", work_dir=tmp_path)
    config = yaml.safe_load(rendered.path.read_text())
    assert config["base_model"] == str((tmp_path / "models" / "tiny").resolve())
    assert config["trainer"]["train_steps"] == get_model("tiny").trainer_overrides["train_steps"]
    assert config["quantization"]["bits"] == 4


@pytest.mark.parametrize(
    ("flag", "name", "message"),
    [
        ("--models", "mistral-8b", "unknown model 'mistral-8b'"),
        ("--tasks", "gsm9k", "unknown task 'gsm9k' (did you mean 'gsm8k'?)"),
    ],
)
def test_unknown_name_exits_2_with_one_line_and_writes_nothing(
    flag, name, message, tmp_path, capsys
):
    out = tmp_path / "configs"
    assert main(["render-configs", flag, name, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_a_broken_card_stops_rendering_before_anything_is_written(tmp_path):
    datasets = tmp_path / "datasets"
    card = datasets / "t" / "metadata.yaml"
    card.parent.mkdir(parents=True)
    card.write_text("name: t\n")
    with pytest.raises(LLMBenchError, match="required property"):
        render_configs(out_dir=tmp_path / "out", datasets_dir=datasets)
    assert not (tmp_path / "out").exists()
