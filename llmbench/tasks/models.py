"""The base-model registry (templates/models.yaml): the study's ten base models and `tiny`."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from llmbench.errors import LLMBenchError, unknown_name
from llmbench.paths import TEMPLATES_DIR
from llmbench.validation import read_yaml, validate_or_raise

REGISTRY_FILE = TEMPLATES_DIR / "models.yaml"
PROMPT_SLOT = "{prompt}"


@dataclass(frozen=True)
class BaseModel:
    name: str
    family: str
    creator: str
    parameters: str
    released: str
    kind: str
    markup_name: str
    markup: str
    context_length: int
    hub_id: str | None = None
    local_path: str | None = None
    in_study: bool = True
    trainer_overrides: dict = field(default_factory=dict)
    # LoRA values that replace the study's (rank, alpha, dropout, target modules)
    adapter_overrides: dict = field(default_factory=dict)
    # the 4-bit layers' compute dtype: the study's bfloat16, or float32 where bfloat16 is slow
    compute_dtype: str = "bfloat16"

    @property
    def source(self) -> str:
        """What Ludwig's `base_model` gets: the hub id, or the local directory."""
        return self.hub_id or self.local_path


@functools.cache
def load_registry(path: Path = REGISTRY_FILE) -> dict[str, BaseModel]:
    """All models by name, in file order; every problem in the file reported at once."""
    document = read_yaml(path)
    validate_or_raise(document, "models", path)
    markups = document["markups"]
    problems, models = [], {}
    for index, entry in enumerate(document["models"]):
        name = entry["name"]
        if name in models:
            problems.append(f"{path}: models.{index}.name: '{name}' is listed twice")
        if entry["markup"] not in markups:
            problems.append(
                f"{path}: models.{index}.markup: unknown markup '{entry['markup']}'; "
                f"expected one of {', '.join(sorted(markups))}"
            )
            continue
        models[name] = BaseModel(
            name=name,
            family=entry["family"],
            creator=entry["creator"],
            parameters=entry["parameters"],
            released=entry["released"],
            kind=entry["kind"],
            markup_name=entry["markup"],
            markup=markups[entry["markup"]],
            context_length=entry["context_length"],
            hub_id=entry.get("hub_id"),
            local_path=entry.get("local_path"),
            in_study=entry.get("in_study", True),
            trainer_overrides=dict(entry.get("trainer_overrides", {})),
            adapter_overrides=dict(entry.get("adapter_overrides", {})),
            compute_dtype=entry.get("compute_dtype", "bfloat16"),
        )
    if problems:
        raise LLMBenchError(*problems)
    return models


def get_model(name: str) -> BaseModel:
    """One model by name; an unknown name says which names exist."""
    models = load_registry()
    if name not in models:
        raise unknown_name("model", name, models)
    return models[name]


def as_model(model: str | BaseModel) -> BaseModel:
    """`model` itself when it is a model already looked up (the bake-off resolves each once),
    else the registry's model of that name."""
    return model if isinstance(model, BaseModel) else get_model(model)


def study_models() -> list[BaseModel]:
    """The study's ten base models, in registry order."""
    return [m for m in load_registry().values() if m.in_study]
