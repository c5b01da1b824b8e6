"""Shared fixtures: paths to the project's own data and to ../shared beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip when a user's clone lacks it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (a plain clone): the study's shared files are not here")
    return SHARED
