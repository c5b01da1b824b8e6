"""The package's shape, read from its imports: data flows one way through the stage folders.

`llmbench/<stage>/` is one folder per stage, in pipeline order (STAGES). A stage may import the
core modules at the top of the package and any earlier stage, never a later one, and no module
may reach itself again through imports: imports inside functions count too, since a lazy import
is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "llmbench"

# Pipeline order: prepare -> render/train -> serve -> evaluate -> analyse -> report; the load
# test, the web app and the bake-off sit on top.
STAGES = (
    "tasks",
    "prepare",
    "train",
    "serving",
    "evaluate",
    "loadtest",
    "analysis",
    "report",
    "app",
    "bakeoff",
)
# The dispatcher names every stage's command module as a string and imports only the one run.
DISPATCHER = "llmbench.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every llmbench module `path` imports, wherever in the file the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("llmbench"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("llmbench"):
                found.add(node.module)
                # `from llmbench.evaluate import sandbox` imports a module, not a name
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    if module_path(candidate) is not None:
                        found.add(candidate)
    return found


def module_path(name: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def stage_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else None


GRAPH = {
    module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py")) if "static" not in p.parts
}


def test_every_subfolder_is_a_known_stage():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(STAGES), f"stage folders {sorted(folders)} != STAGES"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_stage_imports_a_later_stage(module):
    if module == DISPATCHER:
        return
    own = stage_of(module)
    rank = STAGES.index(own) if own else -1  # core modules may import no stage at all
    later = sorted(
        target
        for target in GRAPH[module]
        if (stage := stage_of(target)) is not None and STAGES.index(stage) > rank
    )
    assert not later, f"{module} ({own or 'core'}) imports later stage(s): {', '.join(later)}"


def test_no_import_cycles():
    graph = {m: {t for t in targets if t in GRAPH and t != m} for m, targets in GRAPH.items()}
    # a package's __init__ is imported by its submodules' imports; only real edges matter here
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_a_backward_import(tmp_path):
    """The checker itself: a tasks module importing the bake-off is found."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from llmbench.bakeoff.pipeline import run_bakeoff\n")
    assert imports_of(source) == {"llmbench.bakeoff.pipeline"}
    assert stage_of("llmbench.bakeoff.pipeline") == "bakeoff"
    assert stage_of("llmbench.errors") is None
