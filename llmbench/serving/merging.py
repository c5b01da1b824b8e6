"""Per-request adapter merging (LoRAX's `merged_adapters`), written as a real PEFT adapter folder.

The math is PEFT's weighted-adapter merge, `LoraModel.add_weighted_adapter` with combination
types linear, ties, dare_linear and dare_ties (peft 0.21: `peft/tuners/lora/model.py`,
`_generalized_task_arithmetic_weighted_adapter`, and the functions of `peft/utils/merge_utils.py`),
written again here because the serving environment has no PEFT:

- lora_A and lora_B are merged separately, tensor by tensor. Adapter i's weight w_i times its
  LoRA scaling s_i (lora_alpha / r, or / sqrt(r) with rsLoRA) is split over both sides:
  sqrt(|w_i s_i|) on B and sign(w_i s_i) sqrt(|w_i s_i|) on A;
- linear sums the weighted tensors (task arithmetic); ties keeps each tensor's `density`
  fraction of largest magnitudes, elects a sign per element from the pruned, unweighted tensors
  (`majority_sign_method` total: the sign of their sum; frequency: the more common sign) and
  averages the weighted values that agree with it; dare_linear and dare_ties keep each element
  with probability `density` and rescale it by 1 / density, then sum (dare_linear) or elect and
  average as ties does (dare_ties); a density of 1 prunes nothing;
- a module that only some adapters target is merged from those adapters (PEFT's "valid"
  adapters), so the merged adapter targets the union of their modules;
- the merged adapter has the adapters' common rank and lora_alpha = r (scaling 1: the scalings
  are inside the weights). PEFT and LoRAX refuse adapters of different ranks; so does this.

Unlike PEFT, dare's random masks come from a generator seeded by the merge's canonical key, so
one request always makes the same adapter; and everything is computed in float32, then stored
in the first adapter's dtype. Plain torch and safetensors (no vLLM), so it is tested in the main
environment against PEFT itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmbench.serving.adapters import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    ADAPTER_WEIGHTS_FILES,
    LORA_PART,
    AdapterCache,
    AdapterError,
    LoadedAdapter,
    check_adapter_fits,
    weights_signature,
)

MERGE_STRATEGIES = ("linear", "ties", "dare_linear", "dare_ties")
MAJORITY_SIGN_METHODS = ("total", "frequency")
# Strategies that prune to `density`, and those that elect a sign.
PRUNING = ("ties", "dare_linear", "dare_ties")
ELECTING = ("ties", "dare_ties")
FIELD = "merged_adapters"
# The name of a merged adapter in the cache, /info and /metrics: this prefix and its key.
NAME_PREFIX = "merged:"
# Beside the adapter's two files, what it was merged from (its canonical key), for a person.
MERGE_KEY_FILE = "llmbench_merge.json"
# Config keys that change what an adapter's tensors mean per module; a merge cannot honour them.
PER_MODULE_KEYS = ("rank_pattern", "alpha_pattern")


class MergeError(AdapterError):
    """A merge request that cannot be served: always a 400 whose one line names the field."""

    def __init__(self, field: str, problem: str, error_type: str = "validation"):
        super().__init__(400, error_type, f"{field}: {problem}")


def check_merge_fields(
    ids: list[str],
    weights: list[float],
    strategy: str | None,
    density: float,
    capacity: int,
) -> None:
    """Refuse, before any file is read, what no adapter could make right: LoRAX's own rules
    (a non-empty list, one weight per id, density in [0, 1]), finite weights, a density that
    keeps something for the pruning strategies, and no more ids than the server holds."""
    if not ids:
        raise MergeError(f"{FIELD}.ids", "the list is empty; name at least one adapter")
    if len(weights) != len(ids):
        raise MergeError(
            f"{FIELD}.weights",
            f"{len(weights)} weights for {len(ids)} ids; give one weight per id",
        )
    if len(ids) > capacity:
        raise MergeError(
            f"{FIELD}.ids",
            f"{len(ids)} adapters, but this server holds at most {capacity} "
            "(--max-loaded-adapters)",
        )
    for index, weight in enumerate(weights):
        if not math.isfinite(weight):
            raise MergeError(f"{FIELD}.weights[{index}]", f"{weight} is not a finite number")
    if not 0.0 <= density <= 1.0:  # NaN fails both comparisons
        raise MergeError(f"{FIELD}.density", f"{density} is outside [0, 1]")
    if strategy in PRUNING and density == 0.0:
        raise MergeError(
            f"{FIELD}.density",
            f"{strategy} keeps this fraction of each adapter's weights: it must lie in (0, 1], "
            "not 0",
        )


@dataclass(frozen=True)
class MergeSource:
    """One adapter of a merge: its canonical name, folder and files' signature."""

    adapter_id: str
    folder: Path
    signature: tuple = ()


@dataclass(frozen=True)
class MergePlan:
    """A merge in canonical form: the (adapter, weight) pairs sorted, density and sign method
    only where the strategy uses them, so every spelling of one merge has one key."""

    sources: tuple[MergeSource, ...]
    weights: tuple[float, ...]
    strategy: str
    density: float
    majority_sign_method: str

    @classmethod
    def of(
        cls,
        sources: list[MergeSource],
        weights: list[float],
        strategy: str | None,
        density: float,
        majority_sign_method: str | None,
    ) -> MergePlan:
        strategy = strategy or "linear"
        # +0.0 turns -0.0 into 0.0; float() turns an integer weight into the same float.
        pairs = sorted(
            zip(sources, (float(w) + 0.0 for w in weights), strict=True),
            key=lambda pair: (pair[0].adapter_id, pair[1]),
        )
        return cls(
            sources=tuple(source for source, _ in pairs),
            weights=tuple(weight for _, weight in pairs),
            strategy=strategy,
            density=float(density) if strategy in PRUNING else 0.0,
            majority_sign_method=(majority_sign_method or "total") if strategy in ELECTING else "",
        )

    @property
    def key(self) -> str:
        """The canonical key: ids, weights, strategy, density, sign method, as compact JSON."""
        fields: dict[str, Any] = {
            "ids": [source.adapter_id for source in self.sources],
            "weights": list(self.weights),
            "merge_strategy": self.strategy,
        }
        if self.strategy in PRUNING:
            fields["density"] = self.density
        if self.strategy in ELECTING:
            fields["majority_sign_method"] = self.majority_sign_method
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

    @property
    def name(self) -> str:
        """The merged adapter's name in the cache (and vLLM, /info, /metrics)."""
        return NAME_PREFIX + self.key

    @property
    def signature(self) -> tuple:
        """Changes when any source adapter's files change, so the merge is made again."""
        return tuple((source.adapter_id, source.signature) for source in self.sources)

    @property
    def folder_name(self) -> str:
        """Where this merge, of these source files, is written: a digest of key and signature."""
        text = self.key + "\n" + repr(self.signature)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    @property
    def seed(self) -> int:
        """dare's random masks are drawn from this seed: the same request, the same adapter."""
        return int.from_bytes(hashlib.sha256(self.key.encode("utf-8")).digest()[:8], "little")


def write_merged_adapter(plan: MergePlan, folder: Path, shapes: dict[str, tuple[int, int]]) -> None:
    """Merge `plan`'s adapters and write the result to `folder` as a PEFT adapter
    (adapter_config.json + adapter_model.safetensors), atomically: a failure leaves no folder.

    Raises MergeError (400) naming the adapter at fault (by its canonical name: the plan's
    order is not the request's): an adapter for another base model (see
    adapters.check_adapter_fits), one whose rank differs from the others', one holding
    something other than LoRA A/B matrices or setting per-module ranks or alphas."""
    import torch
    from safetensors.torch import save_file

    configs = [_read_config(source) for source in plan.sources]
    rank = _common_rank(plan, configs)
    for source in plan.sources:
        try:
            check_adapter_fits(source.adapter_id, source.folder, shapes)
        except AdapterError as error:
            raise MergeError(f"{FIELD}.ids", str(error), error.error_type) from None
    modules = [_lora_modules(source) for source in plan.sources]
    generator = torch.Generator().manual_seed(plan.seed)
    merged: dict[str, torch.Tensor] = {}
    for module in sorted(set().union(*modules)):
        valid = [i for i, found in enumerate(modules) if module in found]
        for part in ("A", "B"):
            tensors = [modules[i][module][part] for i in valid]
            _check_same_shape(plan, module, part, valid, tensors)
            side = [_side_weight(plan.weights[i] * _scaling(configs[i]), part) for i in valid]
            merged[f"{module}.lora_{part}.weight"] = combine(
                [t.float() for t in tensors], side, plan, generator
            ).to(tensors[0].dtype)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        save_file({k: v.contiguous() for k, v in merged.items()}, str(scratch / ADAPTER_WEIGHTS))
        config = _merged_config(configs[0], rank, merged)
        (scratch / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        (scratch / MERGE_KEY_FILE).write_text(plan.key + "\n", encoding="utf-8")
        if folder.exists():  # the same merge of the same files, written before: keep it
            shutil.rmtree(scratch)
        else:
            os.replace(scratch, folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def combine(tensors: list, weights: list[float], plan: MergePlan, generator) -> Any:
    """One merged tensor from the adapters' tensors and their per-side weights, by the plan's
    strategy: PEFT's merge_utils task_arithmetic, ties, dare_linear and dare_ties."""
    import torch

    if plan.strategy in PRUNING:
        tensors = [_prune(t, plan.density, plan.strategy, generator) for t in tensors]
    stacked = torch.stack(tensors, dim=0)
    weight = torch.tensor(weights, dtype=stacked.dtype).view(-1, *([1] * (stacked.dim() - 1)))
    if plan.strategy not in ELECTING:
        return (stacked * weight).sum(dim=0)
    # Elect a sign from the pruned, unweighted tensors, then average the weighted values that
    # agree with it (PEFT's calculate_majority_sign_mask and disjoint_merge).
    sign = stacked.sign()
    magnitude = stacked.sum(dim=0) if plan.majority_sign_method == "total" else sign.sum(dim=0)
    agrees = sign == torch.where(magnitude >= 0, 1.0, -1.0)
    kept = (stacked * weight * agrees).sum(dim=0)
    return kept / torch.clamp(agrees.sum(dim=0), min=1.0)


def _prune(tensor, density: float, strategy: str, generator):
    """ties keeps the `density` fraction of largest magnitudes; dare keeps each element with
    probability `density` and rescales it by 1 / density. A density of 1 keeps everything."""
    import torch

    if density >= 1.0:
        return tensor
    if strategy == "ties":
        flat = tensor.abs().reshape(-1)
        mask = torch.zeros_like(flat)
        mask[torch.topk(flat, k=int(density * tensor.numel()), largest=True).indices] = 1.0
        return tensor * mask.reshape(tensor.shape)
    keep = torch.bernoulli(torch.full_like(tensor, density), generator=generator)
    return tensor * keep / density


def _side_weight(weight_with_scaling: float, part: str) -> float:
    """PEFT's split of a weight over lora_A and lora_B: the root on each, the sign on A only."""
    root = math.sqrt(abs(weight_with_scaling))
    return root if part == "B" or weight_with_scaling >= 0 else -root


def _scaling(config: dict) -> float:
    rank, alpha = config["r"], config.get("lora_alpha", 8)
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _read_config(source: MergeSource) -> dict:
    field = f"{FIELD}.ids"
    try:
        config = json.loads((source.folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise MergeError(
            field, f"adapter '{source.adapter_id}' has no readable {ADAPTER_CONFIG}"
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("r"), int) or config["r"] < 1:
        raise MergeError(field, f"adapter '{source.adapter_id}': {ADAPTER_CONFIG} has no rank `r`")
    for key in PER_MODULE_KEYS:
        if config.get(key):
            raise MergeError(
                field,
                f"adapter '{source.adapter_id}' sets {key}; adapters with per-module ranks or "
                "alphas cannot be merged here",
            )
    if config.get("use_dora"):
        raise MergeError(field, f"adapter '{source.adapter_id}' is a DoRA adapter")
    return config


def _common_rank(plan: MergePlan, configs: list[dict]) -> int:
    ranks = {config["r"] for config in configs}
    if len(ranks) > 1:
        listed = ", ".join(
            f"'{source.adapter_id}' r={config['r']}"
            for source, config in zip(plan.sources, configs, strict=True)
        )
        raise MergeError(
            f"{FIELD}.ids",
            f"mismatched ranks ({listed}); {plan.strategy} merges only adapters of one rank, "
            "as PEFT and LoRAX do",
        )
    return ranks.pop()


def _check_same_shape(plan: MergePlan, module: str, part: str, valid: list[int], tensors) -> None:
    shapes = [list(tensor.shape) for tensor in tensors]
    if len({tuple(shape) for shape in shapes}) > 1:
        listed = ", ".join(
            f"'{plan.sources[i].adapter_id}' {shape}"
            for i, shape in zip(valid, shapes, strict=True)
        )
        raise MergeError(
            f"{FIELD}.ids", f"mismatched targets: {module}.lora_{part} has shapes {listed}"
        )


def _lora_modules(source: MergeSource) -> dict[str, dict[str, Any]]:
    """The adapter's LoRA matrices by module and side ("A", "B"); anything else is refused."""
    try:
        tensors = _load_tensors(source.folder)
    except Exception:  # safetensors and torch raise many types for a broken file
        raise MergeError(
            f"{FIELD}.ids", f"adapter '{source.adapter_id}': its weights could not be read"
        ) from None
    modules: dict[str, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        match = LORA_PART.match(name)
        if match is None:
            raise MergeError(
                f"{FIELD}.ids",
                f"adapter '{source.adapter_id}' holds {name}, which is no LoRA A or B matrix; "
                "only those can be merged",
            )
        modules.setdefault(match["module"], {})[match["part"]] = tensor
    for module, parts in modules.items():
        if set(parts) != {"A", "B"}:
            raise MergeError(
                f"{FIELD}.ids",
                f"adapter '{source.adapter_id}': {module} has lora_{''.join(parts)} only",
            )
    return modules


def _load_tensors(folder: Path) -> dict:
    """The weights file vLLM would read (safetensors, else .bin, else .pt), already checked."""
    import torch
    from safetensors.torch import load_file

    path = next(folder / name for name in ADAPTER_WEIGHTS_FILES if (folder / name).is_file())
    if path.name == ADAPTER_WEIGHTS:
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _merged_config(first: dict, rank: int, merged: dict) -> dict:
    """The first adapter's config (as PEFT does) with the common rank, lora_alpha = r, the
    union of the targeted modules, and nothing per module."""
    targets = sorted({LORA_PART.match(name)["module"].rsplit(".", 1)[-1] for name in merged})
    config = dict(first)
    for key in PER_MODULE_KEYS:
        config.pop(key, None)
    config |= {
        "r": rank,
        "lora_alpha": rank,
        "use_rslora": False,
        "target_modules": targets,
    }
    return config


async def acquire_merged(
    cache: AdapterCache,
    merged: Any,
    resolve: Callable[[str], Awaitable[tuple[str, Path]]],
    merged_root: Path,
    shapes: dict[str, tuple[int, int]],
) -> LoadedAdapter:
    """The merged adapter a request's `merged_adapters` (protocol.MergedAdapters) asks for,
    marked in use: made and loaded on first use, then cached in the same LRU as every other
    adapter under its canonical key (one place of its capacity). `resolve(adapter_id)` gives
    an id's canonical name and folder, with the same path checks as a plain adapter_id."""
    check_merge_fields(
        merged.ids, merged.weights, merged.merge_strategy, merged.density, cache.capacity
    )
    sources = []
    for index, adapter_id in enumerate(merged.ids):
        try:
            name, folder = await resolve(adapter_id)
        except AdapterError as error:  # unknown or hostile ids: a 400 here, naming the id
            raise MergeError(f"{FIELD}.ids[{index}]", str(error), error.error_type) from None
        sources.append(MergeSource(name, folder, weights_signature(folder)))
    plan = MergePlan.of(
        sources, merged.weights, merged.merge_strategy, merged.density, merged.majority_sign_method
    )
    folder = merged_root / plan.folder_name

    async def prepare() -> None:
        await asyncio.to_thread(write_merged_adapter, plan, folder, shapes)

    return await cache.acquire(plan.name, folder, plan.signature, prepare)
