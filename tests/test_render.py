"""Rendering Ludwig configs: all 310 committed, current, valid by Ludwig, and faithful."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hub_standin import HubStandIn

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.paths import CONFIGS_DIR
from llmbench.tasks.cards import load_cards
from llmbench.tasks.models import get_model, study_models
from llmbench.tasks.prompts import realized_template
from llmbench.train.render import check_hub_access, render_configs


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
    assert (
        "# Train: ludwig train --config ludwig_configs/mistral-7b/gsm8k.yaml "
        "--dataset runs/prepared/gsm8k.parquet\n" in text
    )


def test_a_config_rendered_for_another_work_directory_names_its_prepared_table(tmp_path):
    (rendered,) = render_configs(["tiny"], ["gsm8k"], out_dir=tmp_path / "c", work_dir=tmp_path)
    table = (tmp_path / "prepared" / "gsm8k.parquet").resolve()
    assert f"--dataset {table}\n" in rendered.text


def test_tiny_config_points_at_the_local_model_and_trains_briefly(tmp_path):
    (rendered,) = render_configs(["tiny"], ["gsm8k"], out_dir=tmp_path / "c", work_dir=tmp_path)
    config = yaml.safe_load(rendered.path.read_text())
    assert config["base_model"] == str((tmp_path / "models" / "tiny").resolve())
    assert config["trainer"]["train_steps"] == get_model("tiny").trainer_overrides["train_steps"]
    assert config["quantization"]["bits"] == 4


@pytest.mark.parametrize(
    ("flags", "dtype"),
    [("fpu avx2 avx512f avx512_bf16 amx_tile", "bfloat16"), ("fpu avx avx2 fma", "float32")],
)
def test_an_auto_compute_dtype_is_bfloat16_only_where_the_cpu_computes_it_natively(
    tmp_path, monkeypatch, flags, dtype
):
    import llmbench.train.render as render

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(render, "CPUINFO", cpuinfo)
    monkeypatch.setattr(render.shutil, "which", lambda name: None)  # no GPU
    (rendered,) = render_configs(
        ["smollm2-135m"], ["glue_cola"], out_dir=tmp_path / "c", work_dir=tmp_path, validate=False
    )
    assert get_model("smollm2-135m").compute_dtype == "auto"
    assert yaml.safe_load(rendered.text)["quantization"]["bnb_4bit_compute_dtype"] == dtype
    line = next(x for x in rendered.text.splitlines() if "bnb_4bit_compute_dtype" in x)
    assert line.endswith("avx512_bf16)" if dtype == "bfloat16" else "avx512_bf16 or amx_bf16)")


def test_a_registry_compute_dtype_other_than_auto_is_kept_whatever_the_cpu(tmp_path, monkeypatch):
    import llmbench.train.render as render

    monkeypatch.setattr(render, "CPUINFO", tmp_path / "no-cpuinfo")
    assert render.resolve_compute_dtype("bfloat16") == ("bfloat16", "")
    assert render.resolve_compute_dtype("float32") == ("float32", "")
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    assert render.resolve_compute_dtype("auto")[0] == "float32"  # flags unreadable: the safe one


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


# Rendering without the hub: one note for the whole run, base_model checked against the registry.

LLAMA, MISTRAL = get_model("llama-2-7b").hub_id, get_model("mistral-7b").hub_id
TOOLS = Path(sys.executable).parent


def render_with_hub(endpoint: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`llmbench render-configs ARGS` with the hub at `endpoint` (HF_HUB_OFFLINE unset)."""
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home")}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        [str(TOOLS / "llmbench"), "render-configs", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def notes(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith("note:")]


class GatingHub(HubStandIn):
    """The stand-in, answering 401 (a gated repository, without a token) for `gated`."""

    def __init__(self, models: dict[str, Path], gated: str):
        super().__init__({}, models)
        self.gated = gated

    def answer(self, method: str, path: str, body: bytes):
        if f"/{self.gated}/" in f"{path}/":
            return (
                401,
                b'{"error": "Access to this model is restricted"}',
                {"x-error-code": "GatedRepo"},
            )
        return super().answer(method, path, body)


@pytest.fixture
def hub(tmp_path):
    """The hub stand-in: Mistral's config served, Llama-2 gated, nothing else there."""
    mistral = tmp_path / "mistral"
    mistral.mkdir()
    (mistral / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    stand_in = GatingHub({MISTRAL: mistral}, gated=LLAMA)
    yield stand_in
    stand_in.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


def test_an_unreachable_hub_is_one_note_and_the_registry_check(tmp_path):
    out = tmp_path / "configs"
    done = render_with_hub(
        f"http://127.0.0.1:{closed_port()}",
        tmp_path,
        *["--models", "llama-2-7b", "mistral-7b", "--tasks", "gsm8k", "glue_sst2"],
        *["--out", str(out)],
    )
    assert done.returncode == 0, done.stderr
    (note,) = notes(done)
    assert "cannot be reached" in note and "checked against templates/models.yaml" in note
    assert len(list(out.rglob("*.yaml"))) == 4


def test_a_gated_model_is_checked_against_the_registry_and_the_others_by_ludwig(tmp_path, hub):
    out = tmp_path / "configs"
    done = render_with_hub(
        hub.url,
        tmp_path,
        *["--models", "llama-2-7b", "mistral-7b", "--tasks", "gsm8k", "glue_sst2"],
        *["--out", str(out)],
    )
    assert done.returncode == 0, done.stderr
    (note,) = notes(done)
    assert note.startswith(f"note: {LLAMA}: gated or private") and MISTRAL not in note
    assert len(list(out.rglob("*.yaml"))) == 4
    # Ludwig's own check fetched Mistral's config; Llama-2 was asked once, never fetched.
    fetched = [r for r in hub.requests if r.startswith(f"GET /{MISTRAL}/resolve/")]
    assert fetched and all(r.endswith("/config.json") for r in fetched)
    assert [r for r in hub.requests if LLAMA in r] == [f"HEAD /{LLAMA}/resolve/main/config.json"]


def test_a_model_missing_from_a_reachable_hub_is_still_refused_by_ludwig(tmp_path, hub):
    out = tmp_path / "configs"
    done = render_with_hub(
        hub.url, tmp_path, "--models", "gemma-2b", "--tasks", "gsm8k", "--out", str(out)
    )
    assert done.returncode == 2
    (err,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "Ludwig rejects the config" in err
    assert "google/gemma-2b" in err and "could not be loaded" in err
    assert not notes(done) and not out.exists()


def test_a_failing_hub_is_asked_once_without_retries(monkeypatch):
    from huggingface_hub import constants

    class Failing(HubStandIn):
        def answer(self, method, path, body):
            return 503, b'{"error": "unavailable"}', {}

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    failing = Failing({})
    try:
        access = check_hub_access([LLAMA, MISTRAL], endpoint=failing.url)
    finally:
        failing.close()
    assert access.registry_only == {LLAMA, MISTRAL}
    assert "cannot be reached (HTTP 503)" in access.note
    assert len(failing.requests) == 1


def test_offline_rendering_refuses_a_base_model_the_registry_does_not_know(tmp_path):
    from llmbench.train.render import HubAccess, RenderedConfig, validate_with_ludwig

    text = (CONFIGS_DIR / "mistral-7b" / "gsm8k.yaml").read_text()
    typo = text.replace(f"base_model: {MISTRAL}", "base_model: mistralai/Mistral-7B-v0.2")
    rendered = RenderedConfig("mistral-7b", "gsm8k", tmp_path / "gsm8k.yaml", typo)
    hub = HubAccess(frozenset({"mistralai/Mistral-7B-v0.2"}), "offline")
    with pytest.raises(LLMBenchError, match="neither a local directory nor a hub id"):
        validate_with_ludwig(rendered, hub)


# Editing templates is the workflow: change the LoRA rank, re-render, every config has it.


def test_an_edited_template_reaches_every_rendered_config(tmp_path, monkeypatch):
    from llmbench.paths import TEMPLATES_DIR
    from llmbench.train import render

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    template = templates / "ludwig_config.yaml.j2"
    text = template.read_text()
    assert text.count("  r: {{ adapter.r | default(8) }}\n") == 1
    template.write_text(text.replace("adapter.r | default(8)", "adapter.r | default(16)"))
    monkeypatch.setattr(render, "TEMPLATES_DIR", templates)

    tasks = ["conllpp", "glue_sst2", "gsm8k"]
    rendered = render_configs(tasks=tasks, out_dir=tmp_path / "configs")  # Ludwig validates each
    assert len(rendered) == len(study_models()) * len(tasks)
    for config in rendered:
        adapter = yaml.safe_load(config.path.read_text())["adapter"]
        assert (adapter["r"], adapter["alpha"]) == (16, 16), config.path
