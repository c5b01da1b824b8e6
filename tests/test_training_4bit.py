"""4-bit (QLoRA) training through Ludwig on the tiny model finishes and leaves a PEFT adapter."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from llmbench.errors import LLMBenchError
from llmbench.train.ludwig_fix import apply_4bit_reload_fix
from llmbench.train.tiny import build_tiny_model
from llmbench.train.training import train

COLOURS = {
    "apple": "red",
    "banana": "yellow",
    "grass": "green",
    "sky": "blue",
    "snow": "white",
    "coal": "black",
    "plum": "purple",
    "carrot": "orange",
}
TRAIN_STEPS = 48
PROMPT = "Answer the question.\n\n### Question:\n{question}\n\n### Answer:\n"


def _write_dataset(path: Path) -> Path:
    """64 rows: 48 train, 8 validation, 8 test, every row a thing and its colour."""
    things = list(COLOURS.items())
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer", "split"])
        for row in range(64):
            thing, colour = things[row % len(things)]
            split = 0 if row < 48 else 1 if row < 56 else 2
            writer.writerow([f"What colour is {thing}?", colour, split])
    return path


def _write_config(path: Path, base_model: Path) -> Path:
    config = {
        "model_type": "llm",
        "base_model": str(base_model),
        "input_features": [
            {
                "name": "prompt",
                "column": "question",
                "type": "text",
                "preprocessing": {"max_sequence_length": 256},
            }
        ],
        "output_features": [
            {"name": "answer", "type": "text", "preprocessing": {"max_sequence_length": None}}
        ],
        "prompt": {"template": PROMPT},
        "preprocessing": {
            "global_max_sequence_length": 256,
            "split": {"type": "fixed", "column": "split"},
        },
        "adapter": {"type": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
        "quantization": {"bits": 4, "bnb_4bit_compute_dtype": "bfloat16"},
        "generation": {"max_new_tokens": 8},
        "trainer": {
            "type": "finetune",
            "optimizer": {"type": "adam"},
            # Far above the study's 2e-4: the toy must learn something within 48 steps.
            "learning_rate": 0.01,
            "learning_rate_scheduler": {"decay": "cosine", "warmup_fraction": 0.03},
            "batch_size": 1,
            "gradient_accumulation_steps": 1,
            "train_steps": TRAIN_STEPS,
            "eval_batch_size": 1,
            "steps_per_checkpoint": 12,
        },
        "backend": {"type": "local"},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qlora")
    base_model = build_tiny_model(root / "tiny")
    return {
        "base_model": base_model,
        "config": _write_config(root / "config.yaml", base_model),
        "dataset": _write_dataset(root / "data.csv"),
        "root": root,
    }


@pytest.fixture(scope="module")
def adapter_dir(inputs) -> Path:
    return train(inputs["config"], inputs["dataset"], inputs["root"] / "runs")


@pytest.fixture(scope="module")
def run_dir(adapter_dir) -> Path:
    return adapter_dir.parent.parent


def _four_bit_linear():
    import bitsandbytes as bnb
    import torch

    model = torch.nn.Sequential(bnb.nn.Linear4bit(64, 64, quant_type="nf4")).to("cpu")
    model(torch.randn(1, 64))  # the first forward pass settles the quantized layout
    return model


def test_reload_fix_accepts_the_quant_state_of_own_4bit_weights():
    model = _four_bit_linear()
    state = model.state_dict()
    # The bug: bitsandbytes saves quant state it cannot load back. When this stops holding,
    # bitsandbytes has fixed it and the reload fix may go.
    assert model.load_state_dict(state, strict=False).unexpected_keys
    apply_4bit_reload_fix(model)
    apply_4bit_reload_fix(model)  # idempotent
    assert model.load_state_dict(state, strict=False).unexpected_keys == []


def test_reload_fix_still_reports_foreign_keys():
    import torch

    model = apply_4bit_reload_fix(_four_bit_linear())
    foreign = {"0.weight.surprise": torch.zeros(1), "1.weight.absmax": torch.zeros(1)}
    state = {**model.state_dict(), **foreign}
    unexpected = model.load_state_dict(state, strict=False).unexpected_keys
    assert sorted(unexpected) == ["0.weight.surprise", "1.weight.absmax"]


def test_train_rejects_a_missing_config(tmp_path):
    dataset = _write_dataset(tmp_path / "data.csv")
    with pytest.raises(LLMBenchError, match="config file not found") as error:
        train(tmp_path / "absent.yaml", dataset, tmp_path / "runs")
    assert "\n" not in str(error.value)


def test_train_rejects_a_missing_dataset(tmp_path):
    config = _write_config(tmp_path / "config.yaml", tmp_path / "tiny")
    with pytest.raises(LLMBenchError, match="dataset file not found") as error:
        train(config, tmp_path / "absent.csv", tmp_path / "runs")
    assert "\n" not in str(error.value)


def test_train_names_the_config_when_ludwig_rejects_it(tmp_path):
    config = _write_config(tmp_path / "config.yaml", tmp_path / "tiny")
    config.write_text(config.read_text().replace("r: 8", "r: eight"), encoding="utf-8")
    dataset = _write_dataset(tmp_path / "data.csv")
    with pytest.raises(LLMBenchError, match="invalid Ludwig config") as error:
        train(config, dataset, tmp_path / "runs")
    assert str(error.value).startswith(str(config))
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_4bit_training_leaves_a_peft_adapter(adapter_dir):
    assert adapter_dir.name == "model_weights"
    assert (adapter_dir / "adapter_config.json").is_file()
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"
    assert set(adapter_config["target_modules"]) == {"q_proj", "v_proj"}


@pytest.mark.slow
def test_the_base_model_was_4bit_during_training(run_dir):
    from safetensors import safe_open

    hyperparameters = json.loads((run_dir / "model" / "model_hyperparameters.json").read_text())
    assert hyperparameters["quantization"]["bits"] == 4
    # Only bitsandbytes' 4-bit layers write nf4 quant state into the training checkpoint.
    checkpoint = run_dir / "model" / "training_checkpoints" / "best.ckpt.safetensors"
    with safe_open(str(checkpoint), framework="pt") as handle:
        nf4_layers = [key for key in handle.keys() if key.endswith("quant_state.bitsandbytes__nf4")]
    assert any(".q_proj.base_layer.weight." in key for key in nf4_layers)
    assert any(".mlp.down_proj.weight." in key for key in nf4_layers)


@pytest.mark.slow
def test_training_loss_falls(run_dir):
    statistics = json.loads((run_dir / "training_statistics.json").read_text())
    losses = statistics["training"]["answer"]["loss"]
    assert len(losses) == TRAIN_STEPS // 12
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_adapter_loads_with_peft_on_the_tiny_base_and_generates(adapter_dir, inputs):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(inputs["base_model"], local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(inputs["base_model"], local_files_only=True)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    prompt = tokenizer(PROMPT.format(question="What colour is sky?"), return_tensors="pt")
    output = model.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert output.shape[1] == prompt.input_ids.shape[1] + 4
    with torch.no_grad():
        tuned = model(**prompt).logits
        with model.disable_adapter():
            plain = model(**prompt).logits
    assert not torch.allclose(tuned, plain)  # the adapter's weights are trained, not the init


@pytest.mark.slow
def test_an_interrupted_4bit_run_resumes_from_its_checkpoint(inputs, tmp_path, caplog):
    from ludwig.api import LudwigModel
    from ludwig.callbacks import Callback

    class CrashAfterFirstCheckpoint(Callback):
        def on_batch_end(self, trainer, progress_tracker, save_path, sync_step=True):
            if progress_tracker.steps >= 18:
                raise RuntimeError("simulated crash")

    config = yaml.safe_load(inputs["config"].read_text())
    crashing = LudwigModel(config, callbacks=[CrashAfterFirstCheckpoint()])
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.train(
            dataset=str(inputs["dataset"]),
            output_directory=str(tmp_path),
            experiment_name="run",
            model_name="run",
            skip_save_processed_input=True,
        )
    progress = tmp_path / "run_run" / "model" / "training_progress.json"
    assert json.loads(progress.read_text())["steps"] == 12

    with caplog.at_level("INFO"):
        adapter = train(inputs["config"], inputs["dataset"], tmp_path, resume=True)
    assert "Resuming training from previous run." in caplog.text
    assert "starting fresh" not in caplog.text
    assert json.loads(progress.read_text())["steps"] == TRAIN_STEPS
    assert adapter == tmp_path / "run_run" / "model" / "model_weights"
