"""QLoRA on a Mistral-7B-shaped model on one GPU: `llmbench train` (Ludwig) against plain PEFT.

    python bench/gpu_qlora.py                   # on a CUDA machine: about 5 minutes, one call
    python bench/gpu_qlora.py --dry-run         # the plan, the shape and the config; no GPU
    python bench/gpu_qlora.py --shape tiny --steps 4 --warmup 1   # the same path on a CPU, a toy

Does the study's training configuration fit the A10G (24 GB) the study trained on, and what do
Ludwig's steps cost against a plain PEFT loop there? Nothing is downloaded: the model has
Mistral-7B-v0.1's shape (32 layers, hidden 4096, MLP 14336, 32 query and 8 key/value heads,
vocabulary 32,000; 7.24B parameters) with random weights, written once in bfloat16 to a scratch
folder (about 14.5 GB, outside $OUT) with a word-level tokenizer made here, so that both sides
load it through `from_pretrained` with bitsandbytes 4-bit quantization, as they would the real
checkpoint. The study's configuration comes from ludwig_configs/mistral-7b/glue_sst2.yaml:
4-bit nf4 with double quantization and bfloat16 compute, LoRA r 8 (alpha 16, dropout 0.05) on
q_proj/v_proj, Adam, batch size 1; the prompt is replaced by one text column and the sequence
length set to the study's example, 1,196 tokens (a 1,194-token prompt, a 1-token target, EOS),
so every step is exactly 1,196 tokens. Gradient accumulation is 1 on both sides (the study's 16
changes how often the optimizer steps, not the memory a step needs).

Each side runs in its own child process, one after the other:
- ludwig: `llmbench.train.training.train(config, dataset, out)`; a Ludwig Callback times each step
  from `on_batch_start` to `on_batch_end` (after a CUDA synchronize);
- plain: transformers + PEFT + bitsandbytes in a hand-written loop (bench/bench_train.py's), the
  loss on the target and EOS only, as Ludwig's; a step from building its tensors to
  `loss.item()` after the optimizer and scheduler steps.
Peak GPU memory is torch.cuda.max_memory_allocated (and max_memory_reserved, closer to what the
driver sees; neither counts the CUDA context, about 0.5 GB) over loading and all steps, compared
with the A10G's 24 GB. Prints one table; writes gpu_qlora.json under $OUT when set (or --json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

from bench_train import (  # noqa: E402
    StepClock,
    add_ludwig_callback,
    plain_model,
    plain_optimizer,
    plain_step,
)

STUDY_CONFIG = REPO_ROOT / "ludwig_configs" / "mistral-7b" / "glue_sst2.yaml"
SEQUENCE_LENGTH = 1196  # the study's example config: global_max_sequence_length 1196
PROMPT_TOKENS = 1194  # its input max_sequence_length; + a 1-token target + EOS = 1196
A10G_BYTES = 24 * 1024**3
GIB = 1024**3
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0..3

# Mistral-7B-v0.1's config.json, less what does not change the shape.
SHAPES = {
    "mistral-7b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
    # the same code path on a CPU in a minute
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 32000,
        "max_position_embeddings": 2048,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
    },
}


# ---------------------------------------------------------------- inputs (parent process)


def mistral_config(shape: str):
    from transformers import MistralConfig

    return MistralConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3, **SHAPES[shape])


def parameter_count(shape: str) -> int:
    """The model's parameters, counted on the meta device (nothing allocated)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(mistral_config(shape))
    return sum(p.numel() for p in model.parameters())


def word_tokenizer(vocab_size: int):
    """One token per word `w<i>`: texts of known length in tokens, no BOS added."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIALS), vocab_size)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=SEQUENCE_LENGTH,
    )


def build_model(folder: Path, shape: str, device: str) -> None:
    """Random bfloat16 weights of the shape, saved with the tokenizer as a model folder."""
    import torch
    from transformers import AutoModelForCausalLM

    config = mistral_config(shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="5GB")
    word_tokenizer(config.vocab_size).save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def write_dataset(path: Path, rows: int, vocab_size: int) -> None:
    """`rows` training rows and 2 validation rows of random words: a 1,194-token text and a
    1-token label each."""
    import pandas as pd

    rng = random.Random(0)
    words = [f"w{i}" for i in range(len(SPECIALS), vocab_size)]
    pd.DataFrame(
        {
            "text": [" ".join(rng.choices(words, k=PROMPT_TOKENS)) for _ in range(rows + 2)],
            "label": rng.choices(words, k=rows + 2),
            "split": [0] * rows + [1] * 2,
        }
    ).to_parquet(path)


def study_config(model_dir: Path, steps: int) -> dict:
    """The study's Ludwig config for mistral-7b with this model, one text column as the prompt,
    the study's sequence length, and `steps` steps without accumulation or evaluation between."""
    import yaml

    config = yaml.safe_load(STUDY_CONFIG.read_text(encoding="utf-8"))
    config["base_model"] = str(model_dir)
    config["input_features"] = [
        {
            "name": "prompt",
            "column": "text",
            "type": "text",
            "preprocessing": {"max_sequence_length": PROMPT_TOKENS},
        }
    ]
    config["output_features"] = [
        {
            "name": "label",
            "type": "text",
            "preprocessing": {"max_sequence_length": None},
        }
    ]
    config["prompt"] = {"template": "{text}"}
    config["preprocessing"]["global_max_sequence_length"] = SEQUENCE_LENGTH
    config["trainer"].update(
        gradient_accumulation_steps=1,
        train_steps=steps,
        steps_per_checkpoint=steps,
        eval_steps=steps,
    )
    return config


# ---------------------------------------------------------------- children


def peak_memory() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "max_allocated": torch.cuda.max_memory_allocated(),
        "max_reserved": torch.cuda.max_memory_reserved(),
    }


def ludwig_child(spec: dict) -> dict:
    from ludwig.callbacks import Callback

    from llmbench.train.training import train

    clock = StepClock(None)
    seen: dict = {}

    class StepTimer(Callback):
        def on_batch_start(self, trainer, progress_tracker, save_path, **kwargs):
            clock.start()

        def on_batch_end(self, trainer, progress_tracker, save_path, sync_step=True, **kwargs):
            clock.stop()
            seen["tokens"] = int(trainer.model.model_inputs.shape[1])
            if len(clock.wall) == spec["steps"]:
                seen["memory"] = peak_memory()  # before the end-of-training evaluation

    add_ludwig_callback(StepTimer())
    train(Path(spec["config"]), Path(spec["dataset"]), Path(spec["out"]))
    return {**clock.result(), "tokens": seen["tokens"], "memory": seen["memory"]}


def plain_child(spec: dict) -> dict:
    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(42)
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    rows = pd.read_parquet(spec["dataset"]).query("split == 0")
    device_map = {"": 0} if torch.cuda.is_available() else None
    model = plain_model(spec["config_dict"], spec["model_dir"], spec["plain_attention"], device_map)
    model.train()
    optimizer, scheduler, params = plain_optimizer(model, spec["config_dict"], spec["steps"])
    clock = StepClock(None)
    for step in range(spec["steps"]):
        row = rows.iloc[step % len(rows)]
        prompt = tokenizer(row["text"]).input_ids
        target = tokenizer(row["label"]).input_ids + [tokenizer.eos_token_id]
        clock.start()
        plain_step(
            model, optimizer, scheduler, params, [prompt + target], [[-100] * len(prompt) + target]
        )
        clock.stop()
    return {**clock.result(), "tokens": len(prompt + target), "memory": peak_memory()}


CHILDREN = {"ludwig": ludwig_child, "plain": plain_child}


def run_child(side: str, spec: dict, folder: Path) -> dict:
    spec_path, result_path = folder / f"{side}.spec.json", folder / f"{side}.result.json"
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, __file__, "--child", side, str(spec_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    if completed.returncode != 0:
        sys.exit(f"{side} failed:\n{(completed.stdout + completed.stderr)[-4000:]}")
    result = json.loads(result_path.read_text())
    result["process_s"] = time.perf_counter() - started
    return result


# ---------------------------------------------------------------- the run (parent)


def plan(args: argparse.Namespace) -> dict:
    params = parameter_count(args.shape)
    return {
        "shape": args.shape,
        "architecture": SHAPES[args.shape],
        "parameters": params,
        "bf16_checkpoint_gb": round(params * 2 / 1e9, 1),
        "sequence_length": SEQUENCE_LENGTH,
        "steps": args.steps,
        "warmup_steps_left_out": args.warmup,
        "config_from": str(STUDY_CONFIG.relative_to(REPO_ROOT)),
        "plain_attention": args.plain_attention,
    }


def run(args: argparse.Namespace, summary: dict) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and args.shape != "tiny":
        sys.exit("no CUDA GPU here: run with --dry-run, or --shape tiny to try the path on a CPU")
    summary["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
    work = Path(tempfile.mkdtemp(prefix="gpu-qlora-", dir=args.work))
    try:
        started = time.perf_counter()
        build_model(work / "model", args.shape, "cuda" if cuda else "cpu")
        summary["build_s"] = time.perf_counter() - started
        write_dataset(work / "data.parquet", max(args.steps, 8), SHAPES[args.shape]["vocab_size"])
        config = study_config(work / "model", args.steps)
        (work / "config.json").write_text(json.dumps(config))  # YAML is JSON's superset
        spec = {
            "config": str(work / "config.json"),
            "config_dict": config,
            "dataset": str(work / "data.parquet"),
            "model_dir": str(work / "model"),
            "out": str(work / "ludwig"),
            "steps": args.steps,
            "plain_attention": args.plain_attention,
        }
        summary["sides"] = {side: run_child(side, spec, work) for side in CHILDREN}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def print_table(summary: dict, warmup: int) -> None:
    params = summary["parameters"]
    size = f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.1f}M"
    print(
        f"\n{summary['shape']} shape ({size} parameters, random "
        f"weights) on {summary['device']}, {summary['steps']} steps of "
        f"{summary['sequence_length']} tokens, batch 1, first {warmup} left out"
    )
    print(
        "| side | s/step | tokens/s | peak allocated GiB | peak reserved GiB | "
        "allocated / A10G 24 GB |"
    )
    print("|---|---|---|---|---|---|")
    means = {}
    for side, result in summary["sides"].items():
        means[side] = statistics.fmean(result["step_s"][warmup:])
        memory = result["memory"]
        allocated, reserved = memory.get("max_allocated"), memory.get("max_reserved")
        print(
            f"| {side} | {means[side]:.3f} | {result['tokens'] / means[side]:,.0f} "
            f"| {_gib(allocated)} | {_gib(reserved)} "
            f"| {f'{allocated / A10G_BYTES:.0%}' if allocated else 'n/a (no GPU)'} |"
        )
    summary["ratio_ludwig_over_plain"] = means["ludwig"] / means["plain"]
    print(
        f"ludwig/plain step time: {summary['ratio_ludwig_over_plain']:.3f} "
        f"(plain/ludwig {1 / summary['ratio_ludwig_over_plain']:.3f})"
    )


def _gib(value: int | None) -> str:
    return f"{value / GIB:.2f}" if value else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b")
    parser.add_argument("--steps", type=int, default=10, help="training steps of each side")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of means")
    parser.add_argument(
        "--plain-attention",
        default="sdpa",
        choices=("sdpa", "eager"),
        help="the plain loop's attention (Ludwig loads 4-bit models with eager)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder for the model (default: the system's temp dir)",
    )
    parser.add_argument("--json", type=Path, help="results file (default: $OUT/gpu_qlora.json)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and the Ludwig config; load and train nothing",
    )
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, spec_path = args.child
        spec = json.loads(Path(spec_path).read_text())
        Path(spec["result"]).write_text(json.dumps(CHILDREN[side](spec)))
        return
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    os.environ["HF_HUB_OFFLINE"] = "1"
    summary = plan(args)
    if args.dry_run:
        print(json.dumps(summary, indent=2))
        print(json.dumps(study_config(Path("<scratch>/model"), args.steps), indent=2))
        return
    started = time.perf_counter()
    summary = run(args, summary)
    summary["elapsed_s"] = time.perf_counter() - started
    print_table(summary, args.warmup)
    print(
        f"whole run {summary['elapsed_s'] / 60:.1f} min (building the model "
        f"{summary['build_s']:.0f} s)"
    )
    out = args.json or (
        Path(os.environ["OUT"]) / "gpu_qlora.json" if os.environ.get("OUT") else None
    )
    if out:
        out.write_text(json.dumps(summary, indent=2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
