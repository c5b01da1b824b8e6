"""Load YAML files and check them against the project's JSON Schemas, reporting every problem.

Each problem is one line: `file: key.path: what is wrong; what was expected`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmbench.errors import LLMBenchError, did_you_mean
from llmbench.paths import SCHEMAS_DIR


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a missing file or broken YAML is an LLMBenchError naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LLMBenchError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise LLMBenchError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LLMBenchError(f"{path}:{where}: invalid YAML: {problem}") from None


@functools.cache
def load_schema(name: str) -> dict:
    """One of the schemas shipped in llmbench/schemas, by file stem."""
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def schema_problems(document: Any, schema: dict, source: Path | str) -> list[str]:
    """Every way `document` breaks `schema`, one readable line each, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path])
    return [_describe(error, source) for error in errors]


def _describe(error: jsonschema.ValidationError, source: Path | str) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {}).keys()
        extras = [k for k in error.instance if k not in allowed]
        hints = "; ".join(f"unknown key '{k}'{did_you_mean(k, allowed)}" for k in extras)
        return f"{source}: {key}: {hints}; allowed keys: {', '.join(sorted(allowed))}"
    if error.validator == "required":
        return f"{source}: {key}: {error.message}"
    expected = error.schema.get("description", "")
    detail = (
        f" (expected {expected})"
        if expected and error.validator in {"type", "enum", "pattern"}
        else ""
    )
    return f"{source}: {key}: {error.message}{detail}"


def validate_or_raise(document: Any, schema_name: str, source: Path | str) -> None:
    """Raise one LLMBenchError listing every schema problem in `document`."""
    problems = schema_problems(document, load_schema(schema_name), source)
    if problems:
        raise LLMBenchError(*problems)
