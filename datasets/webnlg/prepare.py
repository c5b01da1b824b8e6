"""webnlg: one row per upstream entry (a set of DBpedia triples with its lexicalisations).

A row: triples = the entry's modified triple set (modified_triple_sets.mtriple_set[0]), one
'subject | property | object' line each, in upstream order; reference = the entry's first
lexicalisation (lex.text[0]); the other lexicalisations are not used. The counts are entry counts
(13211 / 1667 / 5713).

The Hugging Face test split of release_v3.0_en joins three test sets (see each entry's
test_category): RDF-to-text with references, the same inputs without references, and the
semantic-parsing set. Entries without a lexicalisation get an empty reference, so the test split
keeps the study's 5713 rows; in train and validation an entry without one is an error.

Two upstream layouts are read, told apart by the folders in `source`:
- the WebNLG 3.0 XML release (WebNLG/challenge-2020, data/en): train/ and dev/ hold
  1triples ... 7triples folders of XML files; test/ holds the three test files
  rdf-to-text-generation-test-data-with-refs-en.xml, rdf-to-text-generation-test-data-without-
  refs-en.xml and semantic-parsing-test-data-with-refs-en.xml (a missing one is an error). Files
  are read folder by folder (1triples first), by name within a folder, entries in file order, as
  the Hugging Face loader reads them; texts are stripped as it strips them.
- the Hugging Face export of web_nlg (config release_v3.0_en), one file per split
  (train/dev/test .jsonl/.parquet) with its nested columns modified_triple_sets
  {mtriple_set: [[triple, ...]]} and lex {comment, lid, text, lang: [...]}.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.prepare.fetch import fetch_parquet_export
from llmbench.prepare.readers.formats import find_split_file, open_binary, read_hf_split

COLUMNS = ("modified_triple_sets", "lex")
XML_TEST_FILES = (
    "rdf-to-text-generation-test-data-with-refs-en.xml",
    "rdf-to-text-generation-test-data-without-refs-en.xml",
    "semantic-parsing-test-data-with-refs-en.xml",
)


def read_rows(source: Path, card) -> Iterator[tuple[str, dict]]:
    xml_layout = any((source / split).is_dir() for split in card.source["splits"].values())
    for split, upstream_split in card.source["splits"].items():
        entries = xml_entries if xml_layout else hf_entries
        for where, triples, texts in entries(source, upstream_split):
            if not texts and split != "test":
                raise LLMBenchError(
                    f"{where}: no lexicalisation (lex.text is empty); expected at least one "
                    "outside the test split"
                )
            yield split, {"triples": "\n".join(triples), "reference": texts[0] if texts else ""}


def hf_entries(source: Path, upstream_split: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(where, triples, lexicalisations) of each entry of a Hugging Face export's split."""
    path = find_split_file(source, upstream_split)
    for number, entry in read_hf_split(source, upstream_split, COLUMNS):
        where = f"{path}: {'row' if path.suffix == '.parquet' else 'line'} {number}"
        yield (
            where,
            _triples(entry["modified_triple_sets"], where),
            _lexicalisations(entry["lex"], where),
        )


def xml_entries(source: Path, upstream_split: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(where, triples, lexicalisations) of each <entry> of one split of the XML release."""
    for path in xml_files(Path(source) / upstream_split, upstream_split):
        with open_binary(path) as handle:
            try:
                for _, element in ET.iterparse(handle):
                    if element.tag == "entry":
                        yield _xml_entry(element, path)
                        element.clear()
            except ET.ParseError as exc:
                line, column = exc.position
                reason = str(exc).split(":")[0]
                raise LLMBenchError(
                    f"{path}: line {line}, column {column}: broken XML ({reason}); expected "
                    "WebNLG XML"
                ) from None


def xml_files(folder: Path, split: str) -> list[Path]:
    """The split's XML files in reading order: test/'s three named files, or the files of
    train/ (dev/) folder by folder from 1triples up, by name within each."""
    if not folder.is_dir():
        raise LLMBenchError(
            f"{folder}: not found; expected the WebNLG 3.0 release's {split}/ folder"
        )
    if split == "test":
        missing = [name for name in XML_TEST_FILES if not (folder / name).is_file()]
        if missing:
            raise LLMBenchError(
                f"{folder / missing[0]}: not found; the study's test split joins all three test "
                f"files ({', '.join(XML_TEST_FILES)})"
            )
        return [folder / name for name in XML_TEST_FILES]
    sized = [d for d in folder.iterdir() if d.is_dir() and d.name.removesuffix("triples").isdigit()]
    files = [
        path
        for size_folder in sorted(sized, key=lambda d: int(d.name.removesuffix("triples")))
        for path in sorted(size_folder.glob("*.xml"))
    ]
    if not files:
        raise LLMBenchError(
            f"{folder}: no XML files; expected 1triples/ ... 7triples/ folders of WebNLG XML"
        )
    return files


def _xml_entry(entry: ET.Element, path: Path) -> tuple[str, list[str], list[str]]:
    where = f"{path}: entry {entry.get('eid', '?')} ({entry.get('category', 'no category')})"
    triples = [(t.text or "").strip() for t in entry.iterfind("modifiedtripleset/mtriple")]
    texts = [(lex.text or "").strip() for lex in entry.iterfind("lex")]
    if not triples:
        raise LLMBenchError(f"{where}: no <mtriple> in <modifiedtripleset>; expected triples")
    for triple in triples:
        _check_triple(triple, where)
    return where, triples, [text for text in texts if text]


def _triples(sets, where: str) -> list[str]:
    triple_sets = sets.get("mtriple_set") if isinstance(sets, dict) else None
    if not triple_sets or not isinstance(triple_sets[0], list) or not triple_sets[0]:
        raise LLMBenchError(
            f"{where}: modified_triple_sets.mtriple_set has no triples; expected "
            "{'mtriple_set': [['subject | property | object', ...]]}"
        )
    for triple in triple_sets[0]:
        _check_triple(triple, where)
    return triple_sets[0]


def _check_triple(triple, where: str) -> None:
    if not isinstance(triple, str) or triple.count(" | ") < 2:
        raise LLMBenchError(
            f"{where}: {triple!r} is not a triple; expected 'subject | property | object'"
        )


def _lexicalisations(lex, where: str) -> list[str]:
    texts = lex.get("text") if isinstance(lex, dict) else None
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise LLMBenchError(
            f"{where}: lex.text is not a list of texts; expected {{'text': ['...', ...], ...}}"
        )
    return texts


# Online: web_nlg has a loading script, which datasets 5 refuses; the rows come
# from the hub's Parquet export of it (docs/tasks.md, "Fetching the upstream").
fetch = fetch_parquet_export
