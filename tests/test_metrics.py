"""Per-task metrics: accuracy and the multi-label exact-match accuracy against hand computations."""

import pytest
import torch

from ipslib.config import TaskSpec
from ipslib.engine.metrics import EpochMeter, accuracy, correct


def test_multiclass_accuracy_is_argmax_agreement():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0], [1.0, 0.5, 0.0]])
    target = torch.tensor([1, 0, 1, 2])
    assert correct(logits, target, "multiclass").tolist() == [True, True, False, False]
    assert accuracy(logits, target, "multiclass") == 0.5


def test_multilabel_exact_match_needs_every_output_right():
    logits = torch.tensor([[2.0, -1.0, 0.5], [2.0, 1.0, 0.5], [-0.1, -3.0, 0.1], [0.0, -1.0, 1.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    # row 4: logit 0 means p = 0.5, which is not > 0.5, so predicted 0 against label 1
    assert correct(logits, target, "multilabel").tolist() == [True, False, True, False]
    assert accuracy(logits, target, "multilabel") == 0.5


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="multilabel"):
        correct(torch.zeros(1, 2), torch.zeros(1), "regression")


def test_epoch_meter_weights_batches_by_size():
    tasks = {"a": TaskSpec(2, "multiclass"), "m": TaskSpec(2, "multilabel")}
    meter = EpochMeter(tasks)
    meter.update(
        {"loss": torch.tensor(1.0), "task/a": torch.tensor(2.0), "task/m": torch.tensor(0.0)},
        {"a": torch.tensor([[1.0, 0.0]] * 3), "m": torch.tensor([[1.0, -1.0]] * 3)},
        {"a": torch.tensor([0, 0, 1]), "m": torch.tensor([[1.0, 0.0]] * 3)},
    )
    meter.update(
        {
            "loss": torch.tensor(4.0),
            "task/a": torch.tensor(8.0),
            "task/m": torch.tensor(0.0),
            "diversity": torch.tensor(-0.1),
        },
        {"a": torch.tensor([[0.0, 1.0]]), "m": torch.tensor([[1.0, 1.0]])},
        {"a": torch.tensor([1]), "m": torch.tensor([[1.0, 0.0]])},
    )
    out = meter.compute()
    assert out["loss"] == pytest.approx((3 * 1 + 4) / 4)
    assert out["a/loss"] == pytest.approx((3 * 2 + 8) / 4)
    assert out["a/accuracy"] == pytest.approx(3 / 4)
    assert out["m/accuracy"] == pytest.approx(3 / 4)
    assert out["accuracy"] == pytest.approx(3 / 4)
    assert out["diversity"] == pytest.approx(-0.1)
