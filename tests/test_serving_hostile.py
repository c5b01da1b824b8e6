"""`llmbench serve` attacked as a hostile tenant would (issue 18), replayed against the session's
one real server (tests/conftest.py `served`: the tiny model, alpha/beta/gamma, two loaded).

What must hold: an adapter that cannot be served is refused and changes nobody's answers
afterwards; no request, however big, slow or oddly spelt, stalls the others, grows the server
or gets past the admission count; every odd input is a one-line 4xx, never a 500; no absolute
path of the server leaves it. The first tests need no server and run in the main environment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from serving_fixtures import ANSWERS, TRAIN_PROMPTS, server_pid  # noqa: I001 - tests/ is on sys.path

from llmbench.serving.adapters import (
    AdapterCache,
    AdapterError,
    canonical_adapter_id,
    check_adapter_name,
    resolve_adapter,
)
from llmbench.serving.limits import RequestLimits

PROMPT = TRAIN_PROMPTS[0]
GREEDY = {"max_new_tokens": 16}
# A prompt of about 90 tokens, as in the NaN replay (it fills several KV-cache blocks).
LONG_PROMPT = " ".join(TRAIN_PROMPTS * 4)
ONE_LINE_4XX = (400, 404, 408, 413, 422)


# ---- names (fast, no server) ------------------------------------------------------------------


def _fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.mark.parametrize("spelling", ["alpha", "./alpha", "alpha/", "alpha/.", "./././alpha"])
def test_every_spelling_of_a_folder_has_one_canonical_name(tmp_path, spelling):
    _fake_adapter(tmp_path / "alpha")
    folder = resolve_adapter(tmp_path, spelling, None)
    assert canonical_adapter_id(tmp_path, folder, spelling, None) == "alpha"


def test_a_symlink_inside_the_root_and_a_ludwig_layout_name_their_folder(tmp_path):
    _fake_adapter(tmp_path / "alpha")
    (tmp_path / "link").symlink_to(tmp_path / "alpha")
    _fake_adapter(tmp_path / "gamma" / "model" / "model_weights")
    for spelling, canonical in [("link", "alpha"), ("gamma", "gamma"),
                                ("gamma/model/model_weights", "gamma")]:  # fmt: skip
        folder = resolve_adapter(tmp_path, spelling, None)
        assert canonical_adapter_id(tmp_path, folder, spelling, None) == canonical


@pytest.mark.parametrize(
    "adapter_id, problem",
    [
        ("a" * 10_000, "too long"),
        ("a/" + "b" * 300, "too long"),
        ("bad\udc80name", "not valid UTF-8"),
        (".", "the adapters root itself"),
        ("./", "the adapters root itself"),
    ],
)
def test_names_that_are_no_adapter_are_a_400_naming_why(tmp_path, adapter_id, problem):
    with pytest.raises(AdapterError, match=problem) as caught:
        check_adapter_name(adapter_id)
        resolve_adapter(tmp_path, adapter_id, None)
    assert caught.value.status == 400


def test_an_adapter_whose_files_changed_is_reloaded_once_its_users_finish():
    events = []

    async def load(name, int_id, path):
        events.append(("load", int_id))

    async def unload(int_id):
        events.append(("unload", int_id))

    async def scenario():
        cache = AdapterCache(2, load, unload)
        old = await cache.acquire("a", Path("a"), ("v1",))
        waiting = asyncio.create_task(cache.acquire("a", Path("a"), ("v2",)))
        await asyncio.sleep(0.05)
        held_back = not waiting.done()  # the old copy is still in use
        await cache.release(old)
        new = await waiting
        return held_back, new.int_id

    held_back, new_id = asyncio.run(scenario())
    assert held_back and new_id == 2
    assert events == [("load", 1), ("unload", 1), ("load", 2)]


def test_a_load_that_fails_leaves_nothing_behind():
    async def load(name, int_id, path):
        if name == "bad":
            raise AdapterError(400, "invalid_adapter", "no")

    async def noop(*args):
        pass

    async def scenario():
        cache = AdapterCache(1, load, noop)
        for _ in range(2):
            with pytest.raises(AdapterError):
                await cache.acquire("bad", Path("bad"))
        good = await cache.acquire("good", Path("good"))
        return list(cache.loaded), cache.loads, good.in_use

    assert asyncio.run(scenario()) == (["good"], 1, 1)


def _asgi_post(
    app, chunks: list[bytes], declared: int | None = None, complete: bool = True
) -> tuple[int, dict, bytes]:
    """POST `chunks` to an ASGI app directly (with `complete` False the client then stalls);
    returns (status, headers, body) of its answer."""
    headers = [(b"content-length", str(declared).encode())] if declared is not None else []
    scope = {"type": "http", "method": "POST", "path": "/generate", "headers": headers}
    last = len(chunks) - 1 if complete else len(chunks)
    messages = [{"type": "http.request", "body": c, "more_body": i < last}
                for i, c in enumerate(chunks)]  # fmt: skip
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that sends nothing more

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


async def _echo(scope, receive, send):
    body = (await receive())["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_request_limits_pass_a_body_within_the_limit_whole():
    app = RequestLimits(_echo, max_body_bytes=10, read_timeout_s=5)
    assert _asgi_post(app, [b"12345", b"67890"], declared=10) == (200, {}, b"1234567890")


@pytest.mark.parametrize("declared", [11, None])
def test_request_limits_refuse_a_body_over_the_limit_declared_or_streamed(declared):
    app = RequestLimits(_echo, max_body_bytes=10, read_timeout_s=5)
    status, headers, body = _asgi_post(app, [b"123456", b"789012"], declared=declared)
    assert status == 413 and b"connection" not in headers  # the rest is read and dropped
    error = json.loads(body)
    assert error["error_type"] == "payload_too_large" and "10 bytes" in error["error"]


def test_request_limits_answer_a_stalled_body_with_408_and_close():
    app = RequestLimits(_echo, max_body_bytes=100, read_timeout_s=0.2)
    status, headers, body = _asgi_post(app, [b'{"inputs": '], declared=50, complete=False)
    assert status == 408 and headers[b"connection"] == b"close"
    assert json.loads(body)["error_type"] == "timeout"


# ---- the real server (slow) -------------------------------------------------------------------


def _post(url: str, path: str, body, timeout: float = 60, **kwargs):
    import requests

    data = json.dumps(body) if isinstance(body, (dict, list)) else body  # else text or chunks
    headers = {"content-type": "application/json"} | kwargs.pop("headers", {})
    return requests.post(url + path, data=data, timeout=timeout, headers=headers, **kwargs)


def _generate(url: str, adapter_id: str | None, prompt: str = PROMPT, **parameters) -> str:
    body = {"inputs": prompt, "parameters": GREEDY | parameters | {"adapter_id": adapter_id}}
    answer = _post(url, "/generate", body)
    assert answer.status_code == 200, (adapter_id, answer.text)
    return answer.json()["generated_text"]


def _metric(url: str, name: str) -> float:
    import requests

    text = requests.get(url + "/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name)))


def _save_safetensors(folder: Path, tensors: dict, config: dict) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def hostile(served):
    """Bad adapters beside alpha/beta/gamma under the server's root; returns the URL, their
    names and what the base model and each good adapter answer alone."""
    import torch
    from safetensors.torch import load_file

    root, alpha = served["root"], served["root"] / "alpha"
    config = json.loads((alpha / "adapter_config.json").read_text(encoding="utf-8"))
    good = load_file(str(alpha / "adapter_model.safetensors"))
    # Made for a base with hidden size 256 (the tiny base has 128).
    wide = {k: torch.zeros(8, 256) if "lora_A" in k else torch.zeros(256, 8) for k in good}
    _save_safetensors(root / "bad-shape", wide, config)
    (root / "bad-shape-bin").mkdir()
    shutil.copy(alpha / "adapter_config.json", root / "bad-shape-bin")
    torch.save(wide, root / "bad-shape-bin" / "adapter_model.bin")
    poisoned = {k: v.clone() for k, v in good.items()}
    next(iter(poisoned.values()))[0, 0] = float("nan")
    _save_safetensors(root / "nan", poisoned, config)
    # A module the base lacks.
    _save_safetensors(root / "no-module", {k.replace("q_proj", "qkv_proj"): v
                                           for k, v in good.items()}, config)  # fmt: skip
    # Rank 32 over the server's --max-lora-rank 16: only vLLM refuses it, inside add_lora.
    deep = {k: torch.zeros(32, 128) if "lora_A" in k else torch.zeros(128, 32) for k in good}
    _save_safetensors(root / "rank-32", deep, config | {"r": 32, "lora_alpha": 64})
    shutil.copytree(root / "beta", root / "ünï日本")
    shutil.copytree(root / "beta", root / "with space")
    (root / "alpha-link").symlink_to("alpha", target_is_directory=True)
    url = served["url"]
    alone = {name: _generate(url, name) for name in (None, "alpha", "beta")}
    alone_long = {name: _generate(url, name, LONG_PROMPT) for name in (None, "alpha")}
    assert alone["alpha"] == ANSWERS["alpha"] and alone["beta"] == ANSWERS["beta"]
    return {"url": url, "alone": alone, "alone_long": alone_long, "served": served}


def _batched(url: str, names, prompt: str = PROMPT) -> list[tuple[str | None, str]]:
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda name: (name, _generate(url, name, prompt)), names))


BAD_ADAPTERS = {
    "bad-shape": "has shape [8, 256], but the base model's",
    "bad-shape-bin": "has shape [8, 256], but the base model's",
    "nan": "holds Inf or NaN values",
    "no-module": "targets module 'qkv_proj', which the base model lacks",
    "rank-32": "could not be loaded",
}


@pytest.mark.slow
@pytest.mark.parametrize("bad", list(BAD_ADAPTERS))
def test_a_refused_adapter_changes_no_other_answer_batched_or_alone(hostile, bad):
    url, alone = hostile["url"], hostile["alone"]
    for _ in range(2):  # a second try must not find a half-loaded copy either
        answer = _post(url, "/generate", {"inputs": LONG_PROMPT, "parameters": {"adapter_id": bad}})
        assert answer.status_code == 400, answer.text
        assert BAD_ADAPTERS[bad] in answer.json()["error"]
        assert "\n" not in answer.json()["error"]
    # Base and adapter requests batched together answer as each alone ...
    together = _batched(url, [None, "alpha", "beta"] * 4)
    assert [(name, text) for name, text in together if text != alone[name]] == []
    # ... and so do requests one after another, short and long (the NaN replay: base
    # "Hello" answered "" 30 times running after one poisoned 90-token prompt).
    for name in (None, "alpha", "beta"):
        assert _generate(url, name) == alone[name]
    for name in (None, "alpha"):
        assert _generate(url, name, LONG_PROMPT) == hostile["alone_long"][name]
    hello = {_generate(url, None, "Hello") for _ in range(30)}
    assert len(hello) == 1 and hello != {""}
    assert _metric(url, "llmbench_adapters_loaded") <= 2


@pytest.mark.slow
def test_300_concurrent_adapter_requests_are_held_to_the_admission_count(hostile):
    """128 admitted at most (LoRAX's default), base and adapter requests alike: the rest 429."""
    url = hostile["url"]
    names = ["alpha", "beta", "gamma"]  # three adapters, two fit: many wait for a place
    start = threading.Barrier(300)

    def ask(i: int):
        start.wait()
        body = {"inputs": PROMPT, "parameters": {"adapter_id": names[i % 3],
                "max_new_tokens": 64, "ignore_eos_token": True}}  # fmt: skip
        return names[i % 3], _post(url, "/generate", body, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(300) as pool:
        answers = list(pool.map(ask, range(300)))
    statuses = [a.status_code for _, a in answers]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    # Any 429 came while 128 were admitted, and those 128 were then answered in full.
    assert statuses.count(429) > 0 and statuses.count(200) >= 128
    for name, answer in answers:
        if answer.status_code == 200:
            assert answer.json()["generated_text"].startswith(ANSWERS[name])
        else:
            assert answer.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    assert _metric(url, "llmbench_requests_in_flight") == 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# The server process's resident memory may grow by at most this much over the big requests
# (the bodies are refused unread, or dropped as soon as they pass the 2 MB limit).
RSS_GROWTH_BOUND_MB = 100


@pytest.mark.slow
def test_a_10_mb_request_is_refused_at_once_and_nobody_waits_for_it(hostile):
    url = hostile["url"]
    pid = server_pid(url)
    before = _rss_mb(pid)
    huge = json.dumps({"inputs": "word " * 2_000_000, "parameters": {"max_new_tokens": 2}})
    big = json.dumps({"inputs": "word " * 390_000, "parameters": {"max_new_tokens": 2}})
    results: dict[str, object] = {}

    def chunks(text: str):  # no Content-Length: refused as soon as 2 MB have been read
        for i in range(0, len(text), 1 << 20):
            yield text[i : i + (1 << 20)].encode()

    def attack():
        results["declared"] = _post(url, "/generate", huge)
        results["chunked"] = _post(url, "/generate", chunks(huge))
        results["under_limit"] = _post(url, "/generate", big)  # 1.95 MB: tokens over the context

    def latency() -> float:
        started = time.perf_counter()
        assert _generate(url, None, "Hello", max_new_tokens=2)
        return time.perf_counter() - started

    quiet = max(latency() for _ in range(5))
    attacker = threading.Thread(target=attack)
    attacker.start()
    latencies = []
    while attacker.is_alive() or len(latencies) < 5:
        latencies.append(latency())
    attacker.join()
    for name in ("declared", "chunked"):
        assert results[name].status_code == 413, results[name].text
        assert results[name].json()["error_type"] == "payload_too_large"
        assert "--max-body-bytes" in results[name].json()["error"]
    assert results["under_limit"].status_code == 422
    assert "must be <= 1024" in results["under_limit"].json()["error"]
    # Under 1 s, or (on a machine busy with other work) no worse than twice the same request's
    # slowest time just before.
    assert max(latencies) < max(1.0, 2 * quiet), (quiet, latencies)
    assert _rss_mb(pid) - before < RSS_GROWTH_BOUND_MB, (before, _rss_mb(pid))


@pytest.mark.slow
def test_aliases_of_one_adapter_share_one_loaded_copy_and_one_label(hostile):
    import requests

    url = hostile["url"]
    assert _generate(url, "alpha") == ANSWERS["alpha"]
    loads = _metric(url, "llmbench_adapter_loads_total")
    spellings = ["./alpha", "alpha/", "alpha/.", "alpha-link"] + [
        "./" * k + "alpha" for k in range(1, 97)
    ]
    for spelling in spellings:
        assert _generate(url, spelling) == ANSWERS["alpha"], spelling
    assert _metric(url, "llmbench_adapter_loads_total") == loads
    labels = [line for line in requests.get(url + "/metrics", timeout=10).text.splitlines()
              if line.startswith("llmbench_requests_by_adapter_total{")]  # fmt: skip
    assert not [line for line in labels if "./" in line or "alpha-link" in line or "alpha/" in line]


ODD_BODIES = {
    "temperature Infinity": '{"inputs": "x", "parameters": {"temperature": Infinity}}',
    "repetition_penalty Infinity": '{"inputs": "x", "parameters": '
    '{"repetition_penalty": Infinity}}',
    "temperature NaN": '{"inputs": "x", "parameters": {"temperature": NaN, "do_sample": true}}',
    "empty stop sequence": {"inputs": "x", "parameters": {"stop": [""]}},
    "top_k 1e20": {"inputs": "x", "parameters": {"top_k": 1e20}},
    "top_k 2^40": {"inputs": "x", "parameters": {"top_k": 2**40}},
    "seed 2^64": {"inputs": "x", "parameters": {"seed": 2**64}},
    "max_new_tokens as a string": {"inputs": "x", "parameters": {"max_new_tokens": "5"}},
    "max_new_tokens true": {"inputs": "x", "parameters": {"max_new_tokens": True}},
    "inputs a number": {"inputs": 5},
    "inputs a lone surrogate": '{"inputs": "x\\udc80y"}',
    "adapter_id of 10 KB": {"inputs": "x", "parameters": {"adapter_id": "a" * 10_000}},
    "adapter_id a lone surrogate": '{"inputs": "x", "parameters": {"adapter_id": "\\udc80"}}',
    "adapter_id '.'": {"inputs": "x", "parameters": {"adapter_id": "."}},
    "adapter_id with a NUL": {"inputs": "x", "parameters": {"adapter_id": "al\u0000pha"}},
    "body not JSON": "{'inputs': 'x'}",
    "body a list": "[1, 2]",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ODD_BODIES))
def test_every_odd_input_is_a_one_line_4xx(hostile, case):
    answer = _post(hostile["url"], "/generate", ODD_BODIES[case])
    assert answer.status_code in ONE_LINE_4XX, answer.text
    error = answer.json()
    assert set(error) == {"error", "error_type"} and error["error"]
    assert "\n" not in error["error"] and str(hostile["served"]["root"]) not in error["error"]


@pytest.mark.slow
def test_the_openai_routes_refuse_odd_inputs_the_same_way(hostile):
    url = hostile["url"]
    for body in (
        '{"prompt": "x", "temperature": Infinity}',
        {"prompt": "x", "stop": ""},
        {"prompt": "x", "max_tokens": "5"},
        {"prompt": "x", "seed": 2**64},
        {"prompt": "x", "model": "."},
    ):
        answer = _post(url, "/v1/completions", body)
        assert answer.status_code in ONE_LINE_4XX, (body, answer.text)
        assert "\n" not in answer.json()["error"]


@pytest.mark.slow
@pytest.mark.parametrize("adapter_id", ["ünï日本", "with space"])
def test_any_folder_name_works_end_to_end_with_its_header_encoded(hostile, adapter_id):
    url = hostile["url"]
    body = {"inputs": PROMPT, "parameters": GREEDY | {"adapter_id": adapter_id}}
    for path in ("/generate", "/generate_stream"):
        answer = _post(url, path, body)
        assert answer.status_code == 200, answer.text
        assert unquote(answer.headers["x-adapter-id"]) == adapter_id
    assert answer.text.rstrip().endswith("}")
    assert _generate(url, adapter_id) == ANSWERS["beta"]
    chat = _post(url, "/v1/completions", {"model": adapter_id, "prompt": PROMPT, "max_tokens": 16})
    assert chat.json()["choices"][0]["text"] == ANSWERS["beta"]


@pytest.mark.slow
def test_no_absolute_path_of_the_server_reaches_a_client(hostile):
    import requests

    url, served = hostile["url"], hostile["served"]
    texts = [requests.get(url + "/info", timeout=10).text]
    for adapter_id in ("rank-32", "nan", "nobody", "../x", "escape"):
        texts.append(
            _post(url, "/generate", {"inputs": "x", "parameters": {"adapter_id": adapter_id}}).text
        )
    texts.append(_post(url, "/v1/completions", {"prompt": "x", "max_tokens": 2}).text)
    for text in texts:
        for path in (served["root"], served["base"], served["root"].parent):
            assert str(path) not in text, text
    assert requests.get(url + "/info", timeout=10).json()["model_id"] == served["base"].name


def _send_and_wait(url: str, payload: bytes, wait_s: float) -> bytes:
    name, port = url.removeprefix("http://").split(":")
    with socket.create_connection((name, int(port)), timeout=wait_s + 10) as sock:
        sock.sendall(payload)
        started, got = time.monotonic(), b""
        while time.monotonic() - started < wait_s + 10:
            chunk = sock.recv(65536)
            if not chunk:
                return got  # the server closed the connection
            got += chunk
    raise AssertionError(f"the server kept {payload[:40]!r} open for {wait_s + 10} s")


@pytest.mark.slow
def test_clients_that_stall_are_cut_off_while_others_are_served(hostile):
    url = hostile["url"]
    host = url.removeprefix("http://")
    stalls = {
        "nothing sent": b"",
        "half the headers": f"POST /generate HTTP/1.1\r\nHost: {host}\r\n".encode(),
        "half the body": f"POST /generate HTTP/1.1\r\nHost: {host}\r\ncontent-type: "
        f'application/json\r\ncontent-length: 100\r\n\r\n{{"inputs": '.encode(),
    }
    with concurrent.futures.ThreadPoolExecutor(len(stalls)) as pool:
        cut = {
            name: pool.submit(_send_and_wait, url, payload, 10) for name, payload in stalls.items()
        }
        assert _generate(url, "beta") == ANSWERS["beta"]  # others are served meanwhile
        answers = {name: future.result() for name, future in cut.items()}
    assert answers["nothing sent"] == answers["half the headers"] == b""
    assert answers["half the body"].startswith(b"HTTP/1.1 408")


COUNTS = (
    "lorax_request_count",
    "lorax_request_generated_tokens_sum",
    "llmbench_requests_abandoned_total",
    "llmbench_requests_in_flight",
)


@pytest.mark.slow
def test_a_client_that_leaves_a_non_streaming_request_stops_its_generation(hostile):
    """1,000 tiny-model tokens take seconds on this machine (2.6 to 4.7 s measured, quiet); the
    client hangs up once its generation has started (the request counted), and the generation
    must stop: the request is counted as abandoned, none of its tokens as generated."""
    url = hostile["url"]
    host = url.removeprefix("http://")
    before = {name: _metric(url, name) for name in COUNTS}
    body = json.dumps({"inputs": PROMPT, "parameters": {"max_new_tokens": 1000,
                       "ignore_eos_token": True}}).encode()  # fmt: skip
    head = (f"POST /generate HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    name, port = host.split(":")
    with socket.create_connection((name, int(port))) as leaving:
        leaving.sendall(head + body)
        sent = time.monotonic()
        while _metric(url, "lorax_request_count") == before["lorax_request_count"]:
            assert time.monotonic() - sent < 10, "the request never started generating"
            time.sleep(0.01)
    left = time.monotonic()
    while _metric(url, "llmbench_requests_abandoned_total") == before[COUNTS[2]]:
        assert time.monotonic() - left < 5, "the server never saw the client leave"
        time.sleep(0.05)
    after = {name: _metric(url, name) for name in COUNTS}
    assert after[COUNTS[2]] == before[COUNTS[2]] + 1
    assert (
        after["lorax_request_generated_tokens_sum"] == before["lorax_request_generated_tokens_sum"]
    )
    assert after["llmbench_requests_in_flight"] == before["llmbench_requests_in_flight"]
    assert _generate(url, "beta") == ANSWERS["beta"]


@pytest.mark.slow
def test_an_adapter_folder_replaced_in_place_serves_its_new_weights_at_once(hostile):
    url, root = hostile["url"], hostile["served"]["root"]
    shutil.copytree(root / "alpha", root / "replaced")
    assert _generate(url, "replaced") == ANSWERS["alpha"]
    shutil.rmtree(root / "replaced")
    shutil.copytree(root / "beta", root / "replaced")
    assert _generate(url, "replaced") == ANSWERS["beta"]
    # The same file rewritten in place (same inode): its size or mtime changes with it.
    weights = root / "replaced" / "adapter_model.safetensors"
    weights.write_bytes((root / "alpha" / "adapter_model.safetensors").read_bytes())
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert _generate(url, "replaced") == ANSWERS["alpha"]
