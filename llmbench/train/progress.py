"""What a training run shows while it runs and leaves behind: progress lines and learning curves.

`TrainingProgress` is a Ludwig callback. While an adapter trains it prints a line at least every
`interval_s` seconds (and at the first and last step): the step out of the total, the loss, the
examples per second and the time left. It writes every step's training loss to
`<run>/learning_curve.csv`, every evaluation's loss to `<run>/eval_loss.csv` when evaluation is
on, and plots both into `<run>/learning_curve.png` when the run ends. A resumed run drops the
rows of the steps it trains again, so no step is counted twice and the curve goes on where the
checkpoint left it.

Ludwig's own step is a batch: `train_steps` counts batches, and the optimizer steps once every
`gradient_accumulation_steps` of them. The loss recorded here is each batch's mean loss per
target token, before Ludwig divides it by the accumulation steps (its TensorBoard
`step_training_loss` is the divided one).
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ludwig.callbacks import Callback

from llmbench.workdir import LEARNING_CURVE_PLOT

CURVE_FILE, EVAL_FILE, PLOT_FILE = "learning_curve.csv", "eval_loss.csv", LEARNING_CURVE_PLOT
# tokens: the batch's real tokens (prompt, target and EOS); padded_tokens: what the model computed
CURVE_COLUMNS = (
    "step", "epoch", "examples", "loss", "learning_rate", "tokens", "padded_tokens", "seconds",
    "elapsed_s",
)  # fmt: skip
EVAL_COLUMNS = ("step", "epoch", "split", "loss")
PROGRESS_PREFIX = "progress"  # how a progress line starts (the sweep echoes these lines)
_log = logging.getLogger(__name__)


def cores_given() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def use_every_core() -> str:
    """Give torch one thread per core this process may use; the line that says so."""
    import torch

    cores = cores_given()
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return f"torch threads: {torch.get_num_threads()} (cores given to this process: {cores})"


class TrainingProgress(Callback):
    """Ludwig callback: progress lines, per-step timings and the learning-curve files."""

    def __init__(
        self,
        label: str = "training",
        interval_s: float = 30.0,
        write: Callable[[str], None] | None = None,
        curves: bool = True,
    ):
        self.label, self.interval_s, self.curves = label, interval_s, curves
        self.write = write or (lambda line: print(line, flush=True))
        self.run_dir: Path | None = None
        self.batch_seconds: list[float] = []  # this process's batches, in order
        self.batch_examples: list[int] = []
        self._loss = self._tokens = self._padded = None
        self._batch_start = self._last_line = 0.0
        self._elapsed_before = 0.0  # training seconds of the kept rows of an earlier attempt
        self._first_step: int | None = None

    # Ludwig's hooks, in the order they run.
    def on_trainer_train_setup(self, trainer, save_path, is_coordinator, **kwargs):
        self.run_dir = Path(save_path).parent
        self._capture_losses(trainer)

    def on_batch_start(self, trainer, progress_tracker, save_path, **kwargs):
        self._batch_start = time.monotonic()

    def on_batch_end(self, trainer, progress_tracker, save_path, sync_step=True, **kwargs):
        seconds = time.monotonic() - self._batch_start
        step, total = progress_tracker.steps, progress_tracker.total_steps
        if self._first_step is None:
            self._first_step = step
            self._elapsed_before = self._keep_rows_before(step)
        self.batch_seconds.append(seconds)
        self.batch_examples.append(trainer.batch_size)
        elapsed = self._elapsed_before + sum(self.batch_seconds)
        if self.curves and self.run_dir:
            epoch = step / max(1, getattr(trainer, "steps_per_epoch", 0) or 1)
            self._append(
                CURVE_FILE,
                CURVE_COLUMNS,
                [step, f"{epoch:.3f}", step * trainer.batch_size, _num(self._loss),
                 _num(progress_tracker.learning_rate), self._tokens or "", self._padded or "",
                 f"{seconds:.3f}", f"{elapsed:.1f}"],
            )  # fmt: skip
        now = time.monotonic()
        if step in (self._first_step, total) or now - self._last_line >= self.interval_s:
            self._last_line = now
            self.write(self.line(step, total))

    def on_eval_end(self, trainer, progress_tracker, save_path, **kwargs):
        if not (self.curves and self.run_dir):
            return
        for split, metrics in (
            ("validation", progress_tracker.validation_metrics),
            ("test", progress_tracker.test_metrics),
        ):
            history = (metrics or {}).get("combined", {}).get("loss") or []
            if history:
                last = history[-1]
                self._append(
                    EVAL_FILE, EVAL_COLUMNS, [last.step, last.epoch, split, _num(last.value)]
                )

    def on_trainer_train_teardown(
        self, trainer, progress_tracker, save_path, is_coordinator, **kwargs
    ):
        if self.curves and self.run_dir and (self.run_dir / CURVE_FILE).is_file():
            try:
                plot_learning_curve(self.run_dir, self.label)
            except (OSError, ValueError) as error:  # a plot is never worth the adapter
                _log.warning("learning curve not plotted: %s", error)

    # What the hooks share.
    def line(self, step: int, total: int) -> str:
        """One progress line: step / total, loss, examples/s and the time left."""
        rate = self.examples_per_second(recent=20)
        batch = self.batch_examples[-1] if self.batch_examples else 1
        left = (total - step) * batch / rate if rate else float("nan")
        loss = f"{self._loss:.4f}" if self._loss is not None else "-"
        return (
            f"{PROGRESS_PREFIX} {self.label}: step {step}/{total}"
            f" ({100 * step / max(total, 1):.0f}%)"
            f"  loss {loss}  {rate:.2f} examples/s  ETA {format_seconds(left)}"
        )

    def examples_per_second(self, recent: int | None = None, skip: int = 0) -> float:
        """Examples per second over this process's batches (the last `recent`, after `skip`)."""
        seconds, examples = self.batch_seconds[skip:], self.batch_examples[skip:]
        if recent:
            seconds, examples = seconds[-recent:], examples[-recent:]
        return sum(examples) / sum(seconds) if seconds and sum(seconds) > 0 else 0.0

    def _capture_losses(self, trainer) -> None:
        """Wrap this trainer's `train_step` (the instance's only) to see each batch's loss."""
        original = trainer.train_step

        def train_step(*args, **kwargs):
            loss, all_losses, used_tokens = original(*args, **kwargs)
            accumulation = getattr(trainer, "gradient_accumulation_steps", 1) or 1
            self._loss = float(loss.detach()) * accumulation
            self._tokens = int(used_tokens) if used_tokens is not None else None
            merged = getattr(trainer.model, "model_inputs", None)  # the batch as the model saw it
            self._padded = int(merged.numel()) if hasattr(merged, "numel") else None
            return loss, all_losses, used_tokens

        trainer.train_step = train_step

    def _keep_rows_before(self, step: int) -> float:
        """A resumed run: drop the curve rows of steps >= `step` (they are trained again);
        return the training seconds of the rows kept."""
        elapsed = 0.0
        for name in (CURVE_FILE, EVAL_FILE):
            path = self.run_dir / name if self.run_dir else None
            if not (path and path.is_file()):
                continue
            with path.open(newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.DictReader(handle) if _int(r.get("step")) < step]
            columns = CURVE_COLUMNS if name == CURVE_FILE else EVAL_COLUMNS
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            if name == CURVE_FILE and rows:
                elapsed = float(rows[-1].get("elapsed_s") or 0)
        return elapsed

    def _append(self, name: str, columns: tuple[str, ...], row: list) -> None:
        path = self.run_dir / name
        new = not path.is_file()
        with path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(columns)
            writer.writerow(row)


def read_curve(run_dir: Path, name: str = CURVE_FILE) -> list[dict]:
    """The rows of a run's curve file (empty when it has none)."""
    path = Path(run_dir) / name
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plot_learning_curve(run_dir: Path, title: str) -> Path:
    """`<run>/learning_curve.png`: training loss per step (and its running mean), eval loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_curve(run_dir) if r["loss"]]
    steps = [int(r["step"]) for r in rows]
    losses = [float(r["loss"]) for r in rows]
    window = max(1, len(losses) // 25)
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(steps, losses, color="#9ab", linewidth=0.6, label="training loss (each batch)")
    axes.plot(steps, smooth, color="#135", label=f"running mean ({window} batches)")
    evals = [r for r in read_curve(run_dir, EVAL_FILE) if r["loss"]]
    for split, colour in (("validation", "#c50"), ("test", "#595")):
        points = [(int(r["step"]), float(r["loss"])) for r in evals if r["split"] == split]
        if points:
            axes.plot(*zip(*points, strict=True), "o-", color=colour, label=f"{split} loss")
    axes.set_xlabel("step (batch)")
    axes.set_ylabel("loss per target token")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    path = Path(run_dir) / PLOT_FILE
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def format_seconds(seconds: float) -> str:
    """`1h02m`, `12m31s`, `45s`; `?` when unknown."""
    if seconds != seconds or seconds < 0:  # NaN or negative
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _num(value) -> str:
    return "" if value is None else f"{float(value):.6g}"


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
