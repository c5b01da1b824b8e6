"""The start-up hook's fourth fix: Ludwig's training steps skip the metrics no evaluation will
report, and its next-token loss no longer copies the logits, with the same loss and gradients."""

from __future__ import annotations

import pytest
import torch


def _loss():
    from ludwig.modules.loss_modules import NextTokenSoftmaxCrossEntropyLoss
    from ludwig.schema.features.loss.loss import NextTokenSoftmaxCrossEntropyLossConfig

    return NextTokenSoftmaxCrossEntropyLoss(NextTokenSoftmaxCrossEntropyLossConfig())


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 11, 50, generator=generator, requires_grad=True)
    target = torch.randint(0, 50, (3, 11), generator=generator)
    target[:, :6] = -100  # the prompt: no loss
    target[1, 9:] = -100  # a shorter row
    return logits, target


def _unshifted_reference(logits, target):
    """Ludwig's own formula: position i's logits against token i + 1, logits shifted."""
    vocab = logits.shape[-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1, :].reshape(-1, vocab), target[:, 1:].reshape(-1), ignore_index=-100
    )


def test_the_next_token_loss_and_its_gradient_equal_ludwigs_formula():
    from llmbench.train.ludwig_fix import patch_ludwig

    patch_ludwig()
    logits, target = _batch()
    ours = _loss()(logits, target)
    (ours_grad,) = torch.autograd.grad(ours, logits)
    reference = _unshifted_reference(logits, target)
    (reference_grad,) = torch.autograd.grad(reference, logits)
    assert torch.allclose(ours, reference, rtol=1e-6, atol=0)
    assert torch.allclose(ours_grad, reference_grad, rtol=1e-5, atol=1e-9)
    assert ours_grad[:, -1].abs().sum() == 0  # the last position predicts nothing


def test_the_patched_loss_is_the_one_ludwig_uses():
    from ludwig.modules import loss_modules

    from llmbench.train.ludwig_fix import patch_ludwig

    patch_ludwig()
    forward = loss_modules.NextTokenSoftmaxCrossEntropyLoss.forward
    assert forward.__name__ == "forward" and getattr(forward, "_llmbench_4bit_reload_fix", False)


@pytest.mark.parametrize("skip_all_evaluation", [True, False])
def test_training_metrics_are_skipped_only_when_no_evaluation_will_report_them(
    skip_all_evaluation,
):
    from llmbench.train.ludwig_fix import _training_with_fixes

    class Trainer:  # what the wrapped Trainer.train reads of its trainer
        model = torch.nn.Linear(2, 2)
        config = None
        batch_size = 1

        def _update_training_metrics(self, model_outputs, targets):
            seen.append("updated")

    seen = []
    trainer = Trainer()
    trainer.skip_all_evaluation = skip_all_evaluation
    train = _training_with_fixes(lambda self, training_set: self._update_training_metrics({}, {}))
    train(trainer, None)
    assert seen == ([] if skip_all_evaluation else ["updated"])


def test_training_without_evaluation_skips_the_probabilities_and_restores_them_after():
    from ludwig.features.sequence_feature import _SequencePredict

    from llmbench.train.ludwig_fix import _argmax_only

    class Feature:
        prediction_module = _SequencePredict()

    class Model:
        output_features = {"label": Feature()}

    module = Feature.prediction_module
    logits = torch.randn(2, 5, 7)
    inputs = {"label::logits": logits}
    with _argmax_only(Model()):
        during = module(inputs, "label")
    after = module(inputs, "label")
    assert set(during) == {"predictions", "logits"}
    assert torch.equal(during["predictions"], logits.argmax(-1))
    assert set(after) == {"predictions", "probabilities", "logits"}
    assert torch.allclose(after["probabilities"], torch.softmax(logits, -1))
