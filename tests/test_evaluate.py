"""The evaluation harness without a server: resumption that never mixes runs, output caps,
scoring and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.harness import (
    RESPONSES,
    EvalSettings,
    answer_settings,
    evaluate,
    load_eval_split,
    load_examples,
    pending_examples,
    read_responses,
    run_dir,
    score_run,
)
from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared
from llmbench.tasks.cards import get_card
from llmbench.tasks.models import get_model
from llmbench.tasks.prompts import realize_prompt

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def work(tmp_path):
    prepare_task(
        "gsm8k", source=fixture_source(get_card("gsm8k")), out_dir=tmp_path, progress=False
    )
    return tmp_path


def settings(**changes) -> EvalSettings:
    return EvalSettings(**{"task": "gsm8k", "endpoint": UNREACHABLE, "model": "tiny", **changes})


def record_responses(out, records: list[dict], **changes) -> str:
    """Write responses.jsonl as a run of adapter tiny/gsm8k with the card's max_new_tokens
    (unless `changes` say otherwise) leaves it: its settings line, then `records`."""
    card_tokens = get_card("gsm8k").max_new_tokens
    made = settings(**{"adapter_id": "tiny/gsm8k", "max_new_tokens": card_tokens, **changes})
    lines = [{"settings": {**answer_settings(made), "endpoint": made.endpoint}}, *records]
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (out / RESPONSES).write_text(text)
    return text


def eval_cli(work, *extra: str, adapter: str = "tiny/gsm8k") -> int:
    return main(
        ["eval", "--task", "gsm8k", "--endpoint", UNREACHABLE, "--model", "tiny",
         "--adapter-id", adapter, "--runs", str(work), *extra]
    )  # fmt: skip


def answered(*ids: int) -> list[dict]:
    return [{"id": i, "output": "#### 1", "error": None} for i in ids]


def failed(*ids: int) -> list[dict]:
    return [{"id": i, "output": None, "error": "failed after 5 attempts: 503"} for i in ids]


def test_eval_prompts_are_the_training_prompts(work):
    examples, metric = load_examples(settings(model="zephyr-7b-beta"), work)
    table = read_prepared("gsm8k", work, split=2)
    assert metric == "gsm8k_final_number" and len(examples) == len(table) == 6
    card, model = get_card("gsm8k"), get_model("zephyr-7b-beta")
    for example, row in zip(examples, table.to_dict("records"), strict=True):
        assert example.prompt == realize_prompt(card, model, row)
        assert example.target == row["answer"]


def blank_targets(work: Path, rows: list[int]) -> None:
    """Empty the reference of these eval-split rows (as WebNLG's test split has them)."""
    import pandas as pd

    path = work / "prepared" / "gsm8k.parquet"
    table = pd.read_parquet(path)
    eval_rows = table.index[table["split"] == 2]
    table.loc[eval_rows[rows], "answer"] = ""
    table.to_parquet(path)


def test_examples_without_a_reference_are_left_out_and_counted(work, tmp_path):
    blank_targets(work, [1, 3])
    examples, metric, rows = load_eval_split(settings(), work)
    assert [e.id for e in examples] == [0, 2, 4, 5] and rows == 6
    responses = {e.id: {"id": e.id, "output": e.target} for e in examples}
    result = score_run(settings(), examples, metric, responses, tmp_path / "out", unscorable=2)
    assert (result.n, result.score, result.unscorable) == (4, 1.0, 2)
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["n_unscorable"] == 2


def test_a_split_with_no_reference_at_all_is_one_line(work):
    blank_targets(work, list(range(6)))
    with pytest.raises(LLMBenchError, match=r"gsm8k\.parquet: answer: every test example is empty"):
        load_examples(settings(), work)


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
    kept = record_responses(out, answered(0))
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
            "--runs",
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
            "--runs",
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
            "--runs",
            str(tmp_path),
        ]
    )
    assert status == 2 and "llmbench prepare --task gsm8k" in capsys.readouterr().err


def leaf(work, adapter: str = "tiny/gsm8k"):
    return run_dir(settings(adapter_id=adapter), work)


def test_a_rerun_for_another_adapter_into_the_same_folder_is_refused(work, capsys):
    kept = record_responses(leaf(work), answered(0, 1), adapter_id="alpha")
    status = eval_cli(work, "--out", str(leaf(work)), adapter="beta")
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "made with other settings (adapter_id 'alpha' there, 'beta' now)" in err
    assert "--restart" in err
    assert (leaf(work) / RESPONSES).read_text() == kept


def weights_file(out, *digests: str | None) -> None:
    """responses.jsonl holding one settings line per digest (None: a run that did not know the
    adapter's weights), all six fixture examples answered after the first."""
    made = settings(adapter_id="tiny/gsm8k", max_new_tokens=get_card("gsm8k").max_new_tokens)
    lines = []
    for i, digest in enumerate(digests):
        lines.append({"settings": {**answer_settings(made), "adapter_weights": digest}})
        lines += answered(*range(6)) if i == 0 else []
    out.mkdir(parents=True, exist_ok=True)
    (out / RESPONSES).write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_answers_of_other_adapter_weights_are_never_mixed_in(work):
    """A retrained adapter keeps its name: its weights' digest tells the answers apart."""
    retrained = settings(adapter_id="tiny/gsm8k", adapter_weights="b" * 16)
    weights_file(leaf(work), "a" * 16)
    with pytest.raises(
        LLMBenchError, match=f"adapter_weights '{'a' * 16}' there, '{'b' * 16}' now"
    ):
        evaluate(retrained, work, progress=False)
    # a later run that could not read the weights (plain `llmbench eval`) hides nothing
    weights_file(leaf(work), "a" * 16, None)
    with pytest.raises(LLMBenchError, match="adapter_weights"):
        evaluate(retrained, work, progress=False)
    assert evaluate(settings(adapter_id="tiny/gsm8k"), work, progress=False).n == 6


def test_answers_recorded_before_weights_were_known_are_kept(work):
    weights_file(leaf(work), None)
    known = settings(adapter_id="tiny/gsm8k", adapter_weights="b" * 16)
    assert evaluate(known, work, progress=False).n == 6


def test_a_rerun_with_other_max_new_tokens_is_refused(work, capsys):
    record_responses(leaf(work), answered(0))
    assert eval_cli(work, "--max-new-tokens", "7") == 2
    assert "max_new_tokens 384 there, 7 now" in capsys.readouterr().err


def test_the_endpoint_may_change_between_runs(work, capsys):
    """A bake-off starts its server on a new port each time: that is not another run."""
    out = leaf(work)
    record_responses(out, answered(*range(6)), endpoint="http://127.0.0.1:41234")
    assert eval_cli(work) == 0  # everything answered: nothing sent to the new (dead) endpoint
    assert json.loads((out / "scores.json").read_text())["n"] == 6


def test_responses_without_recorded_settings_are_refused(work, capsys):
    out = leaf(work)
    out.mkdir(parents=True)
    (out / RESPONSES).write_text('{"id": 0, "output": "#### 1", "error": null}\n')
    assert eval_cli(work) == 2
    assert "record no settings" in capsys.readouterr().err


def test_a_response_to_another_prompt_is_refused(work, capsys):
    """A re-prepared table (or a changed template) would otherwise score old answers."""
    record_responses(leaf(work), [{**answered(0)[0], "prompt_sha": "0" * 16}])
    assert eval_cli(work) == 2
    assert "example 0 (and 0 more) was answered for another prompt" in capsys.readouterr().err


def test_restart_moves_the_old_responses_aside_and_starts_over(work, capsys):
    out = leaf(work)
    kept = record_responses(out, answered(0, 1), adapter_id="alpha")
    status = eval_cli(work, "--out", str(out), "--restart", adapter="beta")
    assert status == 2 and "unreachable" in capsys.readouterr().err  # it went on to send
    assert (out / "responses.previous.jsonl").read_text() == kept
    assert not (out / RESPONSES).exists()


def test_failed_examples_are_sent_again_by_a_rerun(work, capsys):
    record_responses(leaf(work), answered(0, 1, 2, 3, 4) + failed(5))
    assert pending_examples(settings(adapter_id="tiny/gsm8k"), work) == 1
    assert eval_cli(work) == 2  # it tried to resend example 5
    assert "unreachable" in capsys.readouterr().err


def test_no_retry_failed_keeps_failed_examples_as_recorded(work, capsys):
    kept = record_responses(leaf(work), answered(0, 1, 2, 3, 4) + failed(5))
    assert pending_examples(settings(adapter_id="tiny/gsm8k"), work, retry_failed=False) == 0
    assert eval_cli(work, "--no-retry-failed") == 0
    assert json.loads((leaf(work) / "scores.json").read_text())["failed_ids"] == [5]
    assert (leaf(work) / RESPONSES).read_text() == kept


def test_a_later_record_for_an_example_replaces_the_earlier(tmp_path):
    path = tmp_path / RESPONSES
    path.write_text("".join(json.dumps(r) + "\n" for r in failed(0) + answered(0)))
    assert read_responses(path)[0]["output"] == "#### 1"


def test_more_failed_than_the_allowed_share_exits_2_and_says_how_many(work, capsys):
    record_responses(leaf(work), answered(0, 1) + failed(2, 3, 4, 5))
    assert eval_cli(work, "--no-retry-failed") == 2
    captured = capsys.readouterr()
    (error,) = captured.err.strip().splitlines()
    assert "4 of 6 examples failed" in error and "--max-failed-share 0.5" in error
    assert json.loads((leaf(work) / "scores.json").read_text())["n_failed"] == 4  # still written
    assert "failed example ids (scored 0): 2, 3, 4, 5" in captured.out


def test_a_higher_allowed_share_accepts_the_same_run(work):
    record_responses(leaf(work), answered(0, 1) + failed(2, 3, 4, 5))
    assert eval_cli(work, "--no-retry-failed", "--max-failed-share", "0.7") == 0


def test_a_long_answer_is_stored_cut_at_the_cap_and_says_from_what_size(work, tmp_path):
    from llmbench.evaluate.responses import OUTPUT_CAP_BYTES, outcome_record

    examples, metric = load_examples(settings(), work)
    huge = "é" * (3 * OUTPUT_CAP_BYTES + 1)  # two bytes each: the cut falls inside none
    record = outcome_record(examples[0], huge, None, attempts=1, seconds=0.5)
    stored = record["output"].encode("utf-8")
    assert len(stored) == OUTPUT_CAP_BYTES and huge.startswith(record["output"])
    assert record["truncated_from_bytes"] == len(huge.encode("utf-8"))
    result = score_run(settings(), examples, metric, {0: record}, tmp_path / "out")
    assert result.truncated_ids == [0]
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["n_truncated"] == 1
    assert (tmp_path / "out" / "examples.csv").stat().st_size < 2 * OUTPUT_CAP_BYTES


def test_an_answer_within_the_cap_is_stored_whole(work):
    from llmbench.evaluate.responses import outcome_record

    examples, _ = load_examples(settings(), work)
    record = outcome_record(examples[0], "#### 72", None, attempts=1, seconds=0.1)
    assert record["output"] == "#### 72" and "truncated_from_bytes" not in record


def test_the_recorded_endpoint_carries_no_credentials():
    from llmbench.evaluate.responses import public_endpoint

    assert public_endpoint("https://user:s3cret@lorax.example:8443/v1?key=abc#x") == (
        "https://lorax.example:8443/v1"
    )


def test_eval_grid_names_every_evaluation_past_the_failed_share(work, capsys):
    for adapter in (None, "tiny/gsm8k"):
        record_responses(run_dir(settings(adapter_id=adapter), work), failed(*range(6)),
                         adapter_id=adapter)  # fmt: skip
    status = main(
        ["eval-grid", "--models", "tiny", "--tasks", "gsm8k", "--endpoint", UNREACHABLE,
         "--runs", str(work), "--no-retry-failed"]
    )  # fmt: skip
    errors = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(errors) == 2
    assert all("6 of 6 examples failed" in line for line in errors)
    assert "gsm8k base" in errors[0] and "gsm8k tiny/gsm8k" in errors[1]
