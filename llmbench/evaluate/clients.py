"""Clients for the endpoints evaluation, load tests and the web app talk to, by backend name.

`lorax`: a LoRAX server (or `llmbench serve`), through lorax-client's AsyncClient.
`openai`: any OpenAI-compatible server (vLLM, LoRAX's /v1, OpenAI itself), through the openai
client; the key comes from OPENAI_API_KEY and is never logged.

Every backend maps its failures onto three kinds, which decide what the caller does:
`Transient` (retry: 429, 5xx, timeouts, cut connections, unreadable bodies), `Rejected` (this
one example cannot be served: 422, e.g. a prompt longer than the context), and `Refused` (the
whole run is misconfigured: an adapter or model the server does not have, a bad request).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from llmbench.errors import unknown_name


class Transient(Exception):
    """Worth retrying: the server or the network failed, not the request."""


class Rejected(Exception):
    """The server refused this example (e.g. too long); other examples may still work."""


class Refused(Exception):
    """The server refused the run's set-up (unknown adapter or model, bad request)."""


@dataclass(frozen=True)
class Request:
    prompt: str
    max_new_tokens: int
    adapter_id: str | None = None  # None: the base model


class Backend(Protocol):
    async def generate(self, request: Request) -> str: ...

    async def close(self) -> None: ...


class LoraxBackend:
    """LoRAX's /generate through lorax-client; greedy decoding. `adapter_source` (local, hub,
    s3, pbase) goes with every adapter request when set; unset, the server's default applies
    (LoRAX: hub, or its --default-adapter-source; `llmbench serve`: local)."""

    def __init__(
        self, endpoint: str, timeout: float, headers: dict | None = None,
        adapter_source: str | None = None,
    ):  # fmt: skip
        from lorax import AsyncClient

        self.client = AsyncClient(endpoint.rstrip("/"), headers=headers, timeout=timeout)
        self.adapter_source = adapter_source

    async def generate(self, request: Request) -> str:
        import aiohttp
        from lorax import errors

        try:
            response = await self.client.generate(
                request.prompt,
                adapter_id=request.adapter_id,
                adapter_source=self.adapter_source if request.adapter_id else None,
                max_new_tokens=request.max_new_tokens,
                do_sample=False,
                details=False,  # lorax-client asks for per-token details unless told not to
            )
        except (errors.ValidationError, errors.UnprocessableEntityError) as exc:
            raise Rejected(str(exc)) from None
        except (errors.BadRequestError, errors.NotFoundError, errors.NotSupportedError) as exc:
            raise Refused(str(exc) or type(exc).__name__) from None
        except (
            errors.GenerationError,
            errors.IncompleteGenerationError,
            errors.OverloadedError,
            errors.RateLimitExceededError,
            errors.ShardNotReadyError,
            errors.ShardTimeoutError,
            errors.UnknownError,
            aiohttp.ClientError,
            TimeoutError,
            ValueError,  # a body that is not JSON
        ) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        return response.generated_text

    async def close(self) -> None:
        return None


class OpenAIBackend:
    """/v1/completions (or /v1/chat/completions with `chat`) through the openai client."""

    def __init__(self, endpoint: str, timeout: float, model: str, chat: bool = False):
        from openai import AsyncOpenAI

        base_url = endpoint.rstrip("/")
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        # Our own retries decide; the client's would double them.
        self.client = AsyncOpenAI(
            base_url=base_url,
            api_key=os.environ.get("OPENAI_API_KEY", "none"),
            timeout=timeout,
            max_retries=0,
        )
        self.model, self.chat = model, chat

    async def generate(self, request: Request) -> str:
        import openai

        model = request.adapter_id or self.model
        try:
            if self.chat:
                response = await self.client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": request.prompt}],
                    max_tokens=request.max_new_tokens,
                    temperature=0,
                )
                return response.choices[0].message.content or ""
            response = await self.client.completions.create(
                model=model, prompt=request.prompt, max_tokens=request.max_new_tokens, temperature=0
            )
            return response.choices[0].text
        except openai.UnprocessableEntityError as exc:
            raise Rejected(_openai_message(exc)) from None
        except (
            openai.BadRequestError,
            openai.NotFoundError,
            openai.AuthenticationError,
            openai.PermissionDeniedError,
        ) as exc:
            if (
                "maximum context length" in _openai_message(exc)
                or "too long" in _openai_message(exc).lower()
            ):
                raise Rejected(_openai_message(exc)) from None
            raise Refused(_openai_message(exc)) from None
        except (TimeoutError, openai.APIError, ValueError, IndexError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self.client.close()


def _openai_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(exc)


BACKENDS = ("lorax", "openai")


def make_backend(
    name: str, endpoint: str, timeout: float, model: str, chat: bool = False,
    adapter_source: str | None = None,
):  # fmt: skip
    """A backend by name; `model` is what OpenAI-compatible requests name for the base model."""
    if name == "lorax":
        return LoraxBackend(endpoint, timeout, auth_headers(), adapter_source)
    if name == "openai":
        return OpenAIBackend(endpoint, timeout, model, chat)
    raise unknown_name("backend", name, BACKENDS)


def auth_headers() -> dict | None:
    """A bearer token for a hosted LoRAX endpoint, from LLMBENCH_API_TOKEN (never logged)."""
    token = os.environ.get("LLMBENCH_API_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else None
