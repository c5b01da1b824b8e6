"""95% intervals for scores and lifts: a paired bootstrap over examples.

A run's score is the mean of its per-example scores. One resample draws the run's n examples
with replacement (RESAMPLES of them, from a generator seeded by SEED and the cell's name, so a
cell's interval does not change when other cells are added); the interval is the 2.5th and
97.5th percentiles of the resampled means (the percentile bootstrap). A lift is paired: the
adapter and the base model were scored on the same rows, and each resample draws the same rows
for both, so what the two share (an easy row is easy for both) cancels out of the lift's
interval. The mean lift over tasks bootstraps each task on its own draws and averages the tasks'
lifts per resample: its interval is the percentiles of those averages.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 1000  # bootstrap resamples per interval
SEED = 0  # with the cell's name, seeds each cell's resamples
LEVEL = 0.95
_CHUNK_VALUES = 4_000_000  # resampled indices held in memory at once


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def text(self, spec: str = ".3f") -> str:
        return f"[{self.low:{spec}}, {self.high:{spec}}]"

    @property
    def width(self) -> float:
        return self.high - self.low


def with_interval(value: float, found: Interval | None, spec: str = ".3f") -> str:
    """A score or lift followed by its interval where known ("0.865 [0.830, 0.890]"); "" for
    NaN (nothing run)."""
    if math.isnan(value):
        return ""
    return f"{value:{spec}}" + (f" {found.text(spec)}" if found else "")


def method_text() -> str:
    """The method in one sentence, as the report and the docs state it."""
    return (
        f"{LEVEL:.0%} intervals: percentile bootstrap over examples, {RESAMPLES} resamples, "
        f"seed {SEED} (with each cell's name); a lift's resamples draw the same rows for the "
        "adapter and its base model (paired); the mean lift over tasks averages each task's "
        "own resampled lift"
    )


def generator(key: str, seed: int = SEED):
    """The resampling generator of one cell: seeded by `seed` and `key` (its name)."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def resampled_means(
    columns: Sequence[Sequence[float]], key: str, resamples: int = RESAMPLES, seed: int = SEED
):
    """Per column, the mean of each of `resamples` resamples of its rows, every column drawn on
    the same rows (the columns are aligned: row i of each is the same example). Shape
    (len(columns), resamples)."""
    import numpy as np

    data = np.asarray(columns, dtype=float)
    if data.ndim != 2 or data.shape[1] == 0:
        raise ValueError("expected one or more aligned, non-empty columns of scores")
    n = data.shape[1]
    rng = generator(key, seed)
    out = np.empty((data.shape[0], resamples))
    step = max(1, _CHUNK_VALUES // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        rows = rng.integers(0, n, size=(stop - start, n))
        out[:, start:stop] = data[:, rows].mean(axis=2)
    return out


def interval(resampled, level: float = LEVEL) -> Interval:
    """The percentile interval of resampled statistics."""
    import numpy as np

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(float(low), float(high))


def score_interval(scores: Sequence[float], key: str) -> Interval:
    """A run's score (the mean of its per-example scores), bootstrapped."""
    return interval(resampled_means([scores], key)[0])


def lift_interval(
    base: Sequence[float], adapter: Sequence[float], key: str, paired: bool = True
) -> Interval:
    """The adapter's lift over the base model; `base[i]` and `adapter[i]` are one example's
    scores. Unpaired (`paired=False`, for comparison only) draws each side's rows apart."""
    if paired:
        return interval(paired_lifts(base, adapter, key))
    adapter_means = resampled_means([adapter], key + " adapter")[0]
    base_means = resampled_means([base], key + " base")[0]
    return interval(adapter_means - base_means)


def mean_lift_interval(pairs: dict[str, tuple[Sequence[float], Sequence[float]]]) -> Interval:
    """The mean over tasks of the lift: `pairs` maps each task's key to its aligned (base,
    adapter) per-example scores; every task resampled on its own, averaged per resample."""
    lifts = [paired_lifts(base, adapter, key) for key, (base, adapter) in pairs.items()]
    return interval(sum(lifts) / len(lifts))


def paired_lifts(base: Sequence[float], adapter: Sequence[float], key: str):
    """Each resample's lift of one cell: the adapter's mean minus the base's on the same rows."""
    means = resampled_means([adapter, base], key)
    return means[0] - means[1]


# --- Table 12's intervals -----------------------------------------------------------------------


@dataclass(frozen=True)
class CellIntervals:
    """One (task, model) cell: its fine-tuned and base scores' intervals and its lift's (None
    where a run records no per-example scores, or the lift's when the two runs' rows differ),
    each resample's lift (for the mean over tasks), and why something is missing."""

    ft: Interval | None = None
    base: Interval | None = None
    lift: Interval | None = None
    lifts: object = None
    note: str | None = None


@dataclass(frozen=True)
class TableIntervals:
    cells: dict  # (task, model) -> CellIntervals
    mean_lift: dict  # model -> Interval of its mean lift over its tasks, or None

    @property
    def any(self) -> bool:
        return any(c.ft or c.base for c in self.cells.values())


def table_intervals(table) -> TableIntervals:
    """Every cell's intervals, and each model's mean lift's (a Table12 of your runs; the
    study's table records no examples and gets none)."""
    import math

    cells = {}
    for key in {*table.ft_runs, *table.base_runs}:
        cells[key] = cell_intervals(table.ft_runs.get(key), table.base_runs.get(key), key)
    mean_lift = {}
    for model in table.models:
        tasks = [t for t in table.tasks if not math.isnan(table.lift.at[t, model])]
        lifts = [getattr(cells.get((t, model)), "lifts", None) for t in tasks]
        if tasks and all(x is not None for x in lifts):
            mean_lift[model] = interval(sum(lifts) / len(lifts))
        else:
            mean_lift[model] = None
    return TableIntervals(cells, mean_lift)


def cell_intervals(ft_run, base_run, key: tuple[str, str]) -> CellIntervals:
    """A cell's intervals from its adapter's and base model's runs (either may be None)."""
    name = " ".join(key)
    ft = ft_run.scores_by_id if ft_run else None
    base = base_run.scores_by_id if base_run else None
    if ft is not None and base is not None and ft.keys() == base.keys():
        ids = sorted(base)
        means = resampled_means([[ft[i] for i in ids], [base[i] for i in ids]], name)
        lifts = means[0] - means[1]
        return CellIntervals(interval(means[0]), interval(means[1]), interval(lifts), lifts)
    note = None
    if ft is not None and base is not None:
        note = "the adapter and the base model were scored on different rows: no paired lift"
    return CellIntervals(
        score_interval(list(ft.values()), name + " adapter") if ft else None,
        score_interval(list(base.values()), name + " base") if base else None,
        note=note,
    )
