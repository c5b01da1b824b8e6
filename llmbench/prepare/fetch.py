"""Fetch a task's upstream data into the work directory, in the format `read_rows` reads.

Only used when `llmbench prepare` gets no `--source`. Hugging Face datasets come by one of two
routes, both accepted by `datasets` 5 (which refuses loading scripts):
- `load_dataset` on a script-free repository (the default for `source.kind: hf`);
- the hub's Parquet export of the dataset (revision `refs/convert/parquet`), for datasets that
  still have a loading script: a task's prepare.py says `fetch = fetch_parquet_export`.
Kaggle datasets come through the Kaggle API (credentials from ~/.kaggle or the environment),
files of a GitHub repository as its archive (LLMBENCH_GITHUB_ARCHIVE names a mirror instead: a
URL with `{repo}` in it). Offline, it says to use `--source`.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.tasks.cards import TaskCard
from llmbench.workdir import Workdir

GITHUB_ARCHIVE = "https://codeload.github.com/{repo}/tar.gz/HEAD"
PARQUET_EXPORT = "refs/convert/parquet"


def fetch_upstream(card: TaskCard, out_dir: Path) -> Path:
    """Download the task's upstream once; return the folder `read_rows` takes as its source."""
    folder = Workdir(out_dir).upstream(card.name)
    if (folder / ".complete").is_file():
        return folder
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("LLMBENCH_OFFLINE") == "1":
        raise LLMBenchError(
            f"task {card.name}: offline, so its upstream ({card.dataset_link}) cannot be fetched; "
            f"give --source PATH (a local copy in the upstream format) or --fixture"
        )
    if folder.exists():  # an earlier fetch stopped half-way: start clean
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    kind = card.source["kind"]
    from llmbench.prepare.task_code import task_module

    custom = getattr(task_module(card.name, card.folder.parent), "fetch", None)
    fetchers = {"hf": _fetch_hf, "kaggle": _fetch_kaggle, "github": _fetch_github}
    if custom is None and kind not in fetchers:
        raise LLMBenchError(
            f"task {card.name}: source.kind local has nothing to fetch; give --source"
        )
    try:  # custom: a task whose upstream does not fit its kind's default layout
        (custom or fetchers[kind])(card, folder)
    except LLMBenchError as exc:  # the fetchers' errors say what failed; this says for what
        raise LLMBenchError(*(f"task {card.name}: {p}" for p in exc.problems)) from None
    (folder / ".complete").write_text("fetched\n")
    return folder


def load_hf_split(dataset_id: str, config: str | None, split: str):
    """One split of a Hugging Face dataset (a `datasets.Dataset`); any failure is one line."""
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # the hub client's and datasets' own types, network errors
        reason = _one_line(exc)[:300]
        named = dataset_id + (f" ({config})" if config else "")
        raise LLMBenchError(
            f"{named}, split {split}: could not be loaded from the Hugging Face hub ({reason}); "
            "give --source PATH"
        ) from None


def save_hf_split(dataset_id: str, config: str | None, split: str, path: Path) -> None:
    """One split of a Hugging Face dataset, saved as Parquet at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    load_hf_split(dataset_id, config, split).to_parquet(str(path))


def upstream_split_names(card: TaskCard) -> list[str]:
    """Every upstream split the card reads ('a+b' names two)."""
    return sorted({n for spec in card.source["splits"].values() for n in spec.split("+")})


def _fetch_hf(card: TaskCard, folder: Path) -> None:
    for name in upstream_split_names(card):
        save_hf_split(
            card.source["id"], card.source.get("config"), name, folder / f"{name}.parquet"
        )


def fetch_parquet_export(card: TaskCard, folder: Path) -> None:
    """Each upstream split from the hub's Parquet export, saved as `<folder>/<split>.parquet`.

    The export (revision refs/convert/parquet) holds `<config>/<split>/0000.parquet, 0001...`,
    written by the hub from the dataset as its loader reads it, so the rows are the ones
    `load_dataset` gave before loading scripts were refused. A card without a config takes the
    export's only one.
    """
    from huggingface_hub import HfApi

    api, dataset_id = HfApi(), card.source["id"]
    config = card.source.get("config") or _only_export_config(api, dataset_id)
    for split in upstream_split_names(card):
        where = f"{dataset_id} ({config}), split {split}"
        shards = _hub_call(where, lambda s=split: _export_shards(api, dataset_id, config, s))
        _join_parquet(shards, folder / f"{split}.parquet")


def _only_export_config(api, dataset_id: str) -> str:
    def configs() -> list[str]:
        tree = api.list_repo_tree(dataset_id, repo_type="dataset", revision=PARQUET_EXPORT)
        return sorted(entry.path for entry in tree if not entry.path.endswith((".md", ".json")))

    found = _hub_call(dataset_id, configs)
    if len(found) != 1:
        raise LLMBenchError(
            f"{dataset_id}: its Parquet export has configs {', '.join(found) or 'none'}; "
            "expected one, or source.config naming it"
        )
    return found[0]


def _export_shards(api, dataset_id: str, config: str, split: str) -> list[Path]:
    """The split's Parquet files of the export, downloaded (into the hub cache), in order."""
    from huggingface_hub import hf_hub_download

    tree = api.list_repo_tree(
        dataset_id, f"{config}/{split}", repo_type="dataset", revision=PARQUET_EXPORT
    )
    names = sorted(entry.path for entry in tree if entry.path.endswith(".parquet"))
    if not names:
        raise LLMBenchError(f"no Parquet files under {config}/{split} of the export")
    return [
        Path(hf_hub_download(dataset_id, name, repo_type="dataset", revision=PARQUET_EXPORT))
        for name in names
    ]


def _join_parquet(shards: list[Path], path: Path) -> None:
    """The shards' rows, in order, as one Parquet file (batch by batch: bounded memory)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pq.read_schema(shards[0])
    with pq.ParquetWriter(path, schema) as writer:
        for shard in shards:
            for batch in pq.ParquetFile(shard).iter_batches(batch_size=4096):
                writer.write_batch(batch)


def _hub_call(where: str, call):
    """`call()`, with any failure of the hub client as one line naming `where`."""
    try:
        return call()
    except LLMBenchError as exc:
        raise LLMBenchError(f"{where}: {exc.problems[0]}; give --source PATH") from None
    except Exception as exc:  # the hub client's own types, network errors
        raise LLMBenchError(
            f"{where}: could not be fetched from the Hugging Face hub's Parquet export "
            f"({_one_line(exc)[:300]}); give --source PATH"
        ) from None


def _fetch_kaggle(card: TaskCard, folder: Path) -> None:
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
    except Exception as exc:  # the Kaggle client raises its own types for missing credentials
        raise LLMBenchError(
            f"Kaggle API unavailable ({_one_line(exc)}); set KAGGLE_USERNAME/KAGGLE_KEY "
            "or give --source PATH"
        ) from None
    ident = card.source["id"]
    try:
        if ident.startswith("c/"):
            api.competition_download_files(ident.removeprefix("c/"), path=str(folder), quiet=True)
        else:
            api.dataset_download_files(ident, path=str(folder), unzip=True, quiet=True)
    except Exception as exc:  # requests' HTTPError, the client's own, a broken zip
        raise LLMBenchError(
            f"Kaggle download of {ident} failed ({_one_line(exc)}); give --source PATH"
        ) from None
    unzip_all(folder)


def unzip_all(folder: Path) -> None:
    """Extract every zip under `folder`, and the zips inside those (Kaggle nests them)."""
    import zipfile

    done: set[Path] = set()
    while pending := sorted(set(folder.rglob("*.zip")) - done):
        for archive in pending:
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(archive.parent)
            done.add(archive)


def _fetch_github(card: TaskCard, folder: Path) -> None:
    import requests

    url = os.environ.get("LLMBENCH_GITHUB_ARCHIVE", GITHUB_ARCHIVE).format(repo=card.source["id"])
    try:
        response = requests.get(url, timeout=300)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise LLMBenchError(f"{url} unreachable ({reason}); give --source PATH") from None
    if response.status_code != 200:
        raise LLMBenchError(f"{url} answered {response.status_code}; give --source PATH")
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        archive.extractall(folder, filter="data")


def _one_line(exc: Exception) -> str:
    """An exception's message on one line (its type when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
