"""A task's own preparation code, `datasets/<task>/prepare.py`, loaded by path.

Fetching (for a task's custom `fetch`) and preparing (for its `read_rows`) both load it here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR


def task_module(task: str, datasets_dir: Path = DATASETS_DIR) -> ModuleType:
    """The task's own preparation code, `datasets/<task>/prepare.py`, imported by path."""
    path = Path(datasets_dir) / task / "prepare.py"
    if not path.is_file():
        raise LLMBenchError(f"{path}: file not found; expected the task's preparation code")
    # One module per file: a user's folder may hold a task of the same name as ours.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"llmbench_tasks.{task}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import does (dataclasses look themselves up there).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if not callable(getattr(module, "read_rows", None)):
        raise LLMBenchError(f"{path}: read_rows: not defined; expected read_rows(source, card)")
    return module
