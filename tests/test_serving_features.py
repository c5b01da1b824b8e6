"""LoRAX's generation features on `llmbench serve` (issue 28, items 1 and 3): structured output
to a JSON schema, token alternatives and log-probabilities, best_of, typical_p.

The fast tests check the pieces that need no server (the typical_p filter, the request rules,
the schema limits). The slow ones talk to the session's one real server (tests/conftest.py
`served`: the tiny model, adapters alpha/beta/gamma, two loaded) with lorax-client, the openai
client and raw HTTP.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import jsonschema
import pytest
from serving_fixtures import ANSWERS, TRAIN_PROMPTS  # noqa: I001 - tests/ is on sys.path

from llmbench.serving.protocol import SEED_LIMIT, GenerateRequest, sampling_options
from llmbench.serving.structured import (
    ANY_JSON_OBJECT,
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    SchemaError,
    checked,
    lorax_schema,
    openai_schema,
)

PROMPT = TRAIN_PROMPTS[0]
MAX_NEW = 16
# Room for every answer below that the schema bounds (strings, arrays and numbers are capped).
STRUCTURED_MAX_NEW = 64


# ---- typical_p (fast) ---------------------------------------------------------------------------


def test_typical_p_keeps_the_fewest_tokens_closest_to_the_entropy_that_reach_the_mass():
    import torch

    from llmbench.serving.typical import typical_filter

    # p = (0.5, 0.3, 0.15, 0.05): entropy 1.142 nats; |-log p - H| = (0.449, 0.062, 0.755,
    # 1.854), so the order of typicality is token 1, 0, 2, 3 with running mass 0.3, 0.8, 0.95, 1.
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    kept = {
        mass: torch.isfinite(typical_filter(logits.clone(), mass)).nonzero().flatten().tolist()
        for mass in (1e-6, 0.25, 0.5, 0.75, 0.9, 0.96)
    }
    assert kept == {1e-6: [1], 0.25: [1], 0.5: [0, 1], 0.75: [0, 1], 0.9: [0, 1, 2],
                    0.96: [0, 1, 2, 3]}  # fmt: skip


# ---- request rules (fast) -----------------------------------------------------------------------


def test_a_sampled_request_without_a_seed_gets_one_that_best_of_can_count_up_from():
    drawn = [sampling_options(max_new_tokens=4, do_sample=True, best_of=4) for _ in range(20)]
    assert all(0 <= o["seed"] < SEED_LIMIT and o["n"] == 4 for o in drawn)
    assert len({o["seed"] for o in drawn}) > 1
    assert sampling_options(max_new_tokens=4)["seed"] is None  # greedy needs none
    typical = sampling_options(max_new_tokens=4, typical_p=0.5)
    assert typical["temperature"] == 1.0 and typical["extra_args"] == {"typical_p": 0.5}


@pytest.mark.parametrize(
    "parameters, problem",
    [
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"best_of": 2, "do_sample": True, "temperature": 0}, "temperature above 0"),
        ({"best_of": 2, "do_sample": True, "seed": 1}, "`seed` must not be set"),
        ({"best_of": 5, "do_sample": True}, "less than or equal to 4"),
        ({"return_k_alternatives": 0}, "greater than 0"),
        ({"return_k_alternatives": 21}, "less than or equal to 20"),
        (
            {"merged_adapters": {"ids": ["a"], "weights": [1.0], "merge_strategy": "svd"}},
            "merged_adapters.merge_strategy",
        ),
        ({"watermark": True}, "`watermark` is not supported"),
        ({"response_format": {"type": "xml"}}, "json_object"),
    ],
)
def test_parameters_lorax_refuses_are_refused_naming_the_field(parameters, problem):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=problem.replace("`", ".").replace(">", ".")):
        GenerateRequest.model_validate({"inputs": "x", "parameters": parameters})


def test_response_formats_name_one_schema_or_none():
    assert lorax_schema(None, None) is None
    assert lorax_schema({"type": "text", "schema": None}, None) is None
    assert lorax_schema({"type": "json_object", "schema": None}, None) == ANY_JSON_OBJECT
    assert openai_schema({"type": "json_object", "json_schema": None}) == ANY_JSON_OBJECT
    assert openai_schema({"type": "text", "json_schema": None}) is None
    with pytest.raises(SchemaError, match="not both"):
        lorax_schema({"type": "json_object", "schema": None}, '{"type": "string"}')
    with pytest.raises(SchemaError, match="^schema: not valid JSON"):
        lorax_schema(None, "{not json")
    with pytest.raises(SchemaError, match="^response_format.json_schema.schema: required"):
        openai_schema({"type": "json_schema", "json_schema": None})


def _nested(levels: int) -> str:
    """A schema `levels` objects deep, as JSON text (too deep for json.dumps to write)."""
    opening = '{"type": "object", "properties": {"a": '
    return opening * levels + '{"type": "string"}' + "}}" * levels


def test_a_schema_too_deep_too_big_or_not_an_object_is_refused_before_the_backend_sees_it():
    started = time.monotonic()
    with pytest.raises(SchemaError, match=f"at most {MAX_SCHEMA_DEPTH} are allowed"):
        checked(json.loads(_nested(200)), "response_format.schema")
    with pytest.raises(SchemaError, match=f"at most {MAX_SCHEMA_BYTES:,} are allowed"):
        checked({"enum": ["x" * 1_000_000]}, "response_format.schema")
    for value in (False, "a string", [1], 5):
        with pytest.raises(SchemaError, match="expected a JSON Schema object"):
            checked(value, "schema")
    assert time.monotonic() - started < 2.0


# ---- the real server (slow): token details ----------------------------------------------------


def _post(url: str, path: str, body, timeout: float = 60):
    import requests

    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(url + path, data=data, timeout=timeout,
                         headers={"content-type": "application/json"})  # fmt: skip


def _metric(url: str, name: str) -> float:
    import requests

    text = requests.get(url + "/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name)))


@pytest.mark.slow
def test_lorax_client_parses_alternatives_and_logprobs_into_its_token_models(served):
    from lorax import Client
    from lorax.types import AlternativeToken, InputToken, Token

    answer = Client(served["url"]).generate(
        PROMPT, adapter_id="alpha", max_new_tokens=MAX_NEW, details=True,
        decoder_input_details=True, return_k_alternatives=3,
    )  # fmt: skip
    assert answer.generated_text == ANSWERS["alpha"]
    assert all(isinstance(t, InputToken) for t in answer.details.prefill)
    assert len(answer.details.prefill) == answer.details.prompt_tokens
    for token in answer.details.tokens:
        assert isinstance(token, Token) and len(token.alternative_tokens) == 3
        assert all(isinstance(a, AlternativeToken) for a in token.alternative_tokens)
        logprobs = [a.logprob for a in token.alternative_tokens]
        assert logprobs == sorted(logprobs, reverse=True) and logprobs[0] <= 0
        assert sum(2.718281828**lp for lp in logprobs) <= 1.0 + 1e-6
        # Greedy: the chosen token is the most likely one, with the same log-probability.
        best = token.alternative_tokens[0]
        assert (best.id, best.logprob) == (token.id, pytest.approx(token.logprob, abs=1e-5))


@pytest.mark.slow
def test_under_a_schema_only_the_tokens_it_allows_are_alternatives(served):
    # Found on smollm2: a forbidden token's log-probability is -inf, which JSON cannot carry
    # (the answer was a 500). The schema allows few tokens at each step, fewer than 5 at first.
    parameters = {
        "max_new_tokens": MAX_NEW,
        "return_k_alternatives": 5,
        "response_format": {"type": "json_object", "schema": {"enum": ["yes", "no"]}},
    }
    answer = _post(served["url"], "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    tokens = answer.json()["details"]["tokens"]
    assert answer.json()["generated_text"] in ('"yes"', '"no"')
    assert 1 <= len(tokens[0]["alternative_tokens"]) < 5
    for token in tokens:
        assert token["alternative_tokens"][0]["id"] == token["id"]  # greedy
        assert all(a["logprob"] > float("-inf") for a in token["alternative_tokens"])


@pytest.mark.slow
def test_top_n_tokens_are_tgis_top_tokens_the_same_as_the_alternatives(served):
    parameters = {"max_new_tokens": 8, "ignore_eos_token": True, "details": True,
                  "top_n_tokens": 2, "return_k_alternatives": 4}  # fmt: skip
    answer = _post(served["url"], "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    details = answer.json()["details"]
    assert len(details["top_tokens"]) == details["generated_tokens"] == 8
    for top, token in zip(details["top_tokens"], details["tokens"], strict=True):
        assert [(t["id"], t["logprob"]) for t in top] == [
            (a["id"], a["logprob"]) for a in token["alternative_tokens"][:2]
        ]
        assert all(set(t) == {"id", "text", "logprob", "special"} for t in top)


@pytest.mark.slow
def test_streamed_tokens_carry_their_alternatives(served):
    import requests
    from lorax.types import StreamResponse

    # lorax-client's generate_stream has no return_k_alternatives argument: the stream is read
    # here and each event parsed into its StreamResponse model.
    body = {"inputs": PROMPT, "parameters": {"adapter_id": "beta", "max_new_tokens": MAX_NEW,
                                             "return_k_alternatives": 2}}  # fmt: skip
    with requests.post(served["url"] + "/generate_stream", json=body, stream=True, timeout=60) as r:
        assert r.status_code == 200, r.text
        lines = [line for line in r.iter_lines() if line.startswith(b"data:")]
    events = [StreamResponse(**json.loads(line[len(b"data:") :])) for line in lines]
    assert events[-1].generated_text == ANSWERS["beta"]
    assert all(len(e.token.alternative_tokens) == 2 for e in events)
    assert all(e.token.alternative_tokens[0].id == e.token.id for e in events)  # greedy


# ---- sampling options, chat inputs (slow) -----------------------------------------------------


@pytest.mark.slow
def test_presence_and_frequency_penalties_reach_the_sampler(served):
    url = served["url"]

    def greedy(**penalty) -> str:
        parameters = {"max_new_tokens": 24, "ignore_eos_token": True, **penalty}
        answer = _post(url, "/generate", {"inputs": PROMPT, "parameters": parameters})
        assert answer.status_code == 200, answer.text
        return answer.json()["generated_text"]

    plain = greedy()
    # The random base model's greedy answer repeats tokens: a penalty on them changes it.
    assert greedy(presence_penalty=1.9) != plain
    assert greedy(frequency_penalty=1.9) != plain
    too_big = _post(url, "/generate", {"inputs": PROMPT, "parameters": {"presence_penalty": 2}})
    assert too_big.status_code == 422


@pytest.mark.slow
def test_apply_chat_template_reads_inputs_as_chat_messages(served):
    from openai import OpenAI

    url = served["url"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    parameters = {"adapter_id": "beta", "max_new_tokens": MAX_NEW, "apply_chat_template": True}
    lorax = _post(url, "/generate", {"inputs": json.dumps(messages), "parameters": parameters})
    assert lorax.status_code == 200, lorax.text
    chat = OpenAI(base_url=url + "/v1", api_key="unused").chat.completions.create(
        model="beta", messages=messages, max_tokens=MAX_NEW, temperature=0
    )
    assert lorax.json()["generated_text"] == chat.choices[0].message.content
    for inputs in ("Hi", "[]", '[{"role": "robot", "content": "x"}]'):
        bad = _post(url, "/generate", {"inputs": inputs, "parameters": parameters})
        assert bad.status_code == 422 and "apply_chat_template" in bad.json()["error"]


# ---- best_of and typical_p (slow) ---------------------------------------------------------------


@pytest.mark.slow
def test_best_of_returns_the_most_likely_sample_and_the_others_with_their_seeds(served):
    from lorax import Client

    client = Client(served["url"])
    answer = client.generate(PROMPT, max_new_tokens=8, best_of=3, do_sample=True, details=True,
                             ignore_eos_token=True)  # fmt: skip
    details = answer.details
    assert details.seed is not None and len(details.best_of_sequences) == 2
    samples = [(answer.generated_text, details.seed, details.tokens)] + [
        (s.generated_text, s.seed, s.tokens) for s in details.best_of_sequences
    ]
    assert len({seed for _, seed, _ in samples}) == 3
    totals = [sum(t.logprob for t in tokens) for _, _, tokens in samples]
    assert totals[0] == max(totals)
    # Each sample's seed reproduces it alone, so the seeds reported are the ones it was drawn with.
    for text, seed, _ in samples:
        alone = client.generate(PROMPT, max_new_tokens=8, do_sample=True, seed=seed,
                                ignore_eos_token=True)  # fmt: skip
        assert alone.generated_text == text


@pytest.mark.slow
def test_lorax_clients_own_best_of_call_passes(served):
    """The call of lorax-client's own test suite that llmbench serve used to fail."""
    from lorax import Client

    answer = Client(served["url"]).generate("test", max_new_tokens=1, best_of=2, do_sample=True)
    assert answer.details.seed is not None
    assert answer.details.best_of_sequences is not None
    assert len(answer.details.best_of_sequences) == 1
    assert answer.details.best_of_sequences[0].seed is not None


@pytest.mark.slow
@pytest.mark.parametrize(
    "parameters",
    [
        {"best_of": 2, "do_sample": True, "seed": 3},
        {"best_of": 2},
        {"best_of": 5, "do_sample": True},
    ],
)
def test_best_of_lorax_refuses_is_refused(served, parameters):
    answer = _post(served["url"], "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert answer.status_code == 422 and answer.json()["error_type"] == "validation"


@pytest.mark.slow
def test_best_of_is_refused_when_streaming(served):
    body = {"inputs": PROMPT, "parameters": {"best_of": 2, "do_sample": True}}
    answer = _post(served["url"], "/generate_stream", body)
    assert answer.status_code == 422
    assert "not supported when streaming" in answer.json()["error"]


@pytest.mark.slow
def test_typical_p_samples_only_from_the_typical_set(served):
    from lorax import Client

    client = Client(served["url"])

    def texts(**extra) -> set[str]:
        return {
            client.generate(
                PROMPT, max_new_tokens=12, do_sample=True, seed=seed, ignore_eos_token=True, **extra
            ).generated_text  # fmt: skip
            for seed in range(1, 6)
        }

    # The random base model's distributions are wide: five seeds disagree. A tiny typical mass
    # keeps one token per step (the one whose surprisal is nearest the entropy): they agree.
    assert len(texts()) > 1
    assert len(texts(typical_p=1e-6)) == 1


# ---- structured output (slow) -------------------------------------------------------------------

SCHEMAS = {
    "nested objects": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 8},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120},
                },
                "required": ["name", "age"],
                "additionalProperties": False,
            }
        },
        "required": ["person"],
        "additionalProperties": False,
    },
    "array with min and max items": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "minItems": 2,
        "maxItems": 4,
    },
    "enum": {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative", "neutral"]}},
        "required": ["label"],
        "additionalProperties": False,
    },
    "required and optional keys": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 999},
            "note": {"type": "string", "maxLength": 10},
            "flag": {"type": "boolean"},
        },
        "required": ["id"],
        "additionalProperties": False,
    },
    "integer with bounds": {"type": "integer", "minimum": -50, "maximum": 50},
    "number with bounds": {
        "type": "object",
        "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["score"],
        "additionalProperties": False,
    },
    "string pattern": {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}},
        "required": ["code"],
        "additionalProperties": False,
    },
    "array of objects": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "k": {"type": "string", "maxLength": 4},
                "v": {"type": "integer", "minimum": 0, "maximum": 99},
            },
            "required": ["k", "v"],
            "additionalProperties": False,
        },
        "minItems": 1,
        "maxItems": 2,
    },
    "boolean, null and const": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "nothing": {"type": "null"},
            "kind": {"const": "fixed"},
        },  # fmt: skip
        "required": ["ok", "nothing", "kind"],
        "additionalProperties": False,
    },
    "nested arrays": {
        "type": "object",
        "properties": {
            "grid": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"enum": [0, 1]},
                    "minItems": 2,
                    "maxItems": 2,
                },  # fmt: skip
                "minItems": 2,
                "maxItems": 2,
            }
        },
        "required": ["grid"],
        "additionalProperties": False,
    },
    "anyOf": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 5}, {"enum": ["none"]}]},
    "string pattern with lengths": {
        "type": "string",
        "pattern": "^[a-z]+$",
        "minLength": 2,
        "maxLength": 6,
    },  # fmt: skip
    "$defs and $ref": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": 0, "maximum": 9},
                    "y": {"type": "integer", "minimum": 0, "maximum": 9},
                },  # fmt: skip
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
}
MODELS = [None, "alpha", "beta"]


def _constrained(url: str, adapter_id: str | None, schema: dict) -> dict:
    parameters = {"adapter_id": adapter_id, "max_new_tokens": STRUCTURED_MAX_NEW, "details": True,
                  "response_format": {"type": "json_object", "schema": schema}}  # fmt: skip
    answer = _post(url, "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _plain(url: str, adapter_id: str | None) -> str:
    parameters = {"adapter_id": adapter_id, "max_new_tokens": MAX_NEW}
    answer = _post(url, "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    return answer.json()["generated_text"]


@pytest.mark.slow
def test_every_finished_constrained_answer_validates_against_its_schema(served):
    from lorax import Client

    client = Client(served["url"])
    cases = [(name, model) for name in SCHEMAS for model in MODELS]

    def ask(case):
        name, model = case
        answer = client.generate(
            PROMPT, adapter_id=model, max_new_tokens=STRUCTURED_MAX_NEW, details=True,
            response_format={"type": "json_object", "schema": SCHEMAS[name]},
        )  # fmt: skip
        return case, answer

    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(ask, cases))
    finished = [(case, a) for case, a in answers if a.details.finish_reason != "length"]
    for (name, _), answer in finished:
        jsonschema.validate(json.loads(answer.generated_text), SCHEMAS[name])
    # Every schema bounds its answer well within STRUCTURED_MAX_NEW tokens.
    assert len(finished) == len(cases), [(c, a.generated_text) for c, a in answers]
    print({f"{name}/{model}": a.generated_text for (name, model), a in answers})


@pytest.mark.slow
def test_json_object_without_a_schema_and_the_legacy_schema_parameter(served):
    url = served["url"]
    parameters = {"max_new_tokens": STRUCTURED_MAX_NEW, "response_format": {"type": "json_object"}}
    any_object = _post(url, "/generate", {"inputs": PROMPT, "parameters": parameters})
    assert any_object.status_code == 200, any_object.text
    if any_object.json()["details"]["finish_reason"] != "length":
        assert isinstance(json.loads(any_object.json()["generated_text"]), dict)
    schema = SCHEMAS["nested objects"]
    legacy = _post(url, "/generate", {"inputs": PROMPT, "parameters": {
        "adapter_id": "alpha", "max_new_tokens": STRUCTURED_MAX_NEW, "details": True,
        "schema": json.dumps(schema)}})  # fmt: skip
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["generated_text"] == _constrained(url, "alpha", schema)["generated_text"]
    jsonschema.validate(json.loads(legacy.json()["generated_text"]), schema)


@pytest.mark.slow
def test_a_constrained_stream_is_the_constrained_answer_token_by_token(served):
    from lorax import Client

    schema = SCHEMAS["required and optional keys"]
    events = list(Client(served["url"]).generate_stream(
        PROMPT, adapter_id="beta", max_new_tokens=STRUCTURED_MAX_NEW,
        response_format={"type": "json_object", "schema": schema}))  # fmt: skip
    text = "".join(e.token.text for e in events if not e.token.special)
    assert text == events[-1].generated_text
    assert text == _constrained(served["url"], "beta", schema)["generated_text"]
    jsonschema.validate(json.loads(text), schema)


@pytest.mark.slow
def test_constrained_and_free_requests_of_base_and_adapters_in_one_batch_answer_as_alone(served):
    url = served["url"]
    plain_alone = {model: _plain(url, model) for model in MODELS}
    schemas = ["nested objects", "enum", "array of objects"]
    constrained_alone = {
        (name, model): _constrained(url, model, SCHEMAS[name])["generated_text"]
        for name in schemas for model in MODELS
    }  # fmt: skip
    jobs = [("plain", model) for model in MODELS] * 3 + list(constrained_alone)

    def run(job):
        name, model = job
        if name == "plain":
            return job, _plain(url, model)
        return job, _constrained(url, model, SCHEMAS[name])["generated_text"]

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(run, jobs))
    expected = {("plain", m): text for m, text in plain_alone.items()} | constrained_alone
    assert [(job, text) for job, text in together if text != expected[job]] == []
    assert plain_alone["alpha"] == ANSWERS["alpha"] and plain_alone["beta"] == ANSWERS["beta"]


@pytest.mark.slow
def test_openai_response_format_json_schema_and_json_object(served):
    from openai import OpenAI

    client = OpenAI(base_url=served["url"] + "/v1", api_key="unused")
    schema = SCHEMAS["nested objects"]
    json_schema = {"type": "json_schema",
                   "json_schema": {"name": "person", "schema": schema, "strict": True}}  # fmt: skip
    for model in ("", "alpha"):
        chat = client.chat.completions.create(
            model=model, max_tokens=STRUCTURED_MAX_NEW, temperature=0,
            messages=[{"role": "user", "content": "Who?"}], response_format=json_schema,
        )  # fmt: skip
        assert chat.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(chat.choices[0].message.content), schema)
        completion = client.completions.create(
            model=model, prompt=PROMPT, max_tokens=STRUCTURED_MAX_NEW, temperature=0,
            extra_body={"response_format": json_schema},
        )  # fmt: skip
        assert completion.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(completion.choices[0].text), schema)
    any_object = client.chat.completions.create(
        model="beta", max_tokens=STRUCTURED_MAX_NEW, temperature=0,
        messages=[{"role": "user", "content": "Hi"}], response_format={"type": "json_object"},
    )  # fmt: skip
    if any_object.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(any_object.choices[0].message.content), dict)


# ---- structured output: bad input (slow) ------------------------------------------------------

BAD_SCHEMAS = {
    "an unknown type": ({"type": "strng"}, "Invalid type"),
    "a pattern that is no regex": ({"type": "string", "pattern": "(["}, "regex parse error"),
    "an empty enum": ({"enum": []}, "Unsatisfiable"),
    "minimum above maximum": ({"type": "integer", "minimum": 5, "maximum": 2}, "Unsatisfiable"),
    "minItems above maxItems": (
        {"type": "array", "minItems": 3, "maxItems": 1},
        "Unsatisfiable",
    ),  # fmt: skip
    "a required key additionalProperties forbids": (
        {"type": "object", "properties": {}, "required": ["a"], "additionalProperties": False},
        "Unsatisfiable",
    ),
    "an enum of the wrong type": ({"type": "integer", "enum": ["a"]}, "Unsatisfiable"),
    "a keyword it cannot enforce": (
        {"type": "array", "uniqueItems": True},
        "Unimplemented keys",
    ),  # fmt: skip
    "a reference to nothing": ({"$ref": "#/$defs/none"}, "does not exist"),
    "a string": ("an object, please", "expected a JSON Schema object"),
    "false": (False, "expected a JSON Schema object"),
}


def _is_one_line_400(answer) -> bool:
    error = answer.json()
    return (answer.status_code == 400 and set(error) == {"error", "error_type"}
            and "\n" not in error["error"])  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_SCHEMAS))
def test_a_schema_that_cannot_be_served_is_a_one_line_400_before_any_token(served, case):
    url = served["url"]
    schema, problem = BAD_SCHEMAS[case]
    requests_before = _metric(url, "lorax_request_count")
    tokens_before = _metric(url, "lorax_request_generated_tokens_sum")
    lorax = _post(url, "/generate", {"inputs": PROMPT, "parameters": {
        "response_format": {"type": "json_object", "schema": schema}}})  # fmt: skip
    assert _is_one_line_400(lorax), lorax.text
    assert lorax.json()["error"].startswith("response_format.schema: ")
    assert problem in lorax.json()["error"]
    openai = _post(url, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    })  # fmt: skip
    assert _is_one_line_400(openai), openai.text
    assert openai.json()["error"].startswith("response_format.json_schema.schema: ")
    assert _metric(url, "lorax_request_count") == requests_before
    assert _metric(url, "lorax_request_generated_tokens_sum") == tokens_before


@pytest.mark.slow
def test_a_bad_legacy_schema_and_both_forms_at_once_are_400s(served):
    url = served["url"]
    for parameters, problem in [
        ({"schema": "{not json"}, "schema: not valid JSON"),
        ({"schema": '{"enum": []}'}, "schema: Unsatisfiable"),
        ({"schema": '{"type": "string"}', "response_format": {"type": "json_object"}},
         "not both"),
    ]:  # fmt: skip
        answer = _post(url, "/generate", {"inputs": PROMPT, "parameters": parameters})
        assert _is_one_line_400(answer) and problem in answer.json()["error"], answer.text


@pytest.mark.slow
def test_hostile_schemas_are_refused_within_2_s_while_others_are_served(served):
    url = served["url"]
    head = '{"inputs": "x", "parameters": {"response_format": {"type": "json_object", "schema": '
    deep_1000, deep_200 = (head + _nested(levels) + "}}}" for levels in (1000, 200))
    big = {"inputs": "x", "parameters": {"response_format": {"type": "json_object", "schema": {
        "enum": [f"value-{i:07d}" for i in range(65_000)]}}}}  # fmt: skip
    big_body = json.dumps(big)
    assert len(big_body) > 1_000_000
    hostile = {"1,000 levels": deep_1000, "200 levels": deep_200, "1 MB": big_body}
    others: list[tuple[float, str]] = []
    stop = threading.Event()

    def keep_asking():
        while not stop.is_set():
            started = time.monotonic()
            text = _plain(url, "alpha")
            others.append((time.monotonic() - started, text))

    worker = threading.Thread(target=keep_asking)
    worker.start()
    try:
        refusals = {}
        for name, body in hostile.items():
            started = time.monotonic()
            answer = _post(url, "/generate", body)
            refusals[name] = (time.monotonic() - started, answer)
    finally:
        stop.set()
        worker.join()
    for name, (seconds, answer) in refusals.items():
        assert _is_one_line_400(answer), (name, answer.text)
        assert seconds < 2.0, (name, seconds)
    assert others and all(text == ANSWERS["alpha"] for _, text in others)
    assert max(seconds for seconds, _ in others) < 2.0
