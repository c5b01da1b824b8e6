"""The one exception type of llmbench: the CLI prints it on one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LLMBenchError(Exception):
    """A problem with the user's input: a file, a field, what was expected.

    `problems` holds every problem found (validation reports them all at once); the message is
    their lines joined.
    """

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(problems))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> LLMBenchError:
    """The error for a name that is not in a registry: the hint and the names available."""
    choices = sorted(choices)
    return LLMBenchError(
        f"unknown {kind} '{name}'{did_you_mean(name, choices)}; available: {', '.join(choices)}"
    )
