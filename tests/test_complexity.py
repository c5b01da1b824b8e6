"""Dataset-complexity heuristics: each one against values worked out by hand on tiny inputs."""

from __future__ import annotations

import argparse
import random
import zlib
from pathlib import Path

import pytest
import yaml

from llmbench.analysis import complexity
from llmbench.analysis.complexity import (
    HEURISTICS,
    compressibility,
    read_complexity,
    summarize,
    task_complexity,
    write_complexity,
)
from llmbench.cli import main
from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR
from llmbench.prepare.tables import fixture_source, prepare_task, prepared_path
from llmbench.tasks.cards import load_cards, template_fields


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`llmbench ARGV` in-process: exit status, stdout, stderr."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_task(root: Path, rows: list[tuple[str, str, int]], template: str = "Review: {sentence}"):
    """A one-column task `mine` (card copied from glue_sst2) with a hand-written prepared table
    of (sentence, label, split code) rows; returns (cards folder, work folder)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    card = yaml.safe_load((DATASETS_DIR / "glue_sst2" / "metadata.yaml").read_text())
    card.update(name="mine", prompt_template=template)
    (root / "cards" / "mine").mkdir(parents=True)
    (root / "cards" / "mine" / "metadata.yaml").write_text(yaml.safe_dump(card))
    table = pa.table(
        {
            "sentence": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "split": pa.array([r[2] for r in rows], pa.int8()),
        }
    )
    target = prepared_path("mine", root / "work")
    target.parent.mkdir(parents=True)
    pq.write_table(table, target)
    return root / "cards", root / "work"


def prepare_fixtures(work: Path) -> Path:
    """Every task's shipped fixture prepared into `work` and measured; returns the CSV."""
    from llmbench.analysis.complexity import complexity_path

    cards = load_cards()
    for name, card in cards.items():
        prepare_task(name, source=fixture_source(card), out_dir=work, progress=False)
    path = complexity_path(work / "complexity")
    write_complexity([task_complexity(name, work) for name in cards], path)
    return path


HAND_ROWS = [("good movie", "good", 0), ("bad bad film", "bad", 0), ("ignored", "x", 1)]


def test_the_input_output_rouge_l_is_the_rouge_metric(monkeypatch, tmp_path):
    """One ROUGE-L in the package: complexity measures with the `rouge` metric's function."""
    from llmbench.tasks import metrics

    calls = []

    def counting_rouge(generated: str, target: str) -> float:
        calls.append((generated, target))
        return metrics.rouge(generated, target)

    monkeypatch.setattr(complexity, "rouge", counting_rouge)
    cards, work = write_task(tmp_path, HAND_ROWS)
    row = task_complexity("mine", work, datasets_dir=cards)
    assert calls == [("Review: good movie", "good"), ("Review: bad bad film", "bad")]
    assert row["io_rougeL_mean"] == pytest.approx((0.5 + 0.4) / 2, abs=1e-12)


def test_compressibility_is_zlib_9_size_over_raw_size():
    text = "Review: good movie\ngood"
    assert compressibility(text) == len(zlib.compress(text.encode(), 9)) / 23
    assert compressibility("ab" * 1000) < 0.02 < 1 < compressibility("x")


def test_summarize_gives_p95_mean_and_population_sd():
    import numpy as np

    measures = np.array([[1, 1, 0.0, 0.5], [2, 1, 0.5, 0.5], [3, 1, 1.0, 0.5], [4, 1, 0.5, 0.5]])
    row = summarize(measures)
    assert (row["input_tokens_p95"], row["input_tokens_mean"]) == (3.85, 2.5)
    assert row["input_tokens_sd"] == pytest.approx(1.118034)
    assert (row["example_tokens_p95"], row["example_tokens_mean"]) == (4.85, 3.5)
    assert row["output_tokens_sd"] == 0 and row["compressibility_sd"] == 0
    assert row["io_rougeL_mean"] == 0.5 and row["io_rougeL_sd"] == pytest.approx(0.353553)
    assert row["n_examples"] == 4 and list(row) == list(HEURISTICS)


def test_task_heuristics_on_a_hand_made_table(tmp_path):
    cards, work = write_task(tmp_path, HAND_ROWS)
    row = task_complexity("mine", work, datasets_dir=cards)
    # inputs "Review: good movie" (4 tokens: Review, :, good, movie), "Review: bad bad film" (5);
    # outputs "good", "bad" (1 each); the validation row is not counted
    assert row["n_examples"] == 2
    assert (row["input_tokens_p95"], row["input_tokens_mean"], row["input_tokens_sd"]) == (
        4.95,
        4.5,
        0.5,
    )
    assert (row["output_tokens_p95"], row["output_tokens_mean"], row["output_tokens_sd"]) == (
        1,
        1,
        0,
    )
    assert (row["example_tokens_p95"], row["example_tokens_mean"]) == (5.95, 5.5)
    # ROUGE-L: [review good movie] vs [good] = 2/4; [review bad bad film] vs [bad] = 2/5
    assert (row["io_rougeL_mean"], row["io_rougeL_sd"]) == (0.45, 0.05)
    ratios = [
        len(zlib.compress(t.encode(), 9)) / len(t.encode())
        for t in ("Review: good movie\ngood", "Review: bad bad film\nbad")
    ]
    assert row["compressibility_mean"] == pytest.approx(sum(ratios) / 2, abs=1e-6)
    assert row["compressor"] == "zlib-9" and row["input_text"] == "prompt_template"


def test_worker_processes_give_the_same_heuristics_as_one_process(tmp_path, monkeypatch):
    rng = random.Random(3)
    words = "alpha beta gamma delta, epsilon! zeta eta 12 345".split()
    rows = [
        (" ".join(rng.choices(words, k=rng.randrange(1, 30))), rng.choice(words), 0)
        for _ in range(120)
    ]
    cards, work = write_task(tmp_path, rows)
    monkeypatch.setattr(complexity, "CHUNK_ROWS", 25)
    alone = task_complexity("mine", work, datasets_dir=cards, workers=1)
    assert task_complexity("mine", work, datasets_dir=cards, workers=2) == alone


def test_a_task_with_no_training_rows_is_an_error(tmp_path, capsys):
    cards, work = write_task(tmp_path, [("only validation", "1", 1)])
    status, _, err = run_cli(
        capsys, "complexity", "--task", "mine", "--runs", str(work), "--datasets", str(cards)
    )
    assert status == 2 and "task mine has no train rows" in err and "Traceback" not in err


def test_an_unprepared_task_is_an_error(tmp_path, capsys):
    status, _, err = run_cli(capsys, "complexity", "--task", "glue_sst2", "--runs", str(tmp_path))
    assert status == 2 and "not prepared yet; run `llmbench prepare --task glue_sst2`" in err


def test_writing_a_task_again_replaces_its_row(tmp_path):
    path = tmp_path / "train.csv"
    first = {
        "task": "a",
        "split": "train",
        **dict.fromkeys(HEURISTICS, 1),
        "compressor": "z",
        "input_text": "t",
        "study_n_train": 5,
    }
    write_complexity([first, first | {"task": "b"}], path)
    write_complexity([first | {"n_examples": 7}], path)
    table = read_complexity(path)
    assert list(table.index) == ["a", "b"] and table.at["a", "n_examples"] == 7


def test_a_non_numeric_heuristic_is_reported_with_its_task(tmp_path):
    path = tmp_path / "train.csv"
    row = {
        "task": "a",
        "split": "train",
        **dict.fromkeys(HEURISTICS, 1),
        "compressor": "z",
        "input_text": "t",
        "study_n_train": "",
    }
    write_complexity([row | {"io_rougeL_mean": "high"}], path)
    with pytest.raises(LLMBenchError, match="task a: io_rougeL_mean 'high' is not a number"):
        read_complexity(path)


def test_complexity_of_every_prepared_fixture_says_it_is_not_the_studys(tmp_path, capsys):
    for name, card in load_cards().items():
        prepare_task(name, source=fixture_source(card), out_dir=tmp_path, progress=False)
    status, out, _ = run_cli(capsys, "complexity", "--task", "all", "--runs", str(tmp_path))
    table = read_complexity(tmp_path / "complexity" / "train.csv")
    assert status == 0 and len(table) == 31 and (table["n_examples"] < 100).all()
    assert "31 of 31 tasks come from other rows than the study's" in out
    assert "not the study's heuristics" in out and "glue_mnli" in out


def test_token_counts_equal_count_tokens():
    from llmbench.analysis.complexity import token_counts
    from llmbench.tasks.tokens import count_tokens

    texts = ["Review: good movie", "", "<|endoftext|> is ordinary text here", "héllo wörld " * 50]
    assert token_counts(texts) == count_tokens(texts) == [4, 0, 11, 301]


def test_the_llmbench_command_offers_the_analysis_subcommands(tmp_path, capsys):
    from llmbench.cli import build_parser, main

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    assert {"complexity", "correlate", "predict"} <= set(commands)
    assert main(["correlate", "--scores", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: not found" in capsys.readouterr().err


def test_template_pieces_count_exactly_the_tokens_of_the_filled_template():
    from llmbench.analysis.complexity import (
        Batch,
        input_token_counts,
        template_pieces,
        token_counts,
    )

    rng = random.Random(11)
    alphabet = [
        "\n",
        "\n\n",
        " ",
        "  ",
        "\t",
        "\r\n",
        ".",
        "#",
        ":",
        "'s",
        "word",
        "Word",
        "42",
        "1234",
        "é",
        "\u00a0",
        "{",
        "}",
        "!?",
        "🙂",
        "",
    ]
    templates = [c.prompt_template for c in load_cards().values()]
    templates += ["{a}\n{b}", "x\n#{a}\n\n\n!{b}\n ", "{a}{b}", "\n\n{a}\n.\n{b}\n\n{{c}}\n#"]
    for template in templates:
        pieces = template_pieces(template)
        assert "".join(pieces) == template
        columns = tuple(template_fields(template))
        values = [
            ["".join(rng.choices(alphabet, k=rng.randrange(0, 8))) for _ in range(40)]
            for _ in columns
        ]
        batch = Batch(template, columns, values, ["t"] * 40)
        filled = [
            template.format_map(dict(zip(columns, row, strict=True)))
            for row in zip(*values, strict=True)
        ]
        assert list(input_token_counts(batch)) == token_counts(filled), template
