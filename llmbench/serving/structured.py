"""Structured output: the one JSON schema a request's answer must follow, checked before the engine.

LoRAX's `response_format` ({"type": "json_object", "schema": ...}; without a schema, any JSON
object) and its legacy `schema` parameter (the schema as a JSON string) on /generate, and
OpenAI's `response_format` (`json_object`, `json_schema`) on the /v1 routes all become one JSON
schema here. vLLM's structured outputs enforce it with the llguidance backend ("guidance"):
it refuses schemas it cannot enforce or that no answer satisfies (an empty enum, minimum above
maximum, a required key that additionalProperties forbids) rather than silently loosening them,
and it computes each token's mask lazily instead of compiling the schema over the vocabulary
first (docs/serving.md, "Structured output").

Every problem is a `SchemaError`: one line that names the field, answered with 400 before any
token is generated. A hostile schema is bounded before anything walks it recursively: at most
MAX_SCHEMA_DEPTH levels of nesting and MAX_SCHEMA_BYTES of JSON.
"""

from __future__ import annotations

import json
from typing import Any

BACKEND = "guidance"  # vLLM's name for llguidance
# Nesting of JSON objects and arrays in a schema: vLLM's own limit (sampling_params), checked
# here first so that nothing recursive (json.dumps, jsonschema, llguidance) sees a deeper one.
MAX_SCHEMA_DEPTH = 64
# Real schemas are a few KB; this bounds the work of checking one (a 1 MB schema is refused
# in milliseconds, before it is serialised or compiled).
MAX_SCHEMA_BYTES = 65_536
# `json_object` without a schema: any JSON object, as LoRAX and OpenAI mean it.
ANY_JSON_OBJECT: dict[str, Any] = {"type": "object"}


class SchemaError(ValueError):
    """A schema the server will not constrain an answer to; its text names the field."""


def lorax_schema(response_format: dict[str, Any] | None, legacy: Any) -> dict[str, Any] | None:
    """The schema of LoRAX's `response_format` or legacy `schema` parameter (None: no constraint).

    `response_format` is the validated model's dict ({"type", "schema"}); `legacy` is the
    `schema` parameter, a JSON string as LoRAX's API has it (an object is taken as well).
    """
    if response_format is not None and legacy is not None:
        raise SchemaError("parameters: set `response_format` or `schema`, not both")
    if legacy is not None:
        if isinstance(legacy, str):
            try:
                legacy = json.loads(legacy)
            except (ValueError, RecursionError) as error:
                raise SchemaError(f"schema: not valid JSON ({one_line(error)})") from None
        return checked(legacy, "schema")
    if response_format is None or response_format["type"] == "text":
        return None
    schema = response_format.get("schema")
    if schema is None:
        return ANY_JSON_OBJECT
    return checked(schema, "response_format.schema")


def openai_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of OpenAI's `response_format` ({"type": "json_schema", "json_schema":
    {"name", "schema", ...}} or {"type": "json_object"}); None for "text" or none given."""
    if response_format is None or response_format["type"] == "text":
        return None
    if response_format["type"] == "json_object":
        return ANY_JSON_OBJECT
    spec = response_format.get("json_schema")
    if spec is None or spec.get("schema") is None:
        raise SchemaError("response_format.json_schema.schema: required with type json_schema")
    return checked(spec["schema"], "response_format.json_schema.schema")


def checked(schema: Any, field: str) -> dict[str, Any]:
    """`schema` when the backend can enforce it and some answer satisfies it, else SchemaError."""
    if not isinstance(schema, dict):
        raise SchemaError(f"{field}: expected a JSON Schema object, got {_json_type(schema)}")
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise SchemaError(
            f"{field}: nested {depth} levels deep or more; at most {MAX_SCHEMA_DEPTH} are allowed"
        )
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaError(
            f"{field}: {size:,} bytes of JSON; at most {MAX_SCHEMA_BYTES:,} are allowed"
        )
    problem = _backend_problem(schema)
    if problem:
        raise SchemaError(f"{field}: {problem}")
    return schema


def _depth(value: Any) -> int:
    """How deeply JSON objects and arrays nest in `value`, counted without recursion; the count
    stops just past MAX_SCHEMA_DEPTH (that is all the caller needs to know)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_SCHEMA_DEPTH:
            return deepest
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _backend_problem(schema: dict[str, Any]) -> str | None:
    """llguidance's own verdict on the schema, with the options the engine uses: None when it
    compiles, else its reason (unsatisfiable, an unsupported keyword, a bad pattern...)."""
    import llguidance

    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(schema), defaults={"whitespace_flexible": False}
        )
    except (ValueError, TypeError) as error:
        return one_line(error)
    error = llguidance.LLMatcher.validate_grammar(grammar, None)
    return one_line(error) if error else None


def one_line(error: Any) -> str:
    """An error's text on one line (regex errors come with a caret diagram below them)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "null"
