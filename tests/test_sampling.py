"""Evaluation samples: a seeded random draw of the eval split, stratified by label for a
classification task, the same rows for the base model and its adapter, recorded in the run, and
never mixed with another sample's rows on resume."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmbench.bakeoff.pipeline import load_config
from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.evaluate.harness import (
    RESPONSES,
    EvalSettings,
    answer_settings,
    evaluate,
    load_examples,
    load_rows,
    run_dir,
)
from llmbench.evaluate.sampling import CLASSIFICATION_METRICS, draw_sample
from llmbench.prepare.demo_data import demo_source
from llmbench.prepare.tables import prepare_task
from llmbench.tasks.cards import get_card
from llmbench.tasks.metrics import METRICS

UNREACHABLE = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Row:
    id: int
    target: str


def rows(labels: dict[str, int]) -> list[Row]:
    """A split holding `count` rows of each label, labels interleaved as a real split's are."""
    targets = [label for label, count in labels.items() for _ in range(count)]
    return [Row(i, t) for i, t in enumerate(sorted(targets, key=lambda t: hash(t) % 7))]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """glue_sst2 prepared from the demo rows: 60 eval rows, 30 of each label."""
    root = tmp_path_factory.mktemp("work")
    prepare_task("glue_sst2", source=demo_source("glue_sst2"), out_dir=root, progress=False)
    return root


def settings(**changes) -> EvalSettings:
    return EvalSettings(
        **{"task": "glue_sst2", "endpoint": UNREACHABLE, "model": "tiny", **changes}
    )


def ids_of(examples) -> list[int]:
    return [e.id for e in examples]


def test_the_base_model_and_its_adapter_are_scored_on_the_same_rows(work):
    for seed in range(5):
        base = load_examples(settings(sample=12, seed=seed), work)[0]
        adapter = load_examples(settings(sample=12, seed=seed, adapter_id="tiny/glue_sst2"), work)[
            0
        ]
        assert ids_of(base) == ids_of(adapter) and len(base) == 12


def test_the_same_seed_draws_the_same_rows_and_another_seed_others(work):
    first = ids_of(load_examples(settings(sample=12, seed=3), work)[0])
    assert ids_of(load_examples(settings(sample=12, seed=3), work)[0]) == first
    others = {tuple(ids_of(load_examples(settings(sample=12, seed=s), work)[0])) for s in range(6)}
    assert len(others) == 6  # 60 choose 12: six seeds, six different samples
    assert first == sorted(first)  # the split's order, whatever the draw's


def test_a_sample_is_random_rather_than_the_first_rows(work):
    drawn = ids_of(load_examples(settings(sample=12, seed=0), work)[0])
    assert drawn != list(range(12)) and max(drawn) >= 12


def test_a_classification_sample_keeps_each_labels_share():
    split = rows({"a": 70, "b": 20, "c": 10})
    for seed in range(4):
        picked, sample = draw_sample(split, 20, seed, stratify=True)
        assert Counter(r.target for r in picked) == {"a": 14, "b": 4, "c": 2}
        assert sample.stratified and sample.drawn == 20 and sample.available == 100


def test_a_stratified_shares_remainder_goes_to_the_largest_fractions():
    split = rows({"a": 5, "b": 3, "c": 2})  # 4 of 10: exact shares 2.0, 1.2, 0.8
    picked, _ = draw_sample(split, 4, 0, stratify=True)
    assert Counter(r.target for r in picked) == {"a": 2, "b": 1, "c": 1}


def test_the_demo_sst2_sample_is_stratified_by_label(work):
    examples = load_examples(settings(sample=10, seed=1), work)[0]
    assert Counter(e.target for e in examples) == {"0": 5, "1": 5}


def test_every_label_metric_is_a_registered_metric():
    assert CLASSIFICATION_METRICS <= set(METRICS)
    assert "rouge" not in CLASSIFICATION_METRICS and "stsb_similarity" not in CLASSIFICATION_METRICS


def test_a_sample_larger_than_the_split_takes_the_whole_split_with_a_note(work):
    loaded = load_rows(settings(sample=500, seed=0), work)
    assert ids_of(loaded.examples) == list(range(60))
    assert loaded.sample.note == (
        "glue_sst2: a sample of 500 asked for, the split has 60 scorable example(s); "
        "the whole split is scored"
    )


def answered(out: Path, made: EvalSettings, ids) -> None:
    """responses.jsonl as a run with `made`'s settings leaves it, every id in `ids` answered."""
    card_tokens = get_card("glue_sst2").max_new_tokens
    line = {
        "settings": answer_settings(
            EvalSettings(**{**made.__dict__, "max_new_tokens": card_tokens})
        )
    }
    records = [{"id": i, "output": "1", "error": None} for i in ids]
    out.mkdir(parents=True, exist_ok=True)
    (out / RESPONSES).write_text("".join(json.dumps(x) + "\n" for x in [line, *records]))


def test_a_run_records_its_rows_and_its_sample(work, tmp_path):
    made = settings(sample=10, seed=2, adapter_id="tiny/glue_sst2")
    drawn = ids_of(load_examples(made, work)[0])
    out = tmp_path / "run"
    answered(out, made, drawn)
    result = evaluate(made, work, out, progress=False)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["ids"] == drawn and len(scores["example_scores"]) == 10 == result.n
    assert scores["sample"] == {
        "size": 10, "seed": 2, "drawn": 10, "available": 60, "stratified_by": "label",
        "note": None,
    }  # fmt: skip
    first_line = json.loads((out / RESPONSES).read_text().splitlines()[0])
    assert first_line["settings"]["sample"] == 10 and first_line["settings"]["seed"] == 2


@pytest.mark.parametrize(
    ("before", "now", "said"),
    [
        ({"sample": 10, "seed": 0}, {"sample": 10, "seed": 1}, "seed 0 there, 1 now"),
        ({"sample": 10, "seed": 0}, {"sample": 20, "seed": 0}, "sample 10 there, 20 now"),
        ({}, {"sample": 20, "seed": 0}, "sample None there, 20 now"),  # the whole split before
    ],
)
def test_a_resumed_run_with_another_sample_is_refused_and_the_file_kept(work, before, now, said):
    made = settings(adapter_id="tiny/glue_sst2", **before)
    out = run_dir(made, work)
    answered(out, made, range(5))
    kept = (out / RESPONSES).read_text()
    with pytest.raises(LLMBenchError, match="made with other settings") as caught:
        evaluate(settings(adapter_id="tiny/glue_sst2", **now), work, progress=False)
    assert said in str(caught.value) and len(str(caught.value).splitlines()) == 1
    assert (out / RESPONSES).read_text() == kept
    (out / RESPONSES).unlink()


def test_the_seed_of_no_sample_is_not_a_setting(work):
    """Without a sample the seed draws nothing: changing it refuses nothing."""
    made = settings(adapter_id="tiny/glue_sst2", seed=0)
    out = run_dir(made, work)
    answered(out, made, range(60))
    assert evaluate(settings(adapter_id="tiny/glue_sst2", seed=7), work, progress=False).n == 60
    (out / RESPONSES).unlink()


def eval_cli(work, *extra: str) -> int:
    return main(
        ["eval", "--task", "glue_sst2", "--endpoint", UNREACHABLE, "--model", "tiny",
         "--base", "--runs", str(work), *extra]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--sample", "0"), "argument --sample: expected an integer >= 1, got '0'"),
        (("--sample", "-3"), "argument --sample: expected an integer >= 1, got '-3'"),
        (("--seed", "1.5"), "argument --seed: expected an integer seed >= 0, got '1.5'"),
        (("--seed", "abc"), "argument --seed: expected an integer seed >= 0, got 'abc'"),
        (("--sample", "3", "--limit", "3"), "not allowed with argument --sample"),
    ],
)
def test_bad_sample_options_are_one_line_and_exit_2(work, capsys, extra, said):
    with pytest.raises(SystemExit) as caught:
        eval_cli(work, *extra)
    err = capsys.readouterr().err.strip()
    assert caught.value.code == 2 and said in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ({"sample": 0}, "sample: expected an integer >= 1, or None for the whole split, got 0"),
        ({"seed": 1.5}, "seed: expected an integer >= 0, got 1.5"),
        ({"seed": True}, "seed: expected an integer >= 0, got True"),
        ({"sample": 3, "limit": 3}, "limit and sample: both given"),
    ],
)
def test_bad_sample_settings_are_refused(value, said):
    with pytest.raises(LLMBenchError, match="eval settings") as caught:
        settings(**value)
    assert said in str(caught.value)


def test_the_cli_says_when_the_sample_took_the_whole_split(work, capsys):
    out = run_dir(settings(sample=100), work)
    answered(out, settings(sample=100), range(60))
    assert eval_cli(work, "--sample", "100") == 0
    assert "note: glue_sst2: a sample of 100 asked for, the split has 60" in capsys.readouterr().out
    (out / RESPONSES).unlink()


def bakeoff_config(tmp_path, text: str) -> Path:
    path = tmp_path / "bakeoff.yaml"
    path.write_text("models: [tiny]\ntasks: [glue_sst2]\n" + text)
    return path


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("eval_sample: 0\n", "eval_sample: 0 is less than the minimum of 1"),
        ("eval_seed: 1.5\n", "eval_seed: 1.5 is not of type 'integer'"),
        ("eval_seed: abc\n", "eval_seed: 'abc' is not of type 'integer'"),
        ("eval_sample: 5\neval_limit: 5\n", "eval_limit and eval_sample: both set"),
    ],
)
def test_bad_bakeoff_sample_keys_name_the_file_and_key(tmp_path, text, said):
    path = bakeoff_config(tmp_path, text)
    with pytest.raises(LLMBenchError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and said in str(caught.value)


def test_the_bakeoff_takes_a_sample_and_a_seed(tmp_path):
    config = load_config(bakeoff_config(tmp_path, "eval_sample: 500\neval_seed: 3\n"))
    assert (config.eval_sample, config.eval_seed, config.eval_limit) == (500, 3, None)
    default = load_config(None)
    assert (default.eval_sample, default.eval_seed) == (500, 0)
