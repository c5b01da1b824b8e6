"""Benchmark `llmbench serve` against vLLM's own OpenAI server, same model, same load.

    python bench/bench_serve.py                       # 16 users, 32 tokens, 8 rounds of 10 s
    python bench/bench_serve.py --users 64 --seconds 60 --adapters 25
    python bench/bench_serve.py --our-lora-ops --adapters 100 --room 25   # loading is work too
    python bench/bench_serve.py --rounds 1 --profile ours.prof   # where our server's time goes

Needs .venv-serve (bash scripts/setup-serve.sh). It builds the tiny model and `--adapters`
rank-8 LoRA adapters (random weights: throughput does not care what they learnt) in a
temporary folder, then starts both servers with room for every adapter, or for `--room` of them
(ours: `--max-loaded-adapters N`; vLLM: `--max-loras N --max-cpu-loras N --lora-modules ...`)
and runs three scenarios with closed-loop users posting /v1/completions (temperature 0,
`max_tokens` fixed, end-of-sequence ignored so every request generates the same count):

- base: the base model only;
- one adapter: every request to adapter 0;
- round-robin: user i's j-th request goes to adapter (i + j) mod N.

Both servers run at once. Each round runs every scenario on both, back to back, the order of
the two servers swapped every round; the round's ratio is ours/vLLM in generated tokens/s, so
other work on the machine slows both sides of a ratio alike. The table gives, per scenario, the
median of the per-round ratios with their lowest and highest (one round's ratio moved from
0.74 to 1.08 on a quiet machine: a best-of-two could not show 5%), and the median tokens/s and
latency. Both servers are vLLM's engine underneath, so the ratio is the cost of our layer
(FastAPI, adapter lookup and LRU bookkeeping, the request checks, LoRAX shapes).

On a CPU `llmbench serve` computes LoRA once per adapter in a batch (llmbench.serving.cpu_lora)
where vLLM gathers a matrix per token; by default our server here is given vLLM's operations
(LLMBENCH_VLLM_LORA_OPS=1) so that the ratio stays the cost of our layer. `--our-lora-ops` runs
it as users get it: the ratio then includes that gain.

`--profile FILE` runs our server under cProfile (its event loop's thread) and prints where its
time went; the profiler slows it, so such a run's ratios are not the overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from llmbench.serving import cpu_lora  # noqa: E402
from llmbench.serving.launch import (  # noqa: E402
    SERVE_VENV,
    _wait_healthy,
    free_port,
    start_server,
    stop_server,
)
from llmbench.serving.server import PROFILE_ENV  # noqa: E402

PROMPT = "Question: what is it?\nAnswer:"


def keep_off_engine_cores() -> str:
    """Pin this process (and the servers it starts) to the CPU vLLM reserves for front ends.

    vLLM's CPU worker binds its compute threads to every core but the last one, which it leaves
    to the API processes. Without this, the benchmark's own clients land on the worker's cores
    now and then and a round runs at a third of its speed (seen here: the same round took 6 s
    or 24 s). The worker rebinds itself, so only clients and API front ends share the last core.
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return "not pinned (one core)"
    os.sched_setaffinity(0, {cores[-1]})
    return f"clients and API front ends pinned to core {cores[-1]}"


def make_adapters(base: Path, root: Path, count: int) -> list[str]:
    """`count` rank-8 q_proj/v_proj adapters with random (non-zero) weights, saved by PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    names = []
    for i in range(count):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
        config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(root / f"a{i:02d}")
        names.append(f"a{i:02d}")
    return names


def start_vllm_server(base: Path, root: Path, names: list[str], log: Path, room: int):
    port = free_port()
    command = [
        str(SERVE_VENV / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(base), "--host", "127.0.0.1", "--port", str(port),
        "--enable-lora", "--max-lora-rank", "16", "--gpu-memory-utilization", "0.1",
        "--max-loras", str(room), "--max-cpu-loras", str(room),
        "--served-model-name", "base",
        "--lora-modules", *[f"{n}={root / n}" for n in names],
    ]  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=os.environ | {"HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, 300, log)
    except BaseException:
        stop_server(process)
        raise
    return process, url


async def load(url: str, models, users: int, seconds: float, tokens: int, base_name: str):
    """Closed-loop users for `seconds`; returns (generated tokens, requests, latencies)."""
    import aiohttp

    latencies: list[float] = []
    generated = 0
    deadline = time.perf_counter() + seconds

    async def user(i: int, session) -> None:
        nonlocal generated
        j = 0
        while time.perf_counter() < deadline:
            model = models(i, j) or base_name
            body = {
                "model": model,
                "prompt": PROMPT,
                "max_tokens": tokens,
                "temperature": 0,
                "ignore_eos": True,
            }
            started = time.perf_counter()
            async with session.post(f"{url}/v1/completions", json=body) as answer:
                payload = await answer.json()
                if answer.status != 200:
                    raise RuntimeError(f"{url} answered {answer.status}: {payload}")
            latencies.append(time.perf_counter() - started)
            generated += payload["usage"]["completion_tokens"]
            j += 1

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(user(i, session) for i in range(users)))
        elapsed = time.perf_counter() - started
    return generated / elapsed, len(latencies) / elapsed, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and server")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--adapters", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--room",
        type=int,
        help="adapters each server keeps loaded (default: all of them); fewer than --adapters "
        "makes the round-robin load adapters from disk as it goes",
    )
    parser.add_argument("--no-pin", action="store_true", help="leave CPU affinity alone")
    parser.add_argument("--profile", help="profile our server into this file (cProfile)")
    parser.add_argument(
        "--our-lora-ops",
        action="store_true",
        help="our server with its own LoRA operations (llmbench.serving.cpu_lora), as "
        "`llmbench serve` runs; by default both use vLLM's: the ratio is our layer's cost",
    )
    args = parser.parse_args()
    if not args.no_pin:
        print(keep_off_engine_cores(), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # stop both servers on `kill` too

    from serving_fixtures import build_tiny_base

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    base = build_tiny_base(work / "base")
    root = work / "adapters"
    names = make_adapters(base, root, args.adapters)
    room = min(args.room or len(names), len(names))
    robin = f"{len(names)} adapters round-robin" + (f", room {room}" if room < len(names) else "")
    scenarios = {
        "base": lambda i, j: None,
        "one adapter": lambda i, j: names[0],
        robin: lambda i, j: names[(i + j) % len(names)],
    }
    servers = {}
    try:
        for server in ("ours", "vllm"):
            started = time.perf_counter()
            log = work / f"{server}.log"
            if server == "ours":
                env = {PROFILE_ENV: str(Path(args.profile).resolve())} if args.profile else {}
                if not args.our_lora_ops:
                    env[cpu_lora.OFF_SWITCH] = "1"
                # the cores laid out as vLLM's own server lays them out (it runs beside ours):
                # the ratio is our layer's, not a core more (bench_cores.py measures that)
                env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "1"
                process, url = start_server(base, root, max_loaded_adapters=room,
                                            log_path=log, env=env)  # fmt: skip
            else:
                process, url = start_vllm_server(base, root, names, log, room)
            servers[server] = (process, url, "" if server == "ours" else "base")
            print(f"{server}: up in {time.perf_counter() - started:.0f} s", flush=True)
        for _, url, base_name in servers.values():  # warm up
            asyncio.run(load(url, scenarios["base"], 2, 3, args.tokens, base_name))
        results = run_rounds(servers, scenarios, args)
    finally:
        for process, _, _ in servers.values():
            stop_server(process)
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, scenarios, args)
    if args.profile:
        print_profile(args.profile)


def run_rounds(servers: dict, scenarios: dict, args) -> dict[tuple[str, str], list[tuple]]:
    """(server, scenario) -> each round's (tok/s, req/s, p50); the servers' order flips every
    round, so neither always runs first (or always right after the other)."""
    results: dict[tuple[str, str], list[tuple]] = {}
    for round_ in range(args.rounds):
        order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
        for name, models in scenarios.items():
            for server in order:
                _, url, base_name = servers[server]
                got = asyncio.run(
                    load(url, models, args.users, args.seconds, args.tokens, base_name)
                )
                tps, rps, p50 = got
                print(f"round {round_ + 1} {server:5} {name:28} {tps:8.0f} tok/s "
                      f"{rps:6.1f} req/s p50 {p50 * 1000:6.0f} ms", flush=True)  # fmt: skip
                results.setdefault((server, name), []).append(got)
    return results


def print_table(results: dict, scenarios: dict, args) -> None:
    print(f"\n{args.users} users, {args.tokens} tokens per request, {args.rounds} rounds of "
          f"{args.seconds:.0f} s per scenario and server")  # fmt: skip
    print("| scenario | ours/vLLM median | 90% interval | lowest–highest | per round | "
          "ours tok/s | vLLM tok/s | ours p50 ms | vLLM p50 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in scenarios:
        ours, theirs = results["ours", name], results["vllm", name]
        ratios = [a[0] / b[0] for a, b in zip(ours, theirs, strict=True)]
        med = statistics.median
        low, high = median_interval(ratios)
        print(f"| {name} | {med(ratios):.3f} | {low:.2f}–{high:.2f} | "
              f"{min(ratios):.2f}–{max(ratios):.2f} | "
              f"{' '.join(f'{r:.2f}' for r in ratios)} | {med(a[0] for a in ours):,.0f} | "
              f"{med(b[0] for b in theirs):,.0f} | {med(a[2] for a in ours) * 1000:.0f} | "
              f"{med(b[2] for b in theirs) * 1000:.0f} |")  # fmt: skip


def median_interval(values: list[float], confidence: float = 0.90) -> tuple[float, float]:
    """A distribution-free interval for the median: the k-th lowest and k-th highest values,
    k the largest with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2; with too few rounds
    for that, the lowest and highest."""
    from math import comb

    ordered, n = sorted(values), len(values)
    below, k = 0.0, 0
    while k < n // 2:
        below += comb(n, k) / 2**n  # P(exactly k of n below the median)
        if below > (1 - confidence) / 2:
            break
        k += 1
    k = max(k, 1)
    return ordered[k - 1], ordered[n - k]


def print_profile(path: str, top: int = 30) -> None:
    import pstats

    print(f"\nour server's event-loop thread, top {top} by own time ({path}):")
    pstats.Stats(path).sort_stats("tottime").print_stats(top)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
