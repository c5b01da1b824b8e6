"""Render one Ludwig config per (base model, task) from templates/ and the task cards.

Load inputs (registry, cards) -> render every config in memory -> validate each with Ludwig's own
schema -> write them all (atomically, each file). Nothing is written unless every config renders
and validates.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from llmbench.errors import LLMBenchError, unknown_name
from llmbench.paths import (
    CONFIGS_DIR,
    DATASETS_DIR,
    DEFAULT_WORK_DIR,
    REPO_ROOT,
    TEMPLATES_DIR,
    atomic_write_text,
)
from llmbench.prepare.stats import longest_examples
from llmbench.tasks.cards import TaskCard, get_card, load_cards
from llmbench.tasks.models import BaseModel, get_model, load_registry, study_models
from llmbench.tasks.prompts import realized_template
from llmbench.workdir import Workdir

TEMPLATE_NAME = "ludwig_config.yaml.j2"
# The study sized every task to fit an A10G with 7B models; no task needs more than this.
MAX_SEQUENCE_LENGTH = 2048
STUDY_TRAINER = {
    "batch_size": 1,
    "learning_rate": 0.0002,
    "gradient_accumulation_steps": 16,
    "train_steps": 40000,
    "eval_steps": 100,
    "steps_per_checkpoint": 1000,
    "skip_all_evaluation": False,
}
REGISTRY_FILE = "templates/models.yaml"
# Long enough for a slow hub to answer a HEAD request; short enough that an unreachable hub
# costs seconds (huggingface_hub's own retries took about 45 s).
HUB_TIMEOUT_S = 5.0
# `compute_dtype: auto` in the registry: bfloat16 where the CPU computes it natively, float32
# where it emulates it. Through Ludwig at batch 8 on glue_cola, a 4-bit step with bfloat16
# compute took 0.84x the float32 one on an AMD EPYC with AVX512-BF16; on one without AVX-512 a
# bfloat16 step took 12x the float32 one (docs/training.md, docs/benchmarks.md).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedConfig:
    model: str
    task: str
    path: Path
    text: str


def yaml_scalar(value: str | int | float, indent: int = 0) -> str:
    """`value` as a YAML scalar that loads back exactly: a literal block for multi-line text."""
    if isinstance(value, str) and "\n" in value and _literal_safe(value):
        chomp = "" if value.endswith("\n") else "-"
        pad = " " * (indent + 2)
        lines = value.removesuffix("\n").split("\n")
        return f"|{chomp}\n" + "\n".join(pad + line if line else "" for line in lines)
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return dumped.removesuffix("\n").removesuffix("\n...")


def _literal_safe(text: str) -> bool:
    """Whether a literal block scalar reproduces `text` exactly."""
    return (
        not text.startswith((" ", "\n"))
        and not text.endswith("\n\n")
        and all(line == line.rstrip() for line in text.split("\n"))
        and all(ch == "\n" or ch.isprintable() for ch in text)
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml_scalar"] = yaml_scalar
    return env


def sequence_length(
    card: TaskCard, model: BaseModel, measured: tuple[int, str] | None = None
) -> tuple[int, str]:
    """The task's sequence length for this model, and where the number came from.

    `measured` is (longest example in tokens, the stats file) from `llmbench tasks stats`; without
    it the study's own figure from the card (tasks.csv) is used.
    """
    cap = min(model.context_length, MAX_SEQUENCE_LENGTH)
    if measured:
        longest, source = measured
        reason = f"the longest prepared example ({longest} tokens, measured in {source})"
    else:
        longest = card.study_tokens["max"]
        reason = f"the study's longest example ({longest} tokens, tasks.csv)"
    if longest > cap:
        reason += f", capped at {cap} (min of the model's context and {MAX_SEQUENCE_LENGTH})"
    return min(longest, cap), reason


def render_one(
    card: TaskCard,
    model: BaseModel,
    out_dir: Path,
    work_dir: Path = DEFAULT_WORK_DIR,
    measured: tuple[int, str] | None = None,
    trainer: dict | None = None,
    adapter: dict | None = None,
) -> RenderedConfig:
    """One config's text; its `base_model` is the hub id, or the local model's directory.
    `trainer` values replace the model's overrides, which replace the study's; `adapter` values
    (LoRA rank, alpha, dropout, target modules) likewise."""
    path = Path(out_dir) / model.name / f"{card.name}.yaml"
    length, reason = sequence_length(card, model, measured)
    compute_dtype, compute_dtype_reason = resolve_compute_dtype(model.compute_dtype)
    text = (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            model=model,
            card=card,
            base_model=Workdir(work_dir).base_model(model),
            config_path=_display_path(path),
            dataset_path=_display_path(Workdir(work_dir).prepared(card.name)),
            template=realized_template(card, model),
            sequence_length=length,
            sequence_length_reason=reason,
            compute_dtype=compute_dtype,
            compute_dtype_reason=compute_dtype_reason,
            overrides={**model.trainer_overrides, **(trainer or {})},
            trainer={**STUDY_TRAINER, **model.trainer_overrides, **(trainer or {})},
            # the study's LoRA is the template's defaults; these replace some of them
            adapter={**model.adapter_overrides, **(adapter or {})},
        )
    )
    return RenderedConfig(model=model.name, task=card.name, path=path, text=text)


def resolve_compute_dtype(dtype: str, cpuinfo: Path | None = None) -> tuple[str, str]:
    """The 4-bit layers' compute dtype for a registry value, and why when it was `auto`: on a
    GPU bfloat16; on a CPU bfloat16 if it computes it natively, else float32."""
    if dtype != "auto":
        return dtype, ""
    if shutil.which("nvidia-smi"):
        return "bfloat16", "auto: bfloat16 on a GPU"
    flags = _cpu_flags(cpuinfo or CPUINFO)
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return "bfloat16", f"auto: bfloat16, this CPU computes it natively ({', '.join(native)})"
    return "float32", (
        f"auto: float32, this CPU has no native bfloat16 ({' or '.join(NATIVE_BF16_FLAGS)})"
    )


def _cpu_flags(cpuinfo: Path) -> set[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo); none where that cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def _display_path(path: Path) -> str:
    """The config's path as its header shows it: from the repository root, else from the
    working directory, else absolute."""
    resolved = path.resolve()
    for root in (REPO_ROOT, Path.cwd()):
        if resolved.is_relative_to(root):
            return str(resolved.relative_to(root))
    return str(resolved)


def hub_is_offline() -> bool:
    """Whether the Hugging Face hub may not be asked (HF_HUB_OFFLINE, read as the hub reads it)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@dataclass(frozen=True)
class HubAccess:
    """Which hub ids Ludwig's own `base_model` check can run on, asked once per rendering run.

    `registry_only` are the ids checked against the registry instead, and `note` (one line, ''
    when there are none) says why.
    """

    registry_only: frozenset[str] = frozenset()
    note: str = ""


def check_hub_access(
    hub_ids: Iterable[str], timeout_s: float = HUB_TIMEOUT_S, endpoint: str | None = None
) -> HubAccess:
    """Ask the hub, once per id and without retries, for the file Ludwig's check reads.

    Offline (HF_HUB_OFFLINE), unreachable (refused, timed out, a server error): every id is
    checked against the registry, and asking stops at the first failure. Refused for want of
    access (401, 403: a gated or private repository, or one that does not exist, which the hub
    does not tell apart without a token): that id. Any other answer, found or not, is left to
    Ludwig's check, which then runs without a wait. `endpoint` defaults to HF_ENDPOINT's.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    ids = sorted(set(hub_ids))
    registry = f"base_model checked against {REGISTRY_FILE} instead of the hub"
    if ids and hub_is_offline():
        return HubAccess(frozenset(ids), f"HF_HUB_OFFLINE is set: {registry}")
    refused = []
    for hub_id in ids:
        try:
            url = hf_hub_url(hub_id, "config.json", endpoint=endpoint)
            get_hf_file_metadata(url, timeout=timeout_s)
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status in (401, 403):
                refused.append(hub_id)
            elif status is None or status == 429 or status >= 500:
                return _unreachable(ids, endpoint, f"HTTP {status}", registry)
        except Exception as error:  # refused, timed out, DNS, TLS, proxy: Ludwig could not ask
            reason = f"{type(error).__name__}: {_first_line(error)}"
            return _unreachable(ids, endpoint, reason, registry)
    if not refused:
        return HubAccess()
    where = endpoint or constants.ENDPOINT
    why = f"gated or private on the hub ({where} answered 401/403; a token with access lifts it)"
    return HubAccess(frozenset(refused), f"{', '.join(refused)}: {why}: {registry}")


def _unreachable(ids: list[str], endpoint: str | None, reason: str, registry: str) -> HubAccess:
    from huggingface_hub import constants

    where = endpoint or constants.ENDPOINT
    return HubAccess(frozenset(ids), f"the hub ({where}) cannot be reached ({reason}): {registry}")


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def validate_with_ludwig(rendered: RenderedConfig, hub: HubAccess = HubAccess()) -> None:
    """Ludwig's own config validation; its complaint becomes one LLMBenchError line.

    Ludwig checks `base_model` by fetching the model's config from the hub. For an id in
    `hub.registry_only`, that one field is checked against the registry instead (it must be a
    registry model's hub id) and Ludwig is shown a local directory in its place, so every other
    check of Ludwig's still runs; the same for a local model's folder not built yet.
    """
    from ludwig.error import ConfigValidationError
    from ludwig.schema.model_types.base import ModelConfig

    config = yaml.safe_load(rendered.text)
    base_model = config["base_model"]
    if base_model in hub.registry_only:
        _check_against_registry(rendered, base_model)
        config["base_model"] = str(TEMPLATES_DIR)
    elif _is_local(base_model) and not Path(base_model).is_dir():
        config["base_model"] = str(TEMPLATES_DIR)  # a local model, built before it trains
    try:
        with _quiet_ludwig():
            validated = ModelConfig.from_dict(config)
    except (ConfigValidationError, ValueError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise LLMBenchError(
            f"{rendered.path}: Ludwig rejects the config: {' '.join(lines[:3])}"
        ) from None
    # Ludwig treats its own default (32) as "unset" and silently replaces it.
    wanted = config["generation"]["max_new_tokens"]
    if validated.generation.max_new_tokens != wanted:
        raise LLMBenchError(
            f"datasets/{rendered.task}/metadata.yaml: max_new_tokens: Ludwig would replace "
            f"{wanted} with {validated.generation.max_new_tokens}; expected any value but "
            f"Ludwig's default {wanted}"
        )


def _check_against_registry(rendered: RenderedConfig, base_model: object) -> None:
    known = {m.hub_id for m in load_registry().values() if m.hub_id}
    if base_model not in known:
        raise LLMBenchError(
            f"{rendered.path}: base_model: {base_model!r} is neither a local directory nor a hub"
            f" id in {REGISTRY_FILE}, and the hub cannot check it; expected one of "
            f"{', '.join(sorted(known))}"
        )


@contextlib.contextmanager
def _quiet_ludwig():
    """Ludwig logs its config adjustments at INFO; rendering reports problems itself."""
    logger = logging.getLogger("ludwig")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def select(names: list[str] | None, available: dict, kind: str, default: list[str]) -> list[str]:
    """The named entries (each checked), or the default list when no names are given."""
    if not names:
        return default
    for name in names:
        if name not in available:
            raise unknown_name(kind, name, available)
    return list(dict.fromkeys(names))


def write_rendered(
    model: str, task: str, out_dir: Path, work_dir: Path, measured: tuple[int, str] | None
) -> RenderedConfig:
    """Render one config without Ludwig's check (the sweep's configs for local models) and
    write it."""
    rendered = render_one(get_card(task), get_model(model), out_dir, work_dir, measured)
    atomic_write_text(rendered.path, rendered.text)
    return rendered


def render_configs(
    models: list[str] | None = None,
    tasks: list[str] | None = None,
    out_dir: Path = CONFIGS_DIR,
    datasets_dir: Path = DATASETS_DIR,
    work_dir: Path = DEFAULT_WORK_DIR,
    validate: bool = True,
    token_stats: Path | None = None,
    notice: Callable[[str], None] = _log.warning,
) -> list[RenderedConfig]:
    """Render, validate and write the selected configs; the study's 10 x 31 by default.

    With `token_stats` (a CSV from `llmbench tasks stats`), tasks measured there are sized from
    their prepared data; the others, and every task without it, from the study's figures.
    When the hub cannot check some `base_model` (see `check_hub_access`), `notice` gets one line
    saying so, once for the whole run.
    """
    registry = load_registry()
    cards = load_cards(datasets_dir)
    model_names = select(models, registry, "model", [m.name for m in study_models()])
    task_names = select(tasks, cards, "task", sorted(cards))
    longest = longest_examples(token_stats) if token_stats else {}
    rendered = [
        render_one(
            cards[t],
            registry[m],
            out_dir,
            work_dir,
            (longest[t], str(token_stats)) if t in longest else None,
        )
        for m in model_names
        for t in task_names
    ]
    if validate:
        hub = check_hub_access(_hub_ids(rendered))
        if hub.note:
            notice(hub.note)
        for config in rendered:
            validate_with_ludwig(config, hub)
    for config in rendered:
        atomic_write_text(config.path, config.text)
    return rendered


def _hub_ids(rendered: list[RenderedConfig]) -> set[str]:
    """The configs' `base_model` values that are hub ids, not local folders."""
    values = {yaml.safe_load(config.text)["base_model"] for config in rendered}
    return {value for value in values if isinstance(value, str) and not _is_local(value)}


def _is_local(base_model: object) -> bool:
    """A local model's folder (render_one writes it absolute), as opposed to a hub id."""
    return isinstance(base_model, str) and (
        Path(base_model).is_absolute() or Path(base_model).is_dir()
    )
