"""LoRAX's `merged_adapters` on `llmbench serve` (issue 28, item 2): adapters merged per request
with PEFT's weighted-adapter math, cached in the adapters' LRU under a canonical key.

The fast tests hold the merge against PEFT's own `add_weighted_adapter` on a tiny Llama built in
memory, and check the canonical key and dare's seeded masks. The slow ones talk to the session's
one real server (tests/conftest.py `served`: the tiny model, adapters alpha/beta/gamma, two
loaded at most) with raw HTTP and lorax-client.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from serving_fixtures import (  # noqa: I001 - tests/ is on sys.path
    ANSWERS,
    SECRET,
    TRAIN_PROMPTS,
    fifo_was_opened,
    server_pid,
)

from llmbench.serving.merging import MergePlan, MergeSource, write_merged_adapter

PROMPT = TRAIN_PROMPTS[0]
MAX_NEW = 16


# ---- the merge itself, against PEFT (fast, no server) -------------------------------------------


def _tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    return LlamaForCausalLM(config), config


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory):
    """Two PEFT adapters of one tiny Llama with random (non-zero) A and B, different alphas and
    different target modules (q/v and q/k), saved as PEFT saves them; and the PEFT model
    holding both, for add_weighted_adapter."""
    from peft import LoraConfig, get_peft_model

    base, config = _tiny_llama()
    one = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False)  # fmt: skip
    two = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "k_proj"],
                     init_lora_weights=False, use_rslora=True)  # fmt: skip
    model = get_peft_model(base, one, adapter_name="one")
    model.add_adapter("two", two)
    saved = tmp_path_factory.mktemp("peft")
    model.save_pretrained(saved / "one", selected_adapters=["one"])
    model.save_pretrained(saved / "two", selected_adapters=["two"])
    folders = {name: _adapter_folder(saved / name, name) for name in ("one", "two")}
    return model, config, folders


def _adapter_folder(saved: Path, name: str) -> Path:
    """PEFT writes a non-default adapter into a subfolder named after it."""
    return saved if (saved / "adapter_config.json").exists() else saved / name


def _merge(folders: dict, plan_args: dict, out: Path, config) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    from llmbench.serving.adapters import base_linear_shapes

    sources = [MergeSource(name, folder) for name, folder in folders.items()]
    plan = MergePlan.of(sources, **plan_args)
    write_merged_adapter(plan, out, base_linear_shapes(config))
    merged_config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    return load_file(str(out / "adapter_model.safetensors")), merged_config


@pytest.mark.parametrize(
    "strategy, density, sign",
    [
        ("linear", 0.0, None),
        ("ties", 0.5, "total"),
        ("ties", 0.7, "frequency"),
        ("dare_linear", 1.0, None),  # density 1 prunes nothing, so PEFT's global RNG is unused
        ("dare_ties", 1.0, "frequency"),
    ],
)
def test_the_merge_is_pefts_add_weighted_adapter_tensor_for_tensor(
    two_adapters, tmp_path, strategy, density, sign
):
    import torch
    from peft.utils import get_peft_model_state_dict

    model, config, folders = two_adapters
    weights = [0.7, -0.4]  # a negative weight: PEFT puts its sign on lora_A only
    name = f"peft_{strategy}_{sign}"
    model.add_weighted_adapter(["one", "two"], weights, name, combination_type=strategy,
                               density=density, majority_sign_method=sign or "total")  # fmt: skip
    expected = get_peft_model_state_dict(model, adapter_name=name)
    plan = {"weights": weights, "strategy": strategy, "density": density,
            "majority_sign_method": sign}  # fmt: skip
    merged, merged_config = _merge(folders, plan, tmp_path / "merged", config)
    assert sorted(merged) == sorted(expected)
    # q_proj from both adapters, v_proj from one only, k_proj from two only: the union.
    assert {k.split(".")[-3] for k in merged} == {"q_proj", "k_proj", "v_proj"}
    for key, tensor in expected.items():
        torch.testing.assert_close(merged[key], tensor, msg=key)
    assert merged_config["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    assert (merged_config["r"], merged_config["lora_alpha"], merged_config["use_rslora"]) == (
        4, 4, False)  # fmt: skip


def test_dare_draws_the_same_masks_for_one_key_and_others_for_another(two_adapters, tmp_path):
    import torch

    _, config, folders = two_adapters
    plan = {"weights": [1.0, 1.0], "strategy": "dare_linear", "density": 0.5,
            "majority_sign_method": None}  # fmt: skip
    first, _ = _merge(folders, plan, tmp_path / "first", config)
    again, _ = _merge(folders, plan, tmp_path / "again", config)
    other, _ = _merge(folders, plan | {"density": 0.6}, tmp_path / "other", config)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)
    # k_proj comes from adapter two alone: each element is kept (times 1 / density) or dropped.
    key = next(k for k in first if "k_proj.lora_B" in k)
    scaling = 4 / 4**0.5  # adapter two: rsLoRA, alpha 4, r 4
    original = _tensor(folders["two"], key) * scaling**0.5
    kept = first[key] != 0
    assert 0.35 < kept.float().mean().item() < 0.65
    torch.testing.assert_close(first[key][kept], original[kept] / 0.5)


def _tensor(folder: Path, key: str):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))[key]


def test_one_merge_has_one_key_however_it_is_spelt():
    alpha, beta = MergeSource("alpha", Path("a")), MergeSource("beta", Path("b"))

    def key(sources, weights, strategy, density=0.0, sign=None) -> str:
        return MergePlan.of(sources, weights, strategy, density, sign).key

    linear = key([alpha, beta], [0.5, 0.0], "linear")
    assert key([beta, alpha], [-0.0, 0.5], None, density=0.3, sign="frequency") == linear
    assert json.loads(linear) == {"ids": ["alpha", "beta"], "weights": [0.5, 0.0],
                                  "merge_strategy": "linear"}  # fmt: skip
    ties = key([alpha, beta], [0.5, 0.5], "ties", 0.5)
    assert ties == key([alpha, beta], [0.5, 0.5], "ties", 0.5, "total")
    assert len({ties, key([alpha, beta], [0.5, 0.5], "ties", 0.6),
                key([alpha, beta], [0.5, 0.5], "ties", 0.5, "frequency"),
                key([alpha, beta], [0.5, 0.5], "dare_ties", 0.5)}) == 4  # fmt: skip
    assert key([alpha], [1.0], "dare_linear", 0.5, "total") == key([alpha], [1], "dare_linear", 0.5)


# ---- the real server (slow) ---------------------------------------------------------------------


def _post(url: str, body):
    import requests

    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(url + "/generate", data=data, timeout=60,
                         headers={"content-type": "application/json"})  # fmt: skip


def _ask(url: str, prompt: str = PROMPT, **parameters) -> tuple[str, list[int]]:
    """The greedy answer's text and token ids."""
    body = {"inputs": prompt, "parameters": {"max_new_tokens": MAX_NEW, "details": True}}
    body["parameters"] |= parameters
    answer = _post(url, body)
    assert answer.status_code == 200, answer.text
    return answer.json()["generated_text"], [t["id"] for t in answer.json()["details"]["tokens"]]


def _merged(ids, weights, strategy="linear", **more) -> dict:
    return {"merged_adapters": {"ids": ids, "weights": weights, "merge_strategy": strategy} | more}


def _name(merged: dict) -> str:
    """The name a merge is cached and loaded under (its key: see the fast test above)."""
    sources = [MergeSource(adapter_id, Path(adapter_id)) for adapter_id in merged["ids"]]
    density, sign = merged.get("density", 0.0), merged.get("majority_sign_method")
    return MergePlan.of(sources, merged["weights"], merged["merge_strategy"], density, sign).name


def _info(url: str) -> dict:
    import requests

    return requests.get(url + "/info", timeout=10).json()


def _loads(url: str) -> float:
    import requests

    text = requests.get(url + "/metrics", timeout=10).text
    return float(re.search(r"^llmbench_adapter_loads_total (\S+)", text, re.M)[1])


@pytest.fixture(scope="module")
def merging(served):
    """Beside alpha/beta/gamma: alpha cut to rank 4 (a rank the others lack) and an adapter
    made for a base of hidden size 256 (the tiny base has 128)."""
    import torch
    from safetensors.torch import load_file, save_file

    root, alpha = served["root"], served["root"] / "alpha"
    config = json.loads((alpha / "adapter_config.json").read_text(encoding="utf-8"))
    tensors = load_file(str(alpha / "adapter_model.safetensors"))
    made = {
        "merge-rank4": ({k: (v[:4] if "lora_A" in k else v[:, :4]).contiguous()
                         for k, v in tensors.items()}, config | {"r": 4, "lora_alpha": 8}),
        "merge-wide": ({k: torch.zeros(8, 256) if "lora_A" in k else torch.zeros(256, 8)
                        for k in tensors}, config),
    }  # fmt: skip
    for name, (weights, adapter_config) in made.items():
        (root / name).mkdir(exist_ok=True)
        save_file(weights, str(root / name / "adapter_model.safetensors"))
        (root / name / "adapter_config.json").write_text(json.dumps(adapter_config), "utf-8")
    yield served
    for name in made:
        shutil.rmtree(root / name, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", [*TRAIN_PROMPTS[:3], "The quick brown fox"])
def test_weights_1_0_under_linear_answer_as_the_first_adapter_token_for_token(merging, prompt):
    url = merging["url"]
    for first, second in (("alpha", "beta"), ("beta", "alpha")):
        alone = _ask(url, prompt, adapter_id=first)
        assert _ask(url, prompt, **_merged([first, second], [1.0, 0.0])) == alone, first
    if prompt in TRAIN_PROMPTS:
        assert _ask(url, prompt, adapter_id="alpha")[0] == ANSWERS["alpha"]


@pytest.mark.slow
def test_two_adapters_merged_half_and_half_still_answer_in_a_trained_format(merging):
    trained_words = {"alpha", "beta"}
    for prompt in TRAIN_PROMPTS:
        text, _ = _ask(merging["url"], prompt, **_merged(["alpha", "beta"], [0.5, 0.5]))
        assert text.split() and set(text.split()) <= trained_words, (prompt, text)


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, extra",
    [
        ("ties", {"density": 0.5}),
        ("dare_ties", {"density": 0.7, "majority_sign_method": "frequency"}),
        ("dare_linear", {"density": 0.5}),
    ],
)
def test_ties_and_dare_answer_the_same_when_the_merge_is_made_again(merging, strategy, extra):
    url = merging["url"]
    merge = _merged(["alpha", "beta"], [0.6, 0.4], strategy, **extra)
    first = [_ask(url, prompt, **merge) for prompt in TRAIN_PROMPTS[:3]]
    name = _name(merge["merged_adapters"])
    assert name in _info(url)["loaded_adapters"]
    for adapter_id in ("gamma", "beta"):  # two others fill the two places: the merge is evicted
        _ask(url, adapter_id=adapter_id)
    assert name not in _info(url)["loaded_adapters"]
    loads = _loads(url)
    assert [_ask(url, prompt, **merge) for prompt in TRAIN_PROMPTS[:3]] == first
    assert _loads(url) == loads + 1  # made and loaded again, not served from the cache


@pytest.mark.slow
def test_a_merge_is_cached_under_its_canonical_key_and_takes_a_place_in_the_lru(merging):
    url = merging["url"]
    merge = _merged(["alpha", "gamma"], [0.25, 0.75], "ties", density=0.5)
    answer = _ask(url, **merge)
    loads = _loads(url)
    respelt = _merged(["gamma/model/model_weights", "./alpha"], [0.75, 0.25], "ties",
                      density=0.5, majority_sign_method="total")  # fmt: skip
    assert _ask(url, **respelt) == answer
    assert _loads(url) == loads  # the same key: no second merge, no second load
    name = _name(merge["merged_adapters"])
    assert name in _info(url)["loaded_adapters"]
    _ask(url, adapter_id="beta")
    assert sorted(_info(url)["loaded_adapters"]) == sorted([name, "beta"])  # two places, full
    _ask(url, adapter_id="alpha")
    assert sorted(_info(url)["loaded_adapters"]) == ["alpha", "beta"]  # the merge was the LRU


def _merged_folders(url: str) -> list[Path]:
    """The merged adapters' folders on disk of the server at `url` (engine.merged_root)."""
    roots = list(Path(tempfile.gettempdir()).glob(f"llmbench-merged-{server_pid(url)}-*"))
    assert len(roots) == 1, roots
    return [p for p in roots[0].iterdir() if p.is_dir()]


@pytest.mark.slow
def test_concurrent_requests_for_a_new_merge_make_it_once_and_eviction_deletes_its_folder(
    merging,
):
    url = merging["url"]
    merge = _merged(["beta", "gamma"], [0.4, 0.6], "dare_linear", density=0.8)
    loads = _loads(url)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _ask(url, **merge), range(6)))
    assert len(set(map(str, answers))) == 1
    assert _loads(url) == loads + 1
    folders = _merged_folders(url)
    merges = [a for a in _info(url)["loaded_adapters"] if a.startswith("merged:")]
    assert len(folders) == len(merges) >= 1
    key = json.loads(_name(merge["merged_adapters"]).removeprefix("merged:"))
    assert any(json.loads((f / "llmbench_merge.json").read_text("utf-8")) == key for f in folders)
    assert {p.name for f in folders for p in f.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "llmbench_merge.json"}  # fmt: skip
    for adapter_id in ("alpha", "beta"):  # fill both places: every merge is evicted
        _ask(url, adapter_id=adapter_id)
    assert _merged_folders(url) == []


@pytest.mark.slow
def test_lorax_client_sends_merged_adapters_and_gets_the_merge_streamed_or_not(merging):
    from lorax import Client
    from lorax.types import MergedAdapters

    client = Client(merging["url"])
    beta_only = MergedAdapters(ids=["beta", "alpha"], weights=[1.0, 0.0], density=0.0)
    merged = client.generate(PROMPT, max_new_tokens=MAX_NEW, merged_adapters=beta_only)
    assert merged.generated_text == ANSWERS["beta"]
    streamed = client.generate_stream(PROMPT, max_new_tokens=MAX_NEW, merged_adapters=beta_only)
    assert "".join(r.token.text for r in streamed if not r.token.special) == ANSWERS["beta"]
    dare = MergedAdapters(ids=["alpha", "beta"], weights=[0.5, 0.5], merge_strategy="dare_ties",
                          density=0.9, majority_sign_method="total")  # fmt: skip
    texts = {client.generate(PROMPT, max_new_tokens=MAX_NEW, merged_adapters=dare).generated_text
             for _ in range(2)}  # fmt: skip
    assert len(texts) == 1


BAD_MERGES = {
    "unknown id": (_merged(["alpha", "nobody"], [0.5, 0.5]),
                   "merged_adapters.ids[1]: no adapter 'nobody' in the adapters root"),
    "another base model": (_merged(["alpha", "merge-wide"], [0.5, 0.5]),
                           "merged_adapters.ids: adapter 'merge-wide' cannot be served: tensor "),
    "another rank": (_merged(["alpha", "merge-rank4"], [0.5, 0.5], "ties", density=0.5),
                     "merged_adapters.ids: mismatched ranks ('alpha' r=8, 'merge-rank4' r=4)"),
    "NaN weight": ('{"ids": ["alpha", "beta"], "weights": [NaN, 0.5]}',
                   "merged_adapters.weights[0]: nan is not a finite number"),
    "infinite weight": ('{"ids": ["alpha", "beta"], "weights": [0.5, -Infinity]}',
                        "merged_adapters.weights[1]: -inf is not a finite number"),
    "density 0 for ties": (_merged(["alpha", "beta"], [0.5, 0.5], "ties", density=0.0),
                           "merged_adapters.density: ties keeps this fraction"),
    "density 0 for dare": (_merged(["alpha", "beta"], [0.5, 0.5], "dare_linear"),
                           "merged_adapters.density: dare_linear keeps this fraction"),
    "density over 1": (_merged(["alpha", "beta"], [0.5, 0.5], "dare_ties", density=1.5),
                       "merged_adapters.density: 1.5 is outside [0, 1]"),
    "empty list": (_merged([], []), "merged_adapters.ids: the list is empty"),
    "lengths differ": (_merged(["alpha", "beta"], [1.0]),
                       "merged_adapters.weights: 1 weights for 2 ids"),
    "more ids than the LRU holds": (_merged(["alpha", "beta", "gamma"], [0.3, 0.3, 0.4]),
                                    "merged_adapters.ids: 3 adapters, but this server holds at "
                                    "most 2"),
    "adapter_id too": (_merged(["alpha"], [1.0]) | {"adapter_id": "beta"},
                       "merged_adapters: set `adapter_id` or `merged_adapters`, not both"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_MERGES, ids=list(BAD_MERGES))
def test_a_merge_that_cannot_be_served_is_a_one_line_400_naming_the_field(merging, case):
    parameters, problem = BAD_MERGES[case]
    if isinstance(parameters, str):  # JSON that json.dumps would not write (NaN, Infinity)
        body = f'{{"inputs": "{PROMPT!s}", "parameters": {{"merged_adapters": {parameters}}}}}'
        body = body.replace("\n", "\\n")
    else:
        body = {"inputs": PROMPT, "parameters": parameters | {"max_new_tokens": 4}}
    answer = _post(merging["url"], body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.startswith(problem) and "\n" not in error, error
    assert not any(a.startswith("merged:") and "merge-" in a
                   for a in _info(merging["url"])["loaded_adapters"])  # fmt: skip


@pytest.mark.slow
def test_hostile_ids_in_a_merge_are_refused_as_plain_adapter_ids_are(merging):
    texts = []
    for adapter_id in merging["traps"]:
        answer = _post(merging["url"], {"inputs": PROMPT, "parameters": _merged(
            ["alpha", adapter_id], [0.5, 0.5])})  # fmt: skip
        assert answer.status_code == 400, (adapter_id, answer.text)
        assert answer.json()["error"].startswith("merged_adapters.ids[1]: adapter_id "), answer.text
        texts.append(answer.text)
    assert not fifo_was_opened(merging["outside"] / "adapter_model.safetensors", wait_s=0.5)
    assert all(SECRET not in text for text in texts)
