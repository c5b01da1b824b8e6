"""Typical decoding (`typical_p`, Meister et al. 2022, "Locally Typical Sampling"), which vLLM
0.32's sampler lacks: the filter itself, plain torch, so that it is tested without vLLM.

At each step, keep the tokens whose surprisal (-log p) is closest to the distribution's entropy,
fewest first, until their probability adds up to `mass`; every other token is removed (its logit
set to -inf). The engine applies it after temperature and before top_k / top_p
(logits_processors.py).
"""

from __future__ import annotations

import torch


def typical_filter(logits: torch.Tensor, mass: float) -> torch.Tensor:
    """`logits` (one row) with every token outside the typical set of probability `mass` set to
    -inf, in place; at least one token is always kept."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    probs = logprobs.exp()
    entropy = -(probs * logprobs).nansum()  # a removed token has p 0 and log p -inf
    by_typicality = torch.argsort((-logprobs - entropy).abs(), stable=True)
    mass_before = probs[by_typicality].cumsum(0) - probs[by_typicality]
    removed = by_typicality[mass_before >= mass]  # the first token always stays
    logits[removed] = float("-inf")
    return logits
