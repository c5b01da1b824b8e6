"""The request shapes of LoRAX's REST API (and its OpenAI-compatible routes), as pydantic models.

Field names, ranges and defaults follow LoRAX's OpenAPI description (`lorax-openapi.json`);
every model forbids unknown keys, so a misspelt parameter is a 422, not silently ignored.
`sampling_options` turns validated parameters into vLLM SamplingParams keyword arguments.
Plain pydantic (no vLLM), so it is tested in the main environment too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_STOP_SEQUENCES = 4
# LoRAX's integer formats (its OpenAPI description): seed is int64, top_k and max_new_tokens
# int32. Larger numbers are a 422 here rather than an overflow deep inside the engine.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
StopSequence = Annotated[str, Field(min_length=1)]  # "" would stop before every token
DEFAULT_MAX_NEW_TOKENS = 20  # LoRAX's default when a request gives none
# Accepted because lorax-client always sends them, but only their "off" value is served.
UNSUPPORTED_WHEN_SET = ("merged_adapters", "response_format", "return_k_alternatives", "schema")


class Strict(BaseModel):
    """Unknown keys, a number given as a string or a bool ("5", true for an integer) and
    Infinity/NaN are all refused rather than coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class GenerateParameters(Strict):
    """LoRAX's `parameters` object of /generate and /generate_stream."""

    adapter_id: str | None = None
    adapter_source: str | None = None
    api_token: str | None = None
    best_of: int | None = Field(None, gt=0)
    decoder_input_details: bool = False
    details: bool = True
    do_sample: bool = False
    ignore_eos_token: bool = False
    max_new_tokens: int | None = Field(None, gt=0, le=INT32_MAX)
    repetition_penalty: float | None = Field(None, gt=0)
    return_full_text: bool | None = None
    seed: int | None = Field(None, ge=0, le=INT64_MAX)
    stop: list[StopSequence] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    temperature: float | None = Field(None, ge=0)
    top_k: int | None = Field(None, gt=0, le=INT32_MAX)
    top_p: float | None = Field(None, gt=0, le=1)
    truncate: int | None = Field(None, gt=0, le=INT32_MAX)
    typical_p: float | None = Field(None, gt=0, le=1)
    watermark: bool = False
    apply_chat_template: bool = False
    merged_adapters: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    return_k_alternatives: int | None = None
    schema_: str | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _served_options_only(self) -> GenerateParameters:
        problems = [
            f"`{name}` is not supported by llmbench serve"
            for name in UNSUPPORTED_WHEN_SET
            if getattr(self, "schema_" if name == "schema" else name) is not None
        ]
        if self.best_of not in (None, 1):
            problems.append("`best_of` > 1 is not supported by llmbench serve")
        if self.watermark:
            problems.append("`watermark` is not supported by llmbench serve")
        if self.typical_p not in (None, 1.0):
            problems.append("`typical_p` is not supported by llmbench serve")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class GenerateRequest(Strict):
    """POST /generate, /generate_stream and / (lorax-client posts to / with `stream`)."""

    inputs: str = Field(min_length=1)
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)
    stream: bool = False


class StreamOptions(Strict):
    """OpenAI's stream_options: with include_usage, a last chunk carries the token counts."""

    include_usage: bool = False


class _OpenAIRequest(Strict):
    """What /v1/completions and /v1/chat/completions share; `model` names the adapter (empty or
    the base model's name: the base model)."""

    model: str = ""
    max_tokens: int = Field(DEFAULT_MAX_NEW_TOKENS, gt=0, le=INT32_MAX)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1)
    stop: StopSequence | list[StopSequence] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = Field(None, ge=0, le=INT64_MAX)
    ignore_eos: bool = False  # vLLM's extension of the OpenAI API (LoRAX: ignore_eos_token)
    adapter_source: str | None = None
    api_token: str | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        return _stop_list(self.stop)


class CompletionRequest(_OpenAIRequest):
    """POST /v1/completions."""

    prompt: str = Field(min_length=1)


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatCompletionRequest(_OpenAIRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)


def _stop_list(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
    return stops


def sampling_options(
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: list[str] | None = None,
    repetition_penalty: float | None = None,
    ignore_eos: bool = False,
) -> dict[str, Any]:
    """vLLM SamplingParams keyword arguments for LoRAX's sampling parameters.

    As in LoRAX, decoding is greedy unless `do_sample` is set or a sampling parameter is given;
    `temperature` 0 always means greedy.
    """
    sampling = do_sample or any(v is not None for v in (temperature, top_k, top_p))
    options: dict[str, Any] = {
        "max_tokens": max_new_tokens,
        "stop": list(stop or []),
        "ignore_eos": ignore_eos,
        "seed": seed,
    }
    if repetition_penalty is not None:
        options["repetition_penalty"] = repetition_penalty
    if not sampling or temperature == 0:
        options["temperature"] = 0.0
        return options
    options["temperature"] = 1.0 if temperature is None else temperature
    if top_k is not None:
        options["top_k"] = top_k
    if top_p is not None:
        options["top_p"] = top_p
    return options
