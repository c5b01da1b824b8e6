"""Benchmark `llmbench prepare` on the largest classification tasks, at their real sizes.

    python bench/bench_prepare.py                  # all three tasks, JSONL and Parquet copies
    python bench/bench_prepare.py --tasks dbpedia --formats parquet --scale 0.1

For dbpedia (train 560,000 + test 70,000 rows), glue_qqp (train 363,846 + validation 40,430; its
390,965 unlabelled test rows are written too, as upstream ships them, but not prepared) and
glue_mnli (train 392,702 + validation 9,815 + 9,832; unlabelled test files likewise) it writes
synthetic upstream files in the Hugging Face local-copy layout (`<split>.jsonl` as the fixtures
are, or `<split>.parquet` as `llmbench fetch` writes them), with invented text of realistic
length from a seeded generator, into a temporary folder. Then, each in a fresh child process so
that peak memory (getrusage ru_maxrss) is one task's alone:

- prepare: `llmbench.prepare.tables.prepare_task` (streams rows, writes the table in batches);
- naive: pandas reads each upstream split whole, builds the same columns, and writes the table
  with `DataFrame.to_parquet`.

It prints rows, seconds, rows/s and peak memory of each, and the naive/prepare ratios of time and
peak memory. Times cover the preparation call only (not interpreter start-up or imports); peak
memory is the whole child's, and `idle MB` is what the child held before the call.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CHUNK_ROWS = 50_000
HIDDEN = -1

# upstream split -> (rows, label count or HIDDEN for an unlabelled split)
SIZES = {
    "dbpedia": {"train": (560_000, 14), "test": (70_000, 14)},
    "glue_qqp": {"train": (363_846, 2), "validation": (40_430, 2), "test": (390_965, HIDDEN)},
    "glue_mnli": {
        "train": (392_702, 3),
        "validation_matched": (9_815, 3),
        "validation_mismatched": (9_832, 3),
        "test_matched": (9_796, HIDDEN),
        "test_mismatched": (9_847, HIDDEN),
    },
}
# text column -> (mean words, spread) of the upstream texts, roughly as the real datasets have
TEXTS = {
    "dbpedia": {"title": (3, 1.5), "content": (46, 18)},
    "glue_qqp": {"question1": (11, 5), "question2": (11, 5)},
    "glue_mnli": {"premise": (21, 11), "hypothesis": (10, 4)},
}


# --- synthetic upstream ---------------------------------------------------------------------------


def vocabulary(rng: random.Random, size: int = 6000) -> tuple[list[str], list[float]]:
    """Invented words of 1-4 syllables with Zipf-like cumulative weights."""
    syllables = [a + b for a in "bcdfghklmnprstvwz" for b in "aeiou"] + ["th", "st", "er", "an"]
    words = ["".join(rng.choices(syllables, k=rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(size)]
    weights = itertools.accumulate(1 / (rank + 1) for rank in range(size))
    return words, list(weights)


def sentence(rng: random.Random, vocab, mean: float, spread: float) -> str:
    words, cumulative = vocab
    count = max(1, round(rng.gauss(mean, spread)))
    text = " ".join(rng.choices(words, cum_weights=cumulative, k=count))
    return text[0].upper() + text[1:] + "."


def synthetic_rows(task: str, split: str, rows: int, labels: int):
    """The seeded rows of one upstream split, as the Hugging Face export has them."""
    rng = random.Random(f"{task}/{split}")
    vocab = vocabulary(random.Random(task))
    texts = TEXTS[task]
    for idx in range(rows):
        row = {column: sentence(rng, vocab, *shape) for column, shape in texts.items()}
        label = HIDDEN if labels == HIDDEN else rng.randrange(labels)
        if task == "dbpedia":
            row = {"label": label, "title": row["title"], "content": " " + row["content"]}
        else:
            row |= {"label": label, "idx": idx}
        yield row


def write_upstream(task: str, folder: Path, file_format: str, scale: float) -> int:
    """Write every upstream split of `task` into `folder`; returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for split, (rows, labels) in SIZES[task].items():
        rows = max(1, round(rows * scale))
        records = synthetic_rows(task, split, rows, labels)
        if file_format == "jsonl":
            with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer = None
            while chunk := list(itertools.islice(records, CHUNK_ROWS)):
                table = pa.Table.from_pylist(chunk)
                writer = writer or pq.ParquetWriter(folder / f"{split}.parquet", table.schema)
                writer.write_table(table)
            writer.close()
        total += rows
    return total


# --- the two ways to prepare, each run in a child ----------------------------------------------


def run_prepare(task: str, source: Path, out: Path) -> int:
    from llmbench.prepare.tables import prepare_task

    return sum(prepare_task(task, source=source, out_dir=out, progress=False).counts.values())


def run_naive(task: str, source: Path, out: Path) -> int:
    """Whole splits through pandas, then one DataFrame.to_parquet: the baseline."""
    import pandas as pd

    from llmbench.prepare.tables import SPLIT_CODES, task_module
    from llmbench.tasks.cards import get_card

    card = get_card(task)
    frames = []
    for split, upstream in card.source["splits"].items():
        for part in upstream.split("+"):
            path = next(source.glob(f"{part}.*"))
            whole = (
                pd.read_parquet(path)
                if path.suffix == ".parquet"
                else pd.read_json(path, lines=True, dtype=False)
            )
            frame = whole[list(card.input_columns)].apply(lambda c: c.str.strip())
            if task == "dbpedia":
                classes = task_module("dbpedia").CLASSES
                frame[card.target_col] = whole["label"].map(dict(enumerate(classes)))
            else:
                frame[card.target_col] = whole["label"].astype(str)
            frame[card.split_column] = SPLIT_CODES[split]
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    target = out / "prepared" / f"{task}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(target, compression="zstd", index=False)
    return len(table)


def child(mode: str, task: str, source: Path, target: str, scale: float) -> None:
    if mode == "write":
        print(json.dumps({"rows": write_upstream(task, source, target, scale)}))
        return
    out = Path(target)
    import pyarrow.parquet  # noqa: F401  (imported before the clock starts, by both modes)
    import tqdm  # noqa: F401

    import llmbench.prepare.tables  # noqa: F401

    if mode == "naive":
        import pandas  # noqa: F401
    idle_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    rows = (run_prepare if mode == "prepare" else run_naive)(task, source, out)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"rows": rows, "seconds": seconds, "peak_mb": peak_kb / 1024, "idle_mb": idle_kb / 1024}
        )
    )


def measure(mode: str, task: str, source: Path, target: str, scale: float) -> dict:
    """Run one mode in a fresh child process and return what it reports.

    The parent stays small on purpose: Linux carries a parent's peak RSS into the ru_maxrss of a
    child it forks, so even the synthetic files are written by a child.
    """
    command = [
        sys.executable,
        __file__,
        "--child",
        mode,
        task,
        str(source),
        target,
        "--scale",
        str(scale),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} {task} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", default=",".join(SIZES), help=f"comma-separated, of {', '.join(SIZES)}"
    )
    parser.add_argument("--formats", default="jsonl,parquet", help="jsonl and/or parquet")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real sizes")
    # --child MODE TASK SOURCE TARGET: TARGET is the out folder, or the file format to write
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, task, source, target = args.child
        child(mode, task, Path(source), target, args.scale)
        return
    header = (
        f"{'task':<10} {'format':<8} {'rows':>8} | {'prepare s':>9} {'rows/s':>8} "
        f"{'peak MB':>8} | {'naive s':>8} {'rows/s':>8} {'peak MB':>8} | "
        f"{'time x':>6} {'mem x':>6} | {'idle MB':>7}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench_prepare.") as tmp:
        for task in args.tasks.split(","):
            for file_format in args.formats.split(","):
                source = Path(tmp) / f"{task}.{file_format}"
                measure("write", task, source, file_format, args.scale)
                ours = measure("prepare", task, source, f"{tmp}/out_prepare", args.scale)
                naive = measure("naive", task, source, f"{tmp}/out_naive", args.scale)
                if ours["rows"] != naive["rows"]:
                    raise SystemExit(
                        f"{task}: prepare wrote {ours['rows']} rows, naive {naive['rows']}"
                    )
                print(
                    f"{task:<10} {file_format:<8} {ours['rows']:>8} | {ours['seconds']:>9.1f} "
                    f"{ours['rows'] / ours['seconds']:>8.0f} {ours['peak_mb']:>8.0f} | "
                    f"{naive['seconds']:>8.1f} {naive['rows'] / naive['seconds']:>8.0f} "
                    f"{naive['peak_mb']:>8.0f} | {naive['seconds'] / ours['seconds']:>6.2f} "
                    f"{naive['peak_mb'] / ours['peak_mb']:>6.2f} | {ours['idle_mb']:>7.0f}",
                    flush=True,
                )
                for path in source.iterdir():
                    path.unlink()
                source.rmdir()


if __name__ == "__main__":
    main()
