"""responses.jsonl: the one file an evaluation appends to, read back, checked and capped.

Its lines are of two kinds. A settings line, `{"settings": {...}}`, opens each run that records
anything: the answer-changing settings, the endpoint (without credentials) and the start time.
A record, `{"id", "prompt_sha", "output", "error", "attempts", "seconds"}`, holds one outcome;
`output` is null for a failed example, and an answer longer than OUTPUT_CAP_BYTES is cut there,
the record then carrying `truncated_from_bytes` (its full size). A later record for an id (a
retry) replaces an earlier one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from llmbench.errors import LLMBenchError

PREVIOUS_RESPONSES = "responses.previous.jsonl"  # where a restart moves the old file
OUTPUT_CAP_BYTES = 64 * 1024  # a stored answer is cut here (UTF-8); its record says from what
ERROR_CAP_BYTES = 2 * 1024  # a server's error text is cut here
# Answer-changing settings compared only where both the file and this run know them: files made
# before the setting existed do not record it, and `llmbench eval` cannot read the server's
# adapter folder to know its weights (the bake-off can).
KNOWN_ONLY_SOMETIMES = frozenset({"adapter_weights"})
# Answer-changing settings added after files were first written: a settings line without one
# was made with this value (a file from before constrained evaluation is a free run's).
ABSENT_MEANS = {"constrained": False}


@dataclass
class ResponseFile:
    """What responses.jsonl holds: each sending run's settings line, and the records by id
    (a later record for an id, a retry, replaces an earlier one)."""

    runs: list[dict] = field(default_factory=list)
    records: dict[int, dict] = field(default_factory=dict)


def read_response_file(path: Path) -> ResponseFile:
    """Parse responses.jsonl; drops a partial last line (a killed write), refuses other damage."""
    found = ResponseFile()
    if not path.is_file():
        return found
    data = path.read_bytes()
    complete, _, partial = data.rpartition(b"\n")
    if partial:
        with open(path, "r+b") as handle:  # cut the torn line so appends start clean
            handle.truncate(len(complete) + (1 if complete else 0))
    for number, line in enumerate(complete.decode("utf-8", "replace").splitlines(), start=1):
        if line.strip():
            _read_line(line, f"{path}: line {number}", found)
    return found


def _read_line(line: str, where: str, found: ResponseFile) -> None:
    move = "(move the file aside, or rerun with --restart, to start over)"
    try:
        entry = json.loads(line)
        if isinstance(entry, dict) and isinstance(entry.get("settings"), dict):
            found.runs.append(entry["settings"])
            return
        key = int(entry["id"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise LLMBenchError(
            f"{where}: not a response record; expected JSON with an 'id' {move}"
        ) from None
    for name in ("output", "error"):
        if not isinstance(entry.get(name), str | None):
            raise LLMBenchError(
                f"{where}: {name}: expected text or null, got {type(entry[name]).__name__} {move}"
            )
    found.records[key] = entry


def read_responses(path: Path) -> dict[int, dict]:
    """Responses already collected, by example id; drops a partial last line (a killed write)."""
    return read_response_file(path).records


def public_endpoint(endpoint: str) -> str:
    """The endpoint without what may be a credential: user info, query and fragment."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else ""


def check_same_run(path: Path, found: ResponseFile, now: dict, examples) -> None:
    """Refuse, in one line, to add to responses made with other answer-changing settings
    (`now`, compared with the file's last settings line) or for other prompts. A file with
    settings lines but no records holds nothing to mix, and is added to."""
    if not found.records:
        return
    restart = (
        "start over with `llmbench eval --restart` (it keeps the old file as "
        f"{PREVIOUS_RESPONSES}), or move the folder aside"
    )
    if not found.runs:
        raise LLMBenchError(
            f"{path}: its responses record no settings (an older llmbench made them); {restart}"
        )
    last = ABSENT_MEANS | found.runs[-1] | {k: last_known(found, k) for k in KNOWN_ONLY_SOMETIMES}
    changed = [
        f"{k} {last.get(k)!r} there, {now[k]!r} now"
        for k in now
        if last.get(k) != now[k]
        and not (k in KNOWN_ONLY_SOMETIMES and (last.get(k) is None or now[k] is None))
    ]
    if changed:
        raise LLMBenchError(f"{path}: made with other settings ({'; '.join(changed)}); {restart}")
    stale = [
        e.id
        for e in examples
        if e.id in found.records
        and found.records[e.id].get("prompt_sha", e.prompt_sha) != e.prompt_sha
    ]
    if stale:
        raise LLMBenchError(
            f"{path}: example {stale[0]} (and {len(stale) - 1} more) was answered for another "
            f"prompt (the prepared table or the template changed); {restart}"
        )


def last_known(found: ResponseFile, key: str):
    """The latest value of a setting that the file's settings lines record (None: none does)."""
    return next((run[key] for run in reversed(found.runs) if run.get(key) is not None), None)


def start_over(path: Path) -> None:
    """Move responses.jsonl aside (to responses.previous.jsonl, replacing an older one)."""
    if path.exists():
        os.replace(path, path.with_name(PREVIOUS_RESPONSES))


def to_send(examples: list, records: dict[int, dict], retry_failed: bool = True) -> list:
    """The examples a run sends: those with no record, and the failed ones when retrying."""
    return [
        e
        for e in examples
        if e.id not in records or (retry_failed and records[e.id].get("output") is None)
    ]


def cap_text(text: str | None, cap: int) -> tuple[str | None, int | None]:
    """`text` cut to at most `cap` UTF-8 bytes on a character boundary, and its full size in
    bytes when it was cut (else None). Unencodable characters (lone surrogates) become '?'."""
    if text is None:
        return None, None
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return data.decode("utf-8"), None
    return data[:cap].decode("utf-8", "ignore"), len(data)


def write_error(path: Path, exc: OSError) -> LLMBenchError:
    """The one line for a failed write (a full disk, a read-only folder) of `path`."""
    return LLMBenchError(
        f"{path}: cannot write ({exc.strerror or exc}); the responses already recorded are "
        "kept: free space (or fix the folder) and rerun to continue"
    )


class ResponseLog:
    """Appends one JSON line per outcome, handed to the OS before the next is written.

    A flush per line is what survives the process being killed (the OS keeps the data); the
    file is synced to disk once, on close, since a sync per line costs more than the requests.
    `first_line` (a run's settings line) goes in just before the first record, so a run that
    records nothing (refused, unreachable, killed early) leaves the file as it was. A failed
    write (a full disk) is an LLMBenchError naming the file.
    """

    def __init__(self, path: Path, first_line: dict | None = None):
        self.path, self.pending = path, [first_line] if first_line else []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise write_error(path, exc) from None

    def append(self, record: dict) -> None:
        lines, self.pending = [*self.pending, record], []
        try:
            self.handle.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            self.handle.flush()
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def close(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        except OSError as exc:
            raise write_error(self.path, exc) from None
        finally:
            with contextlib.suppress(OSError):  # a failed flush was reported above
                self.handle.close()


def outcome_record(example, output, error, attempts: int, seconds: float) -> dict:
    """One responses.jsonl line; an answer past OUTPUT_CAP_BYTES is cut and says so."""
    output, full_bytes = cap_text(output, OUTPUT_CAP_BYTES)
    record = {
        "id": example.id,
        "prompt_sha": example.prompt_sha,
        "output": output,
        "error": cap_text(error, ERROR_CAP_BYTES)[0],
        "attempts": attempts,
        "seconds": round(seconds, 4),
    }
    if full_bytes is not None:
        record["truncated_from_bytes"] = full_bytes
    return record
