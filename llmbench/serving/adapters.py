"""Adapters by name: find an adapter folder safely under the adapters root, keep at most N loaded.

An `adapter_id` names a folder under the root given to `llmbench serve --adapters`: a plain PEFT
adapter folder (it holds `adapter_config.json`) or a Ludwig training output (the adapter lies in
`model/model_weights/` of its run), so `--adapters runs/train` serves `tiny/gsm8k`. Names come
from the network, so every path is resolved and checked to lie inside the root before anything
in it is opened, and every file vLLM will read is checked the same way (a symlink inside the
root may point outside it).

Plain Python (no vLLM), so it is tested in the main environment too.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
# Where the adapter lies inside an adapter_id's folder, in the order tried: a PEFT folder itself,
# a Ludwig run (`<run>/model/model_weights`), a Ludwig model folder (`model_weights`); last, a
# Ludwig output folder holding one run (`<out>/<experiment>_<model>/model/model_weights`, the
# layout of `llmbench train`'s sweep under runs/train/<model>/<task>).
LUDWIG_WEIGHTS = "model/model_weights"
ADAPTER_LAYOUTS = (".", LUDWIG_WEIGHTS, "model_weights")
ADAPTER_SOURCES = ("local", "hub")
# A hub name is `owner/name`; it is looked up in the local hub cache only (no download here).
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class AdapterError(Exception):
    """A request names an adapter that cannot be served; carries the HTTP status and error type."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def _outside_root(adapter_id: str) -> AdapterError:
    return AdapterError(
        400, "invalid_adapter", f"adapter_id '{adapter_id}' leads outside the adapters root"
    )


# Longest adapter_id accepted, in UTF-8 bytes, and longest part between slashes: Linux's
# PATH_MAX and NAME_MAX, so a longer name is a 400, not an ENAMETOOLONG from deep inside.
MAX_ADAPTER_ID_BYTES = 4096
MAX_NAME_PART_BYTES = 255


def check_adapter_name(adapter_id: str) -> None:
    """Reject names that could only mean a path outside the root, or no path at all, before
    touching the disk."""
    try:
        encoded = adapter_id.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON's \udXXX escapes
        raise AdapterError(
            400, "invalid_adapter", "adapter_id is not valid UTF-8 (a lone surrogate?)"
        ) from None
    if not adapter_id or "\x00" in adapter_id or "\\" in adapter_id:
        raise AdapterError(400, "invalid_adapter", f"adapter_id {adapter_id!r} is not a valid name")
    parts = adapter_id.split("/")
    if len(encoded) > MAX_ADAPTER_ID_BYTES or any(
        len(part.encode("utf-8")) > MAX_NAME_PART_BYTES for part in parts
    ):
        raise AdapterError(
            400,
            "invalid_adapter",
            f"adapter_id is too long ({len(encoded)} bytes; at most {MAX_ADAPTER_ID_BYTES}, "
            f"and {MAX_NAME_PART_BYTES} between slashes)",
        )
    if adapter_id.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", adapter_id):
        raise _outside_root(adapter_id)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_local_adapter(root: Path, adapter_id: str) -> Path:
    """The resolved folder holding `adapter_config.json` for `adapter_id` under `root`.

    Raises AdapterError: 400 when the name or any symlink on the way leads outside the root,
    404 when there is no such adapter. Only `resolve()`/`stat()` touch the disk until every file
    of the adapter is known to lie inside the root.
    """
    check_adapter_name(adapter_id)
    root = root.resolve(strict=True)
    candidate = (root / adapter_id).resolve()
    if not _inside(candidate, root):
        raise _outside_root(adapter_id)
    if candidate == root:  # "." and its spellings: the root holds adapters, it is none
        raise AdapterError(
            400, "invalid_adapter", f"adapter_id {adapter_id!r} names the adapters root itself"
        )
    if not candidate.is_dir():
        raise AdapterError(404, "not_found", f"no adapter '{adapter_id}' in the adapters root")
    for layout in ADAPTER_LAYOUTS:
        folder = (candidate / layout).resolve()
        if not _inside(folder, root):
            raise _outside_root(adapter_id)
        if (folder / ADAPTER_CONFIG).exists():
            _check_files_inside(folder, root, adapter_id)
            return folder
    return _ludwig_output_folder(candidate, root, adapter_id)


def _ludwig_output_folder(candidate: Path, root: Path, adapter_id: str) -> Path:
    """A Ludwig output folder holds one run, `<experiment>_<model>/model/model_weights`."""
    runs = sorted(p.parent for p in candidate.glob(f"*/{LUDWIG_WEIGHTS}/{ADAPTER_CONFIG}"))
    if len(runs) > 1:
        names = ", ".join(f"'{adapter_id}/{run.relative_to(candidate).parts[0]}'" for run in runs)
        raise AdapterError(
            409,
            "ambiguous_adapter",
            f"adapter '{adapter_id}' holds several Ludwig runs; name one of {names}",
        )
    if runs:
        folder = runs[0].resolve()
        if not _inside(folder, root):
            raise _outside_root(adapter_id)
        _check_files_inside(folder, root, adapter_id)
        return folder
    raise AdapterError(
        404,
        "not_found",
        f"adapter '{adapter_id}' has no {ADAPTER_CONFIG} (looked in "
        + ", ".join(f"'{layout}'" for layout in ADAPTER_LAYOUTS)
        + f" and '*/{LUDWIG_WEIGHTS}')",
    )


def _check_files_inside(folder: Path, root: Path, adapter_id: str) -> None:
    """vLLM opens files of the adapter folder by name; each, at any depth, must resolve inside."""
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            if not _inside((Path(parent) / name).resolve(), root):
                raise _outside_root(adapter_id)


def resolve_hub_adapter(adapter_id: str) -> Path:
    """The local hub-cache snapshot of `owner/name` (HF_HUB_OFFLINE is honoured; 404 if absent)."""
    if not HUB_ID.match(adapter_id) or ".." in adapter_id:
        raise AdapterError(400, "invalid_adapter", f"'{adapter_id}' is not a hub name (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(adapter_id, allow_patterns=["adapter_*", "*.json"]))
    except Exception as error:  # the hub client raises many types; all mean "not available"
        raise AdapterError(
            404, "not_found", f"hub adapter '{adapter_id}' is not available: {type(error).__name__}"
        ) from None
    if not (folder / ADAPTER_CONFIG).exists():
        raise AdapterError(404, "not_found", f"hub adapter '{adapter_id}' has no {ADAPTER_CONFIG}")
    return folder


def resolve_adapter(root: Path, adapter_id: str, adapter_source: str | None) -> Path:
    """Dispatch on LoRAX's `adapter_source` (default local); other sources are refused."""
    source = adapter_source or "local"
    if source == "local":
        return resolve_local_adapter(root, adapter_id)
    if source == "hub":
        return resolve_hub_adapter(adapter_id)
    raise AdapterError(
        400,
        "validation",
        f"adapter_source '{source}' is not supported here; use one of {', '.join(ADAPTER_SOURCES)}",
    )


def canonical_adapter_id(root: Path, folder: Path, adapter_id: str, source: str | None) -> str:
    """One name per adapter folder, whatever spelling found it: the resolved folder relative to
    the root, without the Ludwig layout's tail (`gamma/model/model_weights` -> `gamma`), so
    `alpha`, `./alpha`, `alpha/.` and a symlink to it share one loaded copy and one metrics
    label. A hub adapter's name is its `owner/name`."""
    if (source or "local") != "local":
        return adapter_id
    name = folder.relative_to(root.resolve()).as_posix()
    for tail in (f"/{LUDWIG_WEIGHTS}", "/model_weights"):
        if name.endswith(tail):
            return name[: -len(tail)]
    return name


def weights_signature(folder: Path) -> tuple:
    """What changes when an adapter folder's files are replaced: each adapter file's inode, size
    and modification time (a stat call each; no file is opened)."""
    signature = []
    for name in (ADAPTER_CONFIG, *ADAPTER_WEIGHTS_FILES):
        try:
            stat = os.stat(folder / name)
        except OSError:
            continue
        signature.append((name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


@dataclass
class LoadedAdapter:
    """An adapter the engine holds: its engine id (vLLM's lora_int_id), folder, the signature of
    its files when loaded (see weights_signature) and its users."""

    adapter_id: str
    int_id: int
    path: Path
    signature: tuple = ()
    in_use: int = 0


@dataclass
class AdapterCache:
    """At most `capacity` adapters loaded; the least recently used idle one is evicted.

    `load(name, int_id, path)` and `unload(int_id)` are the engine's coroutines. An adapter in use
    by a running request is never evicted; when every loaded adapter is busy, a request for
    another one waits until one is released. The bound is strict: the engine's spare LoRA slot
    (see engine.py) stays empty only if no more than `capacity` adapters are ever loaded.
    An adapter whose folder or files changed since it was loaded is reloaded before it serves
    again (after the requests already using the old copy finish). A load that fails leaves
    nothing behind: the name is not cached and the next request tries again.
    """

    capacity: int
    load: Callable[[str, int, Path], Awaitable[None]]
    unload: Callable[[int], Awaitable[None]]
    loaded: OrderedDict[str, LoadedAdapter] = field(default_factory=OrderedDict)
    loads: int = 0
    evictions: int = 0
    _next_id: int = 1
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def acquire(
        self,
        adapter_id: str,
        path: Path,
        signature: tuple = (),
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> LoadedAdapter:
        """The loaded adapter for `adapter_id` (loading it if needed), marked in use.

        `prepare()` runs just before a load, under the cache's lock, so that an eviction cannot
        come between (a merged adapter's folder is written there: see merging.py)."""
        async with self._changed:
            adapter = self.loaded.get(adapter_id)
            while adapter is not None and (adapter.path, adapter.signature) != (path, signature):
                # The folder behind the name changed (a symlink repointed, files replaced):
                # reload once nobody uses the old copy.
                if adapter.in_use == 0:
                    await self._evict(adapter)
                else:
                    await self._changed.wait()
                adapter = self.loaded.get(adapter_id)
            while adapter is None and len(self.loaded) >= self.capacity:
                idle = next((a for a in self.loaded.values() if a.in_use == 0), None)
                if idle is not None:
                    await self._evict(idle)
                else:
                    await self._changed.wait()
                    adapter = self.loaded.get(adapter_id)  # another request may have loaded it
            if adapter is None:
                adapter = LoadedAdapter(adapter_id, self._next_id, path, signature)
                self._next_id += 1
                if prepare is not None:
                    await prepare()
                await self.load(adapter_id, adapter.int_id, path)
                self.loads += 1
                self.loaded[adapter_id] = adapter
            self.loaded.move_to_end(adapter_id)
            adapter.in_use += 1
            return adapter

    async def release(self, adapter: LoadedAdapter) -> None:
        """Mark one use of `adapter` finished, waking requests that wait for a free place."""
        async with self._changed:
            adapter.in_use -= 1
            self._changed.notify_all()

    async def _evict(self, adapter: LoadedAdapter) -> None:
        del self.loaded[adapter.adapter_id]
        self.evictions += 1
        await self.unload(adapter.int_id)
        self._changed.notify_all()


ADAPTER_WEIGHTS = "adapter_model.safetensors"
# The weights files vLLM reads, in its order: safetensors, else a torch pickle (.bin, then .pt).
ADAPTER_WEIGHTS_FILES = (ADAPTER_WEIGHTS, "adapter_model.bin", "adapter_model.pt")
LORA_PART = re.compile(r"^(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$")
# The bits that are all ones in the exponent of an Inf or NaN, per floating dtype.
NON_FINITE_EXPONENT = {"F32": ("<u4", 0x7F800000), "F16": ("<u2", 0x7C00), "BF16": ("<u2", 0x7F80)}


def base_linear_shapes(config: Any) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of a Llama-style base model's LoRA-targetable linear layers,
    by module name, from its Hugging Face config; empty for a config of another shape."""
    try:
        hidden, heads = config.hidden_size, config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        inner = config.intermediate_size
    except AttributeError:
        return {}
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inner),
        "up_proj": (hidden, inner),
        "down_proj": (inner, hidden),
    }


def check_adapter_fits(adapter_id: str, folder: Path, shapes: dict[str, tuple[int, int]]) -> None:
    """Refuse (400) an adapter whose LoRA weights cannot belong to this base model, or hold a
    non-finite number, before the engine sees it: vLLM fails such an adapter only half-way
    through activating it, which leaves its slot in an unknown state for other requests.
    The file checked is the one vLLM would read (safetensors, else .bin, else .pt)."""
    path = next(
        (Path(folder) / n for n in ADAPTER_WEIGHTS_FILES if (Path(folder) / n).is_file()), None
    )
    if path is None:
        return  # no weights at all: vLLM refuses the folder itself
    if path.name != ADAPTER_WEIGHTS:
        _check_pickled_tensors(adapter_id, path, shapes)
        return
    header, data_start = _safetensors_header(adapter_id, path)
    ranks: dict[str, dict[str, int]] = {}
    with open(path, "rb") as handle:
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            _check_shape(adapter_id, name, entry.get("shape", []), shapes, ranks)
            _check_finite(adapter_id, name, entry, handle, data_start)
    _check_ranks_agree(adapter_id, ranks)


def _check_pickled_tensors(adapter_id: str, path: Path, shapes: dict) -> None:
    """The same checks on a torch-saved state dict, read as vLLM reads it (weights only)."""
    import torch

    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a file it cannot read; all mean "broken"
        raise _unfit(adapter_id, f"{path.name} is not a readable torch weights file") from None
    if not isinstance(tensors, dict):
        raise _unfit(adapter_id, f"{path.name} does not hold a dict of tensors")
    ranks: dict[str, dict[str, int]] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise _unfit(adapter_id, f"{path.name}: {name} is not a tensor")
        _check_shape(adapter_id, name, list(tensor.shape), shapes, ranks)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _unfit(adapter_id, f"tensor {name} holds Inf or NaN values")
    _check_ranks_agree(adapter_id, ranks)


def _safetensors_header(adapter_id: str, path: Path) -> tuple[dict, int]:
    import json
    import struct

    with open(path, "rb") as handle:
        head = handle.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < size <= os.path.getsize(path) - 8:
            raise _unfit(adapter_id, f"{ADAPTER_WEIGHTS} is not a safetensors file")
        try:
            header = json.loads(handle.read(size))
        except ValueError:
            raise _unfit(adapter_id, f"{ADAPTER_WEIGHTS} has a broken header") from None
    if not isinstance(header, dict):
        raise _unfit(adapter_id, f"{ADAPTER_WEIGHTS} has a broken header")
    return header, 8 + size


def _check_shape(adapter_id: str, name: str, shape: list, shapes: dict, ranks: dict) -> None:
    match = LORA_PART.match(name)
    if not match or not shapes:
        return
    if len(shape) == 2:  # A is [r, in], B is [out, r]
        ranks.setdefault(match["module"], {})[match["part"]] = shape[
            0 if match["part"] == "A" else 1
        ]
    module = match["module"].rsplit(".", 1)[-1]
    if module not in shapes:
        raise _unfit(adapter_id, f"it targets module '{module}', which the base model lacks")
    in_features, out_features = shapes[module]
    # lora_A maps the layer's input to rank r: [r, in]; lora_B maps r to its output: [out, r]
    axis, want = (1, in_features) if match["part"] == "A" else (0, out_features)
    if len(shape) != 2 or shape[axis] != want:
        raise _unfit(
            adapter_id,
            f"tensor {name} has shape {shape}, but the base model's {module} needs "
            f"{'input' if axis else 'output'} size {want} (was it trained on another base model?)",
        )


def _check_ranks_agree(adapter_id: str, ranks: dict[str, dict[str, int]]) -> None:
    """A module's lora_A and lora_B must share their rank: vLLM pads both to its largest rank and
    would serve a mismatched pair silently, with part of the update missing."""
    for module, parts in ranks.items():
        if len(set(parts.values())) > 1:
            raise _unfit(
                adapter_id,
                f"{module}: lora_A has rank {parts.get('A')} but lora_B has rank {parts.get('B')}",
            )


def _check_finite(adapter_id: str, name: str, entry: dict, handle, data_start: int) -> None:
    import numpy as np

    kind = NON_FINITE_EXPONENT.get(entry.get("dtype"))
    start, end = entry.get("data_offsets", (0, 0))
    if kind is None or end <= start:
        return
    handle.seek(data_start + start)
    bits = np.frombuffer(handle.read(end - start), dtype=kind[0])
    if np.any((bits & kind[1]) == kind[1]):
        raise _unfit(adapter_id, f"tensor {name} holds Inf or NaN values")


def _unfit(adapter_id: str, why: str) -> AdapterError:
    return AdapterError(400, "invalid_adapter", f"adapter '{adapter_id}' cannot be served: {why}")
