"""Fixes that let Ludwig 0.17.10 finish 4-bit (QLoRA) runs, load the models it trains, batch by
length and spend its steps on training: for plain `ludwig train/predict/evaluate` and `llmbench
train` alike.

Upstream bug 1, the 4-bit reload. bitsandbytes' `Linear4bit` writes the quantization state of its
frozen weight (`weight.absmax`, `weight.quant_map`, `weight.nested_absmax`,
`weight.nested_quant_map`, `weight.quant_state.bitsandbytes__nf4`) into `state_dict()` beside the
weight but takes none of it back, so `load_state_dict(strict=False)` lists every one of those
entries as unexpected. Ludwig keeps them in its training checkpoints (it leaves out frozen
*parameters*, and these entries are neither parameters nor buffers) and raises on any unexpected
key in two places: `Trainer.train`, when it reloads the best checkpoint after the last step (the
run dies before the adapter is written), and `MultiNodeCheckpoint.load`, when a run resumes
(`Trainer` catches that error and silently starts again from step 0). Its exemption for 8-bit
models does not reach 4-bit ones, and is itself inverted (`not [bool, ...]` is False for any
non-empty list). Ludwig should leave the quantization state out of training checkpoints (the
frozen 4-bit base is rebuilt from `base_model` anyway) or ignore entries owned by bitsandbytes
layers, and test `quantization.bits: 4` to the end of a run. No Ludwig setting avoids it and
keeps the adapter: `--skip_save_model` skips the reload but also the adapter; `model_soup` still
reloads; `bits: 8` is another (also fragile) branch and not the study's setting.

Upstream bug 2, reading back a trained LLM. Ludwig saves every LLM model's config with
`adapters: null` (model_hyperparameters.json), and its own JSON schema refuses that value when
`LudwigModel.load` reads it back ("None is not of type 'object'"): `ludwig predict` and
`ludwig evaluate` fail on every LLM model Ludwig 0.17.10 trains, quantized or not.

Upstream bug 3, batches of mixed lengths. Ludwig pads every batch of an LLM run to its longest
example, and its trainer schema accepts `trainer.bucketing_field` ("feature to use for bucketing
datapoints") for fine-tuning too, but the trainer never reads it: batches are drawn at random
(its `BucketedBatcher` serves only ECD models and is not wired to any trainer). On a CPU, where
every pad token costs as much as a real one, that is most of the work of a batch of 8 on a task
whose lengths vary. The fix honours the option: with `bucketing_field` naming an input feature
and a batch size above 1, each epoch's seeded random order is cut into chunks of
`GROUP_BATCHES` batches, each chunk is sorted by length (the feature's tokens plus the target's)
and cut into batches, and the batches are shuffled (seeded by the epoch, so a resumed run draws
the same order). A short last batch goes last, as in Ludwig's own order.

Upstream cost 4, work nobody reads. Each training step, Ludwig's trainer updates its training
metrics (`_update_training_metrics`: the loss and perplexities again, each a cross entropy over
every position of the batch's [batch x length x vocabulary] logits) for the evaluation that
reports them, and its LLM computes the softmax over the vocabulary at every position for them;
with `trainer.skip_all_evaluation` no evaluation ever comes, and both are thrown away. And its
next-token loss (`NextTokenSoftmaxCrossEntropyLoss`) shifts the logits by one position before
flattening them, which copies the whole logits tensor (180 MB for 8 rows of 117 tokens over
smollm2's 49,152 tokens) and its gradient. On a CPU these cost 20-30% of a step of a small model
at batch 8 (cProfile, docs/benchmarks.md). The fix skips the training metrics and the
probabilities (the argmax stays: the loss reads its shape) when all evaluation is skipped, and
shifts the targets instead of the logits: the same positions, the same mean over the same tokens.

Upstream bug 5, 4-bit training after an evaluation, on CPUs with AVX512-BF16. bitsandbytes
0.50's `Linear4bit.forward`, in eval mode on such a CPU with an input that needs no gradient,
repacks its weight for a faster CPU kernel, in place and for good: the absmax is dequantized from
its nested quantization and rounded to bfloat16. Back in train mode it keeps the packed weight and
calls `gemv_4bit`, which has no autograd kernel: torch warns ("an autograd kernel was not
registered") and no gradient flows through any 4-bit layer, so every LoRA weight before the last
layer's output gets none; the optimizer steps on nothing and training silently stops after the
first evaluation (measured: all 120 LoRA gradients of smollm2-135m are None). Its own inverse
(used when saving) re-quantizes the rounded absmax, so it does not give back the weights that were
trained on either. The fix keeps the layer's weight and quantization state as they were before
the first packing and puts them back, exactly, as soon as the layer runs in train mode or on an
input that needs a gradient; evaluation keeps the fast kernel. Its cost is a second copy of the
4-bit weights while the model is evaluated. CPUs without AVX512-BF16 never pack.

The fixes. `apply_4bit_reload_fix(model)` registers a torch `load_state_dict` post-hook that
drops, from the reported unexpected keys, exactly the quant-state entries of the model's own 4-bit
layers; any other unexpected key still fails. A model without 4-bit layers gets no hook.
`patch_ludwig()` makes `Trainer.train` and `MultiNodeCheckpoint.load` apply it to their model
before they run (and `Trainer.train` group its batches by length, as above), and makes
`ModelConfig.from_dict` read `adapters: null` as no `adapters` entry (what null means there; any
other config passes through untouched). Nothing installed is edited.

How they reach plain `ludwig`. The package installs `llmbench_ludwig_fix.pth` into
site-packages; Python runs it at start-up and it calls `install()`, which only puts an import
finder first in `sys.meta_path` (nothing of Ludwig, torch or bitsandbytes is imported). When, and
only when, a program imports one of the modules in `_PATCHES` (Ludwig's, and bitsandbytes'
`nn.modules`), the finder lets the module load as usual, then patches it. LLMBENCH_NO_LUDWIG_FIX=1
switches the start-up hook off. `llmbench train` calls `patch_ludwig()` itself, so it works with
the hook off or absent. This module imports nothing from llmbench: it runs at every interpreter
start.
"""

from __future__ import annotations

import functools
import os
import sys

SWITCH_OFF = "LLMBENCH_NO_LUDWIG_FIX"
# Batches per length-sorted chunk: large enough that neighbours in a chunk have similar lengths,
# small enough that the order stays random across the epoch (Hugging Face's `group_by_length`
# sorts chunks of 50 batches for the same reason).
GROUP_BATCHES = 32
_FIXED = "_llmbench_4bit_reload_fix"  # marks a model with the hook, a method already wrapped


def apply_4bit_reload_fix(model):
    """Let `model.load_state_dict` accept the quant-state entries of its own 4-bit weights.

    Registers, once, a post-hook that removes from the reported unexpected keys those of the form
    `<module>.weight.<quant-state key>` where `<module>` is a bitsandbytes 4-bit layer of
    `model`; other unexpected keys stay reported. A model without 4-bit layers is left as it is.
    Returns `model`.
    """
    if getattr(model, _FIXED, False) or not _four_bit_owners(model):
        return model
    model.register_load_state_dict_post_hook(_forgive_own_quant_state)
    setattr(model, _FIXED, True)
    return model


def _forgive_own_quant_state(model, incompatible_keys) -> None:
    """Post-hook: torch documents that it may edit the reported keys in place."""
    owners = _four_bit_owners(model)
    unexpected = incompatible_keys.unexpected_keys
    unexpected[:] = [key for key in unexpected if not _is_own_quant_state(key, owners)]


def _four_bit_owners(model) -> set[str]:
    """Names of the modules of `model` whose weight is a bitsandbytes 4-bit parameter."""
    if "bitsandbytes" not in sys.modules or not hasattr(model, "named_modules"):
        return set()  # no 4-bit layer can exist before bitsandbytes is imported
    from bitsandbytes.nn import Params4bit

    return {
        name
        for name, module in model.named_modules()
        if isinstance(getattr(module, "weight", None), Params4bit)
    }


def _is_own_quant_state(key: str, owners: set[str]) -> bool:
    from bitsandbytes.functional import QuantState

    owner, found, entry = key.rpartition(".weight.")
    if not found or owner not in owners:
        return False
    return entry in QuantState.valid_qs_keys or entry.startswith("quant_state.bitsandbytes__")


def patch_ludwig() -> None:
    """Import the modules in `_PATCHES` (Ludwig's, bitsandbytes') and patch them (again: no-op)."""
    import importlib

    for name in _PATCHES:
        patch_module(importlib.import_module(name))


def patch_module(module) -> None:
    """Apply this module's patch (see _PATCHES), once."""
    class_name, method, wrap = _PATCHES[module.__name__]
    cls = getattr(module, class_name, None)
    original = getattr(cls, method, None)
    if original is None:
        import warnings

        # Another Ludwig than the one this fix was written for: leave it alone, loudly.
        warnings.warn(
            f"llmbench: {module.__name__}.{class_name}.{method} not found; "
            "that part of the Ludwig fix is not applied",
            stacklevel=2,
        )
        return
    if not getattr(original, _FIXED, False):
        patched = wrap(original)
        setattr(patched, _FIXED, True)
        is_static = isinstance(cls.__dict__.get(method), staticmethod)
        setattr(cls, method, staticmethod(patched) if is_static else patched)


def _fixing_the_model_first(original):
    """`original` (a method of an object holding `.model`), applying the fix to that model first."""
    import functools

    @functools.wraps(original)
    def fixed(self, *args, **kwargs):
        apply_4bit_reload_fix(self.model)
        return original(self, *args, **kwargs)

    return fixed


def _training_with_fixes(original):
    """`Trainer.train`, with the 4-bit reload fix applied to its model and its batches grouped by
    length when `trainer.bucketing_field` asks for it."""
    import functools

    @functools.wraps(original)
    def train(self, training_set, *args, **kwargs):
        apply_4bit_reload_fix(self.model)
        field = getattr(getattr(self, "config", None), "bucketing_field", None)
        if field and training_set is not None and getattr(self, "batch_size", 1) != 1:
            _group_by_length(training_set, self.model, field)
        if not getattr(self, "skip_all_evaluation", False):
            return original(self, training_set, *args, **kwargs)
        # no evaluation will report them (cost 4): no training metrics, no probabilities
        self._update_training_metrics = _nothing
        with _argmax_only(self.model):
            return original(self, training_set, *args, **kwargs)

    return train


def _group_by_length(training_set, model, field: str) -> None:
    """Make `training_set`'s shuffled batchers draw length-grouped batches (see bug 3)."""
    import contextlib

    features = getattr(model, "input_features", {})
    if field not in features:
        raise ValueError(
            f"trainer.bucketing_field: {field!r} is not an input feature "
            f"(expected one of: {', '.join(features) or 'none'})"
        )
    lengths = _example_lengths(training_set, model, field)
    initialize = training_set.initialize_batcher

    @contextlib.contextmanager
    def grouped(batch_size=128, should_shuffle=True, *args, **kwargs):
        with initialize(batch_size, should_shuffle, *args, **kwargs) as batcher:
            sampler = batcher.sampler
            if should_shuffle and batch_size > 1 and sampler.num_replicas == 1:
                batcher.sampler = LengthGroupedSampler(sampler, lengths, batch_size)
                batcher.sample_it = iter(batcher.sampler)
            yield batcher

    training_set.initialize_batcher = grouped


def _example_lengths(training_set, model, field: str):
    """Tokens per example: the input feature's and the targets', padding left out."""
    columns = training_set.get_dataset()
    pad = getattr(getattr(model, "tokenizer", None), "pad_token_id", None)
    names = [model.input_features[field].proc_column]
    names += [f.proc_column for f in getattr(model, "output_features", {}).values()]
    total = 0
    for name in names:
        values = columns[name]
        if getattr(values, "ndim", 1) == 2:
            total = total + ((values != pad).sum(axis=1) if pad is not None else values.shape[1])
    return total


class LengthGroupedSampler:
    """Ludwig's sampler, its order regrouped so that each batch holds examples of similar length.

    Keeps the wrapped sampler's seed, epoch and size; yields the same indices as it, reordered.
    """

    def __init__(self, sampler, lengths, batch_size: int):
        self.sampler, self.lengths, self.batch_size = sampler, lengths, batch_size

    def __len__(self):
        return len(self.sampler)

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    @property
    def num_replicas(self):
        return self.sampler.num_replicas

    def __iter__(self):
        import numpy as np

        order = list(self.sampler)  # Ludwig's seeded permutation for this epoch
        size = self.batch_size
        chunk = size * GROUP_BATCHES
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk], key=lambda i: -int(self.lengths[i]))
            batches += [part[i : i + size] for i in range(0, len(part), size)]
        full = [b for b in batches if len(b) == size]
        short = [b for b in batches if len(b) != size]
        seed = (self.sampler.random_seed + 7919 * (self.sampler.epoch + 1)) % 2**32
        np.random.RandomState(seed).shuffle(full)
        return iter([i for batch in full + short for i in batch])


def _nothing(*args, **kwargs) -> None:
    return None


class _argmax_only:
    """While training without evaluation: the LLM's text output gives its logits and their
    argmax, not the softmax over the vocabulary that only metrics read (cost 4). Restored after,
    so that predicting with the model gives probabilities again."""

    def __init__(self, model):
        features = getattr(model, "output_features", {})
        self.modules = [
            module
            for module in (getattr(f, "prediction_module", None) for f in features.values())
            if type(module).__name__ == "_SequencePredict"
        ]

    def __enter__(self):
        for module in self.modules:
            module.forward = functools.partial(_logits_and_argmax, module)

    def __exit__(self, *exc):
        for module in self.modules:
            vars(module).pop("forward", None)


def _logits_and_argmax(module, inputs, feature_name):
    from ludwig.utils import output_feature_utils

    logits = output_feature_utils.get_output_feature_tensor(inputs, feature_name, module.logits_key)
    return {module.predictions_key: logits.argmax(-1), module.logits_key: logits}


def _targets_shifted(original):
    """`NextTokenSoftmaxCrossEntropyLoss.forward` on unshifted logits: position i's logits
    against token i + 1, the last position ignored (cost 4): no copy of the logits."""
    import functools

    @functools.wraps(original)
    def forward(self, preds, target):
        import torch

        target = target.long()
        ignore = self.loss_fn.ignore_index
        shifted = torch.nn.functional.pad(target[:, 1:], (0, 1), value=ignore)
        return self.loss_fn(preds.reshape(-1, preds.shape[-1]), shifted.reshape(-1))

    return forward


def _without_null_adapters(original):
    """`ModelConfig.from_dict`, reading `adapters: null` as no `adapters` entry (its meaning)."""
    import functools

    @functools.wraps(original)
    def from_dict(config, *args, **kwargs):
        if isinstance(config, dict) and "adapters" in config and config["adapters"] is None:
            config = {key: value for key, value in config.items() if key != "adapters"}
        return original(config, *args, **kwargs)

    return from_dict


def _unpacked_to_train(original):
    """`Linear4bit.forward`, giving back the weight it had before bitsandbytes packed it for the
    CPU's inference kernel whenever a gradient may be needed (bug 5)."""
    import copy
    import functools

    @functools.wraps(original)
    def forward(self, x, *args, **kwargs):
        import torch

        weight = self.weight
        state = getattr(weight, "quant_state", None)
        trains = self.training or (x.requires_grad and torch.is_grad_enabled())
        kept = vars(self).get(_UNPACKED)
        if trains and kept is not None:
            weight.data, weight.quant_state = kept
            if getattr(self, "quant_state", None) is not None:
                self.quant_state = kept[1]
            del vars(self)[_UNPACKED]
        elif trains and getattr(state, "packing_format_for_cpu", False):
            # packed before this fix saw it: bitsandbytes' own (rounded) inverse, still trainable
            from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

            weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                weight.data, state
            )
        elif (
            kept is None
            and state is not None
            and not trains
            and x.device.type == "cpu"
            and getattr(self, "support_avx512bf16_for_cpu", False)
            and not getattr(state, "packing_format_for_cpu", False)
        ):
            # about to be packed (the original's own test): keep what it replaces
            vars(self)[_UNPACKED] = (weight.data, copy.copy(state))
        return original(self, x, *args, **kwargs)

    return forward


_UNPACKED = "_llmbench_unpacked_weight"

# The module -> the class and method to wrap, and how.
_PATCHES = {
    # The best-checkpoint reload at the end of a run, and `trainer.bucketing_field`.
    "ludwig.trainers.trainer": ("Trainer", "train", _training_with_fixes),
    # Resuming a run (`--model_resume_path`).
    "ludwig.utils.checkpoint_utils": ("MultiNodeCheckpoint", "load", _fixing_the_model_first),
    # The next-token loss of LLM fine-tuning, without copying the logits.
    "ludwig.modules.loss_modules": (
        "NextTokenSoftmaxCrossEntropyLoss",
        "forward",
        _targets_shifted,
    ),  # fmt: skip
    # Loading a trained model (`ludwig predict`, `ludwig evaluate`, `LudwigModel.load`).
    "ludwig.schema.model_types.base": ("ModelConfig", "from_dict", _without_null_adapters),
    # 4-bit layers that an evaluation packed for the CPU, trained again (bug 5).
    "bitsandbytes.nn.modules": ("Linear4bit", "forward", _unpacked_to_train),
}


def switched_off() -> bool:
    """Whether LLMBENCH_NO_LUDWIG_FIX asks for plain Ludwig (any value but empty or 0)."""
    return os.environ.get(SWITCH_OFF, "") not in ("", "0")


def install() -> None:
    """The start-up hook: patch Ludwig's modules when they are imported, unless switched off.

    Modules imported already are patched now. Calling it again changes nothing.
    """
    if switched_off() or any(isinstance(f, PatchOnImport) for f in sys.meta_path):
        return
    for name in _PATCHES:
        if name in sys.modules:
            patch_module(sys.modules[name])
    sys.meta_path.insert(0, PatchOnImport())  # before the finder that would load them plainly


class PatchOnImport:
    """An import finder for Ludwig's trainer and checkpoint modules: the module is found and
    loaded by the finders after this one, then patched."""

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenPatch(spec.loader)
        return spec


class _ThenPatch:
    """A loader that runs another loader, then patches the loaded module."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        patch_module(module)

    def __getattr__(self, name):
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)  # get_source, get_filename, ...
