"""Tiny model and LoRA adapters for the serving tests, made in the main environment.

Each adapter is taught one decisive answer on a handful of prompts, so its greedy output is
known and differs from the random base model's: adapter `alpha` answers "alpha alpha", `beta`
"beta beta", `gamma` "gamma gamma". `gamma` is saved in the layout a Ludwig training run
writes (`<run>/model/model_weights/`) so the server's adapter lookup is exercised on it.
"""

from __future__ import annotations

from pathlib import Path

from llmbench.train.tiny import build_tiny_model

ANSWERS = {"alpha": " alpha alpha", "beta": " beta beta", "gamma": " gamma gamma"}
TRAIN_PROMPTS = [
    "Question: what is it?\nAnswer:",
    "Tell me a word.",
    "Hello",
    "The sky is blue. Say something.",
    "Classify this text: the market rose.",
    "Q: 2 + 2?\nA:",
]
# Where each adapter's files go inside the adapters root; gamma mimics a Ludwig output folder.
ADAPTER_SUBDIRS = {"alpha": "alpha", "beta": "beta", "gamma": "gamma/model/model_weights"}
TRAIN_STEPS = 40
# The shared test server keeps at most this many adapters loaded (three exist: one is evicted).
MAX_LOADED_ADAPTERS = 2


# The tokenizer's corpus: fixed here (not the default, every file under datasets/) so that the
# model, its tokenizer and so the adapters' token counts do not change as tasks are added.
CORPUS = "\n".join(TRAIN_PROMPTS + list(ANSWERS.values())) + (
    "\nThe quick brown fox jumps over the lazy dog. Serving many adapters on one base model.\n"
)


def require_serving_environment() -> None:
    """Skip (fail under CI, where the set-up makes it) when .venv-serve is not there."""
    import os

    import pytest

    from llmbench.serving.launch import SERVE_VENV

    if not (SERVE_VENV / "bin" / "python").exists():
        message = "no serving environment: run `bash scripts/setup-serve.sh` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def build_tiny_base(out_dir: Path) -> Path:
    """The tiny Llama base model (see llmbench.train.tiny), its tokenizer trained on CORPUS."""
    corpus = Path(out_dir).with_name(Path(out_dir).name + "-corpus.txt")
    corpus.write_text(CORPUS * 20, encoding="utf-8")
    return build_tiny_model(out_dir, [corpus])


def train_adapter(
    base_dir: Path, answer: str, out_dir: Path, *, seed: int = 0, prompts: list[str] | None = None
) -> Path:
    """Train a rank-8 LoRA on q_proj/v_proj so that every training prompt (TRAIN_PROMPTS unless
    `prompts` is given) continues with `answer`.

    Plain torch, full-batch Adam for TRAIN_STEPS steps (about a second on the tiny model); the
    adapter is written with PEFT's save_pretrained, the format vLLM and LoRAX load.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        base_dir, local_files_only=True, dtype=torch.float32
    )
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    model = get_peft_model(model, config)
    input_ids, labels = _examples(tokenizer, answer, prompts or TRAIN_PROMPTS)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(TRAIN_STEPS):
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    return out_dir


def _examples(tokenizer, answer: str, prompts: list[str]):
    """Right-padded prompt+answer+EOS batches; only the answer and EOS tokens carry a loss."""
    import torch

    rows, targets = [], []
    for prompt in prompts:
        prompt_ids = tokenizer(prompt)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [
            tokenizer.eos_token_id
        ]
        rows.append(prompt_ids + answer_ids)
        targets.append([-100] * len(prompt_ids) + answer_ids)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in targets])
    return input_ids, labels


def build_adapters(base_dir: Path, adapters_root: Path) -> dict[str, Path]:
    """Train the three test adapters under `adapters_root`; return adapter_id -> its folder."""
    made = {}
    for seed, (adapter_id, answer) in enumerate(ANSWERS.items()):
        made[adapter_id] = train_adapter(
            base_dir, answer, adapters_root / ADAPTER_SUBDIRS[adapter_id], seed=seed
        )
    return made


def greedy_with_transformers(base_dir: Path, adapter_dir: Path | None, prompt: str, n: int) -> str:
    """The reference answer: transformers' own greedy decoding of `n` tokens (no vLLM)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        base_dir, local_files_only=True, dtype=torch.float32
    )
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


SECRET = "llmbench-secret-7f3a9c-do-not-serve"


def build_hostile_layout(adapters_root: Path, outside: Path, real_adapter: Path) -> dict[str, str]:
    """Traps for the path checks; return adapter_id -> what it tries.

    `outside` (beside, not under, the root) holds a complete-looking adapter whose config
    carries SECRET and whose weights file is a FIFO: opening the FIFO for reading is what the
    server must never do, and `fifo_was_opened` tells whether anyone did.
    """
    import json
    import os
    import shutil

    outside.mkdir(parents=True, exist_ok=True)
    (outside / "adapter_config.json").write_text(json.dumps({"secret": SECRET}), encoding="utf-8")
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    os.mkfifo(outside / "adapter_model.safetensors")
    # A symlinked folder leading out of the root.
    (adapters_root / "escape").symlink_to(outside, target_is_directory=True)
    # A real adapter folder inside the root whose weights file is a symlink to the FIFO outside.
    sneaky = adapters_root / "sneaky"
    sneaky.mkdir()
    shutil.copy(real_adapter / "adapter_config.json", sneaky / "adapter_config.json")
    (sneaky / "adapter_model.safetensors").symlink_to(outside / "adapter_model.safetensors")
    # Ludwig-style layout whose model_weights folder is the symlink.
    (adapters_root / "ludwig_escape" / "model").mkdir(parents=True)
    (adapters_root / "ludwig_escape" / "model" / "model_weights").symlink_to(outside)
    return {
        "../" + outside.name: "a relative path up and out of the root",
        str(outside): "an absolute path",
        "alpha/../../" + outside.name: "a path that dips in and climbs out",
        "escape": "a symlinked folder leading outside",
        "sneaky": "an adapter whose weights file is a symlink outside",
        "ludwig_escape": "a Ludwig layout whose model_weights is a symlink outside",
    }


def fifo_was_opened(fifo: Path, wait_s: float = 0.0) -> bool:
    """Whether some process holds `fifo` open for reading (a write-open succeeds only then)."""
    import errno
    import os
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
            continue
        os.close(fd)
        return True


def server_pid(url: str) -> int:
    """The process id of the `llmbench.serving.server` listening on `url`'s port."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"llmbench.serving.server" in argv and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no server process listens on {url}")
