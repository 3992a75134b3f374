"""Cross-attention aggregator: shapes, closed-form forward and scores, semantic branches, ACMIL masking."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from ipslib.config import AggregatorConfig, ConfigError, TaskSpec
from ipslib.model.stkim import mask_logits, top_k_mask
from ipslib.model.transformer import Aggregator, sinusoidal_table

MNIST = {
    "majority": TaskSpec(10, "multiclass"),
    "max": TaskSpec(10, "multiclass"),
    "top": TaskSpec(10, "multiclass"),
    "multi": TaskSpec(10, "multilabel"),
}
TRAFFIC = {"sign": TaskSpec(4, "multiclass")}
SMALL = AggregatorConfig(n_heads=4, head_dim=8, mlp_dim=32)


def make(tasks=MNIST, semantic=None, config=SMALL, dim=16) -> Aggregator:
    torch.manual_seed(0)
    return Aggregator(embed_dim=dim, tasks=tasks, config=config, semantic_heads=semantic)


@pytest.mark.parametrize("tasks", [MNIST, TRAFFIC], ids=["mnist", "traffic"])
@pytest.mark.parametrize("semantic", [None, "shared", "per_head"])
def test_shapes(tasks, semantic) -> None:
    agg = make(tasks, semantic)
    out = agg(torch.rand(2, 5, 16))
    t = len(tasks)
    assert {k: v.shape for k, v in out.logits.items()} == {k: (2, s.n_classes) for k, s in tasks.items()}
    assert out.attention.shape == (2, 4, t, 5)
    assert out.head_outputs.shape == (2, 4, t, 8)
    if semantic is None:
        assert out.branch_logits is None
    else:
        assert {k: v.shape for k, v in out.branch_logits.items()} == {k: (2, 4, s.n_classes) for k, s in tasks.items()}
    assert agg.get_scores(torch.rand(2, 7, 16)).shape == (2, 7)


def test_parameters_follow_the_spec() -> None:
    agg = make()
    attn = agg.attention
    assert attn.query.shape == (1, 4, 16)
    assert attn.query.abs().max() <= math.sqrt(1 / 8)
    for layer in (attn.q_w, attn.k_w, attn.v_w, attn.fc):
        assert layer.bias is None
    assert (attn.fc.in_features, attn.fc.out_features) == (4 * 8, 16)
    assert attn.norm.eps == agg.mlp.norm.eps == 1e-6
    shared = make(semantic="shared")
    assert shared.fb.weight.shape == (16, 8) and shared.fb.bias is None
    per_head = make(semantic="per_head")
    assert len(per_head.branches) == 4
    assert [m.out_features for m in per_head.branches[0].mlp if isinstance(m, torch.nn.Linear)] == [128] * 3


def test_forward_matches_closed_form() -> None:
    agg = make().eval()
    x = torch.rand(3, 6, 16)
    out = agg(x)
    a = agg.attention
    q = a.q_w(a.query).view(1, 4, 4, 8).transpose(1, 2)  # (1, H, T, D_k)
    k = a.k_w(x).view(3, 6, 4, 8).transpose(1, 2)
    v = a.v_w(x).view(3, 6, 4, 8).transpose(1, 2)
    attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)  # (B, H, T, L)
    heads = attn @ v
    z = F.layer_norm(
        a.fc(heads.transpose(1, 2).reshape(3, 4, 32)) + a.query, (16,), a.norm.weight, a.norm.bias, eps=1e-6
    )
    mlp = agg.mlp
    y = F.layer_norm(z + mlp.fc2(torch.relu(mlp.fc1(z))), (16,), mlp.norm.weight, mlp.norm.bias, eps=1e-6)
    assert torch.allclose(out.attention, attn, atol=1e-6)
    assert torch.allclose(out.head_outputs, heads, atol=1e-6)
    for t, name in enumerate(MNIST):  # token t belongs to task t
        assert torch.allclose(out.logits[name], agg.heads[name](y[:, t]), atol=1e-5)
    scores = agg.get_scores(x)
    assert torch.allclose(scores, attn.mean(1).mean(1), atol=1e-6)
    assert torch.allclose(scores.sum(1), torch.ones(3))


def test_scores_ignore_dropout() -> None:
    agg = make(config=AggregatorConfig(n_heads=2, head_dim=4, mlp_dim=8, attn_dropout=0.9, dropout=0.9)).train()
    x = torch.rand(2, 5, 16)
    assert torch.equal(agg.get_scores(x), agg.get_scores(x))


def test_shared_branch_uses_shared_mlp_and_heads() -> None:
    agg = make(semantic="shared").eval()
    out = agg(torch.rand(2, 5, 16))
    y = agg.mlp(agg.fb(out.head_outputs))  # (B, H, T, D)
    assert torch.allclose(out.branch_logits["top"], agg.heads["top"](y[:, :, 2]), atol=1e-6)


def test_bad_semantic_heads_names_choices() -> None:
    with pytest.raises(ConfigError, match="'shared', 'per_head'"):
        make(semantic="mlp")


def test_sinusoidal_table() -> None:
    table = sinusoidal_table(5, 6)
    n = torch.arange(5.0)
    assert torch.allclose(table[:, 0], torch.sin(n)) and torch.allclose(table[:, 1], torch.cos(n))
    assert torch.allclose(table[:, 4], torch.sin(n * 10000 ** (-4 / 6)))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(5, 7)


@pytest.mark.parametrize("k,p", [(4, 0.5), (3, 0.7), (10, 0.6), (2, 1.0)])
def test_acmil_mask_masks_exactly_floor_kp_of_the_top_k(k: int, p: float) -> None:
    agg = make().eval()
    x = torch.rand(2, 8, 16)
    logits = agg.attention.attention_logits(x)  # (B, H, T, L)
    torch.manual_seed(1)
    out = agg(x, logit_mask=partial(mask_logits, k=k, p=p, sampling="exact_fraction"))
    masked = out.attention == 0
    assert (masked.sum(-1) == int(min(k, 8) * p)).all()
    top = torch.zeros_like(masked).scatter(-1, logits.topk(min(k, 8), dim=-1).indices, True)
    assert not (masked & ~top).any()
    assert torch.allclose(out.attention.sum(-1), torch.ones(2, 4, 4))


def test_top_k_mask_bernoulli_and_bad_sampling() -> None:
    values = torch.rand(50, 10)
    mask = top_k_mask(values, k=4, p=0.5, sampling="bernoulli")
    assert mask.sum(-1).max() <= 4 and 0.3 < mask.float().sum() / 200 < 0.7
    with pytest.raises(ConfigError, match="'bernoulli', 'exact_fraction'"):
        top_k_mask(values, k=4, p=0.5, sampling="exact")
