"""Fetching upstreams into the layout each task reads, with the services replaced by local ones.

The first tests stand in for `datasets.load_dataset` only (it would download); everything after
it, from the real `datasets.Dataset` to the prepared table, is the code users run. The rest go
over real HTTP to servers on loopback: the hub stand-in (tests/hub_standin.py, for both routes of
the Hugging Face tasks, `load_dataset` and the Parquet export), one standing in for
codeload.github.com, and one for Kaggle's API (the real Kaggle client, in its local mode).
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
from hub_standin import EXPORT, REVISION, HubStandIn, write_export, write_repo

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


# --- each Hugging Face task's online route, through the hub stand-in --------------------------

# The route each task's prepare.py names: `load_dataset` on a script-free repository (no `fetch`
# of its own: the default), or the hub's Parquet export (fetch = fetch_parquet_export).
EXPORT_TASKS = (
    "bc5cdr",
    "conllpp",
    "e2e_nlg",
    "hellaswag",
    "hellaswag_processed",
    "reuters",
    "tldr_content_gen",
    "tldr_headline_gen",
    "viggo",
    "webnlg",
    "wikisql",
    "winogrande",
)
DATASET_TASKS = (
    *(f"glue_{name}" for name in ("cola", "mnli", "mrpc", "qnli", "qqp", "sst2", "stsb", "wnli")),
    "boolq",
    "dbpedia",
    "drop",
    "gsm8k",
    "mmlu",
)
CUSTOM_TASKS = ("arc_combined", "magicoder")  # load_dataset too, over several configs or ids


def hf_task_names() -> list[str]:
    from llmbench.tasks.cards import load_cards

    return sorted(name for name, c in load_cards().items() if c.source["kind"] == "hf")


def test_every_hub_task_has_one_tested_route():
    routes = (*EXPORT_TASKS, *DATASET_TASKS, *CUSTOM_TASKS)
    assert sorted(routes) == hf_task_names()


@pytest.mark.parametrize("task", [*EXPORT_TASKS, *DATASET_TASKS])
def test_a_task_names_its_route_in_its_prepare_py(task):
    from llmbench.prepare.fetch import fetch_parquet_export
    from llmbench.prepare.task_code import task_module

    fetch = getattr(task_module(task), "fetch", None)
    assert fetch is (fetch_parquet_export if task in EXPORT_TASKS else None)


def blocks(path, delimiter=None) -> list[list[list[str]]]:
    """The sentences of a CoNLL/IOB file as lists of fields (-DOCSTART- lines dropped)."""
    found, block = [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip() and not line.startswith("-DOCSTART-"):
            block.append(line.split(delimiter))
        elif block:
            found, block = [*found, block], []
    return found


def token_rows(path, delimiter, labels, tag_column) -> list[dict]:
    return [
        {"tokens": [f[0] for f in b], tag_column: [labels.index(f[-1]) for f in b]}
        for b in blocks(path, delimiter)
    ]


def csv_rows(path) -> list[dict]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def hub_split_rows(task: str, split: str) -> list[dict]:
    """One upstream split of the task as the hub holds it, made from the task's fixture (a
    publisher-format fixture turned into the Hugging Face columns its reader takes)."""
    from llmbench.prepare.task_code import task_module

    fixture = fixture_source(get_card(task))
    named = {"train": "train", "validation": "dev", "test": "test"}
    if task == "conllpp":
        code = task_module(task)
        path = fixture / f"conllpp_{named[split]}.txt"
        return token_rows(path, None, code.HF_LABELS, "ner_tags")
    if task == "bc5cdr":
        path = (
            fixture / {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}[split]
        )
        return token_rows(path, "\t", task_module(task).TNER_LABELS, "tags")
    if task == "e2e_nlg":
        path = fixture / {"train": "trainset.csv", "validation": "devset.csv"}.get(
            split, "testset_w_refs.csv"
        )
        return [
            {"meaning_representation": r["mr"], "human_reference": r["ref"]} for r in csv_rows(path)
        ]
    if task == "viggo":
        path = (
            fixture / {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}[split]
        )
        return [
            {"meaning_representation": r["mr"], "target": r["ref"], "references": [r["ref"]]}
            for r in csv_rows(path)
        ]
    if task.startswith("tldr_"):
        code = {"train": "0", "test": "2"}[split]
        rows = csv_rows(fixture_source(get_card("tldr_content_gen")) / "tldr_news_full.csv")
        return [
            {"headline": r["headline"], "content": r["content"], "category": 0}
            for r in rows
            if r["split"] == code
        ]
    return jsonl_rows(fixture / f"{split}.jsonl")


def hub_layout(task: str) -> tuple[str, str, dict[str, list[dict]]]:
    """(dataset id, config, {upstream split: rows}) the hub stand-in serves for the task."""
    from llmbench.prepare.fetch import upstream_split_names

    card = get_card(task)
    splits = {s: hub_split_rows(task, s) for s in upstream_split_names(card)}
    return card.source["id"], card.source.get("config") or "default", splits


@pytest.fixture
def routes_hub(tmp_path):
    """The stand-in: the export-route datasets only as Parquet exports (their main branch would
    hold a loading script), the others as script-free repositories."""
    layouts: dict[tuple[bool, str], dict] = {}  # (export?, dataset id) -> {config: splits}
    for task in (*EXPORT_TASKS, *DATASET_TASKS):
        dataset_id, config, splits = hub_layout(task)
        layouts.setdefault((task in EXPORT_TASKS, dataset_id), {})[config] = splits
    datasets_ = {
        repo: write_repo(tmp_path / "hub" / repo, configs)
        for (export, repo), configs in layouts.items()
        if not export
    }
    exports = {
        repo: write_export(tmp_path / "export" / repo, configs)
        for (export, repo), configs in layouts.items()
        if export
    }
    standin = HubStandIn(datasets_, exports=exports)
    yield standin
    standin.close()


def prepare_all_from_hub(hub: HubStandIn, tasks, runs) -> subprocess.CompletedProcess:
    """Every task fetched and prepared in one fresh process, with the hub at `hub.url`."""
    env = os.environ | {
        "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
        "HF_HOME": str(runs / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
    }  # fmt: skip
    script = (
        "import sys\nfrom llmbench.errors import LLMBenchError\n"
        "from llmbench.prepare.tables import prepare_task\n"
        "for task in sys.argv[2:]:\n"
        "    try:\n        prepare_task(task, out_dir=sys.argv[1], progress=False)\n"
        "    except LLMBenchError as exc:\n        print('FAILED', exc)\n"
    )
    command = [sys.executable, "-c", script, str(runs), *tasks]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_each_hub_task_is_fetched_by_the_route_it_names(routes_hub, tmp_path):
    tasks = (*EXPORT_TASKS, *DATASET_TASKS)
    done = prepare_all_from_hub(routes_hub, tasks, tmp_path / "fetched")
    assert done.returncode == 0 and "FAILED" not in done.stdout, done.stdout + done.stderr[-2000:]
    for task in tasks:
        local = tmp_path / "local" / task
        prepare_task(task, source=fixture_source(get_card(task)), out_dir=local, progress=False)
        fetched = read_prepared(task, tmp_path / "fetched")
        assert fetched.equals(read_prepared(task, local)), task
    asked = routes_hub.requests
    for task in tasks:
        dataset_id, config, splits = hub_layout(task)
        if task in EXPORT_TASKS:
            for split in splits:
                wanted = (
                    f"GET /datasets/{dataset_id}/resolve/{EXPORT}/{config}/{split}/0000.parquet"
                )
                assert wanted in asked, (task, wanted)
            # Nothing of the main branch (where the loading script would be) was read.
            assert not any(
                r.startswith(f"GET /datasets/{dataset_id}/resolve/{REVISION}") for r in asked
            )
        else:
            for split in splits:
                wanted = f"/{config}/{split}-00000-of-00001.parquet"
                assert any(
                    r.startswith(f"GET /datasets/{dataset_id}/resolve/") and r.endswith(wanted)
                    for r in asked
                ), (task, wanted)


def test_an_export_with_several_configs_and_none_named_is_one_line(tmp_path):
    export = write_export(
        tmp_path / "export", {"a": {"train": [{"x": 1}]}, "b": {"train": [{"x": 2}]}}
    )
    hub = HubStandIn({}, exports={"JulesBelveze/tldr_news": export})
    try:
        done = prepare_from_hub(hub, "tldr_content_gen", tmp_path)
    finally:
        hub.close()
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert "JulesBelveze/tldr_news: its Parquet export has configs a, b" in errors[0]


def test_docs_list_each_hub_tasks_route():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"
    listed = {}
    for line in docs.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith(("load_dataset", "Parquet export")):
            listed |= {task: cells[1].split(" (")[0] for task in cells[0].split(", ")}
    expected = {t: "Parquet export" for t in EXPORT_TASKS}
    expected |= {t: "load_dataset" for t in (*DATASET_TASKS, *CUSTOM_TASKS)}
    assert listed == expected
