"""Training speed through Ludwig: against a bare QLoRA loop, batch 8 against batch 1, and 4-bit
against bfloat16 weights, on real tasks' length distributions.

    python bench/bench_train.py                  # the default pairs on glue_cola and e2e_nlg
    python bench/bench_train.py --tasks glue_cola --pairs ludwig-plain-b8 --rounds 3
    python bench/bench_train.py --profile        # where each arm's step time goes

An *arm* is one way of training smollm2-135m: the side (`ludwig`: `llmbench.train.training.train`
on the rendered config, as `llmbench train` runs it; `plain`: a hand-written transformers + PEFT
+ bitsandbytes loop), the batch size, and the weights (`nf4`: 4-bit nf4 with double quantization
and the compute dtype of the rendered config, the recipe: `auto` for smollm2-135m, bfloat16 on a
CPU with native bfloat16, else float32; `nf4-f32c`, `nf4-bf16c`: the same with float32 or
bfloat16 compute; `bf16`: unquantized bfloat16 weights; `fp32`: unquantized float32, Ludwig's
own choice without quantization). A *pair* is two arms run side by side:

- `ludwig-plain-b1`, `ludwig-plain-b8`: Ludwig against the bare loop at batch 1 and batch 8. The
  bare loop trains each step on exactly the rows of Ludwig's step (Ludwig hands the token ids
  over; a row that is not a realized prompt + target + EOS of the table stops the benchmark),
  left-padded as Ludwig pads them, with an attention mask and the loss on target and EOS only.
- `nf4-bf16-b8`: the recipe's 4-bit arm against bfloat16 weights, both through Ludwig (Ludwig
  loads an unquantized LLM in float32; the bf16 arm casts it to bfloat16 as it is loaded).
- `compute-b8`: 4-bit with float32 compute against 4-bit with bfloat16 compute (the study's),
  through Ludwig: which is faster depends on the CPU, and `compute_dtype: auto` picks by it.
- `nf4-fp32-b8`: the recipe's 4-bit arm against float32 weights (not in the default set).

Batch 8 against batch 1 through Ludwig is read from the Ludwig arms of the two ludwig-plain
pairs, round by round, as examples per second.

The rows: each task is prepared from its real upstream copy in ../shared/data; a seeded random
sample of `--rows` training rows (default 2,000; the length distribution of the whole split)
is trained on, with Ludwig's length-grouped batches (the recipe's `bucketing_field`). Every
arm counts per step its examples, its real tokens, its padded tokens and its supervised tokens
(target + EOS: what carries the loss).

Each arm runs in its own child process, so that its peak RSS (ru_maxrss, from os.wait4) is its
own. The two children of a round load at the same time, then take turns step by step (A step 1,
B step 1, A step 2, ...), passing a baton through pipes, so that one never runs while the other
is timed and both see the same background load. Each child may use `--threads` cores (its CPU
affinity and torch's thread count; default 2, every core of this machine: with turns, each
side has them all while it computes). The first `--warmup` steps are left out.

Printed: per round and pair each arm's seconds per step, examples/s and supervised tokens/s,
the ratio of the pair, and at the end the median ratio over rounds with its spread, against the
targets (Ludwig / bare loop >= 0.9 in speed; batch 8 >= 1.7x the examples/s of batch 1; a 4-bit
step <= 1.18x a bf16 step); written to `--json` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

MODEL = "smollm2-135m"
TASKS = ("glue_cola", "e2e_nlg")
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TRAIN_SPLIT = 0
OTHER_SPLIT_ROWS = 20  # validation/test rows kept so that Ludwig sees the splits it expects
# Ludwig's LLM trainer stops at a step count; the bench's arms save nothing between steps
WEIGHTS = {
    # name: (4-bit?, compute or load dtype; None: the rendered config's compute dtype)
    "nf4": (True, None),  # the recipe: `compute_dtype: auto`, resolved for this machine
    "nf4-f32c": (True, "float32"),
    "nf4-bf16c": (True, "bfloat16"),  # the study's
    "bf16": (False, "bfloat16"),
    "fp32": (False, "float32"),
}


@dataclass(frozen=True)
class Arm:
    side: str  # ludwig | plain
    batch: int
    weights: str  # a key of WEIGHTS

    @property
    def name(self) -> str:
        return f"{self.side}-{self.weights}-b{self.batch}"


PAIRS = {
    "ludwig-plain-b1": (Arm("ludwig", 1, "nf4"), Arm("plain", 1, "nf4")),
    "ludwig-plain-b8": (Arm("ludwig", 8, "nf4"), Arm("plain", 8, "nf4")),
    "nf4-bf16-b8": (Arm("ludwig", 8, "nf4"), Arm("ludwig", 8, "bf16")),
    "compute-b8": (Arm("ludwig", 8, "nf4-f32c"), Arm("ludwig", 8, "nf4-bf16c")),
    "nf4-fp32-b8": (Arm("ludwig", 8, "nf4"), Arm("ludwig", 8, "fp32")),
}
DEFAULT_PAIRS = ("ludwig-plain-b1", "ludwig-plain-b8", "nf4-bf16-b8", "compute-b8")
TARGETS = {
    "plain_over_ludwig": 0.9,  # Ludwig runs at >= 0.9x the bare loop's speed
    "b8_over_b1_examples": 1.7,
    "nf4_over_bf16_step": 1.18,  # a 4-bit step costs at most 1.18x a bf16 step
}


# ---------------------------------------------------------------- set-up (parent process)


def ensure_inputs(work: Path, task: str, rows: int) -> tuple[Path, Path]:
    """The local model, and a table of `rows` seeded random training rows of the task's real
    data (prepared from ../shared/data if missing) with a few rows of its other splits."""
    import pandas as pd

    from llmbench.prepare.tables import prepare_task, prepared_path
    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model
    from llmbench.train.local_models import ensure_local_model

    model_dir = ensure_local_model(MODEL, work / get_model(MODEL).local_path)
    table = prepared_path(task, work)
    if not table.is_file():
        source = SHARED_DATA / task
        if not source.is_dir():
            sys.exit(f"{source}: no real copy of {task}; the benchmark reads ../shared/data")
        prepare_task(task, source=source, out_dir=work, progress=False)
    split = get_card(task).split_column
    frame = pd.read_parquet(table)
    train = frame[frame[split] == TRAIN_SPLIT]
    train = train.sample(n=min(rows, len(train)), random_state=0)
    others = frame[frame[split] != TRAIN_SPLIT].groupby(split).head(OTHER_SPLIT_ROWS)
    sample = work / f"bench-{task}-{len(train)}.parquet"
    pd.concat([train, others]).to_parquet(sample, index=False)
    return model_dir, sample


def write_config(work: Path, model_dir: Path, task: str, folder: Path, arm: Arm, steps: int):
    """The rendered config for (smollm2-135m, task), sized from the prepared table, with the
    arm's batch and weights and `steps` steps; its path and the config."""
    import yaml

    from llmbench.prepare.stats import longest_in_model_tokens
    from llmbench.tasks.models import get_model
    from llmbench.train.render import write_rendered

    measured = longest_in_model_tokens(task, get_model(MODEL), model_dir, work)
    rendered = write_rendered(MODEL, task, folder / "rendered", work, measured)
    config = yaml.safe_load(rendered.text)
    quantized, dtype = WEIGHTS[arm.weights]
    if not quantized:
        config.pop("quantization", None)
    elif dtype:
        config["quantization"]["bnb_4bit_compute_dtype"] = dtype
    config["trainer"].update(
        batch_size=arm.batch,
        gradient_accumulation_steps=1,
        train_steps=steps,
        steps_per_checkpoint=steps,
        eval_steps=steps,
    )
    path = folder / f"{task}-{arm.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path, config


# ---------------------------------------------------------------- what both children share


class Baton:
    """Turn-taking between the two children through pipes: `wait` blocks until the other side
    hands the baton on (with a line of text), `pass_on` hands it to the other side."""

    def __init__(self, fds: dict):
        self._ready_fd = fds["ready"]
        self._go = os.fdopen(fds["go"], "r")
        self._next = os.fdopen(fds["next"], "w", buffering=1)

    def ready(self) -> None:
        """Tell the parent this side is loaded; the first baton comes once both are."""
        os.write(self._ready_fd, b"r")
        os.close(self._ready_fd)

    def wait(self) -> str:
        line = self._go.readline()
        if not line:
            raise RuntimeError("the other side of the benchmark stopped")
        return line

    def pass_on(self, line: str = "go") -> None:
        self._next.write(line.rstrip("\n") + "\n")


class StepClock:
    """Wall and CPU time of each step between `start()` and `stop()`, and what it trained on;
    with `profile_after`, cProfile the steps after that many."""

    def __init__(self, profile_after: int | None):
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.steps: list[dict] = []  # examples, tokens, padded_tokens, supervised_tokens
        self.profile_after = profile_after
        self.profiler = None
        if profile_after is not None:
            import cProfile

            self.profiler = cProfile.Profile()
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        if self.profiler and len(self.wall) >= self.profile_after:
            self.profiler.enable()
        _synchronize()
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        _synchronize()
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)
        if self.profiler:
            self.profiler.disable()

    def profile_text(self, lines: int = 25) -> str:
        if not self.profiler:
            return ""
        import io
        import pstats

        stream = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(lines)
        stats.sort_stats("cumulative").print_stats(lines)
        return stream.getvalue()

    def result(self) -> dict:
        import torch

        return {
            "step_s": self.wall,
            "step_cpu_s": self.cpu,
            "steps": self.steps,
            "threads": torch.get_num_threads(),
            "profile": self.profile_text(),
        }


def _synchronize() -> None:
    """Wait for queued GPU work, so that a step's time is its own (a no-op on a CPU)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def table_examples(tokenizer, table: Path, task: str) -> dict[tuple, int]:
    """Every training row as Ludwig merges it (realized prompt, target, EOS) -> the number of
    its supervised tokens (target and EOS)."""
    import pandas as pd

    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model
    from llmbench.tasks.prompts import realize_prompt

    card, model = get_card(task), get_model(MODEL)
    rows = pd.read_parquet(table)
    rows = rows[rows[card.split_column] == TRAIN_SPLIT]
    examples = {}
    for row in rows.to_dict("records"):
        prompt = tokenizer(realize_prompt(card, model, row)).input_ids
        target = tokenizer(str(row[card.target_col])).input_ids + [tokenizer.eos_token_id]
        examples[tuple(prompt + target)] = len(target)
    return examples


def step_counts(rows: list[list[int]], width: int, supervised: dict[tuple, int]) -> dict:
    return {
        "examples": len(rows),
        "tokens": sum(map(len, rows)),
        "padded_tokens": len(rows) * width,
        "supervised_tokens": sum(supervised.get(tuple(row), 0) for row in rows),
        "unknown_rows": sum(tuple(row) not in supervised for row in rows),
    }


# ---------------------------------------------------------------- the ludwig side


def ludwig_child(spec: dict) -> dict:
    """`llmbench.train.training.train` with a step-timing callback added to its LudwigModel;
    each step's rows (left padding stripped) are handed on with the baton."""
    from ludwig.callbacks import Callback
    from transformers import AutoTokenizer

    from llmbench.train.training import train

    baton, clock, steps = Baton(spec["fds"]), StepClock(spec["profile_after"]), spec["steps"]
    marks = {"start": time.perf_counter()}
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    supervised = table_examples(tokenizer, Path(spec["dataset"]), spec["task"])
    pad = tokenizer.pad_token_id
    if spec["arm"]["weights"] == "bf16":
        load_in_bfloat16()

    class StepTimer(Callback):
        def on_batch_start(self, trainer, progress_tracker, save_path, **kwargs):
            if not clock.wall:
                marks["first_step"] = time.perf_counter()
                baton.ready()
            baton.wait()
            clock.start()

        def on_batch_end(self, trainer, progress_tracker, save_path, sync_step=True, **kwargs):
            clock.stop()
            batch = trainer.model.model_inputs
            rows = [strip_left_padding(row, pad) for row in batch.tolist()]
            clock.steps.append(step_counts(rows, batch.shape[1], supervised))
            baton.pass_on(json.dumps(rows))
            if len(clock.wall) == steps:
                if spec["starts"]:
                    baton.wait()  # the other side's last step
                marks["last_step_end"] = time.perf_counter()

    add_ludwig_callback(StepTimer())
    train(Path(spec["config"]), Path(spec["dataset"]), Path(spec["out"]))
    return {
        **clock.result(),
        "before_loop_s": marks["first_step"] - marks["start"],
        "after_loop_s": time.perf_counter() - marks["last_step_end"],
    }


def strip_left_padding(row: list[int], pad: int) -> list[int]:
    start = 0
    while start < len(row) and row[start] == pad:
        start += 1
    return row[start:]


def load_in_bfloat16() -> None:
    """Ludwig loads an unquantized LLM in float32: cast it to bfloat16 as it is loaded."""
    import torch
    from ludwig.models import llm

    load = llm.load_pretrained_from_config

    def in_bfloat16(*args, **kwargs):
        return load(*args, **kwargs).to(torch.bfloat16)

    llm.load_pretrained_from_config = in_bfloat16


def add_ludwig_callback(callback) -> None:
    """Make `llmbench.train.training.train` add `callback` to the LudwigModel it builds (train()
    builds it in `_ludwig_model`, with its own callbacks; this one joins them)."""
    import llmbench.train.training as training

    build_model = training._ludwig_model

    def with_callback(config, config_path, **kwargs):
        model = build_model(config, config_path, **kwargs)
        model.callbacks.append(callback)
        return model

    training._ludwig_model = with_callback


# ---------------------------------------------------------------- the plain side


def plain_model(config: dict, model_dir: str, attention: str, device_map=None):
    """The base model in 4-bit as the Ludwig config asks, prepared for k-bit training (as
    Ludwig does), with its LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant, adapter = config["quantization"], config["adapter"]
    assert quant["bits"] == 4 and adapter["type"] == "lora", (quant, adapter)
    compute = getattr(torch, quant["bnb_4bit_compute_dtype"])
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=compute,
        attn_implementation=attention,
        device_map=device_map,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant["bnb_4bit_quant_type"],
            bnb_4bit_use_double_quant=quant["bnb_4bit_use_double_quant"],
            bnb_4bit_compute_dtype=compute,
        ),
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        r=adapter["r"],
        lora_alpha=adapter["alpha"],
        lora_dropout=adapter["dropout"],
        target_modules=adapter["target_modules"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def plain_optimizer(model, config: dict, steps: int):
    """Adam at the config's learning rate, its cosine schedule with warm-up, and the trainable
    parameters (for clipping)."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    trainer = config["trainer"]
    assert trainer["optimizer"]["type"] == "adam", trainer["optimizer"]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=trainer["learning_rate"])
    warmup = round(trainer["learning_rate_scheduler"]["warmup_fraction"] * steps)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, warmup, steps), params


def left_padded(rows: list[list[int]], supervised: dict[tuple, int], pad: int):
    """`rows` (merged ids) left-padded as Ludwig pads them: input ids, attention mask, and
    labels with the loss on each row's last `supervised[row]` tokens."""
    width = max(map(len, rows))
    ids = [[pad] * (width - len(row)) + row for row in rows]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    labels = []
    for row in rows:
        kept = supervised[tuple(row)]
        labels.append([-100] * (width - kept) + row[len(row) - kept :])
    return ids, labels, mask


def plain_step(model, optimizer, scheduler, params, ids, labels, mask=None) -> float:
    """One training step of the plain loop on a batch (lists of rows); its loss."""
    import torch

    device = model.device
    outputs = model(
        input_ids=torch.tensor(ids, device=device),
        attention_mask=None if mask is None else torch.tensor(mask, device=device),
        labels=torch.tensor(labels, device=device),
    )
    outputs.loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 0.5)  # Ludwig's default clipglobalnorm
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return outputs.loss.item()


def plain_child(spec: dict) -> dict:
    """A hand-written QLoRA loop; step k trains on the rows Ludwig's step k trained on."""
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(42)  # Ludwig's default random seed
    started = time.perf_counter()
    baton, clock, steps = Baton(spec["fds"]), StepClock(spec["profile_after"]), spec["steps"]
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    supervised = table_examples(tokenizer, Path(spec["dataset"]), spec["task"])
    model = plain_model(spec["ludwig_config"], spec["model_dir"], spec["plain_attention"])
    model.train()
    optimizer, scheduler, params = plain_optimizer(model, spec["ludwig_config"], steps)
    before_loop = time.perf_counter() - started
    baton.ready()
    for step in range(steps):
        rows = json.loads(baton.wait())
        unknown = [row for row in rows if tuple(row) not in supervised]
        if unknown:
            raise SystemExit(
                f"Ludwig's step {step + 1} trained on ids that are no realized "
                f"prompt + target + EOS of the table: {unknown[0]}"
            )
        clock.start()
        batch = left_padded(rows, supervised, tokenizer.pad_token_id)
        plain_step(model, optimizer, scheduler, params, *batch)
        clock.stop()
        clock.steps.append(step_counts(rows, max(map(len, rows)), supervised))
        baton.pass_on()
    return {**clock.result(), "before_loop_s": before_loop}


CHILDREN = {"ludwig": ludwig_child, "plain": plain_child}


# ---------------------------------------------------------------- one round (parent)


def run_round(specs: list[dict], folder: Path, label: str) -> list[dict]:
    """The two children of a round (specs[0] starts), taking turns step by step; each one's
    result with its peak RSS (ru_maxrss of that child alone) added."""
    go_first, go_second, ready = os.pipe(), os.pipe(), os.pipe()
    fds = [
        {"go": go_first[0], "next": go_second[1], "ready": ready[1]},
        {"go": go_second[0], "next": go_first[1], "ready": ready[1]},
    ]
    out = folder / f"ludwig-{label}"
    processes, logs = [], []
    for index, spec in enumerate(specs):
        name = f"{label}-{index}-{spec['arm']['side']}"
        spec_path = folder / f"{name}.spec.json"
        side_spec = {
            **spec,
            "fds": fds[index],
            "starts": index == 0,  # it takes the first turn, and so waits for the last
            "out": str(out / str(index)),
            "result": str(folder / f"{name}.result.json"),
        }
        spec_path.write_text(json.dumps(side_spec))
        logs.append(folder / f"{name}.log")
        with logs[-1].open("w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--child", str(spec_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=tuple(fds[index].values()),
                    env=child_environment(),
                )
            )
    # Keep only the parent's ends: its first baton and the ready signals; closed writers let a
    # child see the other one stop instead of waiting for ever.
    for fd in (go_first[0], go_second[0], go_second[1], ready[1]):
        os.close(fd)
    if len(os.read(ready[0], 1) + os.read(ready[0], 1)) == 2:
        os.write(go_first[1], b"go\n")
    os.close(go_first[1])
    os.close(ready[0])
    results = [_collect(process, log, label) for process, log in zip(processes, logs, strict=True)]
    shutil.rmtree(out, ignore_errors=True)
    return results


def child_environment() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _collect(process: subprocess.Popen, log: Path, label: str) -> dict:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{label} failed; its log: {log}\n{log.read_text()[-12000:]}")
    result = json.loads(Path(str(log).replace(".log", ".result.json")).read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


# ---------------------------------------------------------------- measures of one arm


def arm_measures(result: dict, batch: int, warmup: int) -> dict:
    """Mean seconds per step after `warmup`, and examples, real and supervised tokens per
    second over those steps."""
    seconds = sum(result["step_s"][warmup:])
    kept = result["steps"][warmup:]
    return {
        "step_s": statistics.fmean(result["step_s"][warmup:]),
        "step_cpu_s": statistics.fmean(result["step_cpu_s"][warmup:]),
        "examples_per_s": sum(s["examples"] for s in kept) / seconds,
        "tokens_per_s": sum(s["tokens"] for s in kept) / seconds,
        "supervised_tokens_per_s": sum(s["supervised_tokens"] for s in kept) / seconds,
        "padding_share": 1 - sum(s["tokens"] for s in kept) / sum(s["padded_tokens"] for s in kept),
        "tokens_per_example": sum(s["tokens"] for s in kept) / sum(s["examples"] for s in kept),
        "unknown_rows": sum(s["unknown_rows"] for s in result["steps"]),
        "peak_rss_mb": result["peak_rss_mb"],
        "before_loop_s": result["before_loop_s"],
        "threads": result["threads"],
        "batch": batch,
    }


# ---------------------------------------------------------------- the comparison (parent)


def run_pairs(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Every (task, pair, round), each reported as it ends."""
    records = []
    for task in args.tasks:
        model_dir, table = ensure_inputs(args.work, task, args.rows)
        for pair in args.pairs:
            specs = []
            for arm in PAIRS[pair]:
                config_path, config = write_config(
                    args.work, model_dir, task, folder, arm, args.steps
                )
                specs.append(
                    {
                        "arm": asdict(arm),
                        "task": task,
                        "config": str(config_path),
                        "ludwig_config": config,
                        "dataset": str(table),
                        "model_dir": str(model_dir),
                        "steps": args.steps,
                        "profile_after": args.warmup if args.profile else None,
                        "plain_attention": args.plain_attention,
                        "threads": args.threads,
                    }
                )
            for round_ in range(1, args.rounds + 1):
                results = run_round(specs, folder, f"{task}-{pair}-{round_}")
                record = {"task": task, "pair": pair, "round": round_, "arms": {}}
                for arm, result in zip(PAIRS[pair], results, strict=True):
                    record["arms"][arm.name] = arm_measures(result, arm.batch, args.warmup)
                    if args.profile:
                        record["arms"][arm.name]["profile"] = result["profile"]
                records.append(record)
                report_round(record)
    return records


def report_round(record: dict) -> None:
    (a, ma), (b, mb) = record["arms"].items()
    parts = [
        f"{name} {m['step_s']:.3f} s/step, {m['examples_per_s']:.2f} ex/s, "
        f"{m['supervised_tokens_per_s']:.1f} supervised tok/s, {m['peak_rss_mb']:.0f} MB"
        for name, m in ((a, ma), (b, mb))
    ]
    print(
        f"{record['task']} {record['pair']} round {record['round']}: {'; '.join(parts)}; "
        f"step ratio {a}/{b} {ma['step_s'] / mb['step_s']:.3f}",
        flush=True,
    )


def ratios(records: list[dict], task: str, pair: str, a: str, b: str, key: str) -> list[float]:
    """Per round of (task, pair): arm a's `key` over arm b's."""
    return [
        r["arms"][a][key] / r["arms"][b][key]
        for r in records
        if r["task"] == task and r["pair"] == pair
    ]


def summarize(records: list[dict], args: argparse.Namespace) -> dict:
    """The pairs' median ratios with their spread, and the targets."""
    findings = []
    for task in args.tasks:
        for pair in args.pairs:
            first, second = (arm.name for arm in PAIRS[pair])
            values = ratios(records, task, pair, first, second, "step_s")
            if pair.startswith("ludwig-plain"):
                what, values = "Ludwig speed / bare-loop speed", [1 / v for v in values]
                target = ("plain_over_ludwig", ">=")
            elif pair == "nf4-bf16-b8":
                what, target = "4-bit step / bf16 step", ("nf4_over_bf16_step", "<=")
            else:
                what, target = f"{first} step / {second} step", None
            findings.append(_finding(task, pair, what, values, target))
        if {"ludwig-plain-b1", "ludwig-plain-b8"} <= set(args.pairs):
            b8 = [
                r["arms"]["ludwig-nf4-b8"]["examples_per_s"]
                for r in records
                if r["task"] == task and r["pair"] == "ludwig-plain-b8"
            ]
            b1 = [
                r["arms"]["ludwig-nf4-b1"]["examples_per_s"]
                for r in records
                if r["task"] == task and r["pair"] == "ludwig-plain-b1"
            ]
            values = [x / y for x, y in zip(b8, b1, strict=True)]
            findings.append(
                _finding(
                    task,
                    "ludwig b8 / b1",
                    "examples/s, batch 8 over batch 1",
                    values,
                    ("b8_over_b1_examples", ">="),
                )
            )
    return {
        "model": MODEL,
        "tasks": args.tasks,
        "rows": args.rows,
        "rounds": args.rounds,
        "steps": args.steps,
        "warmup_steps_left_out": args.warmup,
        "threads": args.threads,
        "plain_attention": args.plain_attention,
        "findings": findings,
        "records": records,
    }


def _finding(task, pair, what, values, target) -> dict:
    median = statistics.median(values)
    finding = {
        "task": task,
        "pair": pair,
        "what": what,
        "per_round": values,
        "median": median,
        "min": min(values),
        "max": max(values),
    }
    if target:
        name, sense = target
        goal = TARGETS[name]
        finding["target"] = f"{sense} {goal}"
        finding["met"] = median >= goal if sense == ">=" else median <= goal
    return finding


def print_summary(summary: dict) -> None:
    print(
        f"\n{summary['model']}: {summary['rounds']} round(s) x {summary['steps']} steps per arm "
        f"(first {summary['warmup_steps_left_out']} left out), {summary['rows']} training rows "
        f"per task, threads per arm {summary['threads']}, plain attention "
        f"{summary['plain_attention']}; {summary['elapsed_s'] / 60:.1f} min in all\n"
    )
    print(
        "| task | arm | s/step | examples/s | tokens/example | supervised tokens/s | "
        "padding | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for record in summary["records"]:
        for name, m in record["arms"].items():
            print(
                f"| {record['task']} | {name} ({record['pair']} r{record['round']}) "
                f"| {m['step_s']:.3f} | {m['examples_per_s']:.2f} "
                f"| {m['tokens_per_example']:.1f} | {m['supervised_tokens_per_s']:.1f} "
                f"| {m['padding_share']:.0%} | {m['peak_rss_mb']:.0f} |"
            )
    print("\n| task | comparison | per round | median (spread) | target | met |")
    print("|---|---|---|---|---|---|")
    for f in summary["findings"]:
        rounds = " ".join(f"{v:.3f}" for v in f["per_round"])
        print(
            f"| {f['task']} | {f['what']} | {rounds} | {f['median']:.3f} "
            f"({f['min']:.3f}-{f['max']:.3f}) | {f.get('target', '')} "
            f"| {'yes' if f.get('met') else 'no' if 'met' in f else ''} |"
        )
    for record in summary["records"][-len(PAIRS) :]:
        for name, m in record["arms"].items():
            if m.get("profile"):
                print(f"\n==== profile of {name}'s steps after warm-up ====\n{m['profile']}")


def run_child(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    cores = sorted(os.sched_getaffinity(0))[: spec["threads"]]
    os.sched_setaffinity(0, cores)  # llmbench train gives torch a thread per core it may use
    import torch

    torch.set_num_threads(len(cores))
    result = CHILDREN[spec["arm"]["side"]](spec)
    Path(spec["result"]).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), choices=list(PAIRS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16, help="training steps of each arm")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of means")
    parser.add_argument("--rows", type=int, default=2000, help="training rows sampled per task")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/bench-train"),
        help="holds the built model and the prepared tables (made if missing)",
    )
    parser.add_argument(
        "--plain-attention",
        default="eager",
        choices=("sdpa", "eager"),
        help="the bare loop's attention (Ludwig loads 4-bit models with eager)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="cores (and torch threads) of each arm"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile each arm's steps after warm-up; print the top functions",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        records = run_pairs(args, Path(tmp))
    summary = summarize(records, args)
    summary["elapsed_s"] = time.perf_counter() - started
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
