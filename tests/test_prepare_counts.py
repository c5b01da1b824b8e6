"""`llmbench prepare` holds each split's row count to the study's (the card's split_counts): one
warning line per difference, the counts in a manifest beside the table, `--strict` exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prepare_helpers import copy_fixture  # noqa: I001 - tests/ is on sys.path

from llmbench.cli import main
from llmbench.prepare.tables import manifest_path, prepared_path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_prepare(capsys, *argv: str) -> tuple[int, list[str]]:
    status = main(["prepare", *argv])
    return status, capsys.readouterr().err.splitlines()


def test_a_count_that_differs_from_the_study_is_one_warning_line(tmp_path, capsys):
    source = copy_fixture("gsm8k", tmp_path)  # a copy is an upstream like any other
    status, lines = run_prepare(
        capsys, "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path / "out")
    )
    assert status == 0
    assert lines == [
        "warning: gsm8k train: 16 rows; the study had 7,473",
        "warning: gsm8k test: 6 rows; the study had 1,319",
    ]


def test_the_manifest_beside_the_table_holds_the_source_and_both_counts(tmp_path, capsys):
    source = copy_fixture("gsm8k", tmp_path)
    run_prepare(capsys, "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path))
    manifest = json.loads(manifest_path("gsm8k", tmp_path).read_text(encoding="utf-8"))
    assert manifest == {
        "task": "gsm8k",
        "card_version": 1,
        "source": str(source.resolve()),
        "rows": {"train": 16, "test": 6},
        "study_rows": {"train": 7473, "test": 1319},
    }
    assert manifest_path("gsm8k", tmp_path).parent == prepared_path("gsm8k", tmp_path).parent


def test_a_split_the_study_gives_no_count_for_is_recorded_not_compared(tmp_path, capsys):
    source = copy_fixture("magicoder", tmp_path)
    status, lines = run_prepare(
        capsys, "--task", "magicoder", "--source", str(source), "--runs", str(tmp_path / "out")
    )
    assert status == 0
    assert lines == ["warning: magicoder train: 16 rows; the study had 75,197"]
    manifest = json.loads(manifest_path("magicoder", tmp_path / "out").read_text())
    assert manifest["study_rows"] == {"train": 75197, "test": None}


def test_the_fixture_is_not_held_to_the_studys_counts(tmp_path, capsys):
    status, lines = run_prepare(
        capsys, "--task", "gsm8k", "--fixture", "--strict", "--runs", str(tmp_path)
    )
    assert status == 0 and lines == []
    assert json.loads(manifest_path("gsm8k", tmp_path).read_text())["rows"] == {
        "train": 16,
        "test": 6,
    }


def test_strict_makes_a_difference_exit_2_and_keeps_the_previous_table(tmp_path, capsys):
    assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(tmp_path)]) == 0
    table, manifest = prepared_path("gsm8k", tmp_path), manifest_path("gsm8k", tmp_path)
    before = (table.read_bytes(), manifest.read_bytes())
    capsys.readouterr()
    source = copy_fixture("gsm8k", tmp_path / "copy")
    status, lines = run_prepare(
        capsys, "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path), "--strict"
    )
    assert status == 2
    assert lines == [
        "error: gsm8k train: 16 rows; the study had 7,473 (--strict: every count must be the "
        "study's)",
        "error: gsm8k test: 6 rows; the study had 1,319 (--strict: every count must be the "
        "study's)",
    ]
    assert (table.read_bytes(), manifest.read_bytes()) == before
    assert sorted(p.name for p in table.parent.iterdir()) == [
        "gsm8k.manifest.json",
        "gsm8k.parquet",
    ]


@pytest.mark.shared_data
def test_real_gsm8k_has_the_studys_counts_so_strict_passes_silently(tmp_path, capsys):
    source = SHARED_DATA / "gsm8k"
    if not source.is_dir():
        pytest.skip(f"{source} is absent: the real upstream copies live in ../shared/data")
    status, lines = run_prepare(
        capsys, "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path), "--strict"
    )
    assert status == 0 and lines == []
    manifest = json.loads(manifest_path("gsm8k", tmp_path).read_text())
    assert manifest["rows"] == manifest["study_rows"] == {"train": 7473, "test": 1319}
