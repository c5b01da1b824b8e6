"""webnlg from the WebNLG 3.0 XML release: small XML files written here by the team, broken
ones, and, where ../shared/data has it, the real release (13,211 / 1,667 / 5,713 entries)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prepare_helpers import counts_of, prepare, rows_of  # noqa: I001 - tests/ is on sys.path

from llmbench.errors import LLMBenchError
from llmbench.prepare.tables import prepare_task, prepared_path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_FILES = (
    "rdf-to-text-generation-test-data-with-refs-en.xml",
    "rdf-to-text-generation-test-data-without-refs-en.xml",
    "semantic-parsing-test-data-with-refs-en.xml",
)


def entry_xml(eid: str, triples: list[str], lexes: list[str]) -> str:
    mtriples = "".join(f"<mtriple>{t}</mtriple>" for t in triples)
    lex = "".join(
        f'<lex comment="good" lid="Id{i}">\n  {text}  </lex>' for i, text in enumerate(lexes)
    )
    return (
        f'<entry category="Ship" eid="{eid}" size="{len(triples)}">'
        f"<originaltripleset><otriple>{triples[0]}</otriple></originaltripleset>"
        f"<modifiedtripleset>{mtriples}</modifiedtripleset>{lex}</entry>"
    )


def write_xml(path: Path, entries: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(entries)
    path.write_text(
        f"<?xml version='1.0' encoding='utf-8'?>\n<benchmark>\n<entries>\n{body}\n</entries>\n"
        "</benchmark>\n",
        encoding="utf-8",
    )


def release(folder: Path) -> Path:
    """A tiny release: train in two size folders (2triples sorts after 1triples, and the file
    names inside 1triples out of order on purpose), one dev file, the three test files."""
    write_xml(
        folder / "train/2triples/Airport.xml",
        [entry_xml("Id1", ["A | b | C", "C | d | E"], ["T3"])],
    )
    write_xml(folder / "train/1triples/Ship.xml", [entry_xml("Id1", ["S | b | C"], ["T2"])])
    write_xml(
        folder / "train/1triples/Astronaut.xml", [entry_xml("Id1", ["Ö | b | C"], ["T1", "x"])]
    )
    write_xml(folder / "dev/1triples/Ship.xml", [entry_xml("Id1", ["D | b | C"], ["D1"])])
    write_xml(folder / "test" / TEST_FILES[0], [entry_xml("Id1", ["Q | b | C"], ["Q1"])])
    write_xml(folder / "test" / TEST_FILES[1], [entry_xml("Id1", ["Q | b | C"], [])])
    write_xml(folder / "test" / TEST_FILES[2], [entry_xml("Id1", ["P | b | C"], ["P1"])])
    return folder


def assert_fails_cleanly(source: Path, out: Path, *fragments: str) -> None:
    with pytest.raises(LLMBenchError) as caught:
        prepare_task("webnlg", source=source, out_dir=out, progress=False)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert not prepared_path("webnlg", out).exists()


def test_the_xml_release_reads_size_folders_in_order_and_files_by_name(tmp_path):
    frame = prepare("webnlg", release(tmp_path / "en"), tmp_path / "out")
    train = rows_of(frame, "train")
    assert list(train["triples"]) == ["Ö | b | C", "S | b | C", "A | b | C\nC | d | E"]
    # The first lexicalisation, stripped as the Hugging Face loader strips texts.
    assert list(train["reference"]) == ["T1", "T2", "T3"]
    assert list(rows_of(frame, "validation")["reference"]) == ["D1"]


def test_the_xml_test_split_joins_the_three_files_with_empty_references_for_the_second(tmp_path):
    frame = prepare("webnlg", release(tmp_path / "en"), tmp_path / "out")
    test = rows_of(frame, "test")
    assert list(test["triples"]) == ["Q | b | C", "Q | b | C", "P | b | C"]
    assert list(test["reference"]) == ["Q1", "", "P1"]


def test_a_missing_test_file_is_one_line_naming_it(tmp_path):
    source = release(tmp_path / "en")
    (source / "test" / TEST_FILES[2]).unlink()
    assert_fails_cleanly(
        source, tmp_path / "out", str(source / "test" / TEST_FILES[2]), "all three"
    )


def test_broken_xml_names_the_file_and_its_line(tmp_path):
    source = release(tmp_path / "en")
    path = source / "dev/1triples/Ship.xml"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("</mtriple>", "")
    path.write_text("\n".join(lines) + "\n")
    assert_fails_cleanly(source, tmp_path / "out", str(path), "line 4", "broken XML")


def test_a_training_entry_without_lexicalisation_names_the_file_and_entry(tmp_path):
    source = release(tmp_path / "en")
    path = source / "train/1triples/Ship.xml"
    write_xml(path, [entry_xml("Id7", ["S | b | C"], [])])
    assert_fails_cleanly(source, tmp_path / "out", str(path), "entry Id7", "no lexicalisation")


def test_an_entry_with_a_malformed_triple_names_it(tmp_path):
    source = release(tmp_path / "en")
    path = source / "train/2triples/Airport.xml"
    write_xml(path, [entry_xml("Id3", ["A | b | C", "C d E"], ["T"])])
    assert_fails_cleanly(source, tmp_path / "out", str(path), "entry Id3", "'C d E'")


def test_a_train_folder_without_size_folders_is_an_error(tmp_path):
    source = release(tmp_path / "en")
    for path in (source / "train").rglob("*.xml"):
        path.unlink()
    assert_fails_cleanly(source, tmp_path / "out", str(source / "train"), "1triples")


# --- the real release in ../shared/data --------------------------------------------------------


def published_entries(path: Path) -> list[tuple[list[str], list[str]]]:
    """(modified triples, lexicalisations) of each entry, read with ElementTree as published."""
    return [
        (
            [m.text.strip() for m in entry.iter("mtriple")],
            [lex.text.strip() for lex in entry.iter("lex")],
        )
        for entry in ET.parse(path).getroot().iter("entry")
    ]


@pytest.mark.shared_data
def test_real_release_gives_the_studys_counts_and_matches_its_files(tmp_path):
    real = SHARED_DATA / "webnlg"
    if not real.is_dir():
        pytest.skip(f"{real} is absent: no real copy of webnlg in ../shared/data")
    frame = prepare("webnlg", real, tmp_path)
    assert counts_of(frame) == {"train": 13211, "validation": 1667, "test": 5713}
    test = rows_of(frame, "test")
    # The without-references file's 1,779 entries are the only empty references.
    assert (test["reference"] == "").sum() == 1779
    assert (test["reference"].iloc[1779 : 2 * 1779] == "").all()
    # Spot checks: the first train entry, the first without-references entry, the last test entry.
    first_train = published_entries(sorted((real / "train/1triples").glob("*.xml"))[0])[0]
    assert rows_of(frame, "train").loc[0, "triples"] == "\n".join(first_train[0])
    assert rows_of(frame, "train").loc[0, "reference"] == first_train[1][0]
    without_refs = published_entries(real / "test" / TEST_FILES[1])[0]
    assert test.loc[1779, "triples"] == "\n".join(without_refs[0])
    assert without_refs[1] == []
    last = published_entries(real / "test" / TEST_FILES[2])[-1]
    assert (test.iloc[-1]["triples"], test.iloc[-1]["reference"]) == (
        "\n".join(last[0]),
        last[1][0],
    )
