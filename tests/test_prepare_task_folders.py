"""A task folder's preparation code stands on its own: it reads upstream data through the shared
readers in llmbench/prepare/readers/ and never loads another task folder's prepare.py.

The check reads each datasets/<task>/prepare.py as source (nothing is imported) and lists every
way it could reach another task's code: the task-code loader, import machinery, sys.path, or a
path into the datasets folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
TASK_FILES = sorted(DATASETS.glob("*/prepare.py"))

LOADER_MODULES = {"llmbench.prepare.task_code", "importlib", "runpy", "imp", "pkgutil", "zipimport"}
LOADER_NAMES = {"task_module", "spec_from_file_location", "import_module", "__import__", "exec"}


def other_task_loads(source: str) -> list[str]:
    """'line N: what' for each place in `source` that could load another task's code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        what = None
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            what = next((f"import {n}" for n in names if _is_loader(n)), None)
        elif isinstance(node, ast.ImportFrom) and _is_loader(node.module or ""):
            what = f"from {node.module} import ..."
        elif isinstance(node, ast.Name) and node.id in LOADER_NAMES:
            what = node.id
        elif isinstance(node, ast.Attribute) and node.attr in LOADER_NAMES | {"path"}:
            if node.attr != "path" or (isinstance(node.value, ast.Name) and node.value.id == "sys"):
                what = ast.unparse(node)
        elif isinstance(node, ast.Name) and node.id == "__file__":
            what = "__file__ (a path to the datasets folder)"
        if what:
            found.append(f"line {node.lineno}: {what}")
    return found


def _is_loader(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in LOADER_MODULES)


def test_there_are_task_folders_to_check():
    assert len(TASK_FILES) >= 31


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.parent.name)
def test_a_task_folder_loads_no_other_task_code(path):
    assert other_task_loads(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        'from llmbench.prepare.task_code import task_module\nGLUE = task_module("glue_cola")\n',
        "import importlib.util\nspec = importlib.util.spec_from_file_location('x', 'p.py')\n",
        "import sys\nsys.path.insert(0, '../conllpp')\nimport prepare\n",
        "from pathlib import Path\nHERE = Path(__file__).resolve().parents[1] / 'mmlu'\n",
        "def read_rows(source, card):\n    return __import__('prepare').read_rows(source, card)\n",
    ],
    ids=["task_module", "importlib", "sys.path", "__file__", "__import__"],
)
def test_the_check_finds_each_way_of_loading_a_sibling(source):
    assert other_task_loads(source)
