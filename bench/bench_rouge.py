"""Benchmark ROUGE-L scoring: llmbench's `rouge` metric against the original harness's way.

    python bench/bench_rouge.py                 # 10,000 pairs
    python bench/bench_rouge.py --pairs 2000 --seed 1

It makes seeded synthetic (generated, target) pairs: sentences of 3 to 60 words from a Zipf-like
vocabulary with capitals, digits and punctuation, the target an edited copy of the generated text
(words dropped, replaced, inserted) or, one pair in ten, an unrelated sentence; some sides empty.
Then it scores every pair three ways and times each:

- llmbench: `llmbench.tasks.metrics.rouge` (rouge-score's tokenization, bit-parallel LCS);
- harness: what the study's harness did, a new torchmetrics `ROUGEScore(rouge_keys=("rougeL",))`
  per pair, reading `rougeL_fmeasure`; run twice, with torch's default dtype (float32, as the
  harness ran) and with float64, because torchmetrics wraps its Python-float result in a tensor
  of the default dtype;
- rouge-score: one reused `RougeScorer(["rougeL"])`, the reference implementation.

It asserts that llmbench's values equal rouge-score's and the float64 harness's to 1e-9, and the
float32 harness's exactly once rounded to float32, then prints seconds, microseconds per pair and
the ratios against llmbench.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TOLERANCE = 1e-9


def synthetic_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "pe", "zo", "qu"]
    vocabulary = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(3000)]
    vocabulary += [str(number) for number in range(100)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]

    def sentence(words: int) -> list[str]:
        return rng.choices(vocabulary, weights=weights, k=words)

    def text(words: list[str]) -> str:
        decorated = [word.capitalize() if rng.random() < 0.1 else word for word in words]
        decorated = [
            word + rng.choice(",.;!?") if rng.random() < 0.08 else word for word in decorated
        ]
        return " ".join(decorated)

    pairs = []
    for _ in range(count):
        generated = sentence(rng.randint(3, 60))
        if rng.random() < 0.1:
            target = sentence(rng.randint(3, 60))
        else:
            target = [word for word in generated if rng.random() > 0.15]
            target = [rng.choice(vocabulary) if rng.random() < 0.1 else word for word in target]
            for _ in range(rng.randint(0, 5)):
                target.insert(rng.randint(0, len(target)), rng.choice(vocabulary))
        pair = [text(generated), text(target)]
        if rng.random() < 0.005:
            pair[rng.randint(0, 1)] = rng.choice(["", " ", "?!"])
        pairs.append((pair[0], pair[1]))
    return pairs


def timed(score, pairs: list[tuple[str, str]]) -> tuple[list[float], float]:
    start = time.perf_counter()
    values = [score(generated, target) for generated, target in pairs]
    return values, time.perf_counter() - start


def harness_score(dtype):
    import torch
    from torchmetrics.text.rouge import ROUGEScore

    def score(generated: str, target: str) -> float:
        torch.set_default_dtype(dtype)
        return ROUGEScore(rouge_keys=("rougeL",))(generated, target)["rougeL_fmeasure"].item()

    return score


def check_equal(name: str, ours: list[float], theirs: list[float], pairs, rounding=None) -> None:
    for value, reference, pair in zip(ours, theirs, pairs, strict=True):
        expected = rounding(value) if rounding else value
        if abs(expected - reference) > (0.0 if rounding else TOLERANCE):
            raise AssertionError(
                f"{name} differs on {pair!r}: llmbench {value!r}, {name} {reference!r}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20240429)
    args = parser.parse_args()

    import numpy as np
    import torch
    from rouge_score import rouge_scorer

    from llmbench.tasks.metrics import rouge

    pairs = synthetic_pairs(args.pairs, args.seed)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    default_dtype = torch.get_default_dtype()
    try:
        runs = {
            "llmbench rouge": timed(rouge, pairs),
            "rouge-score, one scorer": timed(
                lambda generated, target: scorer.score(target, generated)["rougeL"].fmeasure, pairs
            ),
            "harness: torchmetrics per pair (float32)": timed(harness_score(torch.float32), pairs),
            "harness: torchmetrics per pair (float64)": timed(harness_score(torch.float64), pairs),
        }
    finally:
        torch.set_default_dtype(default_dtype)

    ours = runs["llmbench rouge"][0]
    check_equal("rouge-score", ours, runs["rouge-score, one scorer"][0], pairs)
    check_equal(
        "torchmetrics float64", ours, runs["harness: torchmetrics per pair (float64)"][0], pairs
    )
    check_equal(
        "torchmetrics float32",
        ours,
        runs["harness: torchmetrics per pair (float32)"][0],
        pairs,
        rounding=lambda value: float(np.float32(value)),
    )

    baseline = runs["llmbench rouge"][1]
    print(
        f"{args.pairs} pairs (seed {args.seed}), mean F {sum(ours) / len(ours):.4f}; "
        f"values equal (1e-9; float32 harness exactly after rounding)"
    )
    print(f"{'way':44} {'seconds':>8} {'us/pair':>8} {'x llmbench':>10}")
    for name, (_, seconds) in runs.items():
        print(
            f"{name:44} {seconds:8.3f} {seconds / args.pairs * 1e6:8.1f} {seconds / baseline:10.1f}"
        )


if __name__ == "__main__":
    main()
