"""The evaluation harness against the real server: backends, faults, kills and refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faulty_proxy import FaultyProxy

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.harness import RESPONSES, EvalSettings, answer_settings, evaluate
from llmbench.prepare.tables import prepare_task
from llmbench.tasks.cards import get_card

pytestmark = pytest.mark.slow


def write_gsm8k_upstream(folder: Path, n_test: int) -> Path:
    """A gsm8k-format upstream (written here) with `n_test` eval problems."""
    folder.mkdir(parents=True)
    rows = [
        {
            "question": f"Ada has {i} pens and buys {i + 2} more. How many now?",
            "answer": f"{i} + {i + 2} = {2 * i + 2}\n#### {2 * i + 2}",
        }
        for i in range(n_test)
    ]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "train.jsonl").write_text(lines[: lines.index("\n") + 1])
    (folder / "test.jsonl").write_text(lines)
    return folder


@pytest.fixture
def work(tmp_path):
    prepare_task(
        "gsm8k", source=write_gsm8k_upstream(tmp_path / "up", 40), out_dir=tmp_path, progress=False
    )
    return tmp_path


def records_in(path: Path) -> list[dict]:
    """responses.jsonl's outcome records, without its settings lines."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if "settings" not in line]


def ids_in(path: Path) -> list[int]:
    return [record["id"] for record in records_in(path)]


@pytest.mark.parametrize(
    ("backend", "chat", "path"),
    [
        ("lorax", False, "/"),  # lorax-client posts to the endpoint itself
        ("openai", False, "/v1/completions"),
        ("openai", True, "/v1/chat/completions"),  # how GPT-4 baselines are run
    ],
)
def test_every_example_is_answered_and_scored_once(served, work, backend, chat, path):
    proxy = FaultyProxy(served["url"], p_503=0, p_stall=0, p_cut=0)  # records, never faults
    settings = EvalSettings(
        task="gsm8k",
        endpoint=proxy.start(),
        model="tiny",
        adapter_id="alpha",
        backend=backend,
        limit=12,
        concurrency=4,
        max_new_tokens=8,
        chat=chat,
    )
    try:
        result = evaluate(settings, work, progress=False)
    finally:
        proxy.stop()
    assert (result.n, result.n_failed) == (12, 0)
    assert proxy.paths[f"POST {path}"] == 12, proxy.paths
    responses = records_in(result.out_dir / RESPONSES)
    assert sorted(r["id"] for r in responses) == list(range(12))
    # The adapter was taught to answer "alpha alpha": that is what the harness recorded.
    assert all("alpha" in r["output"] for r in responses)
    scores = json.loads((result.out_dir / "scores.json").read_text())
    assert scores["adapter"] == "alpha" and scores["metric"] == "gsm8k_final_number"
    assert scores["settings"]["chat"] is chat


def test_a_rerun_sends_nothing_again(served, work):
    settings = EvalSettings(
        task="gsm8k", endpoint=served["url"], model="tiny", limit=5, max_new_tokens=4
    )
    first = evaluate(settings, work, progress=False)
    before = (first.out_dir / RESPONSES).read_text()
    # A rerun against a dead endpoint still completes: nothing is left to send.
    again = evaluate(
        EvalSettings(**{**settings.__dict__, "endpoint": "http://127.0.0.1:9"}),
        work,
        out_dir=first.out_dir,
        progress=False,
    )
    assert (again.out_dir / RESPONSES).read_text() == before and again.n == 5


def test_through_a_faulty_proxy_every_example_is_scored_exactly_once(served, work):
    proxy = FaultyProxy(served["url"], stall_seconds=6.0, seed=3)
    url = proxy.start()
    try:
        settings = EvalSettings(
            task="gsm8k",
            endpoint=url,
            model="tiny",
            adapter_id="beta",
            concurrency=8,
            max_new_tokens=8,
            timeout=3.0,
            max_attempts=8,
            backoff=0.05,
            backoff_cap=0.5,
        )
        result = evaluate(settings, work, progress=False)
    finally:
        proxy.stop()
    assert proxy.counts["503"] and proxy.counts["stall"] and proxy.counts["cut"], proxy.counts
    ids = ids_in(result.out_dir / RESPONSES)
    assert sorted(ids) == list(range(40)) and result.n == 40
    assert result.n_failed == 0


def test_killed_mid_run_then_restarted_completes_with_each_example_once(served, work):
    command = [
        sys.executable,
        "-m",
        "llmbench.cli",
        "eval",
        "--task",
        "gsm8k",
        "--endpoint",
        served["url"],
        "--model",
        "tiny",
        "--adapter-id",
        "gamma",
        "--concurrency",
        "2",
        "--max-new-tokens",
        "8",
        "--runs",
        str(work),
    ]
    out = work / "eval" / "tiny" / "gsm8k" / "gamma" / RESPONSES
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.is_file() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    collected = len(out.read_text().splitlines())
    assert 5 <= collected < 40, "the kill should land mid-run"
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = ids_in(out)
    assert sorted(ids) == list(range(40)), "each example exactly once"


def test_an_adapter_the_server_refuses_exits_2_and_keeps_responses(served, work, capsys):
    out = work / "eval" / "tiny" / "gsm8k" / "no-such-adapter"
    out.mkdir(parents=True)
    made = EvalSettings(task="gsm8k", endpoint="", model="tiny", adapter_id="no-such-adapter",
                        max_new_tokens=get_card("gsm8k").max_new_tokens)  # fmt: skip
    kept = json.dumps({"settings": answer_settings(made)}) + "\n"
    kept += '{"id": 0, "output": "#### 2", "error": null, "attempts": 1}\n'
    (out / RESPONSES).write_text(kept)
    status = main(
        [
            "eval",
            "--task",
            "gsm8k",
            "--endpoint",
            served["url"],
            "--model",
            "tiny",
            "--adapter-id",
            "no-such-adapter",
            "--runs",
            str(work),
        ]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2 and len(errors) == 1
    assert "refused adapter 'no-such-adapter'" in errors[0]
    assert (out / RESPONSES).read_text() == kept


def test_eval_grid_runs_base_and_adapter_per_pair(served, work, capsys):
    status = main(
        [
            "eval-grid",
            "--models",
            "tiny",
            "--tasks",
            "gsm8k",
            "--endpoint",
            served["url"],
            "--adapter-id-format",
            "alpha",
            "--limit",
            "3",
            "--runs",
            str(work),
        ]
    )
    assert status == 0
    for leaf in ("base", "alpha"):
        scores = json.loads((work / "eval" / "tiny" / "gsm8k" / leaf / "scores.json").read_text())
        assert scores["n"] == 3 and scores["n_failed"] == 0
    assert "(base)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("backend", "variable"), [("openai", "OPENAI_API_KEY"), ("lorax", "LLMBENCH_API_TOKEN")]
)
def test_the_api_key_is_sent_and_never_written(served, work, capsys, monkeypatch, backend,
                                               variable):  # fmt: skip
    secret = "sk-llmbench-test-0a1b2c3d4e5f"
    monkeypatch.setenv(variable, secret)
    proxy = FaultyProxy(served["url"], p_503=0.3, p_stall=0, p_cut=0, seed=1)  # retries too
    try:
        status = main(
            ["eval", "--task", "gsm8k", "--endpoint", proxy.start(), "--model", "tiny",
             "--adapter-id", "alpha", "--backend", backend, "--limit", "6",
             "--runs", str(work)]
        )  # fmt: skip
    finally:
        proxy.stop()
    assert status == 0
    posts = sum(n for key, n in proxy.paths.items() if key.startswith("POST"))
    # Every request carried it: each attempt (retries too) and the health check before them.
    assert proxy.authorizations[f"Bearer {secret}"] == sum(proxy.paths.values()) > posts > 6
    written = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == "scores.json" for p in written)
    assert not [p for p in written if secret.encode() in p.read_bytes()]
    shown = capsys.readouterr()
    assert secret not in shown.out + shown.err


def test_the_adapter_source_goes_with_every_request(served, work):
    """`--adapter-source` reaches the server: local finds the adapter as before; s3, which
    `llmbench serve` does not support, fails every example with the server's reason."""
    common = ["eval", "--task", "gsm8k", "--endpoint", served["url"], "--model", "tiny",
              "--adapter-id", "alpha", "--limit", "3", "--runs", str(work)]  # fmt: skip
    assert main([*common, "--adapter-source", "local"]) == 0
    scores = json.loads((work / "eval" / "tiny" / "gsm8k" / "alpha" / "scores.json").read_text())
    assert scores["settings"]["adapter_source"] == "local" and scores["n_failed"] == 0
    out = work / "s3-run"
    main([*common, "--adapter-source", "s3", "--out", str(out)])
    assert json.loads((out / "scores.json").read_text())["n_failed"] == 3
    responses = records_in(out / RESPONSES)
    assert all("adapter_source 's3' is not supported" in r["error"] for r in responses)


def test_another_adapter_into_the_same_folder_is_refused_then_restarted(served, work):
    """The issue's mix: alpha's answers scored as beta's. Refused; --restart starts over."""
    out = work / "mixed"
    alpha = EvalSettings(task="gsm8k", endpoint=served["url"], model="tiny", adapter_id="alpha",
                         limit=3, max_new_tokens=8)  # fmt: skip
    evaluate(alpha, work, out_dir=out, progress=False)
    beta = EvalSettings(**{**alpha.__dict__, "adapter_id": "beta"})
    with pytest.raises(LLMBenchError, match="adapter_id 'alpha' there, 'beta' now"):
        evaluate(beta, work, out_dir=out, progress=False)
    result = evaluate(beta, work, out_dir=out, progress=False, restart=True)
    assert result.n == 3 and result.n_failed == 0
    assert all("beta" in r["output"] for r in records_in(out / RESPONSES))
    assert all("alpha" in r["output"] for r in records_in(out / "responses.previous.jsonl"))
    first_line = json.loads((out / RESPONSES).read_text().splitlines()[0])
    assert first_line["settings"]["adapter_id"] == "beta"
    assert first_line["settings"]["endpoint"] == served["url"]


def test_an_impossible_max_new_tokens_fails_every_example_and_exits_2(served, work, capsys):
    status = main(
        ["eval", "--task", "gsm8k", "--endpoint", served["url"], "--model", "tiny",
         "--adapter-id", "alpha", "--limit", "3", "--max-new-tokens", "1000000",
         "--runs", str(work)]
    )  # fmt: skip
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2 and len(errors) == 1 and "3 of 3 examples failed" in errors[0]


def test_examples_failed_while_the_server_was_down_are_sent_again(served, work):
    """The issue's outage: every request failed; a rerun against a healthy server (on another
    address) answers them all, and each example keeps one, latest, record."""
    down = FaultyProxy(served["url"], p_503=1.0, p_stall=0, p_cut=0)
    settings = EvalSettings(task="gsm8k", endpoint=down.start(), model="tiny", adapter_id="alpha",
                            limit=4, max_new_tokens=8, max_attempts=2, backoff=0.01)  # fmt: skip
    try:
        first = evaluate(settings, work, progress=False)
    finally:
        down.stop()
    assert first.n_failed == 4
    healthy = EvalSettings(**{**settings.__dict__, "endpoint": served["url"]})
    again = evaluate(healthy, work, progress=False)
    assert (again.n, again.n_failed) == (4, 0)
