"""Hostile input to eval, train and bake-off (issue 15): each is refused with one line naming
the file, field or flag and what was expected, exit status 2, no traceback, nothing partial."""

from __future__ import annotations

import http.server
import json
import threading

import pandas as pd
import pytest
import yaml

from llmbench.bakeoff.pipeline import load_config
from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.harness import RESPONSES, EvalSettings, answer_settings, run_dir
from llmbench.prepare.tables import fixture_source, prepare_task, prepared_path
from llmbench.tasks.cards import get_card

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def work(tmp_path):
    prepare_task(
        "gsm8k", source=fixture_source(get_card("gsm8k")), out_dir=tmp_path, progress=False
    )
    return tmp_path


def eval_argv(work, *extra: str, endpoint: str = UNREACHABLE) -> list[str]:
    return ["eval", "--task", "gsm8k", "--endpoint", endpoint, "--model", "tiny", "--base",
            "--runs", str(work), *extra]  # fmt: skip


def one_error_line(capsys) -> str:
    """The only line on stderr, which must be an error and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def rewrite_column(work, column: str, values: dict[int, object] | list) -> None:
    """Set a column of the prepared gsm8k table: every row to `values[0]` (a list; Parquet
    keeps one type per column), or some rows of its eval (test) split, by example id (a dict)."""
    path = prepared_path("gsm8k", work)
    frame = pd.read_parquet(path)
    if isinstance(values, list):
        frame[column] = values * len(frame)
    else:
        test = frame.index[frame["split"] == 2]
        frame[column] = frame[column].astype(object)
        for example, value in values.items():
            frame.at[test[example], column] = value
    frame.to_parquet(path)


# --- eval: the prepared table ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ({1: None}, "example 1 is not text"),
        ([float("nan")], "example 0 (and 5 more) is not text (nan, float)"),
        ([7], "example 0 (and 5 more) is not text (7, int)"),
    ],
    ids=["none", "nan", "int"],
)
def test_eval_refuses_targets_that_are_not_text_before_sending(work, capsys, values, shown):
    rewrite_column(work, "answer", values)
    assert main(eval_argv(work)) == 2
    line = one_error_line(capsys)  # not "unreachable": nothing was sent
    assert f"gsm8k.parquet: answer: test {shown}" in line and "; expected text" in line


@pytest.mark.parametrize("missing", [None, float("nan")], ids=["none", "nan"])
def test_eval_refuses_a_missing_input_rather_than_prompting_with_its_name(work, capsys, missing):
    rewrite_column(work, "question", {2: missing})
    assert main(eval_argv(work)) == 2
    line = one_error_line(capsys)
    assert "gsm8k.parquet: question: test example 2 holds no value" in line


def test_eval_refuses_a_prepared_file_that_is_not_parquet(work, capsys):
    prepared_path("gsm8k", work).write_text("question,answer,split\n")
    assert main(eval_argv(work)) == 2
    line = one_error_line(capsys)
    assert "gsm8k.parquet: not a readable Parquet table" in line
    assert "llmbench prepare --task gsm8k" in line


def test_eval_refuses_a_table_without_the_task_columns(work, capsys):
    path = prepared_path("gsm8k", work)
    pd.read_parquet(path).rename(columns={"answer": "solution"}).to_parquet(path)
    assert main(eval_argv(work)) == 2
    assert "missing column(s) answer" in one_error_line(capsys)


# --- eval: numbers and endpoints at the edge ---------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-attempts", "0"),
        ("--concurrency", "0"),
        ("--concurrency", "-1"),
        ("--timeout", "0"),
        ("--timeout", "nan"),
        ("--limit", "-1"),
        ("--limit", "0"),
        ("--max-new-tokens", "0"),
        ("--max-new-tokens", "2.5"),
        ("--max-failed-share", "1.5"),
    ],
)
def test_eval_refuses_a_number_out_of_range(work, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        main(eval_argv(work, flag, value))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert f"argument {flag}: expected" in line and repr(value) in line


def test_eval_refuses_an_endpoint_that_is_not_http(work, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(eval_argv(work, endpoint="file:///etc/passwd"))
    assert exit_.value.code == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value"),
    [("concurrency", 0), ("concurrency", True), ("max_attempts", 0), ("timeout", 0.0),
     ("timeout", float("inf")), ("limit", -1), ("max_new_tokens", False), ("backoff", -1)],
)  # fmt: skip
def test_eval_settings_refuse_what_would_hang_or_crash(field, value):
    """The library's own check: the bake-off and other callers do not pass through argparse."""
    with pytest.raises(LLMBenchError, match=f"eval settings: {field}: expected"):
        EvalSettings(task="gsm8k", endpoint=UNREACHABLE, model="tiny", **{field: value})


def test_eval_refuses_a_recorded_output_that_is_not_text(work, capsys):
    out = run_dir(EvalSettings(task="gsm8k", endpoint="", model="tiny"), work)
    out.mkdir(parents=True)
    made = EvalSettings(task="gsm8k", endpoint="", model="tiny", max_new_tokens=384)
    (out / RESPONSES).write_text(
        json.dumps({"settings": answer_settings(made)}) + "\n"
        + json.dumps({"id": 0, "output": {"text": "#### 1"}, "error": None}) + "\n"
    )  # fmt: skip
    assert main(eval_argv(work)) == 2
    assert "responses.jsonl: line 2: output: expected text or null, got dict" in (
        one_error_line(capsys)
    )


@pytest.fixture
def listening():
    """Something that answers HTTP on loopback (501 to everything): eval gets past its
    reachability check and records a failed example for each request."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # a client that gives up mid-answer is a broken pipe here, not llmbench's output

    server = QuietServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_full_disk_during_eval_is_one_line(work, capsys, listening):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    out = run_dir(EvalSettings(task="gsm8k", endpoint="", model="tiny"), work)
    out.mkdir(parents=True)
    (out / RESPONSES).symlink_to("/dev/full")
    # The stand-in answers 501 to everything: one attempt, a failed example, its record written.
    assert main(eval_argv(work, "--max-attempts", "1", endpoint=listening)) == 2
    err = capsys.readouterr().err  # the progress bar shares stderr
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err
    assert "responses.jsonl: cannot write (No space left on device)" in line


# --- bake-off config ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("models: [1]", "models.0: 1 is not of type 'string'"),
        ("tasks: [null]", "tasks.0: None is not of type 'string'"),
        ("eval_concurrency: 0", "eval_concurrency: 0 is less than the minimum of 1"),
        ("eval_concurrency: false", "eval_concurrency: False is not of type 'integer'"),
        ("max_parallel: -3", "max_parallel: -3 is less than the minimum of 1"),
        ("max_parallel: true", "max_parallel: True is not of type 'integer'"),
        ("max_loaded_adapters: 0", "max_loaded_adapters: 0 is less than the minimum of 1"),
        ("eval_limit: 0", "eval_limit: 0 is less than the minimum of 1"),
        ("endpoint: file:///etc/passwd", "endpoint: 'file:///etc/passwd' does not match"),
        ("endpoint: http://user:pw@host:8080", "endpoint: 'http://user:pw@host:8080' does not"),
    ],
)
def test_a_bakeoff_config_refuses_a_bad_value(tmp_path, setting, expected):
    config = {"models": ["tiny"], "tasks": ["gsm8k"], **yaml.safe_load(setting)}
    path = tmp_path / "bakeoff.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(LLMBenchError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: {expected}")


def test_a_bakeoff_config_names_a_misspelt_key(tmp_path):
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [gsm8k]\nmax_paralel: 2\n")
    with pytest.raises(LLMBenchError, match="unknown key 'max_paralel' \\(did you mean"):
        load_config(path)


def test_the_bakeoff_command_prints_a_bad_config_on_one_line(tmp_path, capsys):
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [gsm8k]\neval_concurrency: 0\n")
    assert main(["bakeoff", "--config", str(path), "--runs", str(tmp_path / "runs")]) == 2
    assert "eval_concurrency: 0 is less than the minimum of 1" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


# --- train -------------------------------------------------------------------------------


def ludwig_config(base_model) -> dict:
    return {
        "model_type": "llm",
        "base_model": str(base_model),
        "input_features": [{"name": "prompt", "column": "question", "type": "text"}],
        "output_features": [{"name": "answer", "type": "text"}],
        "prompt": {"template": "Q: {question}\nA: "},
        "preprocessing": {"split": {"type": "fixed", "column": "split"}},
        "adapter": {"type": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]},
        "trainer": {"type": "finetune", "train_steps": 2, "batch_size": 1},
        "backend": {"type": "local"},
    }


def train_argv(config, dataset, out) -> list[str]:
    return ["train", "--config", str(config), "--dataset", str(dataset),
            "--output-directory", str(out)]  # fmt: skip


def test_train_refuses_a_config_that_is_not_utf8(work, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    latin1 = "# café\n".encode("latin-1")
    config.write_bytes(yaml.safe_dump(ludwig_config("m")).encode() + latin1)
    status = main(train_argv(config, prepared_path("gsm8k", work), tmp_path / "out"))
    assert status == 2
    assert f"{config}: not UTF-8 text" in one_error_line(capsys)


def test_train_refuses_a_table_without_the_columns_the_config_reads(work, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    broken = ludwig_config(tmp_path / "no-model")
    broken["input_features"][0]["column"] = "problem"
    broken["prompt"]["template"] = "Q: {problem} ({hint})"
    config.write_text(yaml.safe_dump(broken))
    table = prepared_path("gsm8k", work)
    status = main(train_argv(config, table, tmp_path / "out"))
    assert status == 2
    line = one_error_line(capsys)
    assert f"{table}: missing column(s) problem, hint that {config} reads" in line
    assert "the table has question, answer, split" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_names_the_config_when_ludwig_fails_on_its_types(work, tmp_path, capsys):
    """Ludwig raises a bare TypeError for `input_features: 5` (seconds in, importing it)."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**ludwig_config("m"), "input_features": 5}))
    status = main(train_argv(config, prepared_path("gsm8k", work), tmp_path / "out"))
    err = capsys.readouterr().err  # Ludwig's imports print warnings of their own
    errors = [line for line in err.splitlines() if "error:" in line]
    assert status == 2 and len(errors) == 1 and "Traceback" not in err
    assert f"{config}: invalid Ludwig config: TypeError" in errors[0]


@pytest.mark.slow
def test_a_train_that_fails_leaves_no_run_folder_and_a_rerun_reuses_its_name(tmp_path, capsys):
    """A JSON Lines table is read by Ludwig itself (no column check first): Ludwig fails on it
    after creating the run folder; the folder goes, so the rerun is `run_run` again."""
    from llmbench.train.tiny import build_tiny_model

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(ludwig_config(build_tiny_model(tmp_path / "tiny"))))
    table = tmp_path / "wrong.jsonl"
    table.write_text("".join(json.dumps({"q": "x", "split": s}) + "\n" for s in [0] * 8 + [1, 2]))
    out = tmp_path / "out"
    for _ in range(2):
        assert main(train_argv(config, table, out)) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1 and f"{config}: Ludwig could not train on {table}" in errors[0]
        assert not [p.name for p in out.iterdir() if p.name.startswith("run_run")]
