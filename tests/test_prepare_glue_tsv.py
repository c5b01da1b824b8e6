"""The GLUE tasks from the GLUE distribution's TSV folders: each fixture rewritten here in its
task's TSV layout gives the same table as the fixture itself; broken TSV files; and, where
../shared/data has them, the real folders (exact counts, rows checked against the files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prepare_helpers import counts_of, prepare, read_jsonl, rows_of  # noqa: I001

from llmbench.errors import LLMBenchError
from llmbench.prepare.tables import fixture_source, prepare_task, prepared_path
from llmbench.tasks.cards import get_card

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# GLUE's file for each Hugging Face split.
TSV_NAMES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
}
MNLI = ("entailment", "neutral", "contradiction")
QNLI = ("entailment", "not_entailment")
STSB_HEADER = (
    "index genre filename year old_index source1 source2 sentence1 sentence2 score".split()
)
MNLI_HEADER = (
    "index promptID pairID genre sentence1_binary_parse sentence2_binary_parse sentence1_parse "
    "sentence2_parse sentence1 sentence2 label1 gold_label"
).split()

# Each task's TSV layout as GLUE's distribution writes it: the header (None: CoLA has no header
# line) and a Hugging Face row's values under it.
LAYOUTS = {
    "glue_cola": (None, lambda r: ["gj04", r["label"], "", r["sentence"]]),
    "glue_sst2": (["sentence", "label"], lambda r: [r["sentence"] + " ", r["label"]]),
    "glue_mrpc": (
        ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        lambda r: [r["label"], 1000 + r["idx"], 2000 + r["idx"], r["sentence1"], r["sentence2"]],
    ),
    "glue_stsb": (
        STSB_HEADER,
        lambda r: (
            [r["idx"], "main-news", "MSRvid", "2012test", "0001", "none", "none"]
            + [r["sentence1"], r["sentence2"], f"{r['label']:.3f}"]
        ),
    ),
    "glue_mnli": (
        MNLI_HEADER,
        lambda r: (
            [r["idx"], 7, "7e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)"]
            + [r["premise"], r["hypothesis"], MNLI[r["label"]], MNLI[r["label"]]]
        ),
    ),
    "glue_qnli": (
        ["index", "question", "sentence", "label"],
        lambda r: [r["idx"], r["question"], r["sentence"], QNLI[r["label"]]],
    ),
    "glue_qqp": (
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        lambda r: [r["idx"], 1, 2, r["question1"], r["question2"], r["label"]],
    ),
    "glue_wnli": (
        ["index", "sentence1", "sentence2", "label"],
        lambda r: [r["idx"], r["sentence1"], r["sentence2"], r["label"]],
    ),
}


def write_tsv(path: Path, header: list[str] | None, rows: list[list], bom: bool = False) -> None:
    lines = [] if header is None else ["\t".join(header)]
    lines += ["\t".join(str(value) for value in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")


def glue_folder(task: str, folder: Path) -> Path:
    """The task's fixture rewritten as GLUE's TSV folder."""
    header, values = LAYOUTS[task]
    fixture = fixture_source(get_card(task))
    for split, name in TSV_NAMES.items():
        if (fixture / f"{split}.jsonl").is_file():
            rows = [values(row) for row in read_jsonl(fixture / f"{split}.jsonl")]
            write_tsv(folder / name, header, rows, bom=task == "glue_mrpc")
    return folder


def assert_fails_cleanly(task: str, source: Path, out: Path, *fragments: str) -> None:
    with pytest.raises(LLMBenchError) as caught:
        prepare_task(task, source=source, out_dir=out, progress=False)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert not prepared_path(task, out).exists()


@pytest.mark.parametrize("task", sorted(LAYOUTS))
def test_the_glue_tsv_folder_gives_the_same_table_as_the_hugging_face_export(task, tmp_path):
    expected = prepare(task, fixture_source(get_card(task)), tmp_path / "hf")
    frame = prepare(task, glue_folder(task, tmp_path / "glue"), tmp_path / "tsv")
    assert frame.equals(expected)


def test_quote_characters_in_a_tsv_are_text(tmp_path):
    folder = tmp_path / "cola"
    write_tsv(
        folder / "train.tsv", None, [["gj04", 1, "", 'He said "go.'], ["gj04", 0, "*", "Go he."]]
    )
    write_tsv(folder / "dev.tsv", None, [["gj04", 1, "", '"Quoted" text.']])
    frame = prepare("glue_cola", folder, tmp_path / "out")
    assert list(frame["sentence"]) == ['He said "go.', "Go he.", '"Quoted" text.']
    assert list(frame["label"]) == ["1", "0", "1"]


def test_a_tsv_line_with_a_missing_field_names_the_file_and_line(tmp_path):
    folder = glue_folder("glue_sst2", tmp_path / "sst2")
    lines = (folder / "dev.tsv").read_text().splitlines()
    lines[2] = lines[2].split("\t")[0]
    (folder / "dev.tsv").write_text("\n".join(lines) + "\n")
    assert_fails_cleanly(
        "glue_sst2", folder, tmp_path / "out", str(folder / "dev.tsv"), "line 3", "fewer fields"
    )


def test_an_unknown_class_name_names_the_line_and_the_classes(tmp_path):
    folder = glue_folder("glue_mnli", tmp_path / "mnli")
    path = folder / "dev_mismatched.tsv"
    path.write_text(path.read_text().replace("\tneutral\tneutral\n", "\tneutral\thedging\n", 1))
    assert_fails_cleanly(
        "glue_mnli", folder, tmp_path / "out", str(path), "label 'hedging'", "1 (neutral)"
    )


def test_a_missing_dev_file_is_named(tmp_path):
    folder = glue_folder("glue_qqp", tmp_path / "qqp")
    (folder / "dev.tsv").unlink()
    assert_fails_cleanly("glue_qqp", folder, tmp_path / "out", str(folder / "dev.tsv"), "not found")


# --- the real GLUE folders in ../shared/data ---------------------------------------------------

# Per task: the columns of the published line holding the card's inputs and label, in order.
REAL_COLUMNS = {
    "glue_cola": ([3], 1),
    "glue_sst2": ([0], 1),
    "glue_mrpc": ([3, 4], 0),
    "glue_stsb": ([7, 8], 9),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("task", sorted(REAL_COLUMNS))
def test_real_glue_folder_gives_the_studys_counts_and_its_rows(task, tmp_path):
    real = SHARED_DATA / task
    if not real.is_dir():
        pytest.skip(f"{real} is absent: no real copy of {task} in ../shared/data")
    card = get_card(task)
    frame = prepare(task, real, tmp_path)
    assert counts_of(frame) == {s: card.split_counts[s] for s in ("train", "validation")}
    inputs, label = REAL_COLUMNS[task]
    for split, name in (("train", "train.tsv"), ("validation", "dev.tsv")):
        lines = (real / name).read_text(encoding="utf-8-sig").splitlines()
        published = [line.split("\t") for line in (lines if task == "glue_cola" else lines[1:])]
        rows = rows_of(frame, split)
        for index in (0, len(published) // 2, len(published) - 1):
            fields = published[index]
            assert [rows.loc[index, c] for c in card.input_columns] == [
                fields[i].strip() for i in inputs
            ]
            assert float(rows.loc[index, card.target_col]) == float(fields[label])
