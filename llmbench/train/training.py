"""Fine-tune one (base model, task) with Ludwig, in-process, and return its PEFT adapter directory.

The sweep's building block (`llmbench train`), beside plain `ludwig train`: it checks the config
and the table's columns before Ludwig starts, keeps a failed run's folder only when it holds a
checkpoint to resume from, and turns Ludwig's ways of rejecting input into one line. 4-bit
configs need Ludwig 0.17.10's reload fixed (see llmbench/train/ludwig_fix.py): `train()` applies
that fix itself, so it works also where the start-up hook is missing or switched off.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
from pathlib import Path

from llmbench.errors import LLMBenchError

MODEL_NAME = "run"  # Ludwig names the run directory "<experiment_name>_<model_name>"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def train(
    config_path: Path,
    dataset: Path,
    output_dir: Path,
    *,
    experiment_name: str = "run",
    resume: bool = False,
    budget_s: float | None = None,
    label: str | None = None,
    progress_interval_s: float = 30.0,
    write=None,
    seed: int = 1,
) -> Path:
    """Train the Ludwig config on the dataset under `output_dir`; return the adapter directory.

    The run goes to `output_dir/<experiment_name>_run/` (Ludwig adds a numeric suffix when that
    exists). With `resume=True` and that directory present, training continues from its latest
    checkpoint instead. 4-bit configs work (see the module docstring for the fix applied).
    With `budget_s`, a warm-up sizes the run's steps to that many seconds (llmbench.train.budget).
    Torch gets a thread per core given; a progress line is printed at least every
    `progress_interval_s` (to stdout, or to `write`) and the learning curve is written into the
    run folder (llmbench.train.progress). `seed` is the training seed (`ludwig_seed`).
    A config Ludwig rejects, or a table without the columns the config names, is one
    LLMBenchError line; a run that fails before its first checkpoint leaves no run directory
    behind (one that has a checkpoint is kept, to resume).
    """
    from llmbench.train.progress import TrainingProgress, use_every_core

    config_path, dataset, output_dir = Path(config_path), Path(dataset), Path(output_dir)
    config = _read_config(config_path)
    if not dataset.is_file():
        raise LLMBenchError(f"{dataset}: dataset file not found")
    check_dataset_columns(config, config_path, dataset)  # before Ludwig: it takes seconds
    progress = TrainingProgress(label or config_path.stem, progress_interval_s, write)
    progress.write(use_every_core())
    run_dir = output_dir / f"{experiment_name}_{MODEL_NAME}"
    resuming = resume and run_dir.is_dir()
    plan = None
    if budget_s is not None:
        plan = _fitting_in_memory(config, config_path, lambda: _budget_plan(
            config, config_path, dataset, output_dir, experiment_name, budget_s, resuming,
            progress.write,
        ))  # fmt: skip
        from llmbench.train.budget import apply_plan

        config = apply_plan(config, plan)
    model = _ludwig_model(config, config_path, callbacks=[progress])
    new_run = not run_dir.exists()
    try:
        results = _fitting_in_memory(config, config_path, lambda: model.train(
            dataset=str(dataset),
            output_directory=str(output_dir),
            experiment_name=experiment_name,
            model_name=MODEL_NAME,
            model_resume_path=str(run_dir) if resuming else None,
            random_seed=ludwig_seed(seed),
            # Ludwig would otherwise cache preprocessed copies beside the dataset.
            skip_save_processed_input=True,
        ))  # fmt: skip
    except Exception as error:
        if new_run:
            _remove_unless_checkpointed(run_dir)
        if isinstance(error, KeyError | TypeError | ValueError):
            raise LLMBenchError(
                f"{config_path}: Ludwig could not train on {dataset}: "
                f"{type(error).__name__}: {_one_line(error)}"
            ) from error
        raise
    adapter = _adapter_dir(Path(results.output_directory))
    if plan is not None:
        _record_what_was_trained(plan, output_dir, experiment_name, Path(results.output_directory))
    return adapter


def ludwig_seed(seed: int) -> int:
    """Ludwig's random_seed (weights' initialisation, shuffling) of training seed `seed`: seed 1
    is Ludwig's own default, so every run from before seeds existed is seed 1; seed k is that
    default + k - 1."""
    from ludwig.utils.defaults import default_random_seed

    return default_random_seed + seed - 1


def _budget_plan(config, config_path, dataset, output_dir, experiment_name, budget_s, resuming,
                 write):  # fmt: skip
    """The run's budget plan: the one it began with when it resumes, else a new warm-up's."""
    from llmbench.train.budget import load_plan, plan_budget, plan_file, save_plan

    path = plan_file(output_dir, experiment_name)
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest()
    earlier = load_plan(path)
    if earlier and earlier.budget_s == budget_s and earlier.config_sha256 == digest:
        write(f"{earlier.describe()} (the plan in {path})")
        return earlier
    if resuming:
        raise LLMBenchError(
            f"{path}: this run was planned for another budget or config; resume it with the "
            "same budget and config, or train into a new folder"
        )
    write(f"warm-up: {WARMUP_DESCRIPTION}")
    plan = plan_budget(config, digest, dataset, budget_s, write, train_rows(config, dataset))
    save_plan(plan, path)
    write(plan.describe())
    return plan


WARMUP_DESCRIPTION = "a few batches of this config on the task's own rows, to size the run"


def _record_what_was_trained(plan, output_dir: Path, experiment_name: str, run_dir: Path) -> None:
    from llmbench.train.budget import plan_file, save_plan
    from llmbench.train.progress import read_curve

    rows = read_curve(run_dir)
    if not rows:
        return
    seconds = float(rows[-1]["elapsed_s"] or 0)
    examples = int(rows[-1]["examples"] or 0)
    plan.trained = {
        "train_steps": int(rows[-1]["step"]),
        "examples": examples,
        "epochs": round(examples / plan.train_rows, 3) if plan.train_rows else None,
        "training_seconds": round(seconds, 1),
        "examples_per_second": round(examples / seconds, 3) if seconds else None,
    }
    save_plan(plan, plan_file(output_dir, experiment_name))
    save_plan(plan, run_dir / "budget.json")


def train_rows(config: dict, dataset: Path) -> int | None:
    """Rows of the training split (split 0 of a fixed split), None when it cannot tell."""
    split = (config.get("preprocessing") or {}).get("split") or {}
    column = split.get("column", "split") if split.get("type") == "fixed" else None
    if column is None or dataset.suffix.lower() not in (".parquet", ".csv"):
        return None
    import pandas as pd

    if dataset.suffix.lower() == ".parquet":
        values = pd.read_parquet(dataset, columns=[column])[column]
    else:
        values = pd.read_csv(dataset, usecols=[column])[column]
    return int((pd.to_numeric(values, errors="coerce") == 0).sum())


def _fitting_in_memory(config: dict, config_path: Path, run):
    """`run()`; an allocation that fails is one line naming the batch size."""
    try:
        return run()
    except (MemoryError, RuntimeError) as error:
        text = str(error)
        if not isinstance(error, MemoryError) and not any(
            mark in text for mark in ("can't allocate memory", "out of memory", "OutOfMemory")
        ):
            raise
        trainer = config.get("trainer") or {}
        raise LLMBenchError(
            f"{config_path}: trainer.batch_size {trainer.get('batch_size', 1)} does not fit in "
            f"memory ({_one_line(error)[:160]}); lower it and raise "
            "trainer.gradient_accumulation_steps to keep the effective batch"
        ) from None


def _ludwig_model(config: dict, config_path: Path, callbacks=None):
    """A LudwigModel for the config; any way Ludwig rejects the config is one line."""
    from ludwig.api import LudwigModel
    from ludwig.error import ConfigValidationError

    from llmbench.train.ludwig_fix import patch_ludwig

    patch_ludwig()
    try:
        # INFO, as `ludwig train` uses: it shows the progress bars and the metrics tables.
        return LudwigModel(config, logging_level=logging.INFO, callbacks=callbacks)
    except (ConfigValidationError, KeyError, TypeError, ValueError) as error:
        reason = _one_line(error)
        if not isinstance(error, ConfigValidationError):
            reason = f"{type(error).__name__}: {reason}"
        raise LLMBenchError(f"{config_path}: invalid Ludwig config: {reason}") from error


def _remove_unless_checkpointed(run_dir: Path) -> None:
    """Remove a run directory this call created, unless it holds a checkpoint to resume from
    (so a rerun writes the same directory, not `<name>_0`)."""
    checkpoints = run_dir / "model" / "training_checkpoints"
    if run_dir.is_dir() and not (checkpoints.is_dir() and any(checkpoints.iterdir())):
        shutil.rmtree(run_dir, ignore_errors=True)


def config_columns(config: dict) -> list[str]:
    """The dataset columns a Ludwig LLM config reads: each feature's column (or name), the
    prompt template's fields and the fixed split's column."""
    from llmbench.tasks.cards import template_fields

    columns = []
    for section in ("input_features", "output_features"):
        features = config.get(section)
        for feature in features if isinstance(features, list) else []:
            if isinstance(feature, dict):
                columns.append(feature.get("column") or feature.get("name"))
    template = (config.get("prompt") or {}).get("template")
    if isinstance(template, str):
        try:
            # Ludwig's own fields (__sample__, __task__, __context__) are not columns.
            columns += [f for f in template_fields(template) if not f.startswith("__")]
        except ValueError:
            pass  # a template Ludwig itself must judge
    split = ((config.get("preprocessing") or {}).get("split")) or {}
    if split.get("type") == "fixed":
        columns.append(split.get("column", "split"))
    return [c for c in dict.fromkeys(columns) if isinstance(c, str)]


def check_dataset_columns(config: dict, config_path: Path, dataset: Path) -> None:
    """Refuse, before training starts, a Parquet or CSV table lacking a column the config reads."""
    present = _table_columns(dataset)
    if present is None:
        return  # another format: Ludwig reads it and judges
    missing = [c for c in config_columns(config) if c not in present]
    if missing:
        raise LLMBenchError(
            f"{dataset}: missing column(s) {', '.join(missing)} that {config_path} reads; "
            f"the table has {', '.join(present) or 'no columns'}"
        )


def _table_columns(dataset: Path) -> list[str] | None:
    """The table's column names (Parquet or CSV), None for other formats."""
    suffix = dataset.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(dataset).names)
        if suffix in (".csv", ".tsv"):
            with dataset.open(encoding="utf-8", newline="") as handle:
                return next(csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","), [])
    except (OSError, ValueError, csv.Error) as error:  # Arrow's errors are ValueErrors too
        raise LLMBenchError(
            f"{dataset}: not a readable {suffix[1:]} table ({_one_line(error)})"
        ) from None
    return None


def _read_config(config_path: Path) -> dict:
    import yaml

    if not config_path.is_file():
        raise LLMBenchError(f"{config_path}: Ludwig config file not found")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise LLMBenchError(
            f"{config_path}: not UTF-8 text ({error.reason} at byte {error.start}); "
            "expected a Ludwig config in YAML"
        ) from None
    except yaml.YAMLError as error:
        raise LLMBenchError(f"{config_path}: not valid YAML ({_one_line(error)})") from error
    if not isinstance(config, dict):
        raise LLMBenchError(f"{config_path}: expected a Ludwig config (a YAML mapping)")
    return config


def _adapter_dir(run_dir: Path) -> Path:
    adapter_dir = run_dir / "model" / "model_weights"
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise LLMBenchError(
            f"{adapter_dir}: training finished without a PEFT adapter"
            f" (missing {', '.join(missing)}); does the config set `adapter:` and leave"
            " `merge_adapter_into_base_model` off?"
        )
    return adapter_dir


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def run_directory(output_dir: Path, experiment_name: str = "run") -> Path:
    """Where `train` puts a run (when Ludwig did not have to add a suffix)."""
    return Path(output_dir) / f"{experiment_name}_{MODEL_NAME}"


def adapter_digest(adapter_dir: Path) -> str:
    """The first 16 hex digits of the sha256 of the adapter's weights file: what tells one
    training of an adapter from the next (a retrained adapter keeps its name and folder)."""
    digest = hashlib.sha256()
    with open(Path(adapter_dir) / ADAPTER_FILES[1], "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def finished_adapter(run_dir: Path) -> Path | None:
    """The run's adapter directory when training finished and wrote it, else None."""
    adapter_dir = Path(run_dir) / "model" / "model_weights"
    return adapter_dir if all((adapter_dir / n).is_file() for n in ADAPTER_FILES) else None
