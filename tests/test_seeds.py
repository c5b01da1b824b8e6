"""Training seeds (a bake-off's `seeds`): each seed its own job, folder and adapter id, seed 1
the one from before seeds existed; the report's spread across seeds beside seed 1's interval.
(The bake-off's `seeds` key and a real two-seed run: tests/test_bakeoff.py.)"""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest
from test_intervals import write_run

from llmbench.report.document import report
from llmbench.train.sweep import Manifest, plan_jobs
from llmbench.workdir import Workdir, adapter_id, seed_of


def test_seed_one_keeps_the_plain_adapter_id_and_folder_and_seed_k_gets_its_own():
    work = Workdir("runs")
    assert adapter_id("tiny", "glue_sst2", 1) == adapter_id("tiny", "glue_sst2") == "tiny/glue_sst2"
    assert adapter_id("tiny", "glue_sst2", 3) == "tiny/glue_sst2-seed3"
    assert work.train_output("tiny", "glue_sst2", 1) == work.train / "tiny" / "glue_sst2"
    assert work.train_output("tiny", "glue_sst2", 3) == work.train / "tiny" / "glue_sst2-seed3"
    for seed in (1, 2, 10):
        assert seed_of(adapter_id("tiny", "glue_sst2", seed), "tiny", "glue_sst2") == seed


@pytest.mark.parametrize(
    "adapter", ["tiny/glue_sst2-v2", "tiny/glue_sst2-seed1", "tiny/glue_sst2-seed02", "tiny/boolq"]
)
def test_an_adapter_of_another_name_is_no_seed_of_the_job(adapter):
    assert seed_of(adapter, "tiny", "glue_sst2") is None


def test_each_seed_is_a_job_of_the_same_config_in_its_own_folder(tmp_path):
    # a study model's committed config: nothing is built or rendered
    jobs = plan_jobs(["mistral-7b"], ["glue_sst2", "gsm8k"], tmp_path, seeds={"glue_sst2": 3})
    assert [(j.key, j.seed) for j in jobs] == [
        ("mistral-7b/glue_sst2", 1),
        ("mistral-7b/glue_sst2-seed2", 2),
        ("mistral-7b/glue_sst2-seed3", 3),
        ("mistral-7b/gsm8k", 1),
    ]
    assert len({(j.config, j.config_sha256) for j in jobs[:3]}) == 1
    assert [j.output for j in jobs[:3]] == [
        str(Workdir(tmp_path).train_output("mistral-7b", "glue_sst2", s)) for s in (1, 2, 3)
    ]


def test_a_manifest_from_before_seeds_reads_as_seed_one(tmp_path):
    path = tmp_path / "manifest.json"
    record = {
        "model": "tiny", "task": "gsm8k", "config": "c.yaml", "dataset": "d.parquet",
        "output": "out", "state": "done",
    }  # fmt: skip
    path.write_text(json.dumps({"version": 1, "jobs": {"tiny/gsm8k": record}}))
    job = Manifest.load(path).jobs["tiny/gsm8k"]
    assert (job.seed, job.key) == (1, "tiny/gsm8k")


@pytest.fixture
def seeded_runs(tmp_path):
    """tiny/glue_sst2 trained with three seeds, right on 60, 70 and 50 of the same 100 rows
    where the base model is right on 40; tiny/gsm8k with one seed."""
    root = tmp_path / "runs"
    write_run(root, "glue_sst2", {i: float(i % 10 < 4) for i in range(100)})
    for seed, right in ((1, 6), (2, 7), (3, 5)):
        scores = {i: float(i % 10 < right) for i in range(100)}
        write_run(root, "glue_sst2", scores, adapter_id("tiny", "glue_sst2", seed))
    write_run(root, "gsm8k", {i: 0.5 for i in range(50)})
    write_run(root, "gsm8k", {i: 0.6 for i in range(50)}, "tiny/gsm8k")
    return root


def test_the_main_column_is_seed_one_never_the_best_seed(seeded_runs, tmp_path):
    result = report(seeded_runs, tmp_path / "out")
    assert result.table.ft.at["glue_sst2", "tiny"] == pytest.approx(0.6)  # not seed 2's 0.7
    assert result.table.adapters[("glue_sst2", "tiny")] == "tiny/glue_sst2"


def test_cells_csv_gives_the_spread_across_seeds_beside_the_interval(seeded_runs, tmp_path):
    report(seeded_runs, tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index(["task", "model"])
    sst2 = cells.loc[("glue_sst2", "tiny")]
    sd = statistics.stdev([0.6, 0.7, 0.5])
    assert sst2[["seeds", "ft_seed_mean", "ft_seed_sd", "ft_seed_min", "ft_seed_max"]].tolist() == (
        pytest.approx([3, 0.6, sd, 0.5, 0.7])
    )
    assert sst2[["lift_seed_mean", "lift_seed_sd", "lift_seed_min", "lift_seed_max"]].tolist() == (
        pytest.approx([0.2, sd, 0.1, 0.3])
    )
    assert sst2["ft_low"] < 0.6 < sst2["ft_high"]  # seed 1's bootstrap interval, beside
    one = cells.loc[("gsm8k", "tiny")]  # one seed: its score, no SD
    assert one[["seeds", "ft_seed_mean", "ft_seed_min"]].tolist() == pytest.approx([1, 0.6, 0.6])
    assert math.isnan(one["ft_seed_sd"])


def test_table12_csv_carries_the_seed_columns_only_when_a_cell_has_several(seeded_runs, tmp_path):
    report(seeded_runs, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "table12.csv").set_index("task")
    assert table.at["glue_sst2", "tiny_seeds"] == 3
    assert table.at["glue_sst2", "tiny_ft_seed_max"] == pytest.approx(0.7)
    for seed in (2, 3):
        (seeded_runs / "eval" / "tiny" / "glue_sst2" / f"tiny__glue_sst2-seed{seed}").rename(
            tmp_path / f"aside{seed}"
        )
    report(seeded_runs, tmp_path / "one")
    assert "tiny_seeds" not in pd.read_csv(tmp_path / "one" / "table12.csv").columns


def test_table12_md_marks_the_cell_and_shows_the_spread_beside_seed_ones_interval(
    seeded_runs, tmp_path
):
    result = report(seeded_runs, tmp_path / "out")
    text = (tmp_path / "out" / "table12.md").read_text()
    main_row = next(line for line in text.splitlines() if line.startswith("| glue_sst2 |"))
    assert main_row.split("|")[2].strip().endswith("· 3 seeds")
    seeds = text.split("## Seeds", 1)[1]
    row = next(line for line in seeds.splitlines() if line.startswith("| glue_sst2 |"))
    cell = result.intervals.cells[("glue_sst2", "tiny")]
    sd = statistics.stdev([0.6, 0.7, 0.5])
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "glue_sst2",
        "tiny",
        "1, 2, 3",
        f"0.600 {cell.ft.text()}",
        f"mean 0.600, SD {sd:.3f}, 0.500 to 0.700",
        f"+0.200 {cell.lift.text('+.3f')}",
        f"mean +0.200, SD {sd:.3f}, +0.100 to +0.300",
    ]
    assert "never the best seed" in seeds


def test_report_prints_the_adapters_scores_across_seeds(seeded_runs, tmp_path, capsys):
    from llmbench.cli import main

    assert main(["report", "--runs", str(seeded_runs), "--out", str(tmp_path / "out")]) == 0
    sd = statistics.stdev([0.6, 0.7, 0.5])
    assert f"mean 0.600, SD {sd:.3f}, 0.500 to 0.700" in capsys.readouterr().out
