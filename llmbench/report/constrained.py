"""Constrained beside free: the cells of your Table 12 whose runs were also made with answers
restricted to the task's labels (`llmbench eval --constrained`, a bake-off's `constrained`).

Per (task, model): the adapter that Table 12's cell shows and the base model, each free (the
cell's own scores) and constrained, and the lift of each. The constrained runs are read from
`<runs>/eval/<model>/<task>/<adapter or base>/constrained/scores.json`; their intervals are
the same paired bootstrap as the free ones' (`llmbench.report.intervals.cell_intervals`), under
a key of their own, so a constrained adapter and its base model are resampled on the same rows.
What the two scores say, and what they do not: docs/evaluation.md, "Constrained evaluation".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from llmbench.report.intervals import CellIntervals, TableIntervals, cell_intervals, with_interval
from llmbench.report.table12 import Run, Table12, read_runs
from llmbench.workdir import Workdir

# The side-by-side table's columns (table12.md's ## Constrained answers, `llmbench report`).
COLUMNS = (
    "task", "model", "adapter free", "adapter constrained", "base free", "base constrained",
    "lift free", "lift constrained",
)  # fmt: skip
# cells.csv's columns of a cell's constrained runs (empty where it has none).
CSV_COLUMNS = (
    "ft_constrained", "base_constrained", "lift_constrained", "ft_constrained_low",
    "ft_constrained_high", "base_constrained_low", "base_constrained_high",
    "lift_constrained_low", "lift_constrained_high",
)  # fmt: skip


@dataclass(frozen=True)
class ConstrainedCell:
    """A cell's constrained runs: of its adapter and of its base model (None: not run)."""

    ft: Run | None
    base: Run | None
    intervals: CellIntervals

    @property
    def lift(self) -> float:
        return _score(self.ft) - _score(self.base)

    def csv_values(self) -> list[float]:
        """The cell's CSV_COLUMNS values, NaN where it has none."""
        found = (self.intervals.ft, self.intervals.base, self.intervals.lift)
        bounds = [x for iv in found for x in ((iv.low, iv.high) if iv else (math.nan,) * 2)]
        return [_score(self.ft), _score(self.base), self.lift, *bounds]


def constrained_cells(table: Table12, runs_dir: Path) -> dict[tuple[str, str], ConstrainedCell]:
    """(task, model) -> the constrained runs of the cell's adapter and base model, for every
    cell of `table` that has one."""
    runs = read_runs(Workdir(runs_dir).eval_scores(constrained=True))
    found = {(r.task, r.model, r.adapter): r for r in runs}
    cells = {}
    for key in [(t, m) for t in table.tasks for m in table.models]:
        ft = found.get((*key, table.adapters[key])) if key in table.adapters else None
        base = found.get((*key, None))
        if ft or base:
            cells[key] = ConstrainedCell(ft, base, cell_intervals(ft, base, (*key, "constrained")))
    return cells


def side_by_side(
    table: Table12, intervals: TableIntervals, cells: dict[tuple[str, str], ConstrainedCell]
) -> list[tuple[str, ...]]:
    """One row (COLUMNS) per cell with constrained runs: each score and lift, free and
    constrained, with its 95% interval."""
    rows = []
    for (task, model), cell in cells.items():
        free = intervals.cells.get((task, model))
        ft, base = table.ft.at[task, model], table.base.at[task, model]
        rows.append(
            (
                task,
                model,
                with_interval(ft, free and free.ft),
                with_interval(_score(cell.ft), cell.intervals.ft),
                with_interval(base, free and free.base),
                with_interval(_score(cell.base), cell.intervals.base),
                with_interval(ft - base, free and free.lift, "+.3f"),
                with_interval(cell.lift, cell.intervals.lift, "+.3f"),
            )
        )
    return rows


def off_label_notes(cells: dict[tuple[str, str], ConstrainedCell]) -> list[str]:
    """One line per constrained run with answers that named no label (scored 0)."""
    runs = [run for cell in cells.values() for run in (cell.ft, cell.base) if run]
    return [
        f"{run.task} {run.model} {run.adapter or 'base'}: {run.off_label} of {run.n} constrained "
        "answers named no label (scored 0: cut off by max_new_tokens, or the server did not "
        "enforce the schema)"
        for run in runs
        if run.off_label
    ]


def _score(run: Run | None) -> float:
    return run.score if run else math.nan
