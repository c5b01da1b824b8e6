"""A tiny Llama-architecture model built locally, for tests and laptop demos (no download).

The model has random weights, so it answers nonsense until a LoRA adapter is trained on it; what
matters is that it has the real architecture and file layout (safetensors, a fast tokenizer that
adds BOS like Llama's), so Ludwig, PEFT and vLLM load it through their ordinary code paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from llmbench.paths import DATASETS_DIR, atomic_write_text

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
SPECIAL_TOKENS = [UNK, BOS, EOS, PAD]  # ids 0..3, in this order

# Head size 64 because vLLM's CPU attention accepts it (smaller sizes are refused).
ARCHITECTURE = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "head_dim": 64,
    "num_key_value_heads": 2,
    "intermediate_size": 256,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    # Wider than Llama's 0.02 so that LoRA can teach the toy something in a few dozen steps: with
    # 0.02 the frozen random lm_head caps every logit near +-2.5 and the loss barely moves.
    "initializer_range": 0.1,
}


def build_tiny_model(
    out_dir: Path,
    corpus_files: Iterable[Path] | None = None,
    *,
    vocab_size: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a tiny Llama causal LM and its tokenizer to `out_dir`; return `out_dir`.

    The tokenizer is a byte-level BPE trained on `corpus_files` (default: every file under the
    project's `datasets/`); the weights are random from `seed`. The same inputs give byte-identical
    files.
    """
    out_dir = Path(out_dir)
    files = _default_corpus_files() if corpus_files is None else sorted(map(Path, corpus_files))
    tokenizer = _train_tokenizer([_read_text(path) for path in files], vocab_size)
    model = _random_llama(tokenizer, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    portable_tokenizer_config(out_dir / "tokenizer_config.json")
    return out_dir


def _default_corpus_files() -> list[Path]:
    return sorted(
        path
        for path in DATASETS_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def _read_text(path: Path) -> str:
    return Path(path).read_bytes().decode("utf-8", errors="ignore")


def _train_tokenizer(texts: list[str], vocab_size: int):
    """A fast byte-level BPE tokenizer that prepends BOS to every encoding, as Llama's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # Passing add_bos_token/add_eos_token explicitly makes transformers write the Llama-style
    # post-processor ("<s> $A") into tokenizer.json, so any loader sees the same behaviour.
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=ARCHITECTURE["max_position_embeddings"],
    )


def portable_tokenizer_config(config_path: Path, **settings) -> None:
    """Name the class every transformers version knows (4.x, e.g. beside vLLM, lacks v5's name),
    and set `settings` in the saved tokenizer config.

    BOS handling does not depend on the class: it is the post-processor in tokenizer.json.
    """
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.update(settings)
    atomic_write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def _random_llama(tokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ARCHITECTURE,
    )
    # fork_rng keeps the caller's global random state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()
