"""Fetching upstreams into the layout each task reads, with the hub replaced by local rows.

Only `datasets.load_dataset` is stood in for (it would download); everything after it, from the
real `datasets.Dataset` to the prepared table, is the code users run. GitHub archives and
Kaggle downloads go over real HTTP to servers on loopback: one standing in for
codeload.github.com, one for Kaggle's API (the real Kaggle client, in its local mode).
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import zipfile

import pytest
from hub_standin import HubStandIn, write_repo

import datasets
from llmbench.errors import LLMBenchError
from llmbench.prepare.fetch import unzip_all
from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared
from llmbench.tasks.cards import get_card


def jsonl_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fixture_rows(dataset_id: str, config: str | None, split: str) -> list[dict]:
    """What the hub would give for one split of the tasks tested here: their fixture rows."""
    if dataset_id == "openai/openai_humaneval":
        path = fixture_source(get_card("magicoder")) / "HumanEval.jsonl"
    elif dataset_id == "ise-uiuc/Magicoder-OSS-Instruct-75K":
        path = fixture_source(get_card("magicoder")) / "data-oss_instruct-decontaminated.jsonl"
    elif dataset_id == "allenai/ai2_arc":
        path = fixture_source(get_card("arc_combined")) / config / f"{split}.jsonl"
    else:
        task = {"nyu-mll/glue": "glue_sst2"}[dataset_id]
        path = fixture_source(get_card(task)) / f"{split}.jsonl"
    return jsonl_rows(path)


# The hub repositories (id: {config: splits}) behind the three hub tasks tested here.
HUB_REPOS = {
    "nyu-mll/glue": {"sst2": ("train", "validation")},
    "allenai/ai2_arc": {c: ("train", "validation", "test") for c in ("ARC-Challenge", "ARC-Easy")},
    "ise-uiuc/Magicoder-OSS-Instruct-75K": {"default": ("train",)},
    "openai/openai_humaneval": {"default": ("test",)},
}


@pytest.fixture
def online(monkeypatch):
    """A hub that serves each task's fixture rows; records what was asked for."""
    asked = []

    def load_dataset(dataset_id, config=None, split=None):
        asked.append((dataset_id, config, split))
        return datasets.Dataset.from_list(fixture_rows(dataset_id, config, split))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    return asked


@pytest.mark.parametrize("task", ["glue_sst2", "arc_combined", "magicoder"])
def test_a_fetched_upstream_prepares_like_the_local_copy(task, online, tmp_path):
    fetched = prepare_task(task, out_dir=tmp_path / "fetched", progress=False)
    local = prepare_task(
        task, source=fixture_source(get_card(task)), out_dir=tmp_path / "local", progress=False
    )
    assert fetched.counts == local.counts
    assert read_prepared(task, tmp_path / "fetched").equals(read_prepared(task, tmp_path / "local"))
    assert (tmp_path / "fetched" / "upstream" / task / ".complete").is_file()


def test_arc_fetches_both_configs(online, tmp_path):
    prepare_task("arc_combined", out_dir=tmp_path, progress=False)
    assert {config for _, config, _ in online} == {"ARC-Challenge", "ARC-Easy"}


def test_a_fetch_is_done_once(online, tmp_path):
    prepare_task("glue_sst2", out_dir=tmp_path, progress=False)
    count = len(online)
    prepare_task("glue_sst2", out_dir=tmp_path, progress=False)
    assert len(online) == count


def test_offline_without_a_source_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LLMBenchError, match="offline.*--source PATH"):
        prepare_task("glue_sst2", out_dir=tmp_path, progress=False)


def test_nested_kaggle_zips_are_all_extracted(tmp_path):
    inner = tmp_path / "build" / "train.csv.zip"
    inner.parent.mkdir()
    with zipfile.ZipFile(inner, "w") as handle:
        handle.writestr("train.csv", "id,comment_text,toxic\n1,hello,0\n")
    with zipfile.ZipFile(tmp_path / "competition.zip", "w") as handle:
        handle.write(inner, "train.csv.zip")
    unzip_all(tmp_path)
    assert (tmp_path / "train.csv").read_text().startswith("id,comment_text,toxic")


@pytest.fixture
def github(monkeypatch, tmp_path):
    """A loopback server answering GitHub's archive URLs with `archives[repo]` (tar.gz bytes)."""
    archives: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            repo = self.path.removeprefix("/").removesuffix("/tar.gz/HEAD")
            body = archives.get(repo)
            self.send_response(200 if body else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv(
        "LLMBENCH_GITHUB_ARCHIVE", f"http://127.0.0.1:{server.server_port}/{{repo}}/tar.gz/HEAD"
    )
    yield archives
    server.shutdown()


def github_archive(folder, top: str) -> bytes:
    """`folder` packed as GitHub packs a repository: everything under one `top` folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=top)
    return buffer.getvalue()


def test_a_github_upstream_is_fetched_over_http_and_prepares_like_the_local_copy(github, tmp_path):
    card = get_card("customer_support")
    github[card.source["id"]] = github_archive(fixture_source(card), "harper-valley-0a1b2c3")
    fetched = prepare_task(card.name, out_dir=tmp_path / "fetched", progress=False)
    local = prepare_task(card.name, source=fixture_source(card), out_dir=tmp_path / "local",
                         progress=False)  # fmt: skip
    assert fetched.counts == local.counts
    assert read_prepared(card.name, tmp_path / "fetched").equals(
        read_prepared(card.name, tmp_path / "local")
    )


def test_a_missing_github_repository_is_one_line_and_leaves_nothing_prepared(github, tmp_path):
    with pytest.raises(LLMBenchError, match=r"customer_support: http://127\.0\.0\.1:\d+/.*404"):
        prepare_task("customer_support", out_dir=tmp_path, progress=False)
    assert not (tmp_path / "prepared" / "customer_support.parquet").exists()
    assert not (tmp_path / "upstream" / "customer_support" / ".complete").exists()


def test_an_unreachable_github_mirror_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("LLMBENCH_GITHUB_ARCHIVE", "http://127.0.0.1:9/{repo}.tar.gz")
    with pytest.raises(LLMBenchError, match="customer_support: .* unreachable .*--source PATH"):
        prepare_task("customer_support", out_dir=tmp_path, progress=False)


def test_a_half_finished_fetch_is_started_over(github, tmp_path):
    card = get_card("customer_support")
    stale = tmp_path / "upstream" / card.name / "stale" / "data" / "transcript" / "zzz.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("not json")
    github[card.source["id"]] = github_archive(fixture_source(card), "harper-valley-0a1b2c3")
    prepare_task(card.name, out_dir=tmp_path, progress=False)
    assert not stale.exists()


@pytest.fixture
def kaggle(monkeypatch, tmp_path):
    """The real Kaggle client against a stand-in of its API on loopback (its own `--local` mode).

    As Kaggle does, a download request is answered with a redirect to a storage URL, which
    serves the zip; `bundles[slug]` holds each zip's bytes. Records the API calls.
    """
    from kaggle.api.kaggle_api_extended import KaggleApi

    bundles: dict[str, bytes] = {}
    calls: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            calls.append({"path": self.path, "body": body, "auth": self.headers["authorization"]})
            slug = body.get("datasetSlug") or body.get("competitionName")
            self.send_response(302)
            self.send_header("location", f"/storage/{slug}.zip?signature=0a1b")
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self):
            slug = self.path.split("?")[0].removeprefix("/storage/").removesuffix(".zip")
            data = bundles.get(slug)
            self.send_response(200 if data else 404)
            self.send_header("content-type", "application/zip")
            self.send_header("content-length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    try:  # the client's local mode talks to http://localhost, port 80
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 80), Handler)
    except OSError as exc:
        pytest.skip(f"cannot listen on port 80 for the Kaggle stand-in: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(KaggleApi, "args", ["--local"])
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kaggle of the user's
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    yield bundles, calls
    server.shutdown()
    server.server_close()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("task", ["covid", "legal", "jigsaw"])
def test_a_kaggle_upstream_is_fetched_through_the_kaggle_client(kaggle, task, tmp_path):
    bundles, calls = kaggle
    card = get_card(task)
    files = {f.name: f.read_bytes() for f in sorted(fixture_source(card).iterdir())}
    slug = card.source["id"].split("/")[-1]
    if card.source["id"].startswith("c/"):  # a competition's bundle holds one zip per file
        bundles[slug] = zip_of({f"{n}.zip": zip_of({n: data}) for n, data in files.items()})
    else:
        bundles[slug] = zip_of(files)
    fetched = prepare_task(task, out_dir=tmp_path / "fetched", progress=False)
    local = prepare_task(task, source=fixture_source(card), out_dir=tmp_path / "local",
                         progress=False)  # fmt: skip
    assert fetched.counts == local.counts
    assert read_prepared(task, tmp_path / "fetched").equals(read_prepared(task, tmp_path / "local"))
    assert len(calls) == 1 and calls[0]["auth"].startswith("Basic ")
    service = "competitions" if card.source["id"].startswith("c/") else "datasets"
    assert calls[0]["path"].startswith(f"/api/v1/{service}.")


def test_a_kaggle_dataset_the_api_does_not_have_is_one_line(kaggle, tmp_path):
    with pytest.raises(LLMBenchError, match="task covid: .*404.*--source PATH"):
        prepare_task("covid", out_dir=tmp_path, progress=False)
    assert not (tmp_path / "prepared" / "covid.parquet").exists()


def prepare_from_hub(hub: HubStandIn, task: str, tmp_path):
    """`llmbench prepare --task T` as a user runs it, with the hub at `hub.url`, in a fresh
    process (huggingface_hub reads its endpoint and offline mode once, at import)."""
    env = os.environ | {
        "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
    }  # fmt: skip
    command = [sys.executable, "-c", "import sys; from llmbench.cli import main; sys.exit(main())",
               "prepare", "--task", task, "--runs", str(tmp_path / "fetched")]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def hub(tmp_path):
    repos = {
        repo: write_repo(tmp_path / "hub" / repo, {
            config: {split: fixture_rows(repo, config, split) for split in splits}
            for config, splits in configs.items()
        })
        for repo, configs in HUB_REPOS.items()
    }  # fmt: skip
    standin = HubStandIn(repos)
    yield standin
    standin.close()


@pytest.mark.parametrize("task", ["glue_sst2", "arc_combined", "magicoder"])
def test_a_hub_upstream_is_fetched_through_datasets_over_http(hub, task, tmp_path):
    done = prepare_from_hub(hub, task, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    local = tmp_path / "local"
    prepare_task(task, source=fixture_source(get_card(task)), out_dir=local, progress=False)
    assert read_prepared(task, tmp_path / "fetched").equals(read_prepared(task, local))
    assert any(r.endswith("-00000-of-00001.parquet") and r.startswith("GET /datasets/")
               for r in hub.requests), hub.requests  # fmt: skip


def test_a_dataset_the_hub_does_not_have_is_one_line_and_exit_2(tmp_path):
    empty = HubStandIn({})
    try:
        done = prepare_from_hub(empty, "glue_sst2", tmp_path)
    finally:
        empty.close()
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert "task glue_sst2: nyu-mll/glue (sst2), split " in errors[0]
    assert errors[0].endswith("give --source PATH")
    assert not (tmp_path / "fetched" / "prepared" / "glue_sst2.parquet").exists()
