"""Preparation of the classification and multiple-choice tasks: the eight GLUE tasks, boolq,
dbpedia, mmlu, arc_combined, winogrande, hellaswag and hellaswag_processed (all Hugging Face
datasets, copied locally as one file per upstream split).

Each task is prepared from its shipped fixture, from a Parquet copy (what `llmbench fetch`
writes), from broken copies, and, where ../shared/data has it, from the real files. The expected
targets below were worked out by hand from the fixture files.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from prepare_helpers import (  # noqa: I001 - tests/ is on sys.path
    copy_fixture,
    counts_of,
    prepare,
    read_jsonl,
    rows_of,
    write_jsonl,
)

from llmbench.errors import LLMBenchError
from llmbench.prepare.tables import fixture_source, prepare_task, prepared_path
from llmbench.tasks.cards import get_card

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
GLUE = (
    "glue_cola",
    "glue_mnli",
    "glue_mrpc",
    "glue_qnli",
    "glue_qqp",
    "glue_sst2",
    "glue_stsb",
    "glue_wnli",
)
TASKS = (
    *GLUE,
    "boolq",
    "dbpedia",
    "mmlu",
    "arc_combined",
    "winogrande",
    "hellaswag",
    "hellaswag_processed",
)

# Rows each fixture yields. Unlabelled splits (GLUE test, winogrande and hellaswag test) sit in
# the fixtures as upstream ships them but are not prepared.
FIXTURE_COUNTS = {task: {"train": 14, "validation": 6} for task in GLUE}
FIXTURE_COUNTS |= {
    "boolq": {"train": 14, "validation": 6},
    "dbpedia": {"train": 14, "test": 6},
    "mmlu": {"train": 12, "validation": 4, "test": 4},
    "arc_combined": {"train": 8, "validation": 6, "test": 6},
    "winogrande": {"train": 14, "test": 6},
    "hellaswag": {"train": 14, "validation": 6},
    "hellaswag_processed": {"train": 14, "validation": 6},
}

# (task, split, row within the split, column, expected text)
HAND_TARGETS = [
    ("glue_cola", "train", 1, "label", "0"),
    ("glue_cola", "validation", 4, "label", "1"),
    (
        "glue_sst2",
        "train",
        0,
        "sentence",
        "a warm , funny and surprisingly tender portrait of family life",
    ),
    ("glue_mrpc", "validation", 2, "label", "1"),
    ("glue_qqp", "train", 11, "label", "0"),
    (
        "glue_qnli",
        "train",
        10,
        "sentence",
        "The first grammar of the language was written by a missionary, Tomás Ferrer, in 1612.",
    ),
    ("glue_wnli", "train", 12, "label", "1"),
    # validation_matched (3 rows) comes first, then validation_mismatched
    ("glue_mnli", "validation", 1, "label", "2"),
    (
        "glue_mnli",
        "validation",
        3,
        "premise",
        "yeah i used to go fishing up there every weekend when the kids were little",
    ),
    ("glue_mnli", "validation", 5, "label", "1"),
    ("glue_stsb", "train", 0, "label", "5"),
    ("glue_stsb", "train", 6, "label", "0"),
    ("glue_stsb", "train", 7, "label", "4.25"),
    ("glue_stsb", "train", 9, "label", "3.8"),
    ("glue_stsb", "train", 11, "label", "1.667"),
    ("glue_stsb", "validation", 4, "label", "4"),
    ("boolq", "train", 1, "answer", "yes"),
    ("boolq", "validation", 0, "answer", "no"),
    ("boolq", "validation", 0, "question", "can an ostrich fly"),
    ("dbpedia", "train", 3, "label", "Athlete"),
    (
        "dbpedia",
        "train",
        3,
        "content",
        "Tomasz Wrona (born 12 March 1988) is a Polish footballer who plays as a defender for "
        "Górnik Łęczna. He previously played for three clubs in the Ekstraklasa.",
    ),
    ("dbpedia", "train", 13, "label", "WrittenWork"),
    ("dbpedia", "test", 2, "label", "Village"),
    ("mmlu", "train", 7, "answer", "D"),
    ("mmlu", "validation", 1, "choices", "A. 3x^2 - 4\nB. x^2 - 4\nC. 3x^2\nD. 3x - 4"),
    ("mmlu", "validation", 1, "answer", "A"),
    ("mmlu", "test", 3, "answer", "C"),
    # train: ARC-Challenge's 4 rows, then ARC-Easy's 4
    (
        "arc_combined",
        "train",
        2,
        "choices",
        "A. balance\nB. ruler\nC. thermometer\nD. graduated cylinder",
    ),
    ("arc_combined", "train", 2, "answer", "A"),
    ("arc_combined", "train", 4, "question", "Which body part helps a fish breathe underwater?"),
    ("arc_combined", "train", 6, "answer", "C"),
    (
        "arc_combined",
        "validation",
        0,
        "choices",
        "A. ice melting\nB. wood burning\nC. paper tearing",
    ),
    ("arc_combined", "validation", 2, "answer", "C"),
    (
        "arc_combined",
        "test",
        0,
        "choices",
        "A. a glass marble\nB. an iron nail\nC. a rubber eraser\nD. a wooden block\n"
        "E. a plastic button",
    ),
    ("arc_combined", "test", 5, "answer", "D"),
    ("winogrande", "train", 0, "answer", "2"),
    (
        "winogrande",
        "test",
        2,
        "sentence",
        "Brian offered to drive Eric to the airport since _ owned a car.",
    ),
    ("winogrande", "test", 2, "answer", "1"),
    (
        "hellaswag",
        "train",
        3,
        "context",
        "[header] How to clean a cast iron skillet [title] Let the skillet cool slightly. [step] "
        "Wait until the pan is warm but no longer hot enough to burn you.",
    ),
    ("hellaswag", "train", 12, "label", "3"),
    (
        "hellaswag",
        "validation",
        0,
        "endings",
        "0. presses a hot iron over the fabric, smoothing out the wrinkles.\n1. puts the shirt in "
        "the oven.\n2. rolls the shirt into a ball and throws it.\n3. sits on the ironing board "
        "and folds it up.",
    ),
    (
        "hellaswag",
        "validation",
        0,
        "context",
        "A woman spreads a wrinkled shirt across an ironing board. she",
    ),
    (
        "hellaswag_processed",
        "train",
        4,
        "ending",
        "starts, and he pushes it in straight lines across the grass.",
    ),
    (
        "hellaswag_processed",
        "validation",
        3,
        "ending",
        "[title] Keep your bedroom cool, dark and quiet. [step] Consider earplugs or blackout "
        "curtains if you need them.",
    ),
]


def edit_row(path: Path, number: int, **changes) -> None:
    """Change (or, with value None, drop) keys of the 1-based `number`th record of a JSONL file."""
    records = read_jsonl(path)
    for key, value in changes.items():
        if value is None:
            del records[number - 1][key]
        else:
            records[number - 1][key] = value
    write_jsonl(path, records)


def as_parquet(folder: Path, out: Path) -> Path:
    """The same local copy with every `<split>.jsonl` written as `<split>.parquet`."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    for path in sorted(folder.rglob("*.jsonl")):
        target = out / path.relative_to(folder).with_suffix(".parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pj.read_json(path), target)
    return out


def assert_fails_cleanly(task: str, source: Path, out: Path, *fragments: str) -> None:
    """Preparing fails with one LLMBenchError naming `fragments`, and leaves no table behind."""
    with pytest.raises(LLMBenchError) as caught:
        prepare_task(task, source=source, out_dir=out, progress=False)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    assert not prepared_path(task, out).exists()
    assert not (out / "prepared").exists() or not any((out / "prepared").iterdir())


# --- the fixtures -------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_fixture_prepares_into_the_card_columns_and_split_counts(task, tmp_path):
    card = get_card(task)
    frame = prepare(task, fixture_source(card), tmp_path)
    assert list(frame.columns) == [*card.input_columns, card.target_col, card.split_column]
    assert counts_of(frame) == FIXTURE_COUNTS[task]
    assert sorted(counts_of(frame)) == sorted(card.source["splits"])


@pytest.mark.parametrize(("task", "split", "index", "column", "expected"), HAND_TARGETS)
def test_fixture_rows_hold_the_hand_worked_values(task, split, index, column, expected, tmp_path):
    frame = prepare(task, fixture_source(get_card(task)), tmp_path)
    assert rows_of(frame, split).loc[index, column] == expected


@pytest.mark.parametrize("task", TASKS)
def test_preparing_twice_gives_byte_identical_tables(task, tmp_path):
    source = fixture_source(get_card(task))
    first = prepare_task(task, source=source, out_dir=tmp_path / "a", progress=False).path
    second = prepare_task(task, source=source, out_dir=tmp_path / "b", progress=False).path
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "task", ["glue_mnli", "glue_stsb", "boolq", "mmlu", "arc_combined", "hellaswag"]
)
def test_a_parquet_copy_prepares_like_the_jsonl_fixture(task, tmp_path):
    source = fixture_source(get_card(task))
    expected = prepare(task, source, tmp_path / "from_jsonl")
    parquet = as_parquet(source, tmp_path / "parquet")
    assert prepare(task, parquet, tmp_path / "from_parquet").equals(expected)


def test_stsb_float32_scores_are_written_with_three_decimals_at_most(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = copy_fixture("glue_stsb", tmp_path)
    table = pa.table(
        {
            "sentence1": ["A.", "B.", "C."],
            "sentence2": ["a.", "b.", "c."],
            "label": pa.array([3.8, 2.4, 4.667], pa.float32()),
            "idx": [0, 1, 2],
        }
    )
    (source / "validation.jsonl").unlink()
    pq.write_table(table, source / "validation.parquet")
    frame = prepare("glue_stsb", source, tmp_path / "out")
    assert list(rows_of(frame, "validation")["label"]) == ["3.8", "2.4", "4.667"]


def test_mmlu_reads_auxiliary_train_rows_wrapped_in_a_train_object(tmp_path):
    source = copy_fixture("mmlu", tmp_path)
    path = source / "auxiliary_train.jsonl"
    write_jsonl(path, [{"train": record} for record in read_jsonl(path)])
    frame = prepare("mmlu", source, tmp_path / "out")
    expected = prepare("mmlu", fixture_source(get_card("mmlu")), tmp_path / "plain")
    assert frame.equals(expected)


# --- broken upstream copies ---------------------------------------------------------------------


def test_glue_hidden_test_label_in_a_prepared_split_is_an_error(tmp_path):
    source = copy_fixture("glue_cola", tmp_path)
    edit_row(source / "validation.jsonl", 3, label=-1)
    assert_fails_cleanly(
        "glue_cola",
        source,
        tmp_path / "out",
        str(source / "validation.jsonl"),
        "row 3",
        "label -1",
        "hidden GLUE test label",
    )


def test_glue_missing_column_names_the_file_and_line(tmp_path):
    source = copy_fixture("glue_mrpc", tmp_path)
    edit_row(source / "validation.jsonl", 2, sentence2=None)
    assert_fails_cleanly(
        "glue_mrpc",
        source,
        tmp_path / "out",
        str(source / "validation.jsonl"),
        "line 2",
        "sentence2",
    )


def test_glue_undecodable_bytes_name_the_file(tmp_path):
    source = copy_fixture("glue_qqp", tmp_path)
    path = source / "train.jsonl"
    path.write_bytes(path.read_bytes().replace(b"Egypt", b"Egy\xffpt", 1))
    assert_fails_cleanly("glue_qqp", source, tmp_path / "out", str(path), "undecodable", "UTF-8")


def test_glue_bad_json_line_in_the_second_part_of_a_split(tmp_path):
    source = copy_fixture("glue_mnli", tmp_path)
    path = source / "validation_mismatched.jsonl"
    path.write_text(path.read_text(encoding="utf-8")[:-20] + "\n", encoding="utf-8")
    assert_fails_cleanly("glue_mnli", source, tmp_path / "out", str(path), "line 3", "bad JSON")


def test_glue_missing_split_file_is_named(tmp_path):
    source = copy_fixture("glue_mnli", tmp_path)
    (source / "validation_matched.jsonl").unlink()
    assert_fails_cleanly("glue_mnli", source, tmp_path / "out", str(source), "validation_matched")


def test_stsb_score_outside_zero_to_five_is_an_error(tmp_path):
    source = copy_fixture("glue_stsb", tmp_path)
    edit_row(source / "train.jsonl", 5, label=5.5)
    assert_fails_cleanly(
        "glue_stsb",
        source,
        tmp_path / "out",
        str(source / "train.jsonl"),
        "row 5",
        "label 5.5",
        "between 0 and 5",
    )


def test_boolq_answer_that_is_not_a_boolean_is_an_error(tmp_path):
    source = copy_fixture("boolq", tmp_path)
    edit_row(source / "train.jsonl", 4, answer="maybe")
    assert_fails_cleanly(
        "boolq",
        source,
        tmp_path / "out",
        str(source / "train.jsonl"),
        "row 4",
        "'maybe'",
        "true or false",
    )


def test_dbpedia_unknown_label_value_is_an_error(tmp_path):
    source = copy_fixture("dbpedia", tmp_path)
    edit_row(source / "test.jsonl", 6, label=14)
    assert_fails_cleanly(
        "dbpedia", source, tmp_path / "out", str(source / "test.jsonl"), "row 6", "label 14", "0-13"
    )


def test_dbpedia_text_that_is_not_text_is_an_error(tmp_path):
    source = copy_fixture("dbpedia", tmp_path)
    edit_row(source / "train.jsonl", 2, content=["a", "list"])
    assert_fails_cleanly(
        "dbpedia",
        source,
        tmp_path / "out",
        str(source / "train.jsonl"),
        "row 2",
        "content is list",
        "expected text",
    )


def test_mmlu_answer_beyond_the_choices_is_an_error(tmp_path):
    source = copy_fixture("mmlu", tmp_path)
    edit_row(source / "validation.jsonl", 2, answer=4)
    assert_fails_cleanly(
        "mmlu",
        source,
        tmp_path / "out",
        str(source / "validation.jsonl"),
        "row 2",
        "answer 4",
        "0-3",
    )


def test_mmlu_missing_choices_column_is_an_error(tmp_path):
    source = copy_fixture("mmlu", tmp_path)
    edit_row(source / "test.jsonl", 1, choices=None)
    assert_fails_cleanly(
        "mmlu", source, tmp_path / "out", str(source / "test.jsonl"), "row 1", "choices"
    )


def test_arc_answer_key_outside_the_choice_labels_is_an_error(tmp_path):
    source = copy_fixture("arc_combined", tmp_path)
    path = source / "ARC-Easy" / "train.jsonl"
    edit_row(path, 3, answerKey="E")
    assert_fails_cleanly(
        "arc_combined", source, tmp_path / "out", str(path), "row 3", "answerKey 'E'", "1, 2, 3, 4"
    )


def test_arc_missing_config_folder_is_named(tmp_path):
    source = copy_fixture("arc_combined", tmp_path)
    shutil.rmtree(source / "ARC-Easy")
    assert_fails_cleanly(
        "arc_combined",
        source,
        tmp_path / "out",
        str(source),
        "ARC-Easy",
        "one folder per ARC config",
    )


def test_winogrande_unlabelled_split_is_an_error_when_read(tmp_path):
    source = copy_fixture("winogrande", tmp_path)
    (source / "validation.jsonl").unlink()
    shutil.copy(source / "test.jsonl", source / "validation.jsonl")
    assert_fails_cleanly(
        "winogrande",
        source,
        tmp_path / "out",
        str(source / "validation.jsonl"),
        "row 1",
        "answer ''",
        "unlabelled",
    )


def test_hellaswag_endings_that_are_not_four_texts_are_an_error(tmp_path):
    source = copy_fixture("hellaswag", tmp_path)
    edit_row(source / "train.jsonl", 9, endings=["one", "two", "three"])
    assert_fails_cleanly(
        "hellaswag",
        source,
        tmp_path / "out",
        str(source / "train.jsonl"),
        "row 9",
        "endings",
        "4 texts",
    )


def test_hellaswag_processed_cannot_take_an_ending_from_an_unlabelled_row(tmp_path):
    source = copy_fixture("hellaswag_processed", tmp_path)
    edit_row(source / "validation.jsonl", 2, label="")
    assert_fails_cleanly(
        "hellaswag_processed",
        source,
        tmp_path / "out",
        str(source / "validation.jsonl"),
        "row 2",
        "label ''",
        "unlabelled",
    )


# --- the real upstream files, where ../shared/data has them -------------------------------------

# Where a real copy sits (or would sit) under ../shared/data: a folder named for the task, in
# its publisher's layout (GLUE's TSV folders, AI2's ARC release folders, or one file per
# Hugging Face split). Missing ones skip; a test runs as soon as its copy is added.
SHARED_COPIES = {task: task for task in (*GLUE, "boolq", "dbpedia", "mmlu", "arc_combined")} | {
    "hellaswag": "hellaswag",
    "hellaswag_processed": "hellaswag",
}


def study_counts(task: str, splits) -> dict[str, int]:
    """The study's counts (tasks.csv) for the splits we prepare."""
    with open(SHARED / "paper" / "tasks.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["task"] == task)
    counts = {split: int(row[f"n_{split}"]) for split in splits}
    if task.startswith("hellaswag"):
        # The study's validation and test counts are swapped (see the card's notes): upstream
        # validation, the labelled split we prepare, has the 10042 rows tasks.csv lists as test.
        counts["validation"] = int(row["n_test"])
    return counts


def test_winogrande_reads_ai2_release_file_names(tmp_path):
    source = copy_fixture("winogrande", tmp_path)
    (source / "train.jsonl").rename(source / "train_debiased.jsonl")
    (source / "validation.jsonl").rename(source / "dev.jsonl")
    expected = prepare("winogrande", fixture_source(get_card("winogrande")), tmp_path / "a")
    assert prepare("winogrande", source, tmp_path / "b").equals(expected)


@pytest.mark.shared_data
def test_real_winogrande_train_debiased_gives_9248_rows_as_published(tmp_path):
    # ../shared/data/winogrande holds train_debiased.jsonl only: the fixture's validation file,
    # named as AI2 names it (dev.jsonl), stands in for the test split.
    real = SHARED_DATA / "winogrande" / "train_debiased.jsonl"
    if not real.is_file():
        pytest.skip(f"{real} is absent: no real copy of winogrande in ../shared/data")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train_debiased.jsonl").symlink_to(real)
    shutil.copy(fixture_source(get_card("winogrande")) / "validation.jsonl", source / "dev.jsonl")
    train = rows_of(prepare("winogrande", source, tmp_path / "out"), "train")
    assert len(train) == study_counts("winogrande", ["train"])["train"] == 9248
    published = read_jsonl(real)
    for index in (0, 4623, 9247):
        for column in ("sentence", "option1", "option2", "answer"):
            assert train.loc[index, column] == published[index][column].strip()


@pytest.mark.shared_data
@pytest.mark.parametrize("task", TASKS)
def test_real_upstream_gives_the_study_counts(task, tmp_path):
    if task not in SHARED_COPIES:
        pytest.skip(f"../shared/data has no full copy of {task} (see its own real-data test)")
    source = SHARED_DATA / SHARED_COPIES[task]
    if not source.is_dir():
        pytest.skip(f"{source} is absent: ../shared/data has no real copy of {task} yet")
    card = get_card(task)
    frame = prepare(task, source, tmp_path)
    assert counts_of(frame) == study_counts(task, card.source["splits"])


def ai2_line(row: dict) -> dict:
    """A Hugging Face ARC row as AI2's release writes it."""
    choices = [{"text": t, "label": lab} for t, lab in zip(*row["choices"].values(), strict=True)]
    return {
        "id": row["id"],
        "question": {"stem": row["question"], "choices": choices},
        "answerKey": row["answerKey"],
    }


def test_arc_reads_ai2_release_files(tmp_path):
    fixture = fixture_source(get_card("arc_combined"))
    source = tmp_path / "ai2"
    for config in ("ARC-Challenge", "ARC-Easy"):
        for split, name in (("train", "Train"), ("validation", "Dev"), ("test", "Test")):
            rows = read_jsonl(fixture / config / f"{split}.jsonl")
            write_jsonl(source / config / f"{config}-{name}.jsonl", [ai2_line(r) for r in rows])
    expected = prepare("arc_combined", fixture, tmp_path / "hf")
    assert prepare("arc_combined", source, tmp_path / "out").equals(expected)


def test_arc_ai2_question_without_stem_and_choices_names_the_file_and_line(tmp_path):
    source = tmp_path / "ai2"
    for config in ("ARC-Challenge", "ARC-Easy"):
        for name in ("Train", "Dev", "Test"):
            choices = [{"text": "Rain", "label": "A"}, {"text": "Sun", "label": "B"}]
            line = {"id": "q1", "question": {"stem": "Why?", "choices": choices}, "answerKey": "A"}
            write_jsonl(source / config / f"{config}-{name}.jsonl", [line])
    path = source / "ARC-Challenge" / "ARC-Challenge-Train.jsonl"
    write_jsonl(path, [line, {"id": "q2", "question": "Why not?", "answerKey": "A"}])
    assert_fails_cleanly(
        "arc_combined", source, tmp_path / "out", str(path), "row 2", "question is 'Why not?'"
    )


@pytest.mark.shared_data
def test_real_arc_release_rows_match_its_files(tmp_path):
    real = SHARED_DATA / "arc_combined"
    if not real.is_dir():
        pytest.skip(f"{real} is absent: no real copy of arc_combined in ../shared/data")
    test = rows_of(prepare("arc_combined", real, tmp_path), "test")
    challenge = read_jsonl(real / "ARC-Challenge" / "ARC-Challenge-Test.jsonl")
    easy = read_jsonl(real / "ARC-Easy" / "ARC-Easy-Test.jsonl")
    published = challenge + easy  # each split: the Challenge rows, then the Easy rows
    assert len(test) == len(published) == 3548
    for index in (0, len(challenge), len(published) - 1):
        line = published[index]
        labels = [c["label"] for c in line["question"]["choices"]]
        assert test.loc[index, "question"] == line["question"]["stem"].strip()
        assert (
            test.loc[index, "choices"]
            .splitlines()[0]
            .endswith(line["question"]["choices"][0]["text"].strip())
        )
        assert test.loc[index, "answer"] == "ABCDE"[labels.index(line["answerKey"])]
