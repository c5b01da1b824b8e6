"""`llmbench bakeoff`: the study end to end on one command, each stage skipped when done.

Stages so far: build the tiny model -> prepare each task -> render its Ludwig config -> train a
4-bit LoRA adapter. Serving, evaluation, complexity, correlation and the report plug in after
training as they land.

The embedded default (no arguments) runs the `tiny` model on tasks prepared from the shipped
fixtures, for a few training steps: it shows the pipeline working on a laptop CPU in minutes,
not model quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmbench.models import get_model
from llmbench.paths import DEFAULT_WORK_DIR

DEFAULT_TASKS = ("gsm8k",)


@dataclass
class TaskOutcome:
    task: str
    rows: dict[str, int]
    config: Path
    adapter: Path
    first_loss: float
    last_loss: float


def run_bakeoff(
    runs: Path = DEFAULT_WORK_DIR, model: str = "tiny", tasks: tuple[str, ...] = DEFAULT_TASKS
) -> list[TaskOutcome]:
    """Run every stage for `model` x `tasks` under `runs`, skipping what is already there."""
    from llmbench.prepare import fixture_source, prepare_task, prepared_path, read_prepared
    from llmbench.render import render_configs
    from llmbench.tasks import get_card
    from llmbench.tiny import ensure_tiny_model
    from llmbench.training import finished_adapter, run_directory, train, training_losses

    runs = Path(runs)
    base = get_model(model)
    if base.local_path:
        ensure_tiny_model(runs / base.local_path)
    outcomes = []
    for task in tasks:
        if not prepared_path(task, runs).is_file():
            prepare_task(task, source=fixture_source(get_card(task)), out_dir=runs, progress=False)
        table = read_prepared(task, runs)
        rows = {
            name: int((table.iloc[:, -1] == code).sum())
            for code, name in enumerate(("train", "validation", "test"))
        }
        (config,) = render_configs([model], [task], out_dir=runs / "configs", work_dir=runs)
        output = runs / "train" / model / task
        run_dir = run_directory(output)
        adapter = finished_adapter(run_dir) or train(
            config.path, prepared_path(task, runs), output, resume=run_dir.is_dir()
        )
        losses = training_losses(run_dir)
        outcomes.append(TaskOutcome(task, rows, config.path, adapter, losses[0], losses[-1]))
    return outcomes
