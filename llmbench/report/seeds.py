"""The spread of a cell's adapter across training seeds (a bake-off's `seeds`).

A bake-off with `seeds: N` trains N adapters per (model, task), seed 1 under the sweep's plain
adapter id `<model>/<task>` and seed k under `<model>/<task>-seed<k>`, each evaluated on the same
rows. Table 12's main column keeps showing seed 1's adapter: one real adapter, whose answers,
flags and bootstrap interval all describe the same run, and never the best of the seeds (a
maximum over seeds would be biased upwards). Beside it, this module gives the seeds' spread:
the mean, the sample standard deviation and the range of the adapter's score and of its lift
over the base model. The bootstrap interval measures how much the score would move on other
rows; the spread, how much it moves with another training seed on the same rows.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# cells.csv's columns, and table12.csv's after `<model>_` when a cell has several seeds
SEED_COLUMNS = (
    "seeds",
    "ft_seed_mean",
    "ft_seed_sd",
    "ft_seed_min",
    "ft_seed_max",
    "lift_seed_mean",
    "lift_seed_sd",
    "lift_seed_min",
    "lift_seed_max",
)


@dataclass(frozen=True)
class Spread:
    """Values across seeds, seed 1 first."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        """The sample standard deviation (n - 1); NaN for one value."""
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def text(self, spec: str = ".3f") -> str:
        """'mean 0.812, SD 0.010, 0.800 to 0.830'."""
        return f"mean {self.mean:{spec}}, SD {self.sd:.3f}, {self.low:{spec}} to {self.high:{spec}}"

    def row(self) -> list[float]:
        return [self.mean, self.sd, self.low, self.high]


@dataclass(frozen=True)
class SeedSpread:
    """One cell's adapters across its training seeds: their scores and lifts (each seed's score
    minus the base model's, on the same rows; NaN without a base run)."""

    seeds: tuple[int, ...]
    ft: Spread
    lift: Spread

    @property
    def several(self) -> bool:
        return len(self.seeds) > 1

    def row(self) -> list[float]:
        """The values of SEED_COLUMNS."""
        return [len(self.seeds), *self.ft.row(), *self.lift.row()]


def seed_spreads(table) -> dict[tuple[str, str], SeedSpread]:
    """(task, model) -> its seeds' spread, for each cell whose main column is the sweep's seed 1
    adapter (Table12.seed_runs)."""
    spreads = {}
    for key, by_seed in table.seed_runs.items():
        main = table.ft_runs.get(key)
        if 1 not in by_seed or main is not by_seed[1]:
            continue  # the cell shows another adapter of yours: the seeds do not describe it
        seeds = tuple(sorted(by_seed))
        scores = tuple(by_seed[s].score for s in seeds)
        base = table.base_runs.get(key)
        lifts = tuple(x - base.score if base else math.nan for x in scores)
        spreads[key] = SeedSpread(seeds, Spread(scores), Spread(lifts))
    return spreads
