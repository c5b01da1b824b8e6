"""What a run answered, as a distribution: a model that answers one label for every row, or one
string whatever the input, has learnt the task's prior, not the task; its accuracy alone hides
that.

`answer_stats` summarises one run's outputs beside the gold targets: for every task the most
common answer and its share (an answer is the response's answer line for a classification task,
the whole response, stripped, otherwise) and the share of the most common exact output; for a
classification task the answer distribution beside the gold one. `degenerate_reason` says why a
run is flagged, or None. A classification task is flagged when one answer covers at least
DEGENERATE_SHARE of the rows while the gold majority covers less than GOLD_MAJORITY_CAP (a
majority-class answer on a split that is mostly one label is not flagged: there it is close to
the right answer); any other task when one output string covers at least DEGENERATE_SHARE of
the rows (its gold strings are nearly all distinct, so no such exception applies). A failed
request (no output) is counted as NO_ANSWER, never as an answer.
"""

from __future__ import annotations

from collections import Counter

DEGENERATE_SHARE = 0.9  # one answer (or output string) on this share of the rows or more ...
GOLD_MAJORITY_CAP = 0.7  # ... while the gold majority label covers less than this: flagged
NO_ANSWER = "(no answer)"  # a failed request
SHOWN_ANSWERS = 10  # a distribution keeps its most common answers; the rest are OTHER
OTHER = "(other)"
SHOWN_CHARS = 60  # an answer longer than this is shown cut, with an ellipsis


def answer_of(output: str | None, classification: bool) -> str:
    """The answer a response gives: its answer line (classification), else its stripped text."""
    from llmbench.tasks.metrics import answer_line

    if output is None:
        return NO_ANSWER
    return answer_line(output) if classification else output.strip()


def answer_stats(outputs: list[str | None], targets: list[str], classification: bool) -> dict:
    """The answer and gold distributions of one run (see the module docstring)."""
    n = len(outputs)
    answers = Counter(answer_of(o, classification) for o in outputs)
    gold = Counter(t.strip() for t in targets)
    exact = Counter(o.strip() for o in outputs if o is not None)
    top_answer, top_count = _top(answers)
    gold_top, gold_count = _top(gold)
    same_output, same_count = _top(exact)
    stats = {
        "classification": classification,
        "top_answer": _shown(top_answer),
        "top_answer_share": top_count / n if n else 0.0,
        "gold_majority": _shown(gold_top),
        "gold_majority_share": gold_count / n if n else 0.0,
        "top_output": _shown(same_output),
        "top_output_share": same_count / n if n else 0.0,
    }
    if classification:
        stats["answers"] = _distribution(answers)
        stats["gold"] = _distribution(gold)
    stats["flag"] = degenerate_reason(stats)
    return stats


def degenerate_reason(stats: dict) -> str | None:
    """Why the run's answers look degenerate (one line), or None."""
    if stats["classification"]:
        if stats["top_answer"] == NO_ANSWER or stats["top_answer_share"] < DEGENERATE_SHARE:
            return None
        if stats["gold_majority_share"] >= GOLD_MAJORITY_CAP:
            return None
        return (
            f"one answer ({stats['top_answer']!r}) on {percent(stats['top_answer_share'])} of the "
            f"rows, while the gold majority ({stats['gold_majority']!r}) covers "
            f"{percent(stats['gold_majority_share'])}"
        )
    if stats["top_output_share"] >= DEGENERATE_SHARE:
        return (
            f"the same output ({stats['top_output']!r}) on {percent(stats['top_output_share'])} "
            "of the rows"
        )
    return None


def percent(share: float) -> str:
    """A share as a whole percentage, unless that would round it up to a full 100%."""
    text = f"{share:.0%}"
    return f"{share:.1%}" if text == "100%" and share < 1 else text


def _top(counts: Counter) -> tuple[str, int]:
    """The most common value (ties: the first in sorted order) and its count."""
    if not counts:
        return "", 0
    return min(counts.items(), key=lambda item: (-item[1], item[0]))


def _distribution(counts: Counter) -> dict[str, int]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown: dict[str, int] = {}
    for value, count in ranked[:SHOWN_ANSWERS]:  # two long answers may be cut alike
        shown[_shown(value)] = shown.get(_shown(value), 0) + count
    rest = sum(count for _, count in ranked[SHOWN_ANSWERS:])
    if rest:
        shown[OTHER] = shown.get(OTHER, 0) + rest
    return shown


def _shown(value: str) -> str:
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= SHOWN_CHARS else one_line[: SHOWN_CHARS - 1] + "…"
