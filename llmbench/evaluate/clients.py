"""The one way llmbench talks to an endpoint, chosen by backend name; eval, loadtest and the app
all go through `make_backend`.

`lorax`: a LoRAX server (or `llmbench serve`), through lorax-client's AsyncClient
(`/generate`, `/generate_stream`). `openai`: any OpenAI-compatible server (vLLM, LoRAX's /v1,
OpenAI itself), through the openai client (`/v1/completions`, or `/v1/chat/completions` with
`chat`). Decoding is greedy. A request with `labels` is constrained to them (each backend's
structured-output field: llmbench.evaluate.constrained).

What every user gets the same way:
- a timeout in seconds: the most one request may take, from sending it to its last token;
- credentials from the environment, never logged: a bearer token from LLMBENCH_API_TOKEN for
  lorax, OPENAI_API_KEY for openai (`auth_headers` gives the same header to plain HTTP calls);
- failures in three kinds, which decide what the caller does: `Transient` (retry: 429, 5xx,
  timeouts, an unreachable server, cut connections, unreadable bodies), `Rejected` (this one
  example cannot be served: 422, e.g. a prompt longer than the context) and `Refused` (the whole
  run is misconfigured: an adapter or model the server does not have, a bad request). Each
  carries a one-line reason that names no credential.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmbench.errors import unknown_name
from llmbench.evaluate.constrained import lorax_response_format, openai_response_format
from llmbench.evaluate.responses import public_endpoint

BACKENDS = ("lorax", "openai")
# The timing headers LoRAX answers with (its /v1 routes included); a streamed answer keeps them.
TIMING_HEADERS = (
    "x-time-to-first-token",
    "x-time-per-output-token",
    "x-queue-time",
    "x-inference-time",
    "x-total-time",
    "x-prompt-tokens",
    "x-generated-tokens",
)


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
    # constrained: the answer must be one of these labels (llmbench.evaluate.constrained)
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Token:
    """One streamed token; a special one (end of sequence) counts but has nothing to show."""

    text: str
    special: bool = False


@dataclass(frozen=True)
class Answer:
    """A streamed answer the server said was complete."""

    text: str
    tokens: int  # generated tokens as the server counts them, the end-of-sequence one too
    finish_reason: str
    first_token_s: float | None  # from sending the request to the first token
    total_s: float
    headers: dict[str, str] = field(default_factory=dict)  # TIMING_HEADERS the server sent


OnToken = Callable[[Token], None]


def _ignore(token: Token) -> None:
    return None


class Client:
    """What both backends share: the deadline, the timing and the three kinds of failure."""

    def __init__(self, endpoint: str, timeout: float):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    async def generate(self, request: Request) -> str:
        """The whole answer at once (not streamed)."""
        return await self._within_deadline(self._generate(request))

    async def stream(self, request: Request, on_token: OnToken = _ignore) -> Answer:
        """Stream the answer, calling `on_token` for each token as it arrives; the Answer once
        the server says it is complete. A stream that ends before that is Transient."""
        return await self._within_deadline(self._stream(request, on_token, time.perf_counter()))

    async def close(self) -> None:
        return None

    async def _within_deadline(self, work):
        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except TimeoutError:
            raise self._too_slow() from None
        except (Transient, Rejected, Refused):
            raise
        except Exception as exc:
            kind = self._kind(exc)
            if kind is None:
                raise
            raise kind from None

    def _kind(self, exc: Exception) -> Exception | None:
        """The failure kind `exc` is, with its one-line reason; None for a bug of ours."""
        raise NotImplementedError

    async def _generate(self, request: Request) -> str:
        raise NotImplementedError

    async def _stream(self, request: Request, on_token: OnToken, started: float) -> Answer:
        raise NotImplementedError

    def _too_slow(self) -> Transient:
        where = public_endpoint(self.endpoint)
        return Transient(f"no complete answer from {where} within {self.timeout:g} s")

    def _unreachable(self) -> Transient:
        where = public_endpoint(self.endpoint)
        return Transient(f"cannot reach the endpoint {where}: is the server running?")

    def _cut(self) -> Transient:
        return Transient("the server closed the connection mid-answer (did it stop?)")


class LoraxBackend(Client):
    """LoRAX's /generate and /generate_stream through lorax-client. `adapter_source` (local,
    hub, s3, pbase) goes with every adapter request when set; unset, the server's default
    applies (LoRAX: hub, or its --default-adapter-source; `llmbench serve`: local)."""

    def __init__(
        self, endpoint: str, timeout: float, headers: dict | None = None,
        adapter_source: str | None = None,
    ):  # fmt: skip
        from lorax import AsyncClient

        super().__init__(endpoint, timeout)
        # lorax-client 0.6.3 counts its timeout in minutes (ClientTimeout(timeout * 60)).
        self.client = AsyncClient(self.endpoint, headers=headers, timeout=timeout / 60)
        self.adapter_source = adapter_source

    def _options(self, request: Request) -> dict:
        options = {
            "adapter_id": request.adapter_id,
            "adapter_source": self.adapter_source if request.adapter_id else None,
            "max_new_tokens": request.max_new_tokens,
            "do_sample": False,
        }
        if request.labels:
            options["response_format"] = lorax_response_format(request.labels)
        return options

    async def _generate(self, request: Request) -> str:
        # details=False: lorax-client asks for per-token details unless told not to
        options = self._options(request)
        response = await self.client.generate(request.prompt, details=False, **options)
        return response.generated_text

    async def _stream(self, request: Request, on_token: OnToken, started: float) -> Answer:
        first_token_s, tokens, last = None, 0, None
        async for event in self.client.generate_stream(request.prompt, **self._options(request)):
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
            tokens += 1
            on_token(Token("" if event.token.special else event.token.text, event.token.special))
            last = event
        if last is None or last.generated_text is None:
            raise _incomplete()
        reason = getattr(last.details, "finish_reason", None)
        return Answer(
            last.generated_text,
            tokens,
            str(getattr(reason, "value", reason) or ""),
            first_token_s,
            time.perf_counter() - started,
        )

    def _kind(self, exc: Exception) -> Exception | None:
        import aiohttp
        from lorax import errors

        if isinstance(exc, errors.ValidationError | errors.UnprocessableEntityError):
            return Rejected(str(exc))
        if isinstance(
            exc, errors.BadRequestError | errors.NotFoundError | errors.NotSupportedError
        ):
            return Refused(str(exc) or type(exc).__name__)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return self._unreachable()
        if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
            return self._cut()
        if isinstance(
            exc,
            errors.GenerationError
            | errors.IncompleteGenerationError
            | errors.OverloadedError
            | errors.RateLimitExceededError
            | errors.ShardNotReadyError
            | errors.ShardTimeoutError
            | errors.UnknownError
            | aiohttp.ClientError
            | ValueError,  # a body that is not JSON
        ):
            return Transient(f"{type(exc).__name__}: {exc}")
        return None


class OpenAIBackend(Client):
    """/v1/completions (or /v1/chat/completions with `chat`) through the openai client."""

    def __init__(self, endpoint: str, timeout: float, model: str, chat: bool = False):
        from openai import AsyncOpenAI

        super().__init__(endpoint, timeout)
        base_url = self.endpoint if self.endpoint.endswith("/v1") else self.endpoint + "/v1"
        # Our own retries decide; the client's would double them.
        self.client = AsyncOpenAI(
            base_url=base_url,
            api_key=os.environ.get("OPENAI_API_KEY", "none"),
            timeout=timeout,
            max_retries=0,
        )
        self.model, self.chat = model, chat

    def _create(self, request: Request, api, **options):
        model = request.adapter_id or self.model
        if request.labels:  # the completions API has no response_format argument: in the body
            options["extra_body"] = {"response_format": openai_response_format(request.labels)}
        if self.chat:
            messages = [{"role": "user", "content": request.prompt}]
            return api.chat.completions.create(
                model=model,
                messages=messages,
                max_tokens=request.max_new_tokens,
                temperature=0,
                **options,
            )
        return api.completions.create(
            model=model,
            prompt=request.prompt,
            max_tokens=request.max_new_tokens,
            temperature=0,
            **options,
        )

    async def _generate(self, request: Request) -> str:
        response = await self._create(request, self.client)
        if self.chat:
            return response.choices[0].message.content or ""
        return response.choices[0].text

    async def _stream(self, request: Request, on_token: OnToken, started: float) -> Answer:
        raw = await self._create(
            request,
            self.client.with_raw_response,
            stream=True,
            stream_options={"include_usage": True},
        )
        headers = {k: raw.headers[k] for k in TIMING_HEADERS if k in raw.headers}
        first_token_s, chunks, pieces, reason, usage = None, 0, [], None, None
        async for chunk in raw.parse():
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            text = (choice.delta.content or "") if self.chat else choice.text
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
            chunks += 1
            pieces.append(text)
            on_token(Token(text))
            reason = choice.finish_reason or reason
        if reason is None:
            raise _incomplete()
        return Answer(
            "".join(pieces),
            usage if usage is not None else chunks,
            reason,
            first_token_s,
            time.perf_counter() - started,
            headers,
        )

    def _kind(self, exc: Exception) -> Exception | None:
        import openai

        if isinstance(exc, openai.UnprocessableEntityError):
            return Rejected(_openai_message(exc))
        if isinstance(
            exc,
            openai.BadRequestError
            | openai.NotFoundError
            | openai.AuthenticationError
            | openai.PermissionDeniedError,
        ):
            message = _openai_message(exc)
            if "maximum context length" in message or "too long" in message.lower():
                return Rejected(message)
            return Refused(message)
        if isinstance(exc, openai.APITimeoutError):
            return self._too_slow()
        if isinstance(exc, openai.APIConnectionError):
            never_connected = _transport_error(exc.__cause__) == "ConnectError"
            return self._unreachable() if never_connected else self._cut()
        if _transport_error(exc) in ("RemoteProtocolError", "ReadError"):
            return self._cut()  # a stream cut off mid-answer reaches us unwrapped
        if isinstance(exc, openai.APIError | ValueError | IndexError) or _transport_error(exc):
            return Transient(f"{type(exc).__name__}: {exc}")
        return None

    async def close(self) -> None:
        await self.client.close()


def _incomplete() -> Transient:
    return Transient("the server closed the stream before the answer was complete (did it stop?)")


def _transport_error(exc: BaseException | None) -> str | None:
    """The class name of an error from the openai client's HTTP library (httpx; httpx2 in newer
    openai releases), else None: matched by module, as the library differs across releases."""
    if exc is None or type(exc).__module__.split(".")[0] not in ("httpx", "httpx2"):
        return None
    return type(exc).__name__


def _openai_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(exc)


def make_backend(
    name: str, endpoint: str, timeout: float, model: str = "", chat: bool = False,
    adapter_source: str | None = None,
) -> Client:  # fmt: skip
    """The client for backend `name`; `timeout` in seconds per request; `model` is what
    OpenAI-compatible requests name for the base model."""
    if name == "lorax":
        return LoraxBackend(endpoint, timeout, auth_headers(name), adapter_source)
    if name == "openai":
        return OpenAIBackend(endpoint, timeout, model, chat)
    raise unknown_name("backend", name, BACKENDS)


def auth_headers(backend: str) -> dict[str, str] | None:
    """The Authorization header requests to `backend` carry: a bearer token from
    LLMBENCH_API_TOKEN (lorax) or OPENAI_API_KEY (openai); None when it is unset."""
    token = os.environ.get("LLMBENCH_API_TOKEN" if backend == "lorax" else "OPENAI_API_KEY")
    return {"Authorization": f"Bearer {token}"} if token else None
