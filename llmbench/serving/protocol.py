"""The request shapes of LoRAX's REST API (and its OpenAI-compatible routes), as pydantic models.

Field names, ranges and defaults follow LoRAX's OpenAPI description (`lorax-openapi.json`);
every model forbids unknown keys, so a misspelt parameter is a 422, not silently ignored.
`sampling_options` turns validated parameters into vLLM SamplingParams keyword arguments.
Plain pydantic (no vLLM), so it is tested in the main environment too.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmbench.serving.merging import MAJORITY_SIGN_METHODS, MERGE_STRATEGIES

MAX_STOP_SEQUENCES = 4
# LoRAX's integer formats (its OpenAPI description): seed is int64, top_k and max_new_tokens
# int32. Larger numbers are a 422 here rather than an overflow deep inside the engine.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
StopSequence = Annotated[str, Field(min_length=1)]  # "" would stop before every token
DEFAULT_MAX_NEW_TOKENS = 20  # LoRAX's default when a request gives none
# Fields accepted but refused when set (a 422 naming each); none are left since merged_adapters
# (issue 28, item 2) is served.
UNSUPPORTED_WHEN_SET: tuple[str, ...] = ()
# Alternatives per token (return_k_alternatives, top_n_tokens): vLLM's default max_logprobs,
# which the engine is started with.
MAX_ALTERNATIVES = 20
# Samples one request may draw with best_of (LoRAX's own default --max-best-of is 2).
MAX_BEST_OF = 4
# A sampled request without a seed gets one below this, so that best_of's samples, seeded
# seed, seed + 1, ... (vLLM's parallel sampling), stay within int64.
SEED_LIMIT = INT64_MAX - MAX_BEST_OF


class Strict(BaseModel):
    """Unknown keys, a number given as a string or a bool ("5", true for an integer) and
    Infinity/NaN are all refused rather than coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ResponseFormat(Strict):
    """LoRAX's response_format: `json_object` with a JSON schema (without one: any JSON object);
    LoRAX also takes `json_schema` as a synonym and `text` for no constraint. The schema is
    checked by structured.py (a 400 naming the problem), not here."""

    type: Literal["json_object", "json_schema", "text"]
    schema_: Any = Field(None, alias="schema")


class MergedAdapters(BaseModel):
    """LoRAX's AdapterParameters: adapters merged for one request (merging.py). lorax-client
    sends null for an unset strategy or sign method: linear and total, LoRAX's defaults.
    Shapes and kinds are checked here (a 422); NaN or infinite weights, a density out of range,
    an empty list, lengths that differ and the adapters themselves are the merge's 400s."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=True)

    ids: list[str]
    weights: list[float]
    merge_strategy: Literal[MERGE_STRATEGIES] | None = None
    density: float = 0.0
    majority_sign_method: Literal[MAJORITY_SIGN_METHODS] | None = None


class GenerateParameters(Strict):
    """LoRAX's `parameters` object of /generate and /generate_stream."""

    adapter_id: str | None = None
    adapter_source: str | None = None
    api_token: str | None = None
    best_of: int | None = Field(None, gt=0, le=MAX_BEST_OF)
    decoder_input_details: bool = False
    details: bool = True
    do_sample: bool = False
    ignore_eos_token: bool = False
    max_new_tokens: int | None = Field(None, gt=0, le=INT32_MAX)
    repetition_penalty: float | None = Field(None, gt=0)
    frequency_penalty: float | None = Field(None, gt=-2, lt=2)
    presence_penalty: float | None = Field(None, gt=-2, lt=2)
    return_full_text: bool | None = None
    seed: int | None = Field(None, ge=0, le=INT64_MAX)
    stop: list[StopSequence] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    temperature: float | None = Field(None, ge=0)
    top_k: int | None = Field(None, gt=0, le=INT32_MAX)
    top_p: float | None = Field(None, gt=0, le=1)
    truncate: int | None = Field(None, gt=0, le=INT32_MAX)
    typical_p: float | None = Field(None, gt=0, le=1)
    watermark: bool = False
    apply_chat_template: bool = False  # `inputs` is a JSON list of chat messages
    merged_adapters: MergedAdapters | None = None
    response_format: ResponseFormat | None = None
    return_k_alternatives: int | None = Field(None, gt=0, le=MAX_ALTERNATIVES)
    top_n_tokens: int | None = Field(None, ge=0, le=MAX_ALTERNATIVES)  # TGI's name
    schema_: Any = Field(None, alias="schema")  # LoRAX's legacy: the JSON schema as a string

    @model_validator(mode="after")
    def _served_options_only(self) -> GenerateParameters:
        problems = [
            f"`{name}` is not supported by llmbench serve"
            for name in UNSUPPORTED_WHEN_SET
            if getattr(self, name) is not None
        ]
        if self.watermark:
            problems.append("`watermark` is not supported by llmbench serve")
        problems += self._best_of_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _best_of_problems(self) -> list[str]:
        """LoRAX's rules: several samples need sampling (temperature 0 is greedy, whatever
        else is set), and a seed would make them alike."""
        if (self.best_of or 1) == 1:
            return []
        problems = []
        if not self.sampling() or self.temperature == 0:
            problems.append("you must use sampling when `best_of` is > 1 (temperature above 0)")
        if self.seed is not None:
            problems.append("`seed` must not be set when `best_of` > 1")
        return problems

    def sampling(self) -> bool:
        return is_sampling(self.do_sample, self.temperature, self.top_k, self.top_p, self.typical_p)

    def alternatives(self) -> int:
        """How many of each token's most likely alternatives the answer shows."""
        return max(self.return_k_alternatives or 0, self.top_n_tokens or 0)


class GenerateRequest(Strict):
    """POST /generate, /generate_stream and / (lorax-client posts to / with `stream`)."""

    inputs: str = Field(min_length=1)
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)
    stream: bool = False


class StreamOptions(Strict):
    """OpenAI's stream_options: with include_usage, a last chunk carries the token counts."""

    include_usage: bool = False


class JsonSchemaFormat(Strict):
    """OpenAI's `json_schema` object of response_format."""

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: Any = Field(None, alias="schema")
    strict: bool | None = None


class OpenAIResponseFormat(Strict):
    """OpenAI's response_format: `text`, `json_object` (any JSON object) or `json_schema`."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


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
    response_format: OpenAIResponseFormat | None = None

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


def is_sampling(do_sample: bool, *parameters: float | None) -> bool:
    """LoRAX's rule: a request samples when `do_sample` is set or any sampling parameter
    (temperature, top_k, top_p, typical_p) is given; otherwise decoding is greedy."""
    return do_sample or any(v is not None for v in parameters)


def sampling_options(
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    typical_p: float | None = None,
    seed: int | None = None,
    best_of: int = 1,
    stop: list[str] | None = None,
    repetition_penalty: float | None = None,
    frequency_penalty: float | None = None,
    presence_penalty: float | None = None,
    ignore_eos: bool = False,
) -> dict[str, Any]:
    """vLLM SamplingParams keyword arguments for LoRAX's sampling parameters.

    As in LoRAX, decoding is greedy unless `do_sample` is set or a sampling parameter is given;
    `temperature` 0 always means greedy. A sampled request without a seed gets a random one (as
    in LoRAX, so its details name the seed that reproduces it); `best_of` samples are drawn by
    vLLM as `n` sequences seeded seed, seed + 1, ...; `typical_p` goes to the engine's typical
    decoding logits processor (logits_processors.py) through `extra_args`.
    """
    options: dict[str, Any] = {
        "max_tokens": max_new_tokens,
        "stop": list(stop or []),
        "ignore_eos": ignore_eos,
        "seed": seed,
    }
    penalties = {
        "repetition_penalty": repetition_penalty,
        "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
    }
    options |= {name: value for name, value in penalties.items() if value is not None}
    if not is_sampling(do_sample, temperature, top_k, top_p, typical_p) or temperature == 0:
        options["temperature"] = 0.0
        return options
    options["temperature"] = 1.0 if temperature is None else temperature
    if seed is None:
        options["seed"] = secrets.randbelow(SEED_LIMIT)
    if best_of > 1:
        options["n"] = best_of
    if top_k is not None:
        options["top_k"] = top_k
    if top_p is not None:
        options["top_p"] = top_p
    if typical_p is not None and typical_p < 1.0:
        options["extra_args"] = {"typical_p": typical_p}
    return options
