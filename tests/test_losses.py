"""Losses against closed forms and their documented bounds."""

from __future__ import annotations

import math

import pytest
import torch

from ipslib.config import ConfigError, RegulariserConfig, TaskSpec
from ipslib.engine.losses import compute_losses, diversity_loss, semantic_loss, task_loss
from ipslib.model.transformer import AggregatorOutput

MC, ML = TaskSpec(3, "multiclass"), TaskSpec(2, "multilabel")
TASKS = {"a": MC, "b": ML}


def output(head_outputs=None, attention=None, logits=None, branch_logits=None) -> AggregatorOutput:
    head_outputs = torch.rand(2, 3, 2, 4) if head_outputs is None else head_outputs
    attention = torch.rand(2, 3, 2, 5).softmax(-1) if attention is None else attention
    logits = {"a": torch.zeros(2, 3), "b": torch.zeros(2, 2)} if logits is None else logits
    return AggregatorOutput(logits=logits, attention=attention, head_outputs=head_outputs, branch_logits=branch_logits)


def test_task_losses_closed_forms() -> None:
    logits = torch.tensor([[0.0, math.log(3.0), 0.0]])
    assert torch.isclose(task_loss(logits, torch.tensor([1]), MC), torch.tensor(-math.log(3 / 5)))
    ml = torch.tensor([[0.0, 2.0]])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2  # targets 1 and 0
    assert torch.isclose(task_loss(ml, torch.tensor([[1.0, 0.0]]), ML), torch.tensor(expected))


def test_task_losses_match_the_original_probability_forms() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    original = torch.nn.NLLLoss()(torch.log(logits.softmax(-1) + 1e-6), y)
    assert torch.isclose(task_loss(logits, y, MC), original, atol=1e-4)
    logits, y = torch.randn(8, 2), torch.randint(0, 2, (8, 2)).float()
    original = torch.nn.BCELoss()(torch.sigmoid(logits).flatten(), y.flatten())
    assert torch.isclose(task_loss(logits, y, ML), original, atol=1e-4)


def test_bad_task_kind_names_choices() -> None:
    with pytest.raises(ConfigError, match="'multiclass', 'multilabel'"):
        task_loss(torch.zeros(1, 2), torch.zeros(1), TaskSpec(2, "regression"))


def simplex(h: int) -> torch.Tensor:
    return torch.eye(h) - 1.0 / h  # centred regular simplex: pairwise cosine -1/(h-1)


@pytest.mark.parametrize("h", [2, 4, 8])
def test_head_output_diversity_bound_is_attained_by_a_simplex(h: int) -> None:
    heads = simplex(h).view(1, h, 1, h).expand(3, h, 1, h)  # (B, H, T, D_v)
    value = diversity_loss(output(head_outputs=heads), target="head_outputs")
    assert torch.isclose(value, torch.tensor(-1 / (h - 1)), atol=1e-6)
    torch.manual_seed(h)
    for _ in range(20):
        value = diversity_loss(output(head_outputs=torch.randn(4, h, 2, 3)), target="head_outputs")
        assert -1 / (h - 1) - 1e-6 <= value <= 1 + 1e-6


def test_head_output_diversity_is_the_mean_pairwise_cosine() -> None:
    torch.manual_seed(0)
    heads = torch.randn(2, 3, 2, 4)
    cos = torch.nn.functional.cosine_similarity
    pairs = [cos(heads[:, i].flatten(1), heads[:, j].flatten(1)).mean() for i, j in [(0, 1), (0, 2), (1, 2)]]
    value = diversity_loss(output(head_outputs=heads), target="head_outputs")
    assert torch.isclose(value, torch.stack(pairs).mean(), atol=1e-6)


@pytest.mark.parametrize("target", ["head_attention", "branch_attention"])
def test_attention_diversity_in_unit_interval(target: str) -> None:
    torch.manual_seed(1)
    for _ in range(20):
        attn = (torch.randn(2, 3, 2, 5) * 3).softmax(-1)
        assert 0 <= diversity_loss(output(attention=attn), target=target) <= 1 + 1e-6
    same = torch.rand(1, 1, 2, 5).softmax(-1).expand(2, 3, 2, 5)
    assert torch.isclose(diversity_loss(output(attention=same), target=target), torch.tensor(1.0))
    disjoint = torch.eye(3).view(1, 3, 1, 3).expand(2, 3, 2, 3)  # every head on its own patch
    assert diversity_loss(output(attention=disjoint), target=target) == 0


def test_branch_and_head_attention_differ_with_several_tokens() -> None:
    a = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [1.0, 0.0]]]).unsqueeze(0)  # (1, H=2, T=2, M=2)
    head = diversity_loss(output(attention=a), target="head_attention")
    branch = diversity_loss(output(attention=a), target="branch_attention")
    assert torch.isclose(head, torch.tensor(1.5 / math.sqrt(3)))  # one cosine over T*M values
    assert torch.isclose(branch, torch.tensor((1 + 0.5 / math.sqrt(0.5)) / 2))  # mean of per-token cosines


def test_bad_diversity_target_names_choices() -> None:
    with pytest.raises(ConfigError, match="'head_outputs', 'head_attention', 'branch_attention'"):
        diversity_loss(output(), target="maps")


def test_semantic_loss_closed_form_and_head_mean() -> None:
    targets = {"a": torch.tensor([0, 2]), "b": torch.tensor([[1.0, 0.0], [0.0, 0.0]])}
    zeros = {"a": torch.zeros(2, 4, 3), "b": torch.zeros(2, 4, 2)}
    assert torch.isclose(semantic_loss(zeros, targets, TASKS), torch.tensor((math.log(3) + math.log(2)) / 2))
    torch.manual_seed(0)
    branch = {"a": torch.randn(2, 4, 3), "b": torch.randn(2, 4, 2)}
    per_head = [
        (task_loss(branch["a"][:, h], targets["a"], MC) + task_loss(branch["b"][:, h], targets["b"], ML)) / 2
        for h in range(4)
    ]
    assert torch.isclose(semantic_loss(branch, targets, TASKS), torch.stack(per_head).mean(), atol=1e-6)


def test_compute_losses_total_and_keys() -> None:
    torch.manual_seed(0)
    logits = {"a": torch.randn(2, 3, requires_grad=True), "b": torch.randn(2, 2)}
    branch = {"a": torch.randn(2, 3, 3), "b": torch.randn(2, 3, 2)}
    out = output(logits=logits, branch_logits=branch)
    targets = {"a": torch.tensor([0, 1]), "b": torch.ones(2, 2)}
    plain = compute_losses(out, targets, tasks=TASKS, regulariser=RegulariserConfig())
    assert set(plain) == {"loss", "task", "task/a", "task/b"}
    assert torch.isclose(plain["task"], (plain["task/a"] + plain["task/b"]) / 2)
    assert torch.equal(plain["loss"], plain["task"])
    reg = RegulariserConfig(diversity_weight=3.0, semantic_weight=0.5)
    full = compute_losses(out, targets, tasks=TASKS, regulariser=reg)
    assert torch.isclose(full["loss"], full["task"] + 3 * full["diversity"] + 0.5 * full["semantic"])
    full["loss"].backward()
    assert logits["a"].grad is not None
    with pytest.raises(ValueError, match="branch_logits"):
        compute_losses(output(logits=logits), targets, tasks=TASKS, regulariser=reg)
    only_div = compute_losses(out, targets, tasks=TASKS, regulariser=RegulariserConfig(diversity_weight=1))
    assert "semantic" not in only_div and "diversity" in only_div
