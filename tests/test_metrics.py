"""Metrics: each card's metric_name is a pure (generated, target) -> float, on worked cases."""

from __future__ import annotations

import json
import random

import pytest
from rouge_score import rouge_scorer

from llmbench.errors import LLMBenchError
from llmbench.paths import DATASETS_DIR
from llmbench.prepare.tables import fixture_source, prepare_task, read_prepared
from llmbench.tasks.cards import load_cards
from llmbench.tasks.metrics import (
    METRICS,
    get_metric,
    humaneval_target,
    lcs_length,
    register_metric,
)


def score(name: str, generated: str, target: str) -> float:
    return get_metric(name).score(generated, target)


# --- the registry ------------------------------------------------------------------------------


def test_every_card_metric_is_registered_with_a_score_function():
    for card in load_cards().values():
        spec = get_metric(card.metric_name)
        assert callable(spec.score) and spec.name == card.metric_name, card.name


@pytest.mark.parametrize(
    "task",
    sorted(
        name for name, card in load_cards().items() if card.metric_name != "humaneval_pass_at_1"
    ),
)
def test_every_fixture_target_is_read_by_its_metric_and_scores_1_against_itself(task, tmp_path):
    card = load_cards()[task]
    try:
        prepare_task(task, source=fixture_source(card), out_dir=tmp_path, progress=False)
    except LLMBenchError as error:
        pytest.skip(f"{task}'s fixture does not prepare: {error}")
    spec = get_metric(card.metric_name)
    for target in read_prepared(task, out_dir=tmp_path)[card.target_col]:
        # a blank target (webnlg's test rows without a reference) has no word to match: 0
        assert spec.score(target, target) == (1.0 if target.strip() else 0.0), target


def test_an_unknown_metric_name_suggests_the_closest():
    with pytest.raises(LLMBenchError, match=r"unknown metric 'rogue' \(did you mean 'rouge'\?\)"):
        get_metric("rogue")


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(LLMBenchError, match="'rouge' is registered twice"):
        register_metric("rouge", "another rouge")(lambda generated, target: 0.0)
    assert METRICS["rouge"].score.__name__ == "rouge"


# --- rouge -------------------------------------------------------------------------------------


def test_rouge_is_the_lcs_f_measure_worked_by_hand():
    # tokens: 'the cat sat on the mat' (6) vs 'a cat is on the mat' (6); LCS cat on the mat = 4
    assert score("rouge", "The cat sat on the mat.", "a cat is on the mat") == pytest.approx(
        2 * (4 / 6) * (4 / 6) / (4 / 6 + 4 / 6), abs=1e-12
    )


def test_rouge_tokenizes_as_rouge_score_does():
    # case and punctuation are separators; accented letters are not a-z, so they split words
    assert score("rouge", "EARN, ACQ!", "earn acq") == 1.0
    assert score("rouge", "café", "caf") == 1.0


def test_rouge_is_zero_when_either_side_has_no_words():
    assert score("rouge", "", "earn") == 0.0
    assert score("rouge", "?!", "earn") == 0.0
    assert score("rouge", "earn", "") == 0.0
    assert score("rouge", "", "") == 0.0  # as rouge-score scores it


def test_rouge_equals_rouge_score_on_random_pairs():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(7)
    words = "the a cat dog sat on mat of and to in 3 42 X-ray Mr. e2e".split()
    for _ in range(2000):
        generated = " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        target = " ".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        expected = scorer.score(target, generated)["rougeL"].fmeasure
        assert abs(score("rouge", generated, target) - expected) <= 1e-9, (generated, target)


@pytest.mark.parametrize(
    ("a", "b", "length"),
    [
        ("abcbdab", "bdcaba", 4),
        ("abc", "abc", 3),
        ("abc", "def", 0),
        ("", "abc", 0),
        ("aaaa", "aa", 2),
        ("a" * 200 + "b", "b" + "a" * 3, 3),
        ("ab" * 70, "ba" * 70, 139),  # carries run past the top bit along the way
    ],
)
def test_lcs_length_of_hand_worked_pairs(a, b, length):
    assert lcs_length(list(a), list(b)) == length == lcs_length(list(b), list(a))


def test_lcs_length_handles_long_texts():
    a = [f"w{i % 97}" for i in range(1200)]
    b = [f"w{i % 89}" for i in range(1000)]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = scorer.score(" ".join(b), " ".join(a))["rougeL"].fmeasure
    lcs = lcs_length(a, b)
    assert 2 * lcs / (len(a) + len(b)) == pytest.approx(expected, abs=1e-12)


# --- drop: rouge, and rouge with number words --------------------------------------------------


def test_plain_rouge_gives_no_credit_for_a_number_word():
    assert score("rouge", "three", "3") == 0.0


def test_rouge_number_words_reads_number_words_as_digits():
    assert score("rouge_number_words", "three", "3") == 1.0
    assert score("rouge_number_words", "Twenty-one yards", "21 yards") == 1.0
    assert score("rouge_number_words", "one hundred and five", "105") == 1.0
    assert score("rouge_number_words", "two thousand and twelve", "2012") == 1.0


def test_rouge_number_words_keeps_other_words_and_partial_credit():
    assert score("rouge_number_words", "the Bears and the Lions", "Bears, Lions") == (
        pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    )
    assert score("rouge_number_words", "four", "3") == 0.0
    # 'and' joins number words only between numbers
    assert score("rouge_number_words", "and", "and") == 1.0


# --- label_accuracy (covid, customer_support, dbpedia) -----------------------------------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("Extremely Positive", "Extremely Positive", 1.0),
        ("Positive", "Extremely Positive", 0.0),
        ("Extremely Positive", "Positive", 0.0),
        ("  negative.\nBecause the tweet...", "Negative", 1.0),
        ("Sentiment: Neutral", "Neutral", 1.0),
        ("**Neutral**", "Neutral", 1.0),
        ("Neutrality", "Neutral", 0.0),
        ("The sentiment is Neutral", "Neutral", 1.0),
        ("I would say Neutral", "Neutral", 0.0),  # the label must open the answer
        ("", "Neutral", 0.0),
    ],
)
def test_label_accuracy_on_covid_sentiments(generated, target, expected):
    assert score("label_accuracy", generated, target) == expected


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("check balance", "check balance", 1.0),
        ("Check Balance", "check balance", 1.0),
        ("Task type: reset password", "reset password", 1.0),
        ("reset", "reset password", 0.0),
        ("pay bills", "pay bill", 0.0),
    ],
)
def test_label_accuracy_on_customer_support_tasks(generated, target, expected):
    assert score("label_accuracy", generated, target) == expected


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("EducationalInstitution", "EducationalInstitution", 1.0),
        ("Educational Institution", "EducationalInstitution", 1.0),
        ("Category: MeanOfTransportation", "MeanOfTransportation", 1.0),
        ("Building", "Building", 1.0),
        ("Buildings", "Building", 0.0),
        ("Artist", "Athlete", 0.0),
        ("Educational", "EducationalInstitution", 0.0),
    ],
)
def test_label_accuracy_on_dbpedia_classes(generated, target, expected):
    assert score("label_accuracy", generated, target) == expected


def test_label_accuracy_rejects_an_empty_target():
    with pytest.raises(LLMBenchError, match="target label is empty"):
        score("label_accuracy", "Company", " ")


# --- binary_accuracy (boolq, jigsaw) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("yes", "yes", 1.0),
        ("Yes, the passage says so.", "yes", 1.0),
        ("TRUE", "yes", 1.0),
        ("1", "True", 1.0),
        ("positive", "1", 1.0),
        ("No.", "no", 1.0),
        ("false", "0", 1.0),
        ("0", "False", 1.0),
        ("negative", "no", 1.0),
        ("yes", "no", 0.0),
        ("no", "True", 0.0),
        ("Answer: no", "no", 1.0),
        ("Not toxic", "no", 0.0),
        ("I cannot tell", "yes", 0.0),
        ("", "no", 0.0),
    ],
)
def test_binary_accuracy_reads_yes_and_no_flexibly(generated, target, expected):
    assert score("binary_accuracy", generated, target) == expected


def test_binary_accuracy_rejects_a_target_that_is_not_yes_or_no():
    with pytest.raises(LLMBenchError, match="not a yes/no answer"):
        score("binary_accuracy", "yes", "maybe")


# --- first_number_accuracy (GLUE: cola, mnli, mrpc, qnli, qqp, sst2, wnli) ---------------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("2", "2", 1.0),  # mnli contradiction
        ("2 (contradiction)", "2", 1.0),
        ("Label: 1", "1", 1.0),  # mrpc equivalent
        ("1.0", "1", 1.0),
        ("0", "1", 0.0),
        ("1 or 0", "0", 0.0),  # the first number counts
        ("entailment", "0", 0.0),  # a class name is not the number asked for
        ("", "0", 0.0),
    ],
)
def test_first_number_accuracy_on_glue_labels(generated, target, expected):
    assert score("first_number_accuracy", generated, target) == expected


def test_first_number_accuracy_rejects_a_target_that_is_not_a_number():
    with pytest.raises(LLMBenchError, match="target 'neutral' is not a number"):
        score("first_number_accuracy", "1", "neutral")


# --- choice_accuracy (arc_combined, mmlu: letters; hellaswag, winogrande: digits) --------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("B", "B", 1.0),
        ("B.", "B", 1.0),
        ("(B)", "B", 1.0),
        ("B) photosynthesis", "B", 1.0),
        ("Answer: B", "B", 1.0),
        ("The correct answer is B.", "B", 1.0),
        ("b", "B", 1.0),
        ("**C**", "C", 1.0),
        ("C", "B", 0.0),
        ("A", "A", 1.0),
        ("a cat", "A", 0.0),  # a lower-case 'a' opening a sentence is the article
        ("Because B", "B", 0.0),  # the answer line must open with the option
        ("E", "E", 1.0),
    ],
)
def test_choice_accuracy_on_letter_options(generated, target, expected):
    assert score("choice_accuracy", generated, target) == expected


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("3", "3", 1.0),  # hellaswag endings 0-3
        ("0. The man then ...", "0", 1.0),
        ("Ending 2", "2", 1.0),
        ("1", "2", 0.0),
        ("2", "2", 1.0),  # winogrande options 1-2
        ("Option 1", "1", 1.0),
        ("the first option", "1", 0.0),
    ],
)
def test_choice_accuracy_on_digit_options(generated, target, expected):
    assert score("choice_accuracy", generated, target) == expected


# --- stsb_similarity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("3.8", "3.8", 1.0),
        ("4", "3.8", 1 - 0.2 / 5),
        ("0", "5", 0.0),
        ("5", "0", 0.0),
        ("2.5 out of 5", "3", 0.9),
        (".5", "0", 0.9),
        ("5.5", "5", 0.0),  # out of range
        ("-1", "0", 0.0),
        ("similar", "3", 0.0),
    ],
)
def test_stsb_similarity_is_one_minus_the_scaled_distance(generated, target, expected):
    assert score("stsb_similarity", generated, target) == pytest.approx(expected, abs=1e-12)


# --- gsm8k_final_number ------------------------------------------------------------------------

GSM8K_TARGET = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72.\n#### 72"
)


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("48 + 24 = 72\n#### 72", 1.0),
        ("She sold 72 clips in all.", 1.0),
        ("#### 72.00", 1.0),
        ("#### $72", 1.0),
        ("#### 72 clips", 1.0),
        ("In May 24, so 72 altogether; check: 72 - 24 = 48", 0.0),  # the last number counts
        ("#### 71\nThat was wrong, it is 72", 0.0),  # the marker wins over later numbers
        ("####", 0.0),
        ("", 0.0),
    ],
)
def test_gsm8k_final_number_against_a_worked_solution(generated, expected):
    assert score("gsm8k_final_number", generated, GSM8K_TARGET) == expected


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("The total is $1,234,567.", "#### 1234567", 1.0),
        ("#### 1,234", "... #### 1,234", 1.0),
        ("She is down -$5 overall, so #### -5", "#### -5", 1.0),
        ("The change is -5", "#### 5", 0.0),
        ("It costs \u20ac18.50", "#### 18.5", 1.0),
        ("The answer is 3-5 or 7", "#### 7", 1.0),
        ("1, 2, 3", "#### 3", 1.0),  # a comma before fewer than three digits is a list
    ],
)
def test_gsm8k_final_number_reads_commas_currency_and_signs(generated, target, expected):
    assert score("gsm8k_final_number", generated, target) == expected


def test_gsm8k_final_number_rejects_a_target_without_a_number():
    with pytest.raises(LLMBenchError, match="no final number"):
        score("gsm8k_final_number", "#### 3", "#### ")


# --- humaneval_pass_at_1 (magicoder) -----------------------------------------------------------


def humaneval_problems() -> list[dict]:
    path = DATASETS_DIR / "magicoder" / "fixture" / "HumanEval.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def problem_target(problem: dict) -> str:
    return humaneval_target(problem["prompt"], problem["test"], problem["entry_point"])


def test_humaneval_canonical_solutions_pass():
    for problem in humaneval_problems():
        solution = problem["prompt"] + problem["canonical_solution"]  # the prepared target
        assert score("humaneval_pass_at_1", solution, problem_target(problem)) == 1.0


def test_humaneval_reads_a_fenced_function_or_a_bare_body():
    problem = humaneval_problems()[1]  # pairwise_gaps, whose prompt imports List
    fenced = (
        "Here you go:\n```python\ndef pairwise_gaps(values: List[int]) -> List[int]:\n"
        "    return [b - a for a, b in zip(values, values[1:])]\n```\nDone."
    )
    body = problem["canonical_solution"]
    assert score("humaneval_pass_at_1", fenced, problem_target(problem)) == 1.0
    assert score("humaneval_pass_at_1", body, problem_target(problem)) == 1.0
    assert score("humaneval_pass_at_1", body.strip(), problem_target(problem)) == 1.0


def test_humaneval_wrong_or_broken_code_fails():
    problem = humaneval_problems()[0]
    target = problem_target(problem)
    assert score("humaneval_pass_at_1", "    return n % 10\n", target) == 0.0
    assert score("humaneval_pass_at_1", "def add_digits(n) return", target) == 0.0
    assert score("humaneval_pass_at_1", "", target) == 0.0


def test_humaneval_rejects_a_target_that_is_not_a_problem():
    with pytest.raises(LLMBenchError, match="not a HumanEval problem"):
        score("humaneval_pass_at_1", "pass", "def f(): pass")
