"""The work directory: one owner of every path under `--runs`, and of the adapter id."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.harness import EvalSettings, run_dir
from llmbench.prepare.stats import stats_path
from llmbench.prepare.tables import manifest_path, prepared_path
from llmbench.tasks.models import get_model
from llmbench.workdir import Workdir, adapter_id

PACKAGE = Path(__file__).resolve().parents[1] / "llmbench"
# The work directory's folders: only llmbench/workdir.py joins them onto a path.
FOLDERS = {
    "upstream", "prepared", "stats", "models", "configs", "train", "eval", "complexity",
    "correlate", "report", "report-paper", "loadtest",
}  # fmt: skip


def test_every_stage_finds_its_files_where_the_layout_says(tmp_path):
    work = Workdir(tmp_path)
    assert work.prepared("gsm8k") == tmp_path / "prepared" / "gsm8k.parquet"
    assert work.prepared_manifest("gsm8k") == tmp_path / "prepared" / "gsm8k.manifest.json"
    assert work.upstream("gsm8k") == tmp_path / "upstream" / "gsm8k"
    assert work.token_stats == tmp_path / "stats" / "token_stats.csv"
    assert work.configs == tmp_path / "configs"
    assert work.train_manifest == tmp_path / "train" / "manifest.json"
    assert work.complexity("validation") == tmp_path / "complexity" / "validation.csv"
    assert work.correlation("study") == tmp_path / "correlate" / "study"
    assert (work.report, work.report_paper) == (tmp_path / "report", tmp_path / "report-paper")
    assert work.loadtest == tmp_path / "loadtest"


def test_the_adapter_id_is_the_sweep_jobs_folder_under_the_served_root(tmp_path):
    work = Workdir(tmp_path)
    assert adapter_id("tiny", "gsm8k") == "tiny/gsm8k"
    assert work.train_output("tiny", "gsm8k") == work.train / adapter_id("tiny", "gsm8k")


def test_an_eval_run_files_adapter_ids_flat_and_the_base_model_as_base(tmp_path):
    work = Workdir(tmp_path)
    assert work.eval_run("tiny", "gsm8k", "tiny/gsm8k") == tmp_path / "eval/tiny/gsm8k/tiny__gsm8k"
    assert work.eval_run("tiny", "gsm8k", None) == tmp_path / "eval/tiny/gsm8k/base"
    # a served model named by a hub id stays one folder, so the report's glob still finds it
    assert work.eval_run("org/model", "gsm8k", None) == tmp_path / "eval/org__model/gsm8k/base"


def test_a_local_base_model_lives_where_the_registry_says_under_the_work_directory(tmp_path):
    tiny, mistral = get_model("tiny"), get_model("mistral-7b")
    work = Workdir(tmp_path)
    assert work.local_model(tiny) == tmp_path / "models" / "tiny"
    assert work.base_model(tiny) == str((tmp_path / "models" / "tiny").resolve())
    assert work.base_model(mistral) == mistral.hub_id
    with pytest.raises(LLMBenchError, match="model mistral-7b: not built locally"):
        work.local_model(mistral)


def test_the_older_helpers_agree_with_the_workdir(tmp_path):
    work = Workdir(tmp_path)
    assert prepared_path("gsm8k", tmp_path) == work.prepared("gsm8k")
    assert manifest_path("gsm8k", tmp_path) == work.prepared_manifest("gsm8k")
    assert stats_path(tmp_path) == work.token_stats
    settings = EvalSettings(task="gsm8k", endpoint="", model="tiny", adapter_id="tiny/gsm8k")
    assert run_dir(settings, tmp_path) == work.eval_run("tiny", "gsm8k", "tiny/gsm8k")


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda w: w.prepared("../../etc/passwd"), "task '../../etc/passwd'"),
        (lambda w: w.prepared(".."), "task '..'"),
        (lambda w: w.eval_run("tiny", "gsm8k", ".."), "adapter id '..'"),
        (lambda w: w.eval_run("..", "gsm8k", None), "model '..'"),
        (lambda w: w.eval_run("tiny", "a/../../b", None), "task 'a/../../b'"),
        (lambda w: w.train_output("tiny", "/etc"), "task '/etc'"),
        (lambda w: w.upstream("nul\0byte"), "task 'nul\\x00byte'"),
        (lambda w: w.complexity("../x"), "split '../x'"),
        (lambda w: adapter_id("..", "gsm8k"), "model '..'"),
    ],
    ids=["climbs", "dot-dot", "adapter", "model", "nested", "absolute", "nul", "split", "id"],
)
def test_a_name_that_would_leave_the_work_directory_is_one_line_error(tmp_path, build, named):
    with pytest.raises(LLMBenchError) as caught:
        build(Workdir(tmp_path))
    (problem,) = caught.value.problems
    assert problem.startswith(named) and "inside the work directory" in problem
    assert "\n" not in problem


def test_a_registry_local_path_outside_the_work_directory_is_refused(tmp_path):
    model = SimpleNamespace(name="sneaky", local_path="../../home", hub_id=None)
    with pytest.raises(LLMBenchError, match="model sneaky: local_path '../../home' leads out"):
        Workdir(tmp_path).local_model(model)


def test_eval_with_a_hostile_adapter_id_exits_2_and_writes_nothing_outside(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(runs)]) == 0
    capsys.readouterr()
    before = sorted(tmp_path.rglob("*"))
    status = main(
        [
            "eval", "--task", "gsm8k", "--endpoint", "http://127.0.0.1:9", "--model", "tiny",
            "--adapter-id", "..", "--runs", str(runs),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "adapter id '..'" in err
    assert sorted(tmp_path.rglob("*")) == before


def _folder_joins(path: Path) -> list[str]:
    """`<something> / "<work-directory folder>"` expressions in one module, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value in FOLDERS
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_module_but_workdir_joins_a_work_directory_folder():
    joins = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "workdir.py"
        for hit in _folder_joins(path)
    ]
    assert not joins, f"paths under the work directory built outside Workdir: {', '.join(joins)}"


def test_the_folder_check_sees_a_join(tmp_path):
    probe = tmp_path / "llmbench" / "probe.py"
    probe.parent.mkdir()
    probe.write_text('from pathlib import Path\nPath("runs") / "eval"\n')
    global PACKAGE
    saved, PACKAGE = PACKAGE, probe.parent
    try:
        assert _folder_joins(probe) == ["llmbench/probe.py:2"]
    finally:
        PACKAGE = saved
