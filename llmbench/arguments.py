"""The command line's shared vocabulary: value types, the one-line parser, and the flags that
mean the same thing on every command (see docs/cli.md).

- `--runs DIR`: the work directory (prepared tables, configs, adapters, eval runs, reports);
- `--datasets DIR`: a folder of task cards (`<DIR>/<task>/metadata.yaml`);
- `--out PATH`: what this one command writes, when it writes one file or folder.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from llmbench.paths import DATASETS_DIR, DEFAULT_WORK_DIR


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to look), exit status 2,
    like every other input error; subcommand parsers inherit it."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def csv_items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def names(values: list[list[str]] | None) -> list[str] | None:
    """Flatten `--models a,b --models c` and `--models a b` alike."""
    if not values:
        return None
    return [name for group in values for item in group for name in csv_items(item)]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def count(text: str) -> int:
    """argparse type: an integer >= 1 (concurrency, attempts, limits, tokens)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number > 0 (timeouts, durations)."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def share(text: str) -> float:
    """argparse type: a fraction in [0, 1]."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def http_url(text: str) -> str:
    """argparse type: an http:// or https:// URL with a host."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def runs_option(p: argparse.ArgumentParser, what: str = "") -> None:
    """`--runs DIR`, the work directory, on every command that reads or writes one."""
    p.add_argument(
        "--runs",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help=f"work directory{what} (default: {DEFAULT_WORK_DIR})",
    )


def datasets_option(p: argparse.ArgumentParser) -> None:
    """`--datasets DIR`, a folder of task cards, on every command that reads cards."""
    p.add_argument(
        "--datasets",
        type=Path,
        default=DATASETS_DIR,
        help="folder of task cards, <DIR>/<task>/metadata.yaml (default: the project's own)",
    )


def adapter_source_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adapter-source",
        choices=("local", "hub", "s3", "pbase"),
        help="lorax backend: where the server finds adapters (default: the server's own; "
        "real LoRAX defaults to hub, `llmbench serve` to local)",
    )
