"""The server's own vLLM logits processors, loaded by the engine by name (LOGITS_PROCESSORS).

Runs inside vLLM's engine process. `TypicalP` applies `typical_p` (typical.py) to the requests
that carry it in SamplingParams.extra_args; vLLM calls it only where a request samples, after
temperature and before top_k / top_p, and leaves every other request's row alone.
"""

from __future__ import annotations

from functools import partial

from vllm import SamplingParams
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from llmbench.serving.typical import typical_filter

LOGITS_PROCESSORS = ["llmbench.serving.logits_processors:TypicalP"]


class TypicalP(AdapterLogitsProcessor):
    """typical_p per request, from `extra_args["typical_p"]`."""

    def is_argmax_invariant(self) -> bool:
        # It can remove the most likely token, but vLLM applies processors of this kind only
        # when sampling, which is the only time LoRAX's typical_p applies too.
        return True

    def new_req_logits_processor(self, params: SamplingParams):
        mass = (params.extra_args or {}).get("typical_p")
        if mass is None or mass >= 1.0:
            return None
        return partial(_apply, mass)


def _apply(mass: float, output_ids: list[int], logits):
    return typical_filter(logits, mass)
