"""Preparation of the generation tasks: NER as JSON (bc5cdr, conllpp), data-to-text (e2e_nlg,
viggo, webnlg), news (tldr_content_gen, tldr_headline_gen) and code (magicoder, wikisql).

Each task is prepared from its shipped fixture, from the other upstream layout it reads (written
here into tmp_path), from broken copies, and, where ../shared/data has it, from the real files.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pytest
from prepare_helpers import (  # noqa: I001 - tests/ is on sys.path
    copy_fixture,
    counts_of,
    prepare,
    rows_of,
    write_jsonl,
)

from llmbench.errors import LLMBenchError
from llmbench.prepare.readers.ner import entities_json
from llmbench.prepare.tables import (
    fixture_source,
    prepare_task,
    prepared_path,
    read_prepared,
)
from llmbench.tasks.cards import get_card
from llmbench.tasks.metrics import humaneval_pass_at_1

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TASKS = (
    "bc5cdr",
    "conllpp",
    "e2e_nlg",
    "tldr_content_gen",
    "tldr_headline_gen",
    "viggo",
    "webnlg",
    "magicoder",
    "wikisql",
)
FIXTURE_COUNTS = {task: {"train": 12, "validation": 4, "test": 4} for task in TASKS}
for _task in ("tldr_content_gen", "tldr_headline_gen", "magicoder"):
    FIXTURE_COUNTS[_task] = {"train": 16, "test": 4}


def write_parquet(path: Path, records: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)


def assert_fails_cleanly(task: str, source: Path, out: Path, *fragments: str) -> None:
    """Preparing fails with one LLMBenchError naming `fragments`, and leaves no table behind."""
    with pytest.raises(LLMBenchError) as caught:
        prepare_task(task, source=source, out_dir=out, progress=False)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not prepared_path(task, out).exists()
    assert not (out / "prepared").exists() or not any((out / "prepared").iterdir())


# --- the shipped fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_fixture_prepares_with_the_cards_columns_and_counts(task, tmp_path):
    card = get_card(task)
    result = prepare_task(task, source=fixture_source(card), out_dir=tmp_path, progress=False)
    frame = read_prepared(task, tmp_path)
    assert list(frame.columns) == [*card.input_columns, card.target_col, card.split_column]
    assert result.counts == FIXTURE_COUNTS[task]
    assert counts_of(frame) == FIXTURE_COUNTS[task]


@pytest.mark.parametrize("task", TASKS)
def test_preparing_twice_gives_identical_files(task, tmp_path):
    source = fixture_source(get_card(task))
    prepare_task(task, source=source, out_dir=tmp_path / "a", progress=False)
    prepare_task(task, source=source, out_dir=tmp_path / "b", progress=False)
    first = prepared_path(task, tmp_path / "a").read_bytes()
    assert first == prepared_path(task, tmp_path / "b").read_bytes()


# Targets worked out by hand from the fixtures: (task, split, row within the split, values).
HAND_WORKED = [
    (
        "conllpp",
        "train",
        3,
        {
            "sentence": "Norwegian group Statoil said Statoil would expand in Norway and Denmark .",
            "entities": '{"person": [], "organization": ["Statoil", "Statoil"], "location": '
            '["Norway", "Denmark"], "miscellaneous": ["Norwegian"]}',
        },
    ),
    (
        "conllpp",
        "train",
        11,
        {"entities": '{"person": [], "organization": [], "location": [], "miscellaneous": []}'},
    ),
    (
        "conllpp",
        "test",
        2,
        {
            "entities": '{"person": ["Joseph Otieno"], "organization": ["Kenya Cricket Association '
            'XI"], "location": ["Kenya"], "miscellaneous": []}'
        },
    ),
    (
        "bc5cdr",
        "train",
        9,
        {
            "entities": '{"chemical": ["haloperidol", "clozapine", "haloperidol", "benztropine"], '
            '"disease": ["tardive dyskinesia"]}'
        },
    ),
    (
        "bc5cdr",
        "train",
        7,
        {
            "sentence": "Pretreatment with N - acetylcysteine reduced tubular necrosis .",
            "entities": '{"chemical": ["N - acetylcysteine"], "disease": ["tubular necrosis"]}',
        },
    ),
    (
        "bc5cdr",
        "validation",
        0,
        {"entities": '{"chemical": ["Heparin"], "disease": ["thrombocytopenia"]}'},
    ),
    (
        "e2e_nlg",
        "train",
        7,
        {
            "meaning_representation": "name[Copper Pot], food[Chinese], priceRange[more than £30], "
            "area[city centre]",
            "reference": "Copper Pot serves Chinese food in the city centre for more than £30.",
        },
    ),
    (
        "e2e_nlg",
        "test",
        3,
        {"reference": "Children are welcome at The Anchor, a pub rated average by customers."},
    ),
    (
        "viggo",
        "validation",
        2,
        {
            "meaning_representation": "request_explanation(rating[poor], genres[racing])",
            "reference": "What is it about racing games that you find so poor?",
        },
    ),
    ("viggo", "test", 3, {"meaning_representation": "request_attribute(player_perspective[])"}),
    (
        "tldr_content_gen",
        "train",
        0,
        {"headline": "Startup builds solar-powered drone that stays aloft for a week"},
    ),
    (
        "tldr_content_gen",
        "test",
        1,
        {
            "headline": "Shellwise (GitHub Repo)",
            "content": "Shellwise explains shell commands in plain English. Paste a command and it "
            "breaks down each flag and pipe, with links to the manual pages.",
        },
    ),
    (
        "tldr_headline_gen",
        "test",
        0,
        {"headline": "Satellite startup launches its first weather sensors"},
    ),
    (
        "webnlg",
        "train",
        1,
        {
            "triples": "Harlow_Mills_Airport | runwayLength | 2150.0\n"
            "Harlow_Mills_Airport | elevationAboveTheSeaLevel | 87",
            "reference": "Harlow Mills Airport lies 87 metres above sea level and has a runway "
            "2150.0 metres long.",
        },
    ),
    ("webnlg", "test", 0, {"reference": "Winter Lines, directed by Hana Sato, came out in 2011."}),
    (
        "webnlg",
        "test",
        2,
        {
            "triples": "Winter_Lines | director | Hana_Sato\nWinter_Lines | releaseDate | 2011",
            "reference": "",
        },
    ),
    (
        "magicoder",
        "train",
        6,
        {
            "problem": "Write a bash one-liner that prints the five largest files in the current "
            "directory.",
            "solution": "```bash\nls -S | head -n 5\n```",
        },
    ),
    (
        "magicoder",
        "test",
        3,
        {
            "problem": 'def count_words(sentence: str) -> int:\n    """ Count the words '
            'separated by whitespace.\n    >>> count_words(\'a b  c\')\n    3\n    """\n',
            "solution": json.dumps(
                {
                    "prompt": 'def count_words(sentence: str) -> int:\n    """ Count the '
                    "words separated by whitespace.\n    >>> count_words('a b  c')\n"
                    '    3\n    """\n',
                    "test": "\n\ndef check(candidate):\n    assert candidate('a b  c') == 3\n"
                    "    assert candidate('') == 0\n",
                    "entry_point": "count_words",
                }
            ),
        },
    ),
    ("wikisql", "train", 1, {"sql": "SELECT Time FROM table WHERE Year = 2016"}),
    ("wikisql", "train", 9, {"sql": "SELECT SUM Votes FROM table WHERE First elected < 2005"}),
    ("wikisql", "validation", 3, {"sql": "SELECT COUNT Season FROM table"}),
    (
        "wikisql",
        "test",
        0,
        {
            "table": "Name | Built | Height (m) | Status\nGull Point | 1871 | 24 | Active\n"
            "Black Rock | 1902 | 31 | Museum",
            "question": "What is the status of the lighthouse built in 1902?",
            "sql": "SELECT Status FROM table WHERE Built = 1902.0",
        },
    ),
    (
        "wikisql",
        "test",
        2,
        {"sql": "SELECT District FROM table WHERE Incumbent = Luis Ortega AND Party = Labour"},
    ),
]


@pytest.mark.parametrize(
    ("task", "split", "index", "expected"),
    HAND_WORKED,
    ids=[f"{t}-{s}-{i}" for t, s, i, _ in HAND_WORKED],
)
def test_fixture_rows_hold_the_hand_worked_values(task, split, index, expected, tmp_path):
    row = rows_of(prepare(task, fixture_source(get_card(task)), tmp_path), split).iloc[index]
    assert {column: row[column] for column in expected} == expected


def test_tldr_tasks_hold_the_same_items_swapped(tmp_path):
    content_gen = prepare(
        "tldr_content_gen", fixture_source(get_card("tldr_content_gen")), tmp_path
    )
    headline_gen = prepare(
        "tldr_headline_gen", fixture_source(get_card("tldr_headline_gen")), tmp_path
    )
    for column in ("headline", "content", "split"):
        assert list(content_gen[column]) == list(headline_gen[column])


def test_humaneval_targets_carry_what_pass_at_1_needs(tmp_path):
    fixture = fixture_source(get_card("magicoder"))
    test_rows = rows_of(prepare("magicoder", fixture, tmp_path), "test")
    problems = [json.loads(line) for line in (fixture / "HumanEval.jsonl").read_text().splitlines()]
    for row, problem in zip(test_rows.itertuples(), problems, strict=True):
        assert row.problem == problem["prompt"]
        assert json.loads(row.solution) == {
            key: problem[key] for key in ("prompt", "test", "entry_point")
        }
        # The canonical solution passes when scored against the prepared target.
        assert humaneval_pass_at_1(problem["canonical_solution"], row.solution) == 1.0


# --- the NER target convention ----------------------------------------------------------------


def test_entities_json_reads_an_i_tag_after_o_as_a_new_span_and_keeps_non_ascii():
    keys = {"PER": "person", "LOC": "location"}
    tokens = ["Zoë", "Ng", "met", "Zoë", "Ng", "in", "São", "Paulo"]
    tags = ["I-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert (
        entities_json(tokens, tags, keys, str)
        == '{"person": ["Zoë Ng", "Zoë Ng"], "location": ["São Paulo"]}'
    )


def test_entities_json_lists_a_repeated_entity_once_per_mention_in_order_of_mention():
    # As the study's processed conllpp file does ("Polish", "Polish", "Polish").
    keys = {"MISC": "miscellaneous", "LOC": "location"}
    tokens = [
        "Polish",
        "farmers",
        "in",
        "Lodz",
        "and",
        "Polish",
        "miners",
        "near",
        "Lodz",
        "back",
        "Polish",
        "unions",
    ]
    tags = ["B-MISC", "O", "O", "B-LOC", "O", "B-MISC", "O", "O", "B-LOC", "O", "B-MISC", "O"]
    assert (
        entities_json(tokens, tags, keys, str)
        == '{"miscellaneous": ["Polish", "Polish", "Polish"], "location": ["Lodz", "Lodz"]}'
    )


def test_entities_json_splits_adjacent_b_tags_and_type_changes():
    keys = {"PER": "person", "ORG": "organization"}
    tokens = ["Ann", "Bo", "Acme", "Corp"]
    tags = ["B-PER", "B-PER", "I-ORG", "I-ORG"]
    assert (
        entities_json(tokens, tags, keys, str)
        == '{"person": ["Ann", "Bo"], "organization": ["Acme Corp"]}'
    )


# --- the other upstream layouts ---------------------------------------------------------------


def test_conllpp_reads_the_hugging_face_export(tmp_path):
    source = tmp_path / "hf"
    row = {
        "id": "0",
        "tokens": ["Mia", "Holt", "visited", "Lyon", "."],
        "pos_tags": [22, 22, 38, 22, 7],
        "chunk_tags": [11, 12, 21, 11, 0],
        "ner_tags": [1, 2, 0, 5, 0],
    }
    for split in ("train", "validation", "test"):
        write_parquet(source / f"{split}.parquet", [row])
    frame = prepare("conllpp", source, tmp_path / "out")
    assert counts_of(frame) == {"train": 1, "validation": 1, "test": 1}
    assert frame["sentence"][0] == "Mia Holt visited Lyon ."
    assert frame["entities"][0] == (
        '{"person": ["Mia Holt"], "organization": [], "location": ["Lyon"], "miscellaneous": []}'
    )


def test_bc5cdr_reads_tner_label_ids(tmp_path):
    source = tmp_path / "hf"
    row = {
        "tokens": ["Aspirin", "-", "induced", "asthma", "attack", "."],
        "tags": [1, 0, 0, 2, 3, 0],
    }
    for split in ("train", "validation", "test"):
        write_jsonl(source / f"{split}.jsonl", [row])
    frame = prepare("bc5cdr", source, tmp_path / "out")
    assert counts_of(frame) == {"train": 1, "validation": 1, "test": 1}
    assert frame["entities"][0] == '{"chemical": ["Aspirin"], "disease": ["asthma attack"]}'


@pytest.mark.parametrize(
    ("task", "columns"),
    [
        ("e2e_nlg", ("meaning_representation", "human_reference")),
        ("viggo", ("meaning_representation", "target")),
    ],
)
def test_mr_tasks_read_the_hugging_face_export(task, columns, tmp_path):
    source = tmp_path / "hf"
    for number, split in enumerate(("train", "validation", "test")):
        write_jsonl(
            source / f"{split}.jsonl",
            [
                {
                    columns[0]: f"name[Place {number}]",
                    columns[1]: f"Place {number}.",
                    "extra": "ignored",
                }
            ],
        )
    frame = prepare(task, source, tmp_path / "out")
    assert list(frame["meaning_representation"]) == [
        "name[Place 0]",
        "name[Place 1]",
        "name[Place 2]",
    ]
    assert list(frame["reference"]) == ["Place 0.", "Place 1.", "Place 2."]
    assert list(frame["split"]) == [0, 1, 2]


def test_tldr_reads_the_hugging_face_export(tmp_path):
    source = tmp_path / "hf"
    write_jsonl(
        source / "train.jsonl", [{"headline": "Ships sail ", "content": " Sea. ", "category": 1}]
    )
    write_jsonl(
        source / "test.jsonl", [{"headline": "Trains run", "content": "Rails.", "category": 2}]
    )
    frame = prepare("tldr_headline_gen", source, tmp_path / "out")
    assert list(frame["headline"]) == ["Ships sail", "Trains run"]
    assert list(frame["content"]) == ["Sea.", "Rails."]


def test_tldr_reads_the_full_csv_given_as_a_file(tmp_path):
    source = fixture_source(get_card("tldr_content_gen")) / "tldr_news_full.csv"
    frame = prepare("tldr_content_gen", source, tmp_path)
    assert counts_of(frame) == {"train": 16, "test": 4}


def test_webnlg_reads_the_parquet_export_with_nested_columns(tmp_path):
    source = tmp_path / "hf"
    entry = {
        "eid": "Id1",
        "modified_triple_sets": {"mtriple_set": [["A | b | C", "A | d | E"]]},
        "lex": {"comment": ["good"], "lid": ["Id1"], "text": ["A b C and d E."], "lang": [""]},
    }
    for split in ("train", "dev", "test"):
        write_parquet(source / f"{split}.parquet", [entry])
    frame = prepare("webnlg", source, tmp_path / "out")
    assert list(frame["triples"]) == ["A | b | C\nA | d | E"] * 3
    assert list(frame["reference"]) == ["A b C and d E."] * 3


def wikisql_original(folder: Path) -> None:
    """The original release's shape: questions beside their tables, numbers left as numbers."""
    table = {
        "id": "1-2-3",
        "header": ["Ship", "Launched", "Tonnage"],
        "types": ["text", "real", "real"],
        "rows": [["Osprey", 1921, 4100.5], ["Tern", 1930, 3900]],
    }
    for name, question, sql in [
        ("train", "When was Tern launched?", {"sel": 1, "agg": 0, "conds": [[0, 0, "Tern"]]}),
        (
            "dev",
            "Largest tonnage launched after 1925?",
            {"sel": 2, "agg": 1, "conds": [[1, 1, 1925]]},
        ),
        ("test", "Which ship has tonnage 4100.5?", {"sel": 0, "agg": 0, "conds": [[2, 0, 4100.5]]}),
    ]:
        write_jsonl(folder / f"{name}.tables.jsonl", [table])
        write_jsonl(
            folder / f"{name}.jsonl",
            [{"phase": 1, "table_id": "1-2-3", "question": question, "sql": sql}],
        )


def test_wikisql_reads_the_original_release(tmp_path):
    wikisql_original(tmp_path / "orig")
    frame = prepare("wikisql", tmp_path / "orig", tmp_path / "out")
    assert list(frame["sql"]) == [
        "SELECT Launched FROM table WHERE Ship = Tern",
        "SELECT MAX Tonnage FROM table WHERE Launched > 1925",
        "SELECT Ship FROM table WHERE Tonnage = 4100.5",
    ]
    assert frame["table"][0] == (
        "Ship | Launched | Tonnage\nOsprey | 1921 | 4100.5\nTern | 1930 | 3900"
    )
    assert list(frame["split"]) == [0, 1, 2]


def test_magicoder_reads_a_train_export_beside_humaneval_gz(tmp_path):
    fixture = fixture_source(get_card("magicoder"))
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(fixture / "data-oss_instruct-decontaminated.jsonl", source / "train.jsonl")
    with gzip.open(source / "HumanEval.jsonl.gz", "wb") as handle:
        handle.write((fixture / "HumanEval.jsonl").read_bytes())
    frame = prepare("magicoder", source, tmp_path / "out")
    assert counts_of(frame) == {"train": 16, "test": 4}


# --- broken upstream files --------------------------------------------------------------------


def test_a_truncated_conll_block_names_the_file_and_line(tmp_path):
    source = copy_fixture("conllpp", tmp_path)
    path = source / "conllpp_dev.txt"
    lines = path.read_text().splitlines()
    lines[4] = "WINS VBZ B-VP"  # the NER column lost
    path.write_text("\n".join(lines) + "\n")
    assert_fails_cleanly("conllpp", source, tmp_path / "out", str(path), "line 5", "expected 4")


def test_an_unknown_ner_tag_names_the_file_and_line(tmp_path):
    source = copy_fixture("bc5cdr", tmp_path)
    path = source / "devel.tsv"
    path.write_text(path.read_text().replace("thrombosis\tB-Disease", "thrombosis\tB-Gene"))
    assert_fails_cleanly(
        "bc5cdr", source, tmp_path / "out", str(path), "line 26", "tag 'B-Gene' unknown"
    )


def test_an_unknown_label_id_names_the_file_and_row(tmp_path):
    source = tmp_path / "hf"
    for split in ("train", "validation", "test"):
        write_jsonl(source / f"{split}.jsonl", [{"tokens": ["Ann"], "ner_tags": [9]}])
    assert_fails_cleanly(
        "conllpp",
        source,
        tmp_path / "out",
        str(source / "train.jsonl"),
        "row 1",
        "label id 9 unknown",
    )


def test_undecodable_bytes_name_the_file(tmp_path):
    source = copy_fixture("bc5cdr", tmp_path)
    path = source / "test.tsv"
    path.write_bytes(path.read_bytes().replace(b"leukemia", b"leuk\xe6mia"))
    assert_fails_cleanly("bc5cdr", source, tmp_path / "out", str(path), "undecodable bytes")


def test_a_missing_csv_column_names_the_file(tmp_path):
    source = copy_fixture("e2e_nlg", tmp_path)
    path = source / "devset.csv"
    path.write_text(path.read_text().replace("mr,ref", "mr,text", 1))
    assert_fails_cleanly("e2e_nlg", source, tmp_path / "out", str(path), "missing column(s) ref")


def test_a_missing_split_file_is_named(tmp_path):
    source = copy_fixture("e2e_nlg", tmp_path)
    (source / "trainset.csv").unlink()
    assert_fails_cleanly(
        "e2e_nlg", source, tmp_path / "out", str(source / "trainset.csv"), "file not found"
    )


def test_an_empty_reference_names_the_file_and_line(tmp_path):
    source = copy_fixture("viggo", tmp_path)
    path = source / "test.csv"
    path.write_text(path.read_text().replace("What perspective do you prefer in games?", '""'))
    assert_fails_cleanly("viggo", source, tmp_path / "out", str(path), "line 5", "ref is empty")


def test_an_unknown_tldr_split_code_names_the_file_and_line(tmp_path):
    source = copy_fixture("tldr_headline_gen", tmp_path)
    path = source / "tldr_news_full.csv"
    lines = path.read_text().splitlines()
    lines[14] = "1" + lines[14][1:]
    path.write_text("\n".join(lines) + "\n")
    assert_fails_cleanly(
        "tldr_headline_gen",
        source,
        tmp_path / "out",
        str(path),
        "line 15",
        "split '1' unknown; expected 0 (train) or 2 (test)",
    )


def test_a_bad_json_line_names_the_file_and_line(tmp_path):
    source = copy_fixture("webnlg", tmp_path)
    path = source / "dev.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n")
    assert_fails_cleanly("webnlg", source, tmp_path / "out", str(path), "line 3", "bad JSON")


def test_a_training_entry_without_lexicalisation_is_an_error(tmp_path):
    source = copy_fixture("webnlg", tmp_path)
    path = source / "train.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[4]["lex"] = {"comment": [], "lid": [], "text": [], "lang": []}
    write_jsonl(path, entries)
    assert_fails_cleanly(
        "webnlg", source, tmp_path / "out", str(path), "line 5", "lex.text is empty"
    )


def test_a_select_column_out_of_range_names_the_file_and_line(tmp_path):
    source = copy_fixture("wikisql", tmp_path)
    path = source / "validation.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["sql"]["sel"] = 7
    write_jsonl(path, rows)
    assert_fails_cleanly(
        "wikisql", source, tmp_path / "out", str(path), "line 2", "sql.sel: 7 is out of range"
    )


def test_a_question_whose_table_is_missing_is_named(tmp_path):
    wikisql_original(tmp_path / "orig")
    write_jsonl(
        tmp_path / "orig" / "dev.tables.jsonl", [{"id": "9-9-9", "header": ["A"], "rows": [["x"]]}]
    )
    assert_fails_cleanly(
        "wikisql",
        tmp_path / "orig",
        tmp_path / "out",
        str(tmp_path / "orig" / "dev.jsonl"),
        "line 1",
        "table_id '1-2-3'",
    )


def test_a_humaneval_problem_without_tests_is_named(tmp_path):
    source = copy_fixture("magicoder", tmp_path)
    path = source / "HumanEval.jsonl"
    problems = [json.loads(line) for line in path.read_text().splitlines()]
    del problems[2]["test"]
    write_jsonl(path, problems)
    assert_fails_cleanly(
        "magicoder", source, tmp_path / "out", str(path), "line 3", "missing key(s) test"
    )


def test_a_missing_humaneval_file_is_named(tmp_path):
    source = copy_fixture("magicoder", tmp_path)
    (source / "HumanEval.jsonl").unlink()
    assert_fails_cleanly(
        "magicoder",
        source,
        tmp_path / "out",
        f"{source}: no file HumanEval.jsonl.gz",
        "or HumanEval.jsonl uncompressed",
    )


# --- the real upstream files in ../shared/data ------------------------------------------------


def shared(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"{path} absent: the real upstream copies live in ../shared/data")
    return path


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("task", "folder"),
    [
        ("conllpp", "conllpp"),
        ("viggo", "viggo"),
        ("tldr_content_gen", "tldr_news"),
        ("tldr_headline_gen", "tldr_news"),
    ],
)
def test_real_files_give_the_studys_counts(task, folder, tmp_path):
    frame = prepare(task, shared(folder), tmp_path)
    study = {name: count for name, count in get_card(task).split_counts.items() if count}
    assert counts_of(frame) == study


@pytest.mark.shared_data
def test_real_conllpp_targets_are_json_with_the_four_keys(tmp_path):
    frame = prepare("conllpp", shared("conllpp"), tmp_path)
    keys = {tuple(json.loads(text)) for text in frame["entities"]}
    assert keys == {("person", "organization", "location", "miscellaneous")}


@pytest.mark.shared_data
def test_real_conllpp_keeps_repeated_entities_in_the_rows_the_study_has_them(tmp_path):
    # The study's processed file lists an entity once per mention; 377 of its rows name some
    # entity more than once (256 train, 70 validation, 51 test).
    frame = prepare("conllpp", shared("conllpp"), tmp_path)
    repeats = {}
    for split in ("train", "validation", "test"):
        targets = [json.loads(text) for text in rows_of(frame, split)["entities"]]
        repeats[split] = sum(any(len(set(v)) < len(v) for v in t.values()) for t in targets)
    assert repeats == {"train": 256, "validation": 70, "test": 51}


@pytest.mark.shared_data
def test_real_bc5cdr_iob_release_gives_its_own_counts(tmp_path):
    # shared/data/bc5cdr is the BC5CDR-IOB release, split into sentences differently from the
    # study's tner/bc5cdr (5228 / 5330 / 5865): its own counts, from the data README, are expected.
    frame = prepare("bc5cdr", shared("bc5cdr"), tmp_path)
    assert counts_of(frame) == {"train": 4560, "validation": 4581, "test": 4797}
    assert {tuple(json.loads(text)) for text in frame["entities"]} == {("chemical", "disease")}


@pytest.mark.shared_data
def test_real_e2e_full_set_gives_the_studys_counts_one_row_per_reference(tmp_path):
    real = shared("e2e_nlg")
    frame = prepare("e2e_nlg", real, tmp_path)
    assert counts_of(frame) == {"train": 42061, "validation": 4672, "test": 4693}
    assert rows_of(frame, "test")["meaning_representation"].nunique() == 630
    # Spot checks: rows as published, first, middle and last of each file.
    for split, name in (
        ("train", "trainset.csv"),
        ("validation", "devset.csv"),
        ("test", "testset_w_refs.csv"),
    ):
        with open(real / name, encoding="utf-8-sig", newline="") as handle:
            published = list(csv.DictReader(handle))
        rows = rows_of(frame, split)
        for index in (0, len(published) // 2, len(published) - 1):
            assert rows.loc[index, "meaning_representation"] == published[index]["mr"]
            assert rows.loc[index, "reference"] == published[index]["ref"]


@pytest.mark.shared_data
def test_real_humaneval_gives_164_runnable_test_rows(tmp_path):
    # The real Magicoder JSONL is not in shared/data: the fixture's stands in for train.
    real = shared("humaneval") / "HumanEval.jsonl.gz"
    source = tmp_path / "src"
    source.mkdir()
    (source / "HumanEval.jsonl.gz").symlink_to(real)
    shutil.copy(
        fixture_source(get_card("magicoder")) / "data-oss_instruct-decontaminated.jsonl", source
    )
    test_rows = rows_of(prepare("magicoder", source, tmp_path / "out"), "test")
    with gzip.open(real, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle]
    assert len(test_rows) == len(problems) == 164
    for row, problem in zip(test_rows.itertuples(), problems, strict=True):
        assert row.problem == problem["prompt"]
        assert json.loads(row.solution)["test"] == problem["test"]
        compile(
            problem["prompt"] + problem["canonical_solution"] + problem["test"],
            problem["task_id"],
            "exec",
        )


# Spot checks: the first, middle and last rows of each real file, read here on their own terms.


def spots(published: list) -> list[int]:
    return [0, len(published) // 2, len(published) - 1]


@pytest.mark.shared_data
def test_real_gsm8k_rows_are_the_published_problems(tmp_path):
    real = shared("gsm8k")
    frame = prepare("gsm8k", real, tmp_path)
    for split in ("train", "test"):
        published = [json.loads(line) for line in (real / f"{split}.jsonl").open(encoding="utf-8")]
        rows = rows_of(frame, split)
        assert len(rows) == len(published)
        for index in spots(published):
            assert rows.loc[index, "question"] == published[index]["question"]
            assert rows.loc[index, "answer"] == published[index]["answer"]


@pytest.mark.shared_data
def test_real_viggo_rows_are_the_published_pairs(tmp_path):
    real = shared("viggo")
    frame = prepare("viggo", real, tmp_path)
    for split, name in (("train", "train.csv"), ("validation", "valid.csv"), ("test", "test.csv")):
        with open(real / name, encoding="utf-8-sig", newline="") as handle:
            published = list(csv.DictReader(handle))
        rows = rows_of(frame, split)
        for index in spots(published):
            assert rows.loc[index, "meaning_representation"] == published[index]["mr"]
            assert rows.loc[index, "reference"] == published[index]["ref"]


@pytest.mark.shared_data
@pytest.mark.parametrize("task", ["tldr_content_gen", "tldr_headline_gen"])
def test_real_tldr_rows_are_the_published_items(task, tmp_path):
    real = shared("tldr_news")
    frame = prepare(task, real, tmp_path)
    with gzip.open(real / "tldr_news_full.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        items = list(csv.DictReader(handle))
    for split, code in (("train", "0"), ("test", "2")):
        published = [item for item in items if item["split"] == code]
        rows = rows_of(frame, split)
        for index in spots(published):
            assert rows.loc[index, "headline"] == published[index]["headline"].strip()
            assert rows.loc[index, "content"] == published[index]["content"].strip()


def sentences(path: Path, delimiter: str | None) -> list[list[list[str]]]:
    """The file's sentences as lists of fields, -DOCSTART- lines and blank lines between."""
    found, block = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if block:
                found.append(block)
            block = []
        else:
            block.append(line.split(delimiter))
    return found + ([block] if block else [])


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("task", "files", "delimiter", "types"),
    [
        (
            "conllpp",
            ("conllpp_train.txt", "conllpp_dev.txt", "conllpp_test.txt"),
            None,
            {"PER": "person", "ORG": "organization", "LOC": "location", "MISC": "miscellaneous"},
        ),
        (
            "bc5cdr",
            ("train.tsv", "devel.tsv", "test.tsv"),
            "\t",
            {"Chemical": "chemical", "Disease": "disease"},
        ),
    ],
)
def test_real_ner_rows_are_the_published_sentences(task, files, delimiter, types, tmp_path):
    real = shared(task)
    frame = prepare(task, real, tmp_path)
    for split, name in zip(("train", "validation", "test"), files, strict=True):
        published = sentences(real / name, delimiter)
        rows = rows_of(frame, split)
        assert len(rows) == len(published)
        for index in spots(published):
            tokens, tags = [f[0] for f in published[index]], [f[-1] for f in published[index]]
            assert rows.loc[index, "sentence"] == " ".join(tokens)
            entities = json.loads(rows.loc[index, "entities"])
            # Every tagged token is in exactly one listed span of its type, and nothing else is.
            for kind, key in types.items():
                tagged = sum(tag.endswith(f"-{kind}") for tag in tags)
                assert sum(len(span.split(" ")) for span in entities[key]) == tagged
                assert all(span in rows.loc[index, "sentence"] for span in entities[key])
