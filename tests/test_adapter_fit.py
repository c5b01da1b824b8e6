"""An adapter that cannot belong to the served base model is refused before the engine sees it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from llmbench.serving.adapters import AdapterError, base_linear_shapes, check_adapter_fits

# SmolLM2-135M's shape: hidden 576, 9 heads and 3 KV heads of 64, MLP 1536
SMOLLM2 = SimpleNamespace(
    hidden_size=576,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    intermediate_size=1536,
)
PREFIX = "base_model.model.model.layers.0.self_attn"


def write_adapter(folder: Path, tensors: dict) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def lora(module: str, in_features: int, out_features: int, rank: int = 8, dtype=None) -> dict:
    import torch

    dtype = dtype or torch.bfloat16
    return {
        f"{PREFIX}.{module}.lora_A.weight": torch.zeros(rank, in_features, dtype=dtype),
        f"{PREFIX}.{module}.lora_B.weight": torch.zeros(out_features, rank, dtype=dtype),
    }


def test_the_base_models_linear_shapes_come_from_its_config():
    shapes = base_linear_shapes(SMOLLM2)
    assert shapes["q_proj"] == (576, 576) and shapes["v_proj"] == (576, 192)
    assert shapes["down_proj"] == (1536, 576)
    assert base_linear_shapes(SimpleNamespace()) == {}


def test_an_adapter_made_for_this_base_fits(tmp_path):
    folder = write_adapter(tmp_path / "a", {**lora("q_proj", 576, 576), **lora("v_proj", 576, 192)})
    check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


def test_an_adapter_made_for_another_base_is_refused_naming_the_tensor(tmp_path):
    folder = write_adapter(tmp_path / "tiny", lora("q_proj", 128, 128))
    with pytest.raises(AdapterError) as caught:
        check_adapter_fits("tiny/glue_sst2", folder, base_linear_shapes(SMOLLM2))
    assert caught.value.status == 400
    assert "lora_A.weight has shape [8, 128]" in str(caught.value)
    assert "input size 576" in str(caught.value) and "another base model" in str(caught.value)


def test_an_adapter_for_a_module_the_base_lacks_is_refused_naming_it(tmp_path):
    folder = write_adapter(tmp_path / "a", lora("qkv_proj", 576, 576))
    with pytest.raises(AdapterError, match="targets module 'qkv_proj'"):
        check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, dtype_name, bad):
    import torch

    tensors = lora("v_proj", 576, 192, dtype=getattr(torch, dtype_name))
    name = f"{PREFIX}.v_proj.lora_B.weight"
    tensors[name][5, 3] = bad
    folder = write_adapter(tmp_path / "a", tensors)
    with pytest.raises(AdapterError, match=f"tensor {name} holds Inf or NaN"):
        check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


def test_a_weights_file_that_is_not_safetensors_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(AdapterError, match="not a safetensors file"):
        check_adapter_fits("a", tmp_path / "a", base_linear_shapes(SMOLLM2))


def write_pickled_adapter(folder: Path, tensors: dict, name: str = "adapter_model.bin") -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(tensors, folder / name)
    return folder


@pytest.mark.parametrize("name", ["adapter_model.bin", "adapter_model.pt"])
def test_a_torch_pickled_adapter_made_for_another_base_is_refused_too(tmp_path, name):
    folder = write_pickled_adapter(tmp_path / "a", lora("q_proj", 128, 128), name)
    with pytest.raises(AdapterError, match="lora_A.weight has shape \\[8, 128\\]"):
        check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


def test_a_torch_pickled_adapter_with_nan_is_refused_naming_the_tensor(tmp_path):
    tensors = lora("v_proj", 576, 192)
    name = f"{PREFIX}.v_proj.lora_A.weight"
    tensors[name][0, 0] = float("nan")
    folder = write_pickled_adapter(tmp_path / "a", tensors)
    with pytest.raises(AdapterError, match=f"tensor {name} holds Inf or NaN"):
        check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


def test_safetensors_are_checked_before_a_pickle_beside_them(tmp_path):
    # vLLM reads the safetensors file when both exist; a stray .bin must not block a good adapter
    folder = write_adapter(tmp_path / "a", lora("q_proj", 576, 576))
    (folder / "adapter_model.bin").write_bytes(b"not a pickle")
    check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))


def test_lora_a_and_b_of_different_ranks_are_refused(tmp_path):
    import torch

    tensors = lora("q_proj", 576, 576, rank=8)
    tensors[f"{PREFIX}.q_proj.lora_B.weight"] = torch.zeros(576, 4, dtype=torch.bfloat16)
    folder = write_adapter(tmp_path / "a", tensors)
    with pytest.raises(AdapterError, match="lora_A has rank 8 but lora_B has rank 4"):
        check_adapter_fits("a", folder, base_linear_shapes(SMOLLM2))
