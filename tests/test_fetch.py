"""Fetching upstreams into the layout each task reads, with the hub replaced by local rows.

Only `datasets.load_dataset` is stood in for (it would download); everything after it, from the
real `datasets.Dataset` to the prepared table, is the code users run.
"""

from __future__ import annotations

import json
import zipfile

import pytest

import datasets
from llmbench.errors import LLMBenchError
from llmbench.fetch import unzip_all
from llmbench.prepare import fixture_source, prepare_task, read_prepared
from llmbench.tasks import get_card


def jsonl_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def online(monkeypatch):
    """A hub that serves each task's fixture rows; records what was asked for."""
    asked = []

    def load_dataset(dataset_id, config=None, split=None):
        asked.append((dataset_id, config, split))
        if dataset_id == "openai/openai_humaneval":
            path = fixture_source(get_card("magicoder")) / "HumanEval.jsonl"
        elif dataset_id == "ise-uiuc/Magicoder-OSS-Instruct-75K":
            path = fixture_source(get_card("magicoder")) / "data-oss_instruct-decontaminated.jsonl"
        elif dataset_id == "allenai/ai2_arc":
            path = fixture_source(get_card("arc_combined")) / config / f"{split}.jsonl"
        else:
            task = {"nyu-mll/glue": "glue_sst2"}[dataset_id]
            path = fixture_source(get_card(task)) / f"{split}.jsonl"
        return datasets.Dataset.from_list(jsonl_rows(path))

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    return asked


@pytest.mark.parametrize("task", ["glue_sst2", "arc_combined", "magicoder"])
def test_a_fetched_upstream_prepares_like_the_local_copy(task, online, tmp_path):
    fetched = prepare_task(task, out_dir=tmp_path / "fetched", progress=False)
    local = prepare_task(task, source=fixture_source(get_card(task)), out_dir=tmp_path / "local",
                         progress=False)
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
