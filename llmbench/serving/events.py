"""What a generation yields, read from vLLM's outputs in LoRAX's terms.

`Step` (one generated token) and `Finish` (the text, the tokens, the counts and timings) are the
events `ServingEngine.generate` yields; `Output` says what a request wants back besides the text.
`OutputReader` turns vLLM's completions and logprobs into `Token`s (with their alternatives), and
the functions below read vLLM's finish reasons and timings. No vLLM import: it reads the objects
vLLM hands over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Token:
    id: int
    text: str
    logprob: float | None
    special: bool
    # The most likely tokens at this position, most likely first (as many as Output asked for).
    alternatives: list[Token] = field(default_factory=list)


@dataclass
class Step:
    """One generated token (LoRAX streams one event per token)."""

    token: Token


@dataclass
class Finish:
    """The end of a generation: LoRAX's finish reason, the counts and the timings (seconds)."""

    finish_reason: str  # "length", "eos_token" or "stop_sequence"
    generated_text: str
    tokens: list[Token]
    prefill: list[Token]
    prompt_tokens: int
    seed: int | None
    queue_time: float
    time_to_first_token: float
    total_time: float
    # best_of: the samples not chosen, each with its own seed (LoRAX's best_of_sequences).
    best_of_sequences: list[Finish] = field(default_factory=list)

    @property
    def generated_tokens(self) -> int:
        return len(self.tokens)

    @property
    def total_logprob(self) -> float:
        """What best_of ranks samples by: the sum of the generated tokens' log-probabilities."""
        return sum(t.logprob for t in self.tokens if t.logprob is not None)

    @property
    def inference_time(self) -> float:
        return max(self.total_time - self.queue_time, 0.0)


@dataclass(frozen=True)
class Output:
    """What a request wants back besides the text (each costs the engine something)."""

    stream: bool = False  # a Step per token as it comes (else all at the end, fewer wake-ups)
    logprobs: bool = False  # each generated token's logprob (LoRAX details and stream events)
    prompt_logprobs: bool = False  # each prompt token's logprob (LoRAX decoder_input_details)
    include_stop: bool = True  # LoRAX keeps a matched stop sequence in the text; OpenAI does not
    alternatives: int = 0  # each generated token's most likely alternatives (return_k_alternatives)


class OutputReader:
    """vLLM's token ids and logprobs as `Token`s, with texts from `tokenizer`."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])

    def tokens(self, completion, alternatives: int = 0) -> list[Token]:
        """This step's new tokens; a single token carries the step's text delta exactly."""
        ids = list(completion.token_ids)
        logprobs = completion.logprobs or []
        made = []
        for i, token_id in enumerate(ids):
            ranked = logprobs[i] if i < len(logprobs) and logprobs[i] else {}
            entry = ranked.get(token_id)
            if len(ids) == 1:
                text = completion.text
            else:
                text = entry.decoded_token if entry and entry.decoded_token else ""
            special = token_id in self._special_ids
            made.append(
                Token(
                    token_id,
                    "" if special else text,
                    entry.logprob if entry else None,
                    special,
                    self.alternatives(ranked, alternatives),
                )
            )
        return made

    def alternatives(self, ranked: dict, k: int) -> list[Token]:
        """The k most likely tokens of one position, most likely first, from vLLM's logprobs
        (the top k by rank, plus the sampled token when it ranks below them: left out). Under a
        structured output's mask a forbidden token has log-probability -inf: it is no
        alternative (and JSON has no -inf), so fewer than k may come back."""
        top = sorted(
            ((entry.rank, token_id, entry) for token_id, entry in ranked.items()
             if entry.rank is not None and entry.rank <= k and math.isfinite(entry.logprob)),
            key=lambda item: item[0],
        )  # fmt: skip
        return [
            Token(
                token_id,
                entry.decoded_token or "",
                entry.logprob,
                token_id in self._special_ids,
            )
            for _, token_id, entry in top
        ]

    def prefill(self, prompt_ids: list[int], prompt_logprobs) -> list[Token]:
        """Each prompt token with its log-probability (None for the first: nothing predicts it)."""
        prefill = []
        for token_id, entry in zip(prompt_ids, prompt_logprobs, strict=True):
            chosen = entry.get(token_id) if entry else None
            text = (
                chosen.decoded_token
                if chosen and chosen.decoded_token is not None
                else (self.tokenizer.decode([token_id]))
            )
            prefill.append(Token(token_id, text, chosen.logprob if chosen else None, False))
        return prefill


def first_token_latency(out, measured: float) -> float:
    """Seconds to the first token: vLLM's own count when it keeps stats, else `measured`."""
    latency = getattr(getattr(out, "metrics", None), "first_token_latency", 0.0)
    return latency if latency else measured


def queue_time(out) -> float:
    """Seconds the request waited in vLLM's scheduler (0 when the engine keeps no stats)."""
    stats = getattr(out, "metrics", None)
    queued, scheduled = getattr(stats, "queued_ts", 0.0), getattr(stats, "scheduled_ts", 0.0)
    return max(scheduled - queued, 0.0) if queued and scheduled else 0.0


@dataclass
class Sample:
    """One sample's tokens and text so far, and vLLM's last output of it."""

    tokens: list[Token] = field(default_factory=list)
    text: str = ""
    completion: Any = None

    def add(self, completion, tokens: list[Token]) -> list[Token]:
        self.tokens += tokens
        self.text += completion.text
        self.completion = completion
        return tokens


def finish_reason(completion) -> str:
    """vLLM's finish reason in LoRAX's words."""
    if completion.finish_reason == "length":
        return "length"
    if isinstance(completion.stop_reason, str):
        return "stop_sequence"
    return "eos_token"
