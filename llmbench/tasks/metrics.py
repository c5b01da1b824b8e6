"""The metrics a task card may name, keyed by the names the cards use.

Every name here is one that the evaluation harness scores with; a card that names anything else
fails validation. Each entry says what it measures and carries its `score`: a pure function
`(generated, target) -> float` of one model response and the row's target text. Every metric
shares one contract rather than declaring its own: a score lies in [0, 1], higher is better, and
a task's score is the mean over its examples (what the harness, the lift and the report assume).

A response the metric cannot read (no label, no number, no option) scores 0: it counts in the
denominator like any wrong answer. A target the metric cannot read is a data error and raises
LLMBenchError, since it means the prepared table and the card disagree.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from llmbench.errors import LLMBenchError, unknown_name

Score = Callable[[str, str], float]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    score: Score
    # raises LLMBenchError when the metric cannot run here; called before any request is sent
    preflight: Callable[[], None] = lambda: None


METRICS: dict[str, MetricSpec] = {}


def register_metric(
    name: str,
    description: str,
    *,
    preflight: Callable[[], None] = lambda: None,
) -> Callable[[Score], Score]:
    """Register the decorated `(generated, target) -> float` function under `name`."""

    def register(score: Score) -> Score:
        if name in METRICS:
            raise LLMBenchError(
                f"metric '{name}' is registered twice: by {METRICS[name].score.__qualname__} "
                f"and {score.__qualname__}; rename one of them"
            )
        METRICS[name] = MetricSpec(name, description, score, preflight)
        return score

    return register


def get_metric(name: str) -> MetricSpec:
    """The registered metric `name`; an unknown name raises with a did-you-mean hint."""
    try:
        return METRICS[name]
    except KeyError:
        raise unknown_name("metric", name, METRICS) from None


# --- reading responses -------------------------------------------------------------------------

# Markup a model may wrap its answer in: quotes, emphasis, code ticks, brackets, bullets.
_WRAPPING = " \t\"'`*_>#-"
# A leading "Answer:" style prefix a model may echo before the answer itself.
_ANSWER_PREFIX = re.compile(
    r"^(?:the\s+)?(?:correct\s+|final\s+)?"
    r"(?:answer|label|category|class|sentiment|task\s+type|option|choice)\b"
    r"(?:\s+is\b)?\s*[:=\-]?\s*",
    re.IGNORECASE,
)


def first_line(generated: str) -> str:
    """The first non-empty line of a response stripped of wrapping markup; '' when blank."""
    for line in generated.splitlines():
        line = line.strip(_WRAPPING)
        if line:
            return line
    return ""


def answer_line(generated: str) -> str:
    """first_line without an echoed 'Answer:'-style prefix ('Answer: B', 'The answer is B',
    'Sentiment: Neutral', 'Option 2')."""
    return _ANSWER_PREFIX.sub("", first_line(generated), count=1).strip(_WRAPPING)


# A minus sign counts when it does not follow a word or digit; '.5' reads 0.5.
_NUMBER = re.compile(r"(?:(?<![\w.])-)?(?:\d+(?:\.\d+)?|(?<![\w.])\.\d+)")


def first_number(text: str) -> Decimal | None:
    """The first number written in digits in `text` ('-3', '2', '3.80'), or None. A minus sign
    counts only when it does not follow a word or digit ('3-5' reads 3, then 5)."""
    match = _NUMBER.search(text.replace("\u2212", "-"))
    return Decimal(match.group()) if match else None


def _target_number(target: str, metric: str) -> Decimal:
    if not _NUMBER.fullmatch(target.strip()):
        raise LLMBenchError(f"{metric}: target '{target}' is not a number; expected e.g. '1'")
    return Decimal(target.strip())


# --- ROUGE-L -----------------------------------------------------------------------------------

_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenization: lower-case, every run of characters other than a-z
    and 0-9 is a separator, no stemming (`rouge_score.tokenize.tokenize(text, None)`)."""
    return _ROUGE_TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists.

    Bit-parallel (Hyyrö 2004): the bits of one Python integer stand for the positions of the
    longer list, and the loop runs once per token of the shorter one, a few big-integer
    operations each, instead of filling a len(a) * len(b) table. Only tokens the two lists share
    get a bit mask, so a long text against a short one (a prompt and its label) costs little
    more than reading the long one.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    shared = set(b)
    positions: dict[str, int] = {}
    for index, token in enumerate(a):
        if token in shared:
            positions[token] = positions.get(token, 0) | (1 << index)
    row = (1 << len(a)) - 1
    for token in b:
        matches = row & positions.get(token, 0)
        if matches:
            # Carries may run past the top bit; masking once at the end keeps the count right.
            row = (row + matches) | (row - matches)
    return len(a) - (row & ((1 << len(a)) - 1)).bit_count()


def rouge_l_fmeasure(generated_tokens: list[str], target_tokens: list[str]) -> float:
    """ROUGE-L F-measure of two token lists, computed as rouge-score computes it (0 when either
    side has no tokens)."""
    if not generated_tokens or not target_tokens:
        return 0.0
    lcs = lcs_length(generated_tokens, target_tokens)
    if lcs == 0:
        return 0.0
    precision = lcs / len(generated_tokens)
    recall = lcs / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


@register_metric(
    "rouge",
    "ROUGE-L F-measure between the generated text and the target (rouge-score's "
    "tokenization, no stemming); 0 when either has no word",
)
def rouge(generated: str, target: str) -> float:
    """ROUGE-L F-measure; equal to `RougeScorer(["rougeL"]).score(target, generated)` F."""
    return rouge_l_fmeasure(rouge_tokens(generated), rouge_tokens(target))


_UNITS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    word: 10 * value
    for value, word in enumerate(
        "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2
    )
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


def digits_for_number_words(tokens: list[str]) -> list[str]:
    """Rouge tokens with each run of English number words replaced by its digits:
    'twenty one' (from 'twenty-one') -> '21', 'one hundred and five' -> '105'."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        value, used = _read_number_words(tokens, index)
        if used:
            out.append(str(value))
            index += used
        else:
            out.append(tokens[index])
            index += 1
    return out


def _read_number_words(tokens: list[str], start: int) -> tuple[int, int]:
    """The value of the number words from tokens[start] on, and how many tokens they took."""
    total = current = used = 0
    index = start
    while index < len(tokens):
        word = tokens[index]
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
        elif word in _SCALES and index > start:
            scale = _SCALES[word]
            if scale == 100:
                current *= 100
            else:
                total, current = total + current * scale, 0
        elif (
            word == "and"
            and index > start
            and index + 1 < len(tokens)
            and (tokens[index + 1] in _UNITS or tokens[index + 1] in _TENS)
        ):
            pass
        else:
            break
        index += 1
        used = index - start
    return total + current, used


@register_metric(
    "rouge_number_words",
    "ROUGE-L F-measure as in 'rouge', after English number words on both sides are written "
    "as digits ('three' and '3' match; 'twenty-one' reads 21); for DROP's numeric answers",
)
def rouge_number_words(generated: str, target: str) -> float:
    """ROUGE-L F-measure of the two texts with number words replaced by digits."""
    return rouge_l_fmeasure(
        digits_for_number_words(rouge_tokens(generated)),
        digits_for_number_words(rouge_tokens(target)),
    )


# --- classification ----------------------------------------------------------------------------

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _label_pattern(label: str) -> re.Pattern:
    """A label's words (split at spaces, '_', '-' and camelCase) matched at the start of an
    answer, separated by any such separators, and not followed by a letter or digit."""
    words = re.split(r"[\s_\-]+", _CAMEL_BOUNDARY.sub(" ", label.strip()))
    words = [re.escape(word) for word in words if word]
    return re.compile(r"[\s_\-]*".join(words) + r"(?![^\W_])", re.IGNORECASE)


@register_metric(
    "label_accuracy",
    "1 when the response's first non-empty line (markup and an 'Answer:'-style prefix "
    "stripped) begins with the target class name, case-insensitively, as whole words "
    "('Extremely Positive' never matches 'Positive'; 'EducationalInstitution' matches "
    "'Educational Institution'), else 0",
)
def label_accuracy(generated: str, target: str) -> float:
    """1 when the response's answer line starts with the target label as whole words."""
    if not target.strip():
        raise LLMBenchError("label_accuracy: the target label is empty")
    pattern = _label_pattern(target)
    return float(
        any(pattern.match(line) for line in (first_line(generated), answer_line(generated)))
    )


_YES = frozenset({"yes", "true", "1", "positive"})
_NO = frozenset({"no", "false", "0", "negative"})


def read_binary(text: str) -> bool | None:
    """True for an answer line whose first word is yes/true/1/positive, False for
    no/false/0/negative (any case), None otherwise."""
    words = re.findall(r"[^\W_]+", answer_line(text).lower())
    if not words:
        return None
    return True if words[0] in _YES else False if words[0] in _NO else None


@register_metric(
    "binary_accuracy",
    "flexible yes/no accuracy: the first word of the response's answer line read as yes "
    "(yes/true/1/positive) or no (no/false/0/negative), compared with the target read the "
    "same way; anything else scores 0",
)
def binary_accuracy(generated: str, target: str) -> float:
    """1 when the response's yes/no reading equals the target's."""
    expected = read_binary(target)
    if expected is None:
        raise LLMBenchError(f"binary_accuracy: target '{target}' is not a yes/no answer")
    return float(read_binary(generated) == expected)


@register_metric(
    "first_number_accuracy",
    "1 when the first number in the response equals the target class number (the GLUE "
    "label convention: e.g. 0 entailment, 1 neutral, 2 contradiction; '1.0' equals '1')",
)
def first_number_accuracy(generated: str, target: str) -> float:
    """1 when the first number written in the response equals the target number."""
    expected = _target_number(target, "first_number_accuracy")
    return float(first_number(generated) == expected)


# An upper-case letter may be followed by text ('B. Paris'); a lower-case one must stand alone
# or be punctuated ('b', 'b)'), so that a sentence opening with the article 'a' is not option A.
_LETTER_OPTION = re.compile(r"[\[(]?(?:([A-E])[\])]?(?=$|[\s.):,\]])|([a-e])[\])]?(?=$|[.):,\]]))")


@register_metric(
    "choice_accuracy",
    "1 when the option the response picks equals the target option. A letter target (A-E: "
    "ARC, MMLU) is read from the start of the answer line: 'B', 'b', 'B.', '(B)', 'B) text', "
    "'Answer: B'. A digit target (HellaSwag 0-3, WinoGrande 1-2) is the first number in the "
    "response",
)
def choice_accuracy(generated: str, target: str) -> float:
    """1 when the response's first option marker names the target option."""
    expected = target.strip()
    if re.fullmatch(r"[A-Ea-e]", expected):
        match = _LETTER_OPTION.match(answer_line(generated))
        picked = match and (match.group(1) or match.group(2)).upper()
        return float(picked == expected.upper())
    return float(first_number(generated) == _target_number(expected, "choice_accuracy"))


@register_metric(
    "stsb_similarity",
    "1 - |generated - target| / 5 for the STS-B similarity score, the generated score being "
    "the first number in the response; no number, or one outside [0, 5], scores 0",
)
def stsb_similarity(generated: str, target: str) -> float:
    """Closeness of the response's similarity score to the target's, on the 0-5 scale."""
    expected = _target_number(target, "stsb_similarity")
    predicted = first_number(generated)
    if predicted is None or not 0 <= predicted <= 5:
        return 0.0
    return float(1 - abs(predicted - expected) / 5)


# --- GSM8K -------------------------------------------------------------------------------------

_CURRENCY = re.compile(r"[$\u00a2-\u00a5\u20a0-\u20cf]")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def final_number(text: str) -> Decimal | None:
    """The final answer of a GSM8K-style solution: the first number after the last '####'
    when there is one (None when nothing numeric follows it), else the last number in the
    text. Currency signs and thousands commas are ignored ('$1,234.50' reads 1234.50)."""
    text = _THOUSANDS_COMMA.sub("", _CURRENCY.sub("", text.replace("\u2212", "-")))
    if "####" in text:
        return first_number(text.rsplit("####", 1)[1])
    numbers = _NUMBER.findall(text)
    return Decimal(numbers[-1]) if numbers else None


@register_metric(
    "gsm8k_final_number",
    "1 when the response's final answer (the number after the last '####', else the last "
    "number; commas and currency signs ignored, negatives and decimals read, 18.00 equals "
    "18) equals the final number of the target solution ('... #### 18')",
)
def gsm8k_final_number(generated: str, target: str) -> float:
    """1 when the final numbers of the response and the target solution are equal."""
    expected = final_number(target)
    if expected is None:
        raise LLMBenchError("gsm8k_final_number: the target has no final number ('#### N')")
    return float(final_number(generated) == expected)


# --- HumanEval ---------------------------------------------------------------------------------

_FENCED_CODE = re.compile(r"```[^\n`]*\n(.*?)(?:```|$)", re.DOTALL)


def humaneval_target(prompt: str, test: str, entry_point: str) -> str:
    """The `target` humaneval_pass_at_1 scores against: one HumanEval problem's prompt, test
    code and entry point, as JSON text. The evaluator builds it from the HumanEval file (the
    magicoder card's prepared `solution` column holds the reference code, not the tests)."""
    return json.dumps({"prompt": prompt, "test": test, "entry_point": entry_point})


def humaneval_program(generated: str, target: str) -> str:
    """The Python program that runs the response against the problem's tests.

    The response's code is the first fenced block when it has one, else the whole text. Code
    that defines the entry point is appended after the problem's prompt (so the prompt's
    imports and helper functions stay available and the response's definition wins); other
    code is read as the function body and appended to the prompt as a continuation (indented
    by four spaces when it starts unindented).
    """
    try:
        problem = json.loads(target)
        prompt, test, entry_point = problem["prompt"], problem["test"], problem["entry_point"]
    except (ValueError, TypeError, KeyError):
        raise LLMBenchError(
            "humaneval_pass_at_1: target is not a HumanEval problem; expected the JSON text "
            "that llmbench.tasks.metrics.humaneval_target(prompt, test, entry_point) makes"
        ) from None
    fenced = _FENCED_CODE.search(generated)
    code = fenced.group(1) if fenced else generated
    if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        solution = f"{prompt}\n\n{code}"
    else:
        if code.strip() and not code.lstrip("\n")[:1].isspace():
            code = textwrap.indent(code.lstrip("\n"), "    ")  # a body written unindented
        solution = prompt + code
    return f"{solution}\n\n{test}\n\ncheck({entry_point})\n"


@register_metric(
    "humaneval_pass_at_1",
    "1 when the generated code passes the problem's unit tests (pass@1), run in a sandbox: "
    "its own process, temporary directory, time, memory, file and process limits, no "
    "network. The target is the problem as humaneval_target(prompt, test, entry_point) "
    "writes it",
    preflight=lambda: _sandbox().choose_isolation(),
)
def humaneval_pass_at_1(generated: str, target: str) -> float:
    """1 when the response passes the HumanEval problem's tests in the sandbox, else 0."""
    return float(_sandbox().run_python(humaneval_program(generated, target)).passed)


def _sandbox():
    from llmbench import sandbox  # imported when code is run, not when metrics are listed

    return sandbox
