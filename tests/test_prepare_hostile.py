"""`llmbench prepare` on hostile input: every failure is one `error:` line naming the file (and
its real line) with exit status 2, and leaves nothing behind: no half table, no temporary file,
no folder it made, an earlier good table untouched, no half-drawn progress bar.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest
from prepare_helpers import copy_fixture  # noqa: I001 - tests/ is on sys.path

from llmbench.cli import main
from llmbench.prepare import tables as prepare_module
from llmbench.prepare.tables import prepared_path


def prepare_cli(capsys, task: str, source: Path, out: Path) -> tuple[int, list[str]]:
    """Exit status and stderr lines of `llmbench prepare --task T --source S --out O`."""
    status = main(["prepare", "--task", task, "--source", str(source), "--runs", str(out)])
    return status, capsys.readouterr().err.splitlines()


def assert_one_error_line(status: int, lines: list[str], *phrases: str) -> None:
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for phrase in phrases:
        assert phrase in lines[0]


def gsm8k_with_train_lines(tmp_path: Path, count: int) -> tuple[Path, Path]:
    """The gsm8k fixture with its train file repeated to `count` lines (folder, train file)."""
    source = copy_fixture("gsm8k", tmp_path)
    train = source / "train.jsonl"
    lines = train.read_bytes().splitlines(keepends=True)
    train.write_bytes(b"".join(lines[i % len(lines)] for i in range(count)))
    return source, train


# --- compressed files ---------------------------------------------------------------------------


def test_a_truncated_gz_is_one_line_naming_the_file(tmp_path, capsys):
    source, train = gsm8k_with_train_lines(tmp_path, 200)
    packed = gzip.compress(train.read_bytes())
    train.unlink()
    (source / "train.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    status, lines = prepare_cli(capsys, "gsm8k", source, tmp_path / "out")
    assert_one_error_line(
        status,
        lines,
        f"{source / 'train.jsonl.gz'}: not readable as gzip",
        "expected a complete gzip file",
    )


def test_a_plain_file_named_gz_is_one_line_naming_the_file(tmp_path, capsys):
    source = copy_fixture("gsm8k", tmp_path)
    (source / "train.jsonl").rename(source / "train.jsonl.gz")
    status, lines = prepare_cli(capsys, "gsm8k", source, tmp_path / "out")
    assert_one_error_line(status, lines, f"{source / 'train.jsonl.gz'}: not readable as gzip")


def test_magicoder_names_the_humaneval_file_name_it_accepts(tmp_path, capsys):
    source = copy_fixture("magicoder", tmp_path)
    (source / "HumanEval.jsonl").rename(source / "human-eval.jsonl")
    status, lines = prepare_cli(capsys, "magicoder", source, tmp_path / "out")
    assert_one_error_line(status, lines, f"{source}: no file HumanEval.jsonl.gz")


# --- --runs ------------------------------------------------------------------------------------


def test_out_that_is_an_existing_file_is_one_line_and_the_file_is_kept(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine\n")
    status, lines = prepare_cli(capsys, "gsm8k", copy_fixture("gsm8k", tmp_path), out)
    assert_one_error_line(status, lines, f"{out}: is a file", "--runs")
    assert out.read_text() == "mine\n"


def test_out_below_a_file_is_one_line_naming_that_file(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine\n")
    status, lines = prepare_cli(capsys, "gsm8k", copy_fixture("gsm8k", tmp_path), blocker / "runs")
    assert_one_error_line(status, lines, f"{blocker}: is a file")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (no new folders)")
def test_out_that_cannot_be_created_is_one_line_naming_the_folder(tmp_path, capsys):
    # /proc refuses new folders even to root, for whom permission bits would not.
    out = Path("/proc/llmbench-runs")
    status, lines = prepare_cli(capsys, "gsm8k", copy_fixture("gsm8k", tmp_path), out)
    assert_one_error_line(status, lines, f"{out}/prepared: cannot be created", "--runs")


# --- real line numbers --------------------------------------------------------------------------


def test_undecodable_bytes_on_line_3000_of_a_jsonl_file_are_reported_at_line_3000(tmp_path, capsys):
    source, train = gsm8k_with_train_lines(tmp_path, 3000)
    lines = train.read_bytes().splitlines(keepends=True)
    lines[2999] = lines[2999].replace(b"How", b"H\xffow", 1)
    train.write_bytes(b"".join(lines))
    status, errors = prepare_cli(capsys, "gsm8k", source, tmp_path / "out")
    assert_one_error_line(status, errors, f"{train}: line 3000: undecodable bytes")


def test_a_bad_csv_record_after_multiline_fields_is_reported_at_its_line(tmp_path, capsys):
    # Quoted fields spanning lines, one with the \r\r\n a real covid copy holds: lines are
    # counted as an editor counts them (each \n ends one).
    source = copy_fixture("covid", tmp_path)
    path = source / "Corona_NLP_test.csv"
    header = b"UserName,ScreenName,Location,TweetAt,OriginalTweet,Sentiment\r\n"
    record = b'1,2,Leeds,16-03-2020,"Shelves empty.\r\r\nAgain.\r\nSad",Negative\r\n'
    path.write_bytes(header + record * 1000 + b"3,4,York,17-03-2020,fine,Mixed\r\n")
    status, errors = prepare_cli(capsys, "covid", source, tmp_path / "out")
    assert_one_error_line(status, errors, f"{path}: line 3002: Sentiment 'Mixed' unknown")


def test_a_broken_conll_line_after_3000_lines_is_reported_at_its_line(tmp_path, capsys):
    source = copy_fixture("conllpp", tmp_path)
    path = source / "conllpp_train.txt"
    sentence = b"Polish NNP B-NP B-MISC\r\nfarmers NNS I-NP O\r\n\r\n"
    path.write_bytes(b"-DOCSTART- -X- -X- O\n\n" + sentence * 1000 + b"broken line\n")
    status, errors = prepare_cli(capsys, "conllpp", source, tmp_path / "out")
    assert_one_error_line(status, errors, f"{path}: line 3003: 2 field(s); expected 4")


# --- nothing partial left -----------------------------------------------------------------------


def broken_gsm8k(tmp_path: Path) -> Path:
    source = copy_fixture("gsm8k", tmp_path / "broken")
    train = source / "train.jsonl"
    train.write_text(
        train.read_text(encoding="utf-8") + '{"question": "cut off\n', encoding="utf-8"
    )
    return source


def test_a_failure_in_a_new_work_directory_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    status, _ = prepare_cli(capsys, "gsm8k", broken_gsm8k(tmp_path), out)
    assert status == 2
    assert not out.exists()


def test_a_failure_leaves_no_empty_prepared_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    out.mkdir()
    status, _ = prepare_cli(capsys, "gsm8k", broken_gsm8k(tmp_path), out)
    assert status == 2
    assert list(out.iterdir()) == []


def test_a_failure_keeps_the_good_table_and_leaves_no_temporary_file(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(out)]) == 0
    table = prepared_path("gsm8k", out)
    good, stamp = table.read_bytes(), table.stat().st_mtime_ns
    status, _ = prepare_cli(capsys, "gsm8k", broken_gsm8k(tmp_path), out)
    assert status == 2
    assert table.read_bytes() == good and table.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in table.parent.iterdir()) == [
        "gsm8k.manifest.json",
        "gsm8k.parquet",
    ]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_prepared_table_is_created_with_the_users_umask(umask, mode, tmp_path):
    previous = os.umask(umask)
    try:
        assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(tmp_path)]) == 0
    finally:
        os.umask(previous)
    assert prepared_path("gsm8k", tmp_path).stat().st_mode & 0o777 == mode


# --- progress ------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """stderr that says it is a terminal, so the progress bar draws."""

    def isatty(self) -> bool:
        return True


def screen(written: str) -> list[str]:
    """What a terminal shows after `written`: '\\r' returns to the line start, later characters
    overwrite earlier ones; trailing blanks and empty lines dropped."""
    lines, line, column = [], [], 0
    for char in written:
        if char == "\n":
            lines.append("".join(line).rstrip())
            line, column = [], 0
        elif char == "\r":
            column = 0
        else:
            line[column : column + 1] = [char]
            column += 1
    lines.append("".join(line).rstrip())
    return [text for text in lines if text]


def test_a_failure_after_the_bar_showed_leaves_only_the_error_on_screen(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "BATCH_ROWS", 4)  # the bar moves after 4 rows
    monkeypatch.setattr(prepare_module, "PROGRESS_DELAY", 0)
    source = copy_fixture("gsm8k", tmp_path)
    train = source / "train.jsonl"
    records = [json.loads(line) for line in train.read_text(encoding="utf-8").splitlines()]
    records[9]["answer"] = "no marker"
    train.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    status = main(
        ["prepare", "--task", "gsm8k", "--source", str(source), "--runs", str(tmp_path / "out")]
    )
    assert status == 2
    assert "prepare gsm8k" in terminal.getvalue()  # the bar was drawn ...
    assert screen(terminal.getvalue()) == [  # ... and wiped before the error
        f"error: {train}: line 10: answer has no '####' final-answer marker; expected "
        "'<solution> #### <number>'"
    ]


def test_no_progress_bar_is_written_to_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare_module, "PROGRESS_DELAY", 0)
    assert main(["prepare", "--task", "gsm8k", "--fixture", "--runs", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
