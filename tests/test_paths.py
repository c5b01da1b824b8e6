"""Atomic writes: whole files only, with the permissions an ordinary write would give."""

from __future__ import annotations

import os
import stat

import pytest

from llmbench.paths import atomic_write_text


@pytest.fixture
def umask():
    """Set the umask for one test and put the old one back."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_written_file_gets_the_umask_permissions(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "scores.json"
    atomic_write_text(path, "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    atomic_write_text(path, '{"n": 1}\n')  # a replacement too
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == '{"n": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]  # no temporary file left
