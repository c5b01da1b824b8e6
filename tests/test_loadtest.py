"""The load test against the real server: sweeps through both clients, accounting, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from llmbench.cli import main
from llmbench.loadtest.runner import COLUMNS, LoadSettings, run_loadtest

ADAPTERS = ("alpha", "beta", "gamma")


def short_sweep(url: str, backend: str) -> LoadSettings:
    return LoadSettings(
        endpoint=url,
        backend=backend,
        users=(1, 3),
        adapter_counts=(1, 3),
        adapter_ids=ADAPTERS,
        duration=2.0,
        ramp=0.5,
        input_words=(10, 20),
        max_new_tokens=(4, 8),
        think_time=0.2,
        timeout=30,
        seed=7,
        model="",
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["lorax", "openai"])
def test_a_short_sweep_accounts_for_every_request(served, tmp_path, backend):
    rows = run_loadtest(short_sweep(served["url"], backend), tmp_path)
    assert [(r["users"], r["adapters"]) for r in rows] == [(1, 1), (3, 1), (1, 3), (3, 3)]
    recorded = json.loads((tmp_path / "requests.json").read_text())["requests"]
    for row in rows:
        cell = [
            r for r in recorded if (r["users"], r["adapters"]) == (row["users"], row["adapters"])
        ]
        assert row["requests"] == len(cell) > 0 and row["error_rate"] == 0.0
        # The percentiles, checked by hand on the recorded requests.
        latencies = sorted(r["latency"] for r in cell)
        assert row["latency_p50"] == round(float(np.percentile(latencies, 50)), 4)
        assert row["latency_p90"] == round(float(np.percentile(latencies, 90)), 4)
        ttfts = [r["ttft"] for r in cell]
        assert all(
            t is not None and 0 < t <= lat
            for t, lat in zip(ttfts, (r["latency"] for r in cell), strict=True)
        )
        assert row["ttft_p99"] == round(float(np.percentile(ttfts, 99)), 4)
        # Each request names an adapter among the first N for its cell.
        assert {r["adapter_id"] for r in cell} <= set(ADAPTERS[: row["adapters"]])
        assert all(r["tokens"] >= 1 for r in cell)
    assert {r["users"] for r in recorded} == {1, 3}
    for name in ("throughput.png", "latency_p90.png"):
        with Image.open(tmp_path / name) as image:
            image.verify()
    assert (tmp_path / "summary.md").read_text().startswith("| users | adapters |")


@pytest.mark.slow
def test_the_adapter_source_goes_with_every_adapter_request(served, tmp_path):
    from dataclasses import replace

    from llmbench.errors import LLMBenchError

    settings = replace(short_sweep(served["url"], "lorax"), users=(1,), adapter_counts=(1,),
                       duration=1.0)  # fmt: skip
    rows = run_loadtest(replace(settings, adapter_source="local"), tmp_path / "local")
    assert rows[0]["requests"] > 0 and rows[0]["error_rate"] == 0.0
    # `llmbench serve` has no s3: the server's refusal shows the source was sent.
    with pytest.raises(LLMBenchError, match="warm-up for adapter 'alpha' failed.*'s3'"):
        run_loadtest(replace(settings, adapter_source="s3"), tmp_path / "s3")


@pytest.mark.slow
def test_the_printed_table_and_summary_md_have_the_runners_columns(served, tmp_path, capsys):
    argv = ["loadtest", "--endpoint", served["url"], "--users", "1", "--adapter-ids", "alpha",
            "--duration", "1", "--ramp", "0", "--think-time", "0", "--input-words", "5",
            "--max-new-tokens", "4", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "ttft_p99" in COLUMNS
    header = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert header == "| " + " | ".join(COLUMNS) + " |"
    # rich draws one rule per column border; a folded cell keeps every border on its lines
    table = [line for line in capsys.readouterr().out.splitlines() if "│" in line or "┃" in line]
    assert table and all(line.count("│") + line.count("┃") == len(COLUMNS) + 1 for line in table), (
        table
    )


def test_remote_endpoints_are_refused_before_any_traffic(capsys):
    status = main(["loadtest", "--endpoint", "http://203.0.113.7:8080", "--health-timeout", "1"])
    assert status == 2 and "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--users", "0"], "--users: '0': expected integers >= 1"),
        (["--input-words", "110-90"], "--input-words: '110-90' is not a range"),
        (["--max-new-tokens", "x"], "--max-new-tokens: 'x' is not a range"),
        (["--adapters", "3", "--adapter-ids", "a"], "asks for 3 adapters but 1 adapter id"),
    ],
)
def test_malformed_settings_exit_2(argv, message, capsys):
    status = main(["loadtest", "--endpoint", "http://127.0.0.1:9", "--health-timeout", "1", *argv])
    assert status == 2 and message in capsys.readouterr().err


def test_an_unreachable_endpoint_exits_2(capsys):
    status = main(["loadtest", "--endpoint", "http://127.0.0.1:9", "--health-timeout", "1"])
    assert status == 2 and "not healthy within 1 s" in capsys.readouterr().err


@pytest.mark.slow
def test_64_streaming_clients_for_60_seconds_leave_the_server_healthy(served, tmp_path):
    import requests

    settings = LoadSettings(
        endpoint=served["url"],
        users=(64,),
        adapter_counts=(3,),
        adapter_ids=ADAPTERS,
        duration=60.0,
        ramp=1.0,
        input_words=(10, 30),
        max_new_tokens=(8, 16),
        think_time=0.0,
        timeout=60,
        seed=11,
    )
    (row,) = run_loadtest(settings, tmp_path)
    recorded = json.loads((tmp_path / "requests.json").read_text())["requests"]
    assert row["requests"] == len(recorded) > 64
    assert row["error_rate"] == 0.0, {r["error"] for r in recorded if r["error"]}
    # No dropped stream: every request streamed its tokens to the end.
    assert all(r["tokens"] >= 1 and r["ttft"] is not None for r in recorded)
    assert requests.get(served["url"] + "/health", timeout=10).status_code == 200
    answer = requests.post(
        served["url"] + "/generate",
        timeout=30,
        json={"inputs": "Hello", "parameters": {"adapter_id": "alpha", "max_new_tokens": 8}},
    )
    assert answer.status_code == 200
