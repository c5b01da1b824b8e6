"""Benchmark `llmbench complexity` on a glue_mnli-sized task (400,000 training rows).

    python bench/bench_complexity.py                     # 400k rows, baseline on every row
    python bench/bench_complexity.py --rows 100000 --baseline-rows 20000 --workers 2

It writes a synthetic prepared table for glue_mnli's card (premise and hypothesis of invented
words with the real dataset's rough lengths, label 0/1/2, all in the train split; seeded) into a
temporary folder, then runs, each in a fresh child process so that peak memory is its own:

- fast: `llmbench.analysis.complexity.task_complexity` (bounded batches, the instruction's tokens
counted
  once, bit-parallel LCS, a pool of worker processes);
- baseline: a plain per-row loop over the same rows (pandas reads the table whole; per row:
  fill the template, tiktoken `encode_ordinary` of input and output, rouge-score's RougeScorer
  for ROUGE-L, zlib), the way the study's heuristics are usually computed. With
  `--baseline-rows N` below the table's size it loops over the first N rows only and its time is
  scaled up linearly to the whole table (the loop's cost is per row); the report says so.

Both must give the same heuristics on the rows they share (the fast path is rerun on the
baseline's rows for that check). Prints wall seconds, rows/s, CPU seconds (the process and
its workers), peak RSS (the parent's, and the largest worker's) and the baseline/fast ratios of
wall and CPU time; the CPU ratio holds up when other work shares the machine, wall time does
not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TASK = "glue_mnli"
TEXTS = {"premise": (21, 11), "hypothesis": (10, 4)}  # mean words, spread
CHUNK = 50_000


def vocabulary(rng: random.Random, size: int = 6000) -> tuple[list[str], list[float]]:
    """Invented words of 1-4 syllables with Zipf-like cumulative weights."""
    syllables = [a + b for a in "bcdfghklmnprstvwz" for b in "aeiou"] + ["th", "st", "er", "an"]
    words = ["".join(rng.choices(syllables, k=rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(size)]
    return words, list(itertools.accumulate(1 / (rank + 1) for rank in range(size)))


def sentence(rng: random.Random, vocab, mean: float, spread: float) -> str:
    words, cumulative = vocab
    text = " ".join(
        rng.choices(words, cum_weights=cumulative, k=max(1, round(rng.gauss(mean, spread))))
    )
    return text[0].upper() + text[1:] + "."


def write_table(work: Path, rows: int) -> None:
    """The synthetic prepared table, where `llmbench.prepare.tables.prepared_path` puts it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llmbench.prepare.tables import prepared_path

    rng, vocab = random.Random(f"{TASK}/train"), vocabulary(random.Random(TASK))
    schema = pa.schema(
        [
            ("premise", pa.string()),
            ("hypothesis", pa.string()),
            ("label", pa.string()),
            ("split", pa.int8()),
        ]
    )
    target = prepared_path(TASK, work)
    target.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for start in range(0, rows, CHUNK):
            size = min(CHUNK, rows - start)
            batch = {
                column: [sentence(rng, vocab, *shape) for _ in range(size)]
                for column, shape in TEXTS.items()
            }
            batch["label"] = [str(rng.randrange(3)) for _ in range(size)]
            batch["split"] = [0] * size
            writer.write_table(pa.table(batch, schema=schema))


def run_fast(work: Path, rows: int | None, workers: int | None) -> dict:
    from llmbench.analysis.complexity import task_complexity

    if rows is not None:
        _truncate(work, rows)
    return task_complexity(TASK, work, workers=workers)


def run_baseline(work: Path, rows: int | None) -> dict:
    """The plain per-row loop (the baseline), on the first `rows` rows."""
    import zlib

    import numpy as np
    from rouge_score import rouge_scorer

    from llmbench.analysis.complexity import summarize
    from llmbench.prepare.tables import read_prepared
    from llmbench.tasks.cards import get_card
    from llmbench.tasks.tokens import cl100k

    card, encoding = get_card(TASK), cl100k()
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    table = read_prepared(TASK, work, split=0)
    if rows is not None:
        table = table.head(rows)
    measures = []
    for row in table.to_dict("records"):
        prompt = card.prompt_template.format(**{c: row[c] for c in card.input_columns})
        target = row[card.target_col]
        example = (prompt + "\n" + target).encode("utf-8")
        measures.append(
            (
                len(encoding.encode_ordinary(prompt)),
                len(encoding.encode_ordinary(target)),
                scorer.score(target, prompt)["rougeL"].fmeasure,
                len(zlib.compress(example, 9)) / len(example),
            )
        )
    return summarize(np.array(measures))


def _truncate(work: Path, rows: int) -> None:
    """Keep the first `rows` rows of the table (for the same-values check)."""
    import pyarrow.parquet as pq

    from llmbench.prepare.tables import prepared_path

    path = prepared_path(TASK, work)
    pq.write_table(pq.read_table(path).slice(0, rows), path)


def child(mode: str, work: Path, rows: int | None, workers: int | None) -> None:
    if mode == "write":
        write_table(work, rows)
        print(json.dumps({}))
        return
    import numpy  # noqa: F401  (imported before the clock starts, by both modes)
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from llmbench.tasks.tokens import cl100k

    cl100k()
    if mode == "baseline":
        from rouge_score import rouge_scorer

        rouge_scorer.RougeScorer(["rougeL"])  # its imports (nltk) take a second: not per row
    cpu_before, start = cpu_seconds(), time.perf_counter()
    result = run_fast(work, rows, workers) if mode == "fast" else run_baseline(work, rows)
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds() - cpu_before,
                "peak_mb": own,
                "worker_peak_mb": workers_peak,
                "heuristics": result,
            }
        )
    )


def cpu_seconds() -> float:
    """User and system CPU time of this process and its finished children (the workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def measure(mode: str, work: Path, rows: int | None = None, workers: int | None = None) -> dict:
    """Run one mode in a fresh child process and return what it reports."""
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        str(work),
        "--rows",
        str(rows or 0),
        "--workers",
        str(workers or 0),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_values(fast: dict, baseline: dict) -> list[str]:
    from llmbench.analysis.complexity import HEURISTICS

    return [
        f"{name}: fast {fast[name]} baseline {baseline[name]}"
        for name in HEURISTICS
        if abs(float(fast[name]) - float(baseline[name])) > 1e-6
    ]


def main() -> None:
    from llmbench.analysis.complexity import available_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000, help="training rows (default 400k)")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=0,
        help="rows the per-row loop covers, scaled up (default: all)",
    )
    parser.add_argument("--workers", type=int, default=0, help="fast path's workers (0: auto)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.rows or None, args.workers or None)
        return
    base_rows = min(args.baseline_rows or args.rows, args.rows)
    with tempfile.TemporaryDirectory(prefix="bench_complexity.") as tmp:
        full, common = Path(tmp) / "full", Path(tmp) / "common"
        measure("write", full, args.rows)
        fast = measure("fast", full, workers=args.workers or None)
        baseline = measure("baseline", full, rows=base_rows)
        if base_rows < args.rows:
            measure("write", common, args.rows)
            check = measure("fast", common, rows=base_rows, workers=args.workers or None)
        else:
            check = fast
    mismatches = same_values(check["heuristics"], baseline["heuristics"])
    scale = args.rows / base_rows
    base_seconds = baseline["seconds"] * scale
    print(f"{TASK}: {args.rows} synthetic training rows, {available_cores()} cores available")
    print(f"{'mode':<9} {'seconds':>8} {'rows/s':>8} {'CPU s':>7} {'peak MB':>8} {'worker MB':>9}")
    print(
        f"{'fast':<9} {fast['seconds']:>8.1f} {args.rows / fast['seconds']:>8.0f} "
        f"{fast['cpu_seconds']:>7.1f} {fast['peak_mb']:>8.0f} {fast['worker_peak_mb']:>9.0f}"
    )
    base_cpu = baseline["cpu_seconds"] * scale
    print(
        f"{'baseline':<9} {base_seconds:>8.1f} {args.rows / base_seconds:>8.0f} "
        f"{base_cpu:>7.1f} {baseline['peak_mb']:>8.0f} {'-':>9}"
        + (
            f"   (looped over {base_rows} rows in {baseline['seconds']:.1f} s, scaled x{scale:.1f})"
            if scale > 1
            else ""
        )
    )
    print(
        f"baseline / fast CPU time: {base_cpu / fast['cpu_seconds']:.1f}x; load average "
        f"{os.getloadavg()[0]:.1f} (wall times are only comparable on an idle machine)"
    )
    print(f"baseline / fast wall time: {base_seconds / fast['seconds']:.1f}x")
    print(
        f"same heuristics on the {base_rows} common rows: "
        + ("yes" if not mismatches else "NO\n  " + "\n  ".join(mismatches))
    )
    print(json.dumps(fast["heuristics"]))


if __name__ == "__main__":
    main()
