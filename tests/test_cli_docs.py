"""The documented command lines use the flag vocabulary the parser has (see docs/cli.md)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from llmbench.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# `llmbench COMMAND ...` up to the end of the line, a closing backtick or a '|' table cell
COMMAND_LINE = re.compile(r"llmbench ([a-z][a-z-]*)((?:[^`|\n])*)")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser(None)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def documented_flags():
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in COMMAND_LINE.finditer(line):
                if match.group(1) in COMMANDS:
                    for flag in FLAG.findall(match.group(2)):
                        yield f"{path.name}:{number}", match.group(1), flag


def test_every_flag_a_doc_shows_exists_on_its_command():
    parsers = _command_parsers()
    unknown = sorted(
        f"{where}: llmbench {command} {flag}"
        for where, command, flag in documented_flags()
        if flag not in _options(parsers[command])
    )
    assert not unknown, "flags the docs show that the command lacks: " + "; ".join(unknown)


@pytest.mark.parametrize("old", ["--data", "--work", "--results", "--dir"])
def test_no_doc_shows_an_old_spelling_of_the_work_directory_or_card_folder(old):
    assert not [
        f"{where} ({command})" for where, command, flag in documented_flags() if flag == old
    ]


def test_the_check_sees_a_flag_a_command_lacks():
    parsers = _command_parsers()
    assert "--runs" in _options(parsers["report"]) and "--results" not in _options(parsers["app"])
    line = "llmbench app --results runs"
    assert [m.group(1) for m in COMMAND_LINE.finditer(line)] == ["app"]
    assert FLAG.findall(COMMAND_LINE.search(line).group(2)) == ["--results"]
