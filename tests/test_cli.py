"""The command line: each subcommand's output, and bad input as one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmbench.cli import main
from llmbench.paths import DATASETS_DIR


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_help_is_instant_because_heavy_imports_wait():
    heavy = "('torch', 'ludwig', 'pandas')"
    code = f"import sys, llmbench.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tasks_list_shows_every_task_with_metric_and_counts(capsys):
    status, out, _ = run(capsys, "tasks", "list")
    assert status == 0 and "31 tasks" in out
    assert "glue_mnli" in out and "392702" in out and "first_number_accuracy" in out


def test_tasks_show_prints_the_prompt_template(capsys):
    status, out, _ = run(capsys, "tasks", "show", "gsm8k")
    assert status == 0 and "### Problem:\n{question}" in out and "gsm8k_final_number" in out


def test_tasks_show_unknown_task(capsys):
    status, _, err = run(capsys, "tasks", "show", "gsm8")
    assert status == 2 and err.strip() == (
        "error: unknown task 'gsm8' (did you mean 'gsm8k'?); available: "
        + ", ".join(sorted(p.parent.name for p in DATASETS_DIR.glob("*/metadata.yaml")))
    )


def test_tasks_validate_accepts_the_shipped_cards(capsys):
    status, out, _ = run(capsys, "tasks", "validate")
    assert status == 0 and "31 task cards valid" in out


def test_tasks_validate_a_user_folder_reports_each_problem_on_its_own_line(tmp_path, capsys):
    card = yaml.safe_load((DATASETS_DIR / "gsm8k" / "metadata.yaml").read_text())
    card.update(name="mine", metric_name="bleu", max_new_tokens=0)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "metadata.yaml").write_text(yaml.safe_dump(card))
    status, _, err = run(capsys, "tasks", "validate", "--datasets", str(tmp_path))
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 2 and "Traceback" not in err
    assert all(line.startswith(f"error: {tmp_path / 'mine' / 'metadata.yaml'}: ") for line in lines)
    assert any("max_new_tokens" in line for line in lines)
    assert any("unknown metric 'bleu'" in line for line in lines)


def test_models_list(capsys):
    status, out, _ = run(capsys, "models", "list")
    assert status == 0 and "mistralai/Mistral-7B-v0.1" in out and "tiny" in out


def test_prepare_from_the_fixture(tmp_path, capsys):
    status, out, _ = run(capsys, "prepare", "--task", "gsm8k", "--fixture", "--runs", str(tmp_path))
    assert status == 0 and (tmp_path / "prepared" / "gsm8k.parquet").is_file()
    assert "1 task(s) prepared" in out


def test_prepare_offline_without_source_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status, _, err = run(capsys, "prepare", "--task", "gsm8k", "--runs", str(tmp_path))
    assert status == 2 and "offline" in err and "--source" in err


def test_prepare_broken_upstream_keeps_the_previous_table(tmp_path, capsys):
    assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(tmp_path)]) == 0
    table = tmp_path / "prepared" / "gsm8k.parquet"
    before = table.read_bytes()
    source = tmp_path / "upstream"
    source.mkdir()
    good = (DATASETS_DIR / "gsm8k" / "fixture" / "train.jsonl").read_text()
    (source / "train.jsonl").write_text(good + '{"question": "cut off\n')
    (source / "test.jsonl").write_text(good)
    status, _, err = run(
        capsys, "prepare", "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path)
    )
    (error,) = [line for line in err.splitlines() if "error:" in line]
    assert status == 2
    assert error.endswith(
        f"error: {source / 'train.jsonl'}: line 17: bad JSON "
        "(Invalid control character at); expected one JSON object"
    )
    assert table.read_bytes() == before
    left = sorted(p.name for p in table.parent.iterdir())
    assert left == ["gsm8k.manifest.json", "gsm8k.parquet"]


@pytest.mark.parametrize("argv", [["tasks"], ["render-configs", "--bogus"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "llmbench"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "render-configs" in out.stdout


@pytest.mark.parametrize(
    "argv",
    [
        [
            "eval",
            "--task",
            "glue_sst2",
            "--endpoint",
            "http://127.0.0.1:9",
            "--model",
            "tiny",
            "--base",
            "--concurrency",
            "0",
        ],
        ["eval", "--task", "glue_sst2"],
        ["no-such-command"],
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv):
    out = subprocess.run(
        [sys.executable, "-m", "llmbench.cli", *argv], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("error: llmbench")
