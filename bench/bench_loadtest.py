"""The study's load test, locally: 1 adapter against 25 across user levels, on the tiny model.

    python bench/bench_loadtest.py                  # users 1,4,16,32; 20 s per level
    python bench/bench_loadtest.py --duration 60    # the study's hold

Builds the tiny model and 25 rank-8 LoRA adapters (random weights: latency does not care what
they learnt) in a temporary folder, starts `llmbench serve` with room for all 25
(`--max-loaded-adapters 25`), and runs `llmbench loadtest`'s sweep with the study's settings
(90-110 words in, 90-110 new tokens, 1 s pause, 1 s ramp): adapter counts 1 and 25, each request
picking one of the first N adapters at random. Prints the summary and the 25/1 ratios of output
tokens/s and p90 latency per user level; the full results are left in --out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench_serve import keep_off_engine_cores, make_adapters  # noqa: E402
from serving_fixtures import build_tiny_base  # noqa: E402

from llmbench.loadtest.runner import LoadSettings, run_loadtest  # noqa: E402
from llmbench.serving.launch import start_server, stop_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1,4,16,32")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--out", default="runs/bench-loadtest")
    parser.add_argument("--no-pin", action="store_true", help="leave CPU affinity alone")
    args = parser.parse_args()
    if not args.no_pin:
        print(keep_off_engine_cores(), flush=True)
    users = tuple(int(u) for u in args.users.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_base(Path(tmp) / "base")
        root = Path(tmp) / "adapters"
        names = make_adapters(base, root, 25)
        process, url = start_server(
            base, root, max_loaded_adapters=25, log_path=Path(tmp) / "server.log"
        )
        try:
            settings = LoadSettings(
                endpoint=url,
                users=users,
                adapter_counts=(1, 25),
                adapter_ids=tuple(names),
                duration=args.duration,
            )
            rows = run_loadtest(settings, Path(args.out))
        finally:
            stop_server(process)
    by_cell = {(r["users"], r["adapters"]): r for r in rows}
    print(
        "| users | adapters | requests/s | output tokens/s | TTFT p50 s | latency p90 s | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['users']} | {row['adapters']} | {row['requests_per_s']} | "
            f"{row['output_tokens_per_s']} | {row['ttft_p50']} | {row['latency_p90']} | "
            f"{row['error_rate']} |"
        )
    print("\n| users | tokens/s 25 / 1 | p90 latency 25 / 1 |\n|---|---|---|")
    for u in users:
        one, many = by_cell[(u, 1)], by_cell[(u, 25)]
        print(
            f"| {u} | {many['output_tokens_per_s'] / one['output_tokens_per_s']:.2f} | "
            f"{many['latency_p90'] / one['latency_p90']:.2f} |"
        )


if __name__ == "__main__":
    main()
