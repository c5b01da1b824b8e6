"""The metrics a task card may name, keyed by the names the cards use.

Every name here is one that the evaluation harness scores with; a card that names anything else
fails validation. Each entry declares its behaviour: what it measures, whether higher is better,
and how per-example scores aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    higher_is_better: bool = True
    aggregation: str = "mean"


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in [
        MetricSpec("rouge", "ROUGE-L F-measure between the generated text and the target"),
        MetricSpec(
            "label_accuracy",
            "1 when the generated text, trimmed and case-folded, starts with the target label "
            "(a class name such as 'Company' or 'Extremely Positive'), else 0",
        ),
        MetricSpec(
            "binary_accuracy",
            "flexible yes/no accuracy: yes/true/1/positive and no/false/0/negative are read as "
            "the same two answers",
        ),
        MetricSpec(
            "first_number_accuracy",
            "1 when the first integer in the generated text equals the target class number "
            "(the GLUE label convention: e.g. 0 entailment, 1 neutral, 2 contradiction)",
        ),
        MetricSpec(
            "choice_accuracy",
            "1 when the first option marker in the generated text (a letter A-E or a digit) "
            "equals the target option",
        ),
        MetricSpec(
            "stsb_similarity",
            "1 - |generated - target| / 5 for the STS-B similarity score; output that is not a "
            "number in [0, 5] scores 0",
        ),
        MetricSpec(
            "gsm8k_final_number",
            "1 when the final answer (after '####', else the last number; commas, currency "
            "signs and signs handled) equals the target's final number",
        ),
        MetricSpec(
            "humaneval_pass_at_1",
            "1 when the generated code passes the problem's unit tests in a sandbox (pass@1)",
        ),
    ]
}
