"""A time budget per adapter: a warm-up measures the task's own speed, and the steps fit the time.

`llmbench train --budget 20m` (and the bake-off's `trainer: {budget: 20m}`) train for a time,
not a step count. Before the run, a warm-up trains `WARMUP_BATCHES` batches of the config on the
task's own rows, through Ludwig as the run will (same batch size, length grouping, 4-bit path),
and measures its examples per second over the batches after the first `SETTLING_BATCHES`. The
run's `train_steps` (Ludwig's steps are batches) are then sized so that the warm-up, the run's
own start (loading and preprocessing, measured in the warm-up too) and its training fit in the
budget, rounded down to whole optimizer steps. The plan (the measured rate, the steps chosen, the
examples and epochs it buys) is written to `<output>/<experiment>_budget.json` before training
starts; a resumed run reuses it, so its schedule and its step count stay the ones it began with.
When the run ends, what it trained (examples, seconds, examples per second) is added to the file.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import atomic_write_text

WARMUP_BATCHES = 6
SETTLING_BATCHES = 2  # the first batches pay for allocations and caches: not measured
CHECKPOINTS_PER_RUN = 10  # a killed run loses at most a tenth of its budget
_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*[hms]\s*)+$|^\s*\d+(\.\d+)?\s*$"  # for the schemas


def parse_budget(text: str | float | int, where: str = "budget") -> float:
    """Seconds in a duration such as `20m`, `1h30m`, `90s` or `1200` (seconds)."""
    raw = str(text).strip()
    try:
        seconds = float(raw)
    except ValueError:
        parts = _DURATION.findall(raw)
        if not re.fullmatch(DURATION_PATTERN, raw) or not parts:
            raise LLMBenchError(
                f"{where}: {raw!r} is not a duration; expected e.g. 20m, 1h30m, 90s or 1200"
            ) from None
        seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise LLMBenchError(f"{where}: {raw!r} is not a duration > 0; expected e.g. 20m or 90s")
    return seconds


@dataclass
class BudgetPlan:
    budget_s: float
    batch_size: int
    gradient_accumulation_steps: int
    warmup_batches: int
    warmup_wall_s: float  # the warm-up, start to end
    start_overhead_s: float  # what a run spends outside its batches (load, preprocess, save)
    examples_per_second: float  # measured in the warm-up
    threads: int
    train_steps: int  # Ludwig's steps: batches
    optimizer_steps: int
    examples: int  # examples the run will see
    train_rows: int | None
    epochs: float | None
    config_sha256: str
    trained: dict = field(default_factory=dict)  # filled in when the run ends

    def describe(self) -> str:
        epochs = f", {self.epochs:.2f} epoch(s) of {self.train_rows} rows" if self.epochs else ""
        return (
            f"budget {self.budget_s:.0f} s: warm-up measured {self.examples_per_second:.2f} "
            f"examples/s at batch {self.batch_size} on {self.threads} thread(s); training "
            f"{self.train_steps} batches ({self.optimizer_steps} optimizer steps of "
            f"{self.batch_size} x {self.gradient_accumulation_steps}) = {self.examples} examples"
            f"{epochs}"
        )


def plan_file(output_dir: Path, experiment_name: str) -> Path:
    return Path(output_dir) / f"{experiment_name}_budget.json"


def load_plan(path: Path) -> BudgetPlan | None:
    if not Path(path).is_file():
        return None
    try:
        return BudgetPlan(**json.loads(Path(path).read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as error:
        raise LLMBenchError(f"{path}: not a budget plan ({error}); move it aside") from None


def save_plan(plan: BudgetPlan, path: Path) -> None:
    atomic_write_text(Path(path), json.dumps(asdict(plan), indent=2) + "\n")


def plan_budget(
    config: dict, config_sha256: str, dataset: Path, budget_s: float, write, train_rows=None
) -> BudgetPlan:
    """Run the warm-up on `dataset` and size the run's steps to `budget_s`."""
    from llmbench.train.progress import TrainingProgress, cores_given

    trainer = config.get("trainer") or {}
    batch_size = int(trainer.get("batch_size") or 1)
    accumulation = int(trainer.get("gradient_accumulation_steps") or 1)
    progress = TrainingProgress(label="warm-up", interval_s=1e9, write=write, curves=False)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmbench-warmup-") as scratch:
        _run_ludwig(warmup_config(config), dataset, Path(scratch), progress)
    wall = time.monotonic() - started
    rate = progress.examples_per_second(skip=SETTLING_BATCHES)
    overhead = max(0.0, wall - sum(progress.batch_seconds))
    available = budget_s - wall - overhead
    if available <= 0 or rate <= 0:
        raise LLMBenchError(
            f"budget {budget_s:.0f} s: shorter than the warm-up ({wall:.0f} s) and the run's own "
            f"start ({overhead:.0f} s); give at least {math.ceil(wall + 2 * overhead + 60)} s"
        )
    batches = int(available * rate / batch_size) // accumulation * accumulation
    batches = max(accumulation, batches)
    examples = batches * batch_size
    return BudgetPlan(
        budget_s=budget_s,
        batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        warmup_batches=len(progress.batch_seconds),
        warmup_wall_s=round(wall, 1),
        start_overhead_s=round(overhead, 1),
        examples_per_second=round(rate, 3),
        threads=cores_given(),
        train_steps=batches,
        optimizer_steps=batches // accumulation,
        examples=examples,
        train_rows=train_rows,
        epochs=round(examples / train_rows, 3) if train_rows else None,
        config_sha256=config_sha256,
    )


def warmup_config(config: dict) -> dict:
    """The config as the warm-up trains it: WARMUP_BATCHES batches, no evaluation, no saving."""
    warm = copy.deepcopy(config)
    trainer = warm.setdefault("trainer", {})
    trainer.update(
        train_steps=WARMUP_BATCHES,
        steps_per_checkpoint=WARMUP_BATCHES,
        eval_steps=WARMUP_BATCHES,
        skip_all_evaluation=True,
    )
    return warm


def apply_plan(config: dict, plan: BudgetPlan) -> dict:
    """The config with the plan's steps, a checkpoint (and an evaluation) every tenth of them.

    Ludwig's `decay: cosine` is cosine annealing with warm restarts whose period (`t_0`), unless
    given, is `steps_per_checkpoint`: with a checkpoint every tenth of the run, the learning rate
    would climb back to its peak ten times and the run would end wherever in a cycle its last
    step fell (seen: conllpp's last two steps at the full rate, its loss tripling). The period is
    set to the whole run instead, one decay from the peak to about zero, as a cosine schedule is
    meant; a `t_0` the config gives is kept.
    """
    planned = copy.deepcopy(config)
    trainer = planned.setdefault("trainer", {})
    accumulation = plan.gradient_accumulation_steps
    every = max(1, math.ceil(plan.train_steps / CHECKPOINTS_PER_RUN / accumulation)) * accumulation
    trainer.update(
        train_steps=plan.train_steps,
        steps_per_checkpoint=min(every, plan.train_steps),
        eval_steps=min(every, plan.train_steps),
    )
    schedule = trainer.get("learning_rate_scheduler")
    if isinstance(schedule, dict) and schedule.get("decay") == "cosine" and not schedule.get("t_0"):
        # Ludwig steps its scheduler once per batch, accumulated or not
        trainer["learning_rate_scheduler"] = {**schedule, "t_0": plan.train_steps}
    return planned


def _run_ludwig(config: dict, dataset: Path, output_dir: Path, progress) -> None:
    from ludwig.api import LudwigModel

    from llmbench.train.ludwig_fix import patch_ludwig

    patch_ludwig()  # length-grouped batches, as the run will have them
    model = LudwigModel(config, callbacks=[progress])
    model.train(
        dataset=str(dataset),
        output_directory=str(output_dir),
        skip_save_training_description=True,
        skip_save_training_statistics=True,
        skip_save_model=True,
        skip_save_progress=True,
        skip_save_log=True,
        skip_save_processed_input=True,
    )
