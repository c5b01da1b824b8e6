"""The tiny local Llama model: a real architecture and tokenizer, built offline and reproducibly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from llmbench.paths import DATASETS_DIR
from llmbench.train.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model, local_files_only=True)


@pytest.fixture
def small_corpus(tmp_path) -> list[Path]:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("What colour is the sky?\nThe sky is blue.\n" * 20, encoding="utf-8")
    return [corpus]


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


def _card_prompt_template() -> str:
    card = sorted(DATASETS_DIR.glob("*/metadata.yaml"))[0]
    return yaml.safe_load(card.read_text(encoding="utf-8"))["prompt_template"]


def test_tokenizer_round_trips_a_task_card_prompt(tokenizer):
    text = _card_prompt_template()
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_tokenizer_adds_bos_at_the_start_like_llama(tokenizer):
    ids = tokenizer("What colour is the sky?").input_ids
    assert ids[0] == tokenizer.bos_token_id
    assert ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.eos_token_id not in ids


def test_special_tokens_are_named_and_match_the_model_config(tiny_model, tokenizer):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model, local_files_only=True)
    assert tokenizer.bos_token == "<s>"
    assert tokenizer.eos_token == "</s>"
    assert tokenizer.unk_token == "<unk>"
    assert tokenizer.pad_token is not None
    assert config.bos_token_id == tokenizer.bos_token_id
    assert config.eos_token_id == tokenizer.eos_token_id
    assert config.pad_token_id == tokenizer.pad_token_id
    assert config.vocab_size == len(tokenizer)


def test_attention_head_size_is_64_for_vllm_cpu(tiny_model):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model, local_files_only=True)
    assert config.model_type == "llama"
    assert config.head_dim == 64
    assert config.hidden_size // config.num_attention_heads == 64


def test_model_loads_offline_and_generates(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, local_files_only=True)
    inputs = tokenizer("What colour is the sky?", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert output.shape[1] == inputs.input_ids.shape[1] + 5
    assert (tiny_model / "model.safetensors").is_file()


def test_building_twice_gives_identical_files(tmp_path, small_corpus):
    first = build_tiny_model(tmp_path / "first", small_corpus)
    second = build_tiny_model(tmp_path / "second", small_corpus)
    assert _file_hashes(first) == _file_hashes(second)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(_file_hashes(first))


def test_the_seed_chooses_the_weights(tmp_path, small_corpus):
    zero = _file_hashes(build_tiny_model(tmp_path / "zero", small_corpus, seed=0))
    one = _file_hashes(build_tiny_model(tmp_path / "one", small_corpus, seed=1))
    assert zero["model.safetensors"] != one["model.safetensors"]
    assert zero["tokenizer.json"] == one["tokenizer.json"]


def test_undecodable_corpus_bytes_are_skipped(tmp_path):
    corpus = tmp_path / "mixed.bin"
    corpus.write_bytes(b"valid text \xff\xfe then more text\n" * 10)
    model_dir = build_tiny_model(tmp_path / "model", [corpus])
    assert (model_dir / "tokenizer.json").is_file()
