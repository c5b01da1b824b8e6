"""The evaluation harness without a server: resumption, scoring and bad input."""

from __future__ import annotations

import json

import pytest

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate import EvalSettings, load_examples, read_responses, run_dir, score_run
from llmbench.models import get_model
from llmbench.prepare import fixture_source, prepare_task, read_prepared
from llmbench.prompts import realize_prompt
from llmbench.tasks import get_card

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def work(tmp_path):
    prepare_task(
        "gsm8k", source=fixture_source(get_card("gsm8k")), out_dir=tmp_path, progress=False
    )
    return tmp_path


def settings(**changes) -> EvalSettings:
    return EvalSettings(**{"task": "gsm8k", "endpoint": UNREACHABLE, "model": "tiny", **changes})


def test_eval_prompts_are_the_training_prompts(work):
    examples, metric = load_examples(settings(model="zephyr-7b-beta"), work)
    table = read_prepared("gsm8k", work, split=2)
    assert metric == "gsm8k_final_number" and len(examples) == len(table) == 6
    card, model = get_card("gsm8k"), get_model("zephyr-7b-beta")
    for example, row in zip(examples, table.to_dict("records"), strict=True):
        assert example.prompt == realize_prompt(card, model, row)
        assert example.target == row["answer"]


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_text('{"id": 0, "output": "a"}\n{"id": 1, "output": "b"}\n{"id": 2, "outp')
    assert sorted(read_responses(path)) == [0, 1]
    assert path.read_text() == '{"id": 0, "output": "a"}\n{"id": 1, "output": "b"}\n'


def test_a_corrupt_line_is_an_error_and_the_file_is_kept(tmp_path):
    path = tmp_path / "responses.jsonl"
    text = '{"id": 0, "output": "a"}\nnot json\n{"id": 2, "output": "c"}\n'
    path.write_text(text)
    with pytest.raises(LLMBenchError, match=r"responses\.jsonl: line 2: not a response record"):
        read_responses(path)
    assert path.read_text() == text


def test_failed_responses_score_zero_and_stay_in_the_denominator(work, tmp_path):
    examples, metric = load_examples(settings(), work)
    responses = {
        0: {"id": 0, "output": "Working... #### " + examples[0].target.split("####")[-1].strip()},
        1: {"id": 1, "output": None, "error": "failed after 5 attempts: 503"},
        2: {"id": 2, "output": "#### -1"},
    }  # 3, 4, 5: never answered
    result = score_run(settings(), examples, metric, responses, tmp_path / "out")
    assert (result.n, result.n_failed, result.failed_ids) == (6, 4, [1, 3, 4, 5])
    assert result.score == pytest.approx(1 / 6)
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert scores["n"] == 6 and scores["n_failed"] == 4 and scores["score"] == pytest.approx(1 / 6)
    lines = (tmp_path / "out" / "examples.csv").read_text().splitlines()
    assert lines[0] == "id,prompt,target,output,error,score"


def test_unreachable_endpoint_exits_2_and_keeps_collected_responses(work, capsys):
    out = run_dir(settings(adapter_id="tiny/gsm8k"), work)
    out.mkdir(parents=True)
    kept = '{"id": 0, "output": "#### 1", "error": null}\n'
    (out / "responses.jsonl").write_text(kept)
    status = main(
        [
            "eval",
            "--task",
            "gsm8k",
            "--endpoint",
            UNREACHABLE,
            "--model",
            "tiny",
            "--adapter-id",
            "tiny/gsm8k",
            "--data",
            str(work),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith(f"error: {UNREACHABLE}: unreachable")
    assert len(err.splitlines()) == 1
    assert (out / "responses.jsonl").read_text() == kept


def test_unknown_task_exits_2(work, capsys):
    status = main(
        [
            "eval",
            "--task",
            "gsm9k",
            "--endpoint",
            UNREACHABLE,
            "--model",
            "tiny",
            "--base",
            "--data",
            str(work),
        ]
    )
    assert status == 2 and "unknown task 'gsm9k'" in capsys.readouterr().err


def test_an_unprepared_task_says_how_to_prepare_it(tmp_path, capsys):
    status = main(
        [
            "eval",
            "--task",
            "gsm8k",
            "--endpoint",
            UNREACHABLE,
            "--model",
            "tiny",
            "--base",
            "--data",
            str(tmp_path),
        ]
    )
    assert status == 2 and "llmbench prepare --task gsm8k" in capsys.readouterr().err
