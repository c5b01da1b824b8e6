"""The evaluation harness's throughput against a bare asyncio client sending the same requests.

    python bench/bench_eval.py                 # 1000 examples, concurrency 32, 16 new tokens

Starts `llmbench serve` on the tiny model with one adapter, prepares a gsm8k-format task of
`--examples` problems written here, then sends the same realized prompts twice, alternating
rounds: once through `llmbench eval` (lorax-client, retries, responses.jsonl flushed per line,
scoring) and once through a bare aiohttp client posting /generate with the same concurrency
(the server's capacity), after one warm-up round of each. Prints examples/s of each and the
ratio harness / bare (aim: >= 0.9).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench_serve import keep_off_engine_cores, make_adapters  # noqa: E402
from serving_fixtures import build_tiny_base  # noqa: E402

from llmbench.evaluate.harness import EvalSettings, evaluate, load_examples  # noqa: E402
from llmbench.prepare.tables import prepare_task  # noqa: E402
from llmbench.serving.launch import start_server, stop_server  # noqa: E402


def write_task(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rows = [
        {
            "question": f"Bo has {i} shells and finds {i % 7 + 1} more. How many now?",
            "answer": f"#### {i + i % 7 + 1}",
        }
        for i in range(n)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "train.jsonl").write_text(text)
    (folder / "test.jsonl").write_text(text)
    return folder


async def bare(url: str, prompts: list[str], concurrency: int, tokens: int) -> float:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:

        async def one(prompt: str) -> None:
            async with gate:
                body = {
                    "inputs": prompt,
                    "parameters": {"adapter_id": "a00", "max_new_tokens": tokens},
                }
                async with session.post(url + "/generate", json=body) as response:
                    await response.json()

        await asyncio.gather(*(one(p) for p in prompts))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="leave CPU affinity alone")
    args = parser.parse_args()
    if not args.no_pin:
        print(keep_off_engine_cores(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = build_tiny_base(tmp / "base")
        make_adapters(base, tmp / "adapters", 1)
        work = tmp / "work"
        prepare_task(
            "gsm8k", source=write_task(tmp / "up", args.examples), out_dir=work, progress=False
        )
        process, url = start_server(
            base, tmp / "adapters", max_loaded_adapters=1, log_path=tmp / "server.log"
        )
        try:
            settings = EvalSettings(
                task="gsm8k",
                endpoint=url,
                model="tiny",
                adapter_id="a00",
                concurrency=args.concurrency,
                max_new_tokens=args.tokens,
            )
            prompts = [e.prompt for e in load_examples(settings, work)[0]]
            harness_s, bare_s = [], []
            # Round 0 warms the server up (its first batches of each shape are slow); not kept.
            for round_ in range(args.rounds + 1):
                out = tmp / f"eval{round_}"
                started = time.perf_counter()
                evaluate(settings, work, out_dir=out, progress=False)
                harness = time.perf_counter() - started
                plain = asyncio.run(bare(url, prompts, args.concurrency, args.tokens))
                shutil.rmtree(out)
                if round_:
                    harness_s.append(harness)
                    bare_s.append(plain)
        finally:
            stop_server(process)
    harness, plain = min(harness_s), min(bare_s)
    n = args.examples
    print(
        f"examples {n}, concurrency {args.concurrency}, {args.tokens} new tokens, "
        f"best of {args.rounds} rounds"
    )
    print("rounds, harness s:", " ".join(f"{s:.2f}" for s in harness_s))
    print("rounds, bare s:   ", " ".join(f"{s:.2f}" for s in bare_s))
    print(f"harness (llmbench eval): {harness:.2f} s, {n / harness:.1f} examples/s")
    print(f"bare asyncio client:     {plain:.2f} s, {n / plain:.1f} examples/s")
    print(f"ratio harness / bare (throughput): {plain / harness:.2f}")


if __name__ == "__main__":
    main()
