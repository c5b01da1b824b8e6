"""`llmbench train` (Ludwig) against a plain QLoRA training loop: time per step and peak RSS.

    python bench/bench_train.py                        # 3 rounds x 30 steps each side
    python bench/bench_train.py --rounds 5 --steps 60  # steadier numbers
    python bench/bench_train.py --profile              # where each side's step time goes

Both sides fine-tune smollm2-135m on the prepared glue_sst2 demo table with the rendered config's
settings: 4-bit nf4 with double quantization and bfloat16 compute (bitsandbytes), LoRA r 8,
alpha 16, dropout 0.05 on q_proj/v_proj, Adam, the config's learning rate with its cosine
schedule and 3% warm-up, Ludwig's default gradient clipping (global norm 0.5), batch size 1, no
gradient accumulation, the same number of steps.

- ludwig: `llmbench.train.training.train(config, dataset, out)` on the rendered config with
  train_steps, steps_per_checkpoint and eval_steps set to `--steps` (nothing is evaluated or
  checkpointed between steps). A Ludwig Callback times each step from `on_batch_start` to
  `on_batch_end`: fetching the batch, merging prompt and target ids, forward pass, Ludwig's
  predictions and loss, backward pass, clipping, optimizer step, training metrics, scheduler
  step, the step's TensorBoard summary and the progress bar.
- plain: transformers + PEFT + bitsandbytes in a hand-written loop. Each example is
  `realize_prompt(...)` tokenized, then the target's tokens and EOS; labels mask the prompt with
  -100, so the loss is on the target and EOS only, as Ludwig's. A step is timed from building
  its tensors to `loss.item()` after the optimizer and scheduler steps.

Each side runs in its own child process, so that its peak RSS (the child's ru_maxrss, from
os.wait4) is its own: the whole run, model load, preprocessing, training and, for Ludwig, the
end-of-training evaluation and saving the adapter. The two children of a round load at the same
time, then take turns step by step (ludwig step 1, plain step 1, ludwig step 2, ...), passing a
baton through pipes, so that one never runs while the other is timed and both see the same
background load: the machine is shared. Ludwig hands on the token ids of each step's merged
sequence with the baton; the plain loop trains its step on the example with exactly those ids
(any mismatch stops the benchmark), so step k of each side sees the same tokens.

Each side uses one torch thread unless `--threads` says otherwise: on a 2-core machine shared
with other work, two OpenMP threads per side made every step 10-20x slower and the ratio a
measure of how each side's parallel regions suffer from contention (see docs/benchmarks.md).

The first `--warmup` steps of every run are left out. Printed: per round each side's mean step
time (wall and CPU) and the ratio ludwig/plain, the median ratio over rounds with its spread,
and the peak RSS of each side; written to `--json` when given.
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

MODEL = "smollm2-135m"
TASK = "glue_sst2"
TRAIN_SPLIT = 0
DEMO_SOURCE = REPO_ROOT / "datasets" / TASK / "demo"
SIDES = ("ludwig", "plain")


# ---------------------------------------------------------------- set-up (parent process)


def ensure_inputs(work: Path) -> tuple[Path, Path]:
    """The local model and the prepared demo table under `work`, built or prepared if missing."""
    from llmbench.prepare.tables import prepare_task, prepared_path
    from llmbench.tasks.models import get_model
    from llmbench.train.local_models import ensure_local_model

    model_dir = ensure_local_model(MODEL, work / get_model(MODEL).local_path)
    table = prepared_path(TASK, work)
    if not table.is_file():
        prepare_task(TASK, source=DEMO_SOURCE, out_dir=work, progress=False)
    return model_dir, table


def write_config(work: Path, model_dir: Path, folder: Path, steps: int) -> Path:
    """The rendered config for (smollm2-135m, glue_sst2), sized from the prepared table, with
    the step counts set to `steps`."""
    import yaml

    from llmbench.prepare.stats import longest_in_model_tokens
    from llmbench.tasks.models import get_model
    from llmbench.train.render import write_rendered

    measured = longest_in_model_tokens(TASK, get_model(MODEL), model_dir, work)
    rendered = write_rendered(MODEL, TASK, folder / "rendered", work, measured)
    config = yaml.safe_load(rendered.text)
    trainer = config["trainer"]
    assert trainer["batch_size"] == 1 and trainer["gradient_accumulation_steps"] == 1, trainer
    trainer.update(train_steps=steps, steps_per_checkpoint=steps, eval_steps=steps)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


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
    """Wall and CPU time of each step between `start()` and `stop()`; with `profile_after`,
    cProfile the steps after that many."""

    def __init__(self, profile_after: int | None):
        self.wall: list[float] = []
        self.cpu: list[float] = []
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
            "threads": torch.get_num_threads(),
            "profile": self.profile_text(),
        }


def _synchronize() -> None:
    """Wait for queued GPU work, so that a step's time is its own (a no-op on a CPU)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


# ---------------------------------------------------------------- the ludwig side


def ludwig_child(spec: dict) -> dict:
    """`llmbench.train.training.train` with a step-timing callback added to its LudwigModel."""
    from ludwig.callbacks import Callback

    from llmbench.train.training import train

    baton, clock, steps = Baton(spec["fds"]), StepClock(spec["profile_after"]), spec["steps"]
    marks = {"start": time.perf_counter()}

    class StepTimer(Callback):
        def on_batch_start(self, trainer, progress_tracker, save_path, **kwargs):
            if not clock.wall:
                marks["first_step"] = time.perf_counter()
                baton.ready()
            baton.wait()
            clock.start()

        def on_batch_end(self, trainer, progress_tracker, save_path, sync_step=True, **kwargs):
            clock.stop()
            baton.pass_on(json.dumps(trainer.model.model_inputs[0].tolist()))
            if len(clock.wall) == steps:
                baton.wait()  # the plain loop's last step
                marks["last_step_end"] = time.perf_counter()

    add_ludwig_callback(StepTimer())
    train(Path(spec["config"]), Path(spec["dataset"]), Path(spec["out"]))
    return {
        **clock.result(),
        "before_loop_s": marks["first_step"] - marks["start"],
        "after_loop_s": time.perf_counter() - marks["last_step_end"],
    }


# ---------------------------------------------------------------- the plain side


def plain_examples(tokenizer, table: Path) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of every training row: realized prompt, then target and EOS; the
    prompt's labels are -100 so that the loss covers the target and EOS only."""
    import pandas as pd

    from llmbench.tasks.cards import get_card
    from llmbench.tasks.models import get_model
    from llmbench.tasks.prompts import realize_prompt

    card, model = get_card(TASK), get_model(MODEL)
    rows = pd.read_parquet(table)
    rows = rows[rows[card.split_column] == TRAIN_SPLIT]
    examples = []
    for row in rows.to_dict("records"):
        prompt = tokenizer(realize_prompt(card, model, row)).input_ids
        target = tokenizer(str(row[card.target_col])).input_ids + [tokenizer.eos_token_id]
        examples.append((prompt + target, [-100] * len(prompt) + target))
    return examples


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


def plain_step(model, optimizer, scheduler, params, ids: list[int], labels: list[int]) -> float:
    """One training step of the plain loop; its loss."""
    import torch

    device = model.device
    outputs = model(
        input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device)
    )
    outputs.loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 0.5)  # Ludwig's default clipglobalnorm
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return outputs.loss.item()


def add_ludwig_callback(callback) -> None:
    """Make `llmbench.train.training.train` add `callback` to the LudwigModel it builds (train()
    builds it in `_ludwig_model`, with its own callbacks; this one joins them)."""
    import llmbench.train.training as training

    build_model = training._ludwig_model

    def with_callback(config, config_path):
        model = build_model(config, config_path)
        model.callbacks.append(callback)
        return model

    training._ludwig_model = with_callback


def plain_child(spec: dict) -> dict:
    """A hand-written QLoRA loop; step k trains on the example Ludwig's step k trained on."""
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(42)  # Ludwig's default random seed
    started = time.perf_counter()
    baton, clock, steps = Baton(spec["fds"]), StepClock(spec["profile_after"]), spec["steps"]
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    examples = plain_examples(tokenizer, Path(spec["dataset"]))
    by_ids = {tuple(ids): i for i, (ids, _) in enumerate(examples)}
    model = plain_model(spec["ludwig_config"], spec["model_dir"], spec["plain_attention"])
    model.train()
    optimizer, scheduler, params = plain_optimizer(model, spec["ludwig_config"], steps)
    before_loop = time.perf_counter() - started
    baton.ready()
    order = []
    for step in range(steps):
        ludwig_ids = tuple(json.loads(baton.wait()))
        if ludwig_ids not in by_ids:
            raise SystemExit(
                f"Ludwig's step {step + 1} trained on ids that are no realized "
                f"prompt + target + EOS of the table: {list(ludwig_ids)}"
            )
        order.append(by_ids[ludwig_ids])
        clock.start()
        plain_step(model, optimizer, scheduler, params, *examples[order[-1]])
        clock.stop()
        baton.pass_on()
    return {
        **clock.result(),
        "before_loop_s": before_loop,
        "tokens": [len(examples[i][0]) for i in order],
        "rows": order,
    }


CHILDREN = {"ludwig": ludwig_child, "plain": plain_child}


# ---------------------------------------------------------------- one round (parent)


def run_round(spec: dict, folder: Path, round_: int) -> dict[str, dict]:
    """Both children of a round, taking turns step by step; each one's result with its peak
    RSS (ru_maxrss of that child alone) added."""
    go_ludwig, go_plain, ready = os.pipe(), os.pipe(), os.pipe()
    fds = {
        "ludwig": {"go": go_ludwig[0], "next": go_plain[1], "ready": ready[1]},
        "plain": {"go": go_plain[0], "next": go_ludwig[1], "ready": ready[1]},
    }
    out = folder / f"ludwig{round_}"
    processes, logs = {}, {}
    for side in SIDES:
        spec_path = folder / f"{side}{round_}.spec.json"
        side_spec = {
            **spec,
            "fds": fds[side],
            "out": str(out),
            "result": str(folder / f"{side}{round_}.result.json"),
        }
        spec_path.write_text(json.dumps(side_spec))
        logs[side] = folder / f"{side}{round_}.log"
        with logs[side].open("w") as log:
            processes[side] = subprocess.Popen(
                [sys.executable, __file__, "--child", side, str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=tuple(fds[side].values()),
                env=child_environment(spec["threads"]),
            )
    # Keep only the parent's ends: its first baton and the ready signals; closed writers let a
    # child see the other one stop instead of waiting for ever.
    for fd in (go_ludwig[0], go_plain[0], go_plain[1], ready[1]):
        os.close(fd)
    if len(os.read(ready[0], 1) + os.read(ready[0], 1)) == 2:
        os.write(go_ludwig[1], b"go\n")
    os.close(go_ludwig[1])
    os.close(ready[0])
    results = {
        side: _collect(side, process, logs[side], round_) for side, process in processes.items()
    }
    shutil.rmtree(out, ignore_errors=True)
    return results


def child_environment(threads: int | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def _collect(side: str, process: subprocess.Popen, log: Path, round_: int) -> dict:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{side} round {round_} failed; its log: {log}\n{log.read_text()[-3000:]}")
    result = json.loads(Path(str(log).replace(".log", ".result.json")).read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


# ---------------------------------------------------------------- the comparison (parent)


def mean_after(times: list[float], warmup: int) -> float:
    return statistics.fmean(times[warmup:])


def compare(args: argparse.Namespace, folder: Path) -> dict:
    """The rounds, each reported as it ends; their summary."""
    import yaml

    model_dir, table = ensure_inputs(args.work)
    config_path = write_config(args.work, model_dir, folder, args.steps)
    spec = {
        "config": str(config_path),
        "ludwig_config": yaml.safe_load(config_path.read_text()),
        "dataset": str(table),
        "model_dir": str(model_dir),
        "steps": args.steps,
        "profile_after": args.warmup if args.profile else None,
        "plain_attention": args.plain_attention,
        "threads": args.threads,
    }
    rounds = []
    for round_ in range(1, args.rounds + 1):
        rounds.append(run_round(spec, folder, round_))
        if rounds[-1]["plain"]["rows"] != rounds[0]["plain"]["rows"]:
            print(f"note: Ludwig trained on other rows in round {round_} than in round 1")
        report_round(round_, rounds[-1], args.warmup)
    return summarize(rounds, args)


def report_round(round_: int, result: dict, warmup: int) -> None:
    wall = {s: mean_after(result[s]["step_s"], warmup) for s in SIDES}
    cpu = {s: mean_after(result[s]["step_cpu_s"], warmup) for s in SIDES}
    rss = {s: result[s]["peak_rss_mb"] for s in SIDES}
    print(
        f"round {round_}: s/step ludwig {wall['ludwig']:.3f}, plain {wall['plain']:.3f}, "
        f"ludwig/plain {wall['ludwig'] / wall['plain']:.3f} (CPU s/step {cpu['ludwig']:.3f}, "
        f"{cpu['plain']:.3f}, ratio {cpu['ludwig'] / cpu['plain']:.3f}); peak RSS ludwig "
        f"{rss['ludwig']:.0f} MB, plain {rss['plain']:.0f} MB",
        flush=True,
    )


def summarize(rounds: list[dict], args: argparse.Namespace) -> dict:
    def each(side: str, key: str) -> list:
        return [r[side][key] for r in rounds]

    wall = {s: [mean_after(t, args.warmup) for t in each(s, "step_s")] for s in SIDES}
    cpu = {s: [mean_after(t, args.warmup) for t in each(s, "step_cpu_s")] for s in SIDES}
    ratios = [lud / pla for lud, pla in zip(wall["ludwig"], wall["plain"], strict=True)]
    cpu_ratios = [lud / pla for lud, pla in zip(cpu["ludwig"], cpu["plain"], strict=True)]
    tokens = rounds[0]["plain"]["tokens"]
    return {
        "model": MODEL,
        "task": TASK,
        "rounds": args.rounds,
        "steps": args.steps,
        "warmup_steps_left_out": args.warmup,
        "plain_attention": args.plain_attention,
        "tokens_per_step": {
            "min": min(tokens),
            "mean": statistics.fmean(tokens),
            "max": max(tokens),
        },
        "threads": {s: rounds[0][s]["threads"] for s in SIDES},
        "step_s": wall,
        "step_cpu_s": cpu,
        "each_step_s": {s: each(s, "step_s") for s in SIDES},
        "ratio_ludwig_over_plain": ratios,
        "median_ratio": statistics.median(ratios),
        "median_plain_over_ludwig": statistics.median(1 / r for r in ratios),
        "cpu_ratio_ludwig_over_plain": cpu_ratios,
        "peak_rss_mb": {s: each(s, "peak_rss_mb") for s in SIDES},
        "before_loop_s": {s: each(s, "before_loop_s") for s in SIDES},
        "ludwig_after_loop_s": each("ludwig", "after_loop_s"),
        "profiles": {s: rounds[-1][s]["profile"] for s in SIDES} if args.profile else {},
    }


def print_summary(summary: dict) -> None:
    ratios, cpu_ratios = summary["ratio_ludwig_over_plain"], summary["cpu_ratio_ludwig_over_plain"]
    tokens = summary["tokens_per_step"]
    print(
        f"\n{summary['model']} on {summary['task']}: {summary['rounds']} rounds x "
        f"{summary['steps']} steps each side (first {summary['warmup_steps_left_out']} left out), "
        f"{tokens['min']}-{tokens['max']} tokens a step (mean {tokens['mean']:.1f}), "
        f"torch threads {summary['threads']}, plain attention {summary['plain_attention']}"
    )
    print(
        "| side | s/step per round | CPU s/step per round | peak RSS MB per round | "
        "load + preprocess s |"
    )
    print("|---|---|---|---|---|")
    for side in SIDES:
        print(
            f"| {side} | {_join(summary['step_s'][side], 3)} "
            f"| {_join(summary['step_cpu_s'][side], 3)} "
            f"| {_join(summary['peak_rss_mb'][side], 0)} "
            f"| {statistics.median(summary['before_loop_s'][side]):.1f} |"
        )
    print(
        f"ludwig/plain per round: {_join(ratios, 3)}; median {summary['median_ratio']:.3f} "
        f"(spread {min(ratios):.3f}-{max(ratios):.3f}); plain/ludwig median "
        f"{summary['median_plain_over_ludwig']:.3f} (aim >= 0.9)"
    )
    print(
        f"in CPU time, ludwig/plain per round: {_join(cpu_ratios, 3)}; median "
        f"{statistics.median(cpu_ratios):.3f}"
    )
    print(
        f"Ludwig after the last step (evaluation, saving the adapter): "
        f"{statistics.median(summary['ludwig_after_loop_s']):.1f} s; whole benchmark "
        f"{summary['elapsed_s'] / 60:.1f} min"
    )
    for side, text in summary["profiles"].items():
        print(f"\n==== profile of {side}'s steps after warm-up (last round) ====\n{text}")


def _join(values: list[float], digits: int) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="training steps of each run")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of means")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/bench-train"),
        help="holds the built model and the prepared table (made if missing)",
    )
    parser.add_argument(
        "--plain-attention",
        default="sdpa",
        choices=("sdpa", "eager"),
        help="the plain loop's attention (transformers' default is sdpa; "
        "Ludwig loads 4-bit models with eager)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch (OpenMP) threads of each side; 0: torch's choice (one per "
        "core), which on a shared 2-core machine measures contention, not work",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile each side's steps after warm-up; print the top functions",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, spec_path = args.child
        spec = json.loads(Path(spec_path).read_text())
        if spec["threads"]:
            import torch

            torch.set_num_threads(spec["threads"])
        result = CHILDREN[side](spec)
        Path(spec["result"]).write_text(json.dumps(result))
        return
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        summary = compare(args, Path(tmp))
    summary["elapsed_s"] = time.perf_counter() - started
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
