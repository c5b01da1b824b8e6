"""Which eval rows a run scores: a seeded random sample of the eval split, or all of it.

`draw_sample` takes `size` examples out of the split's scorable examples with a generator
seeded by `seed` alone, so every run with the same (size, seed) on the same prepared split gets
the same rows: the base model and its adapter are scored on the same examples, which is what
makes their lift a paired comparison. For a classification task (its metric in
CLASSIFICATION_METRICS) the draw is stratified by the gold label: each label gets its share of
the sample (largest remainders, ties in label order), then its rows are drawn at random. A
sample at least as large as the split is the whole split, with a note. The rows keep the
split's order (sorted by row id), so the whole split is scored exactly as an unsampled run.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

# The metrics whose target is one label out of a few (the cards' metric_name): their samples are
# stratified by it, and their answer distributions are reported beside the gold ones.
CLASSIFICATION_METRICS = frozenset(
    {"label_accuracy", "binary_accuracy", "first_number_accuracy", "choice_accuracy"}
)


def is_classification(metric_name: str) -> bool:
    return metric_name in CLASSIFICATION_METRICS


@dataclass(frozen=True)
class Sample:
    """What was drawn: requested `size` (None: the whole split), `seed`, the number of rows
    `drawn` out of the split's `available`, and whether the draw was stratified by label."""

    size: int | None
    seed: int | None
    drawn: int
    available: int
    stratified: bool
    note: str | None = None

    def as_record(self) -> dict:
        return {
            "size": self.size,
            "seed": self.seed,
            "drawn": self.drawn,
            "available": self.available,
            "stratified_by": "label" if self.stratified else None,
            "note": self.note,
        }


def draw_sample(
    examples: list, size: int | None, seed: int, stratify: bool, where: str = "eval split"
) -> tuple[list, Sample]:
    """`size` of `examples` (objects with `id` and `target`) drawn with `seed`, in id order,
    and what was drawn; all of them when `size` is None or not smaller than the split."""
    available = len(examples)
    if size is None:
        return list(examples), Sample(None, None, available, available, False)
    if size >= available:
        note = (
            f"{where}: a sample of {size} asked for, the split has {available} scorable "
            f"example(s); the whole split is scored"
        )
        return list(examples), Sample(size, seed, available, available, False, note)
    rng = random.Random(seed)
    if stratify:
        chosen = _stratified(examples, size, rng)
    else:
        chosen = set(rng.sample(range(available), size))
    picked = [e for i, e in enumerate(examples) if i in chosen]
    return picked, Sample(size, seed, size, available, stratify)


def _stratified(examples: list, size: int, rng: random.Random) -> set[int]:
    """Positions of `size` examples, each gold label's share of them proportional to its share
    of the split (largest remainders), drawn at random within the label."""
    groups: dict[str, list[int]] = defaultdict(list)
    for position, example in enumerate(examples):
        groups[gold_label(example.target)].append(position)
    labels = sorted(groups)
    total = len(examples)
    exact = {label: size * len(groups[label]) / total for label in labels}
    quota = {label: int(exact[label]) for label in labels}
    left = size - sum(quota.values())
    by_remainder = sorted(labels, key=lambda label: (-(exact[label] - quota[label]), label))
    for label in by_remainder[:left]:
        quota[label] += 1
    chosen: set[int] = set()
    for label in labels:
        chosen.update(rng.sample(groups[label], quota[label]))
    return chosen


def gold_label(target: str) -> str:
    """A classification target as one label: stripped of surrounding space."""
    return target.strip()
