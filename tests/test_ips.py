"""IPSNet: selection invariants, memory bound, index bookkeeping, gradients, de-duplication, STKIM."""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from ipslib.config import (
    AggregatorConfig,
    ConfigError,
    EncoderConfig,
    IPSConfig,
    RegulariserConfig,
    RunConfig,
    STKIMConfig,
    TaskSpec,
)
from ipslib.model.ips import IPSNet
from ipslib.model.selection import encode_unique, patch_order

MNIST = {
    "majority": TaskSpec(10, "multiclass"),
    "max": TaskSpec(10, "multiclass"),
    "top": TaskSpec(10, "multiclass"),
    "multi": TaskSpec(10, "multilabel"),
}
TRAFFIC = {"sign": TaskSpec(4, "multiclass")}
MNIST_T, TRAFFIC_T = tuple(MNIST.items()), tuple(TRAFFIC.items())  # hashable task sets
P = 8  # patch side


def make_net(**kwargs) -> IPSNet:
    """A small IPSNet; weights depend only on the arguments (built once per argument set, then copied)."""
    return copy.deepcopy(_build(**kwargs))


@functools.cache
def _build(
    *,
    tasks=MNIST_T,
    heads=2,
    in_channels=1,
    n_patches=40,
    memory=5,
    iters=7,
    shuffle=True,
    style="batch",
    use_pos=True,
    dedup=True,
    stkim=STKIMConfig(),
    reg=RegulariserConfig(),
) -> IPSNet:
    torch.manual_seed(0)
    return IPSNet(
        encoder=EncoderConfig(n_res_blocks=1),
        aggregator=AggregatorConfig(n_heads=heads, head_dim=8, mlp_dim=16),
        ips=IPSConfig(
            patch_size=P,
            memory_size=memory,
            iter_size=iters,
            shuffle=shuffle,
            shuffle_style=style,
            use_pos=use_pos,
            dedup_blank=dedup,
        ),
        regulariser=reg,
        stkim=stkim,
        tasks=dict(tasks),
        in_channels=in_channels,
        n_patches=n_patches,
    )


def patches(b=2, n=40, c=1, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, c, P, P, generator=g)


def one_shot_scores(net: IPSNet, x: torch.Tensor) -> torch.Tensor:
    """Brute force: score all N patches as one candidate set, (B, N)."""
    b, n = x.shape[:2]
    net.eval()
    with torch.no_grad():
        emb = net.encoder(x.flatten(0, 1)).view(b, n, -1)
        pos = net.positional(torch.arange(n))
        emb = emb if pos is None else emb + pos
        return net.aggregator.get_scores(emb)


def as_sets(indices: torch.Tensor) -> list[set[int]]:
    return [set(row.tolist()) for row in indices]


@pytest.mark.parametrize("tasks,in_channels", [(MNIST_T, 1), (TRAFFIC_T, 3)], ids=["mnist", "traffic"])
def test_shapes(tasks, in_channels) -> None:
    net = make_net(tasks=tasks, in_channels=in_channels).train()
    sel = net.select(patches(c=in_channels))
    assert sel.patches.shape == (2, 5, in_channels, P, P)
    assert sel.indices.shape == sel.scores.shape == (2, 5) and sel.indices.dtype == torch.long
    logits = net(sel)
    assert {k: v.shape for k, v in logits.items()} == {k: (2, s.n_classes) for k, s in tasks}
    out = net.forward_features(sel)
    assert out.attention.shape == (2, 2, len(tasks), 5) and out.head_outputs.shape == (2, 2, len(tasks), 8)


def test_from_config() -> None:
    cfg = RunConfig.from_flat(
        canvas_size=160, patch_size=16, memory_size=10, iter_size=10, n_heads=2, head_dim=8, mlp_dim=16
    )
    net = IPSNet.from_config(cfg)
    assert net.n_patches == 100 and net.positional(torch.arange(100)).shape == (100, 128)
    assert net.aggregator.attention.query.shape == (1, 4, 128)
    assert not any("pos" in key for key in net.state_dict())


def test_positional_rows_equal_the_table() -> None:
    from ipslib.model.transformer import sinusoidal_rows, sinusoidal_table

    table = sinusoidal_table(1000, 128)
    picks = torch.tensor([[0, 999, 17], [5, 5, 640]])
    assert torch.equal(sinusoidal_rows(picks, 128), table[picks])
    assert sinusoidal_rows(torch.tensor([921_599]), 128).shape == (1, 128)  # no table of size N needed


@pytest.mark.parametrize("shuffle,style", [(False, "batch"), (True, "batch"), (True, "instance")])
def test_single_head_single_token_is_global_top_m(shuffle, style) -> None:
    net = make_net(tasks=TRAFFIC_T, heads=1, memory=5, iters=3, shuffle=shuffle, style=style)
    x = patches()
    sel = net.select(x)
    assert as_sets(sel.indices) == as_sets(one_shot_scores(net, x).topk(5, dim=1).indices)


def test_one_iteration_equals_one_shot_top_m_with_several_heads_and_tokens() -> None:
    # Spec §1.6: scores are softmax-normalised over the current candidates and averaged over heads and
    # tokens, so several iterations only approximate a global top-M; one iteration (I >= N - M) is exact.
    net = make_net(heads=3, memory=5, iters=35)
    x = patches()
    sel = net.select(x)
    top = one_shot_scores(net, x).topk(5, dim=1)
    assert torch.equal(sel.indices, top.indices)
    assert torch.allclose(sel.scores, top.values, atol=1e-6)


@pytest.mark.parametrize("dedup", [True, False])
def test_memory_never_exceeds_m_plus_i(dedup) -> None:
    net = make_net(memory=5, iters=7, dedup=dedup)
    widths, batches = [], []
    net.aggregator.attention.k_w.register_forward_hook(lambda m, inp, out: widths.append(inp[0].shape[1]))
    net.encoder.register_forward_hook(lambda m, inp, out: batches.append(inp[0].shape[0]))
    net.select(patches(b=3, n=40))
    assert max(widths) == 5 + 7 and len(widths) == 5  # ceil((40 - 5) / 7) iterations
    assert max(batches) <= 3 * 7


@pytest.mark.parametrize("style", ["batch", "instance"])
def test_indices_map_back_with_shuffle(style) -> None:
    net = make_net(style=style, memory=6, iters=4)
    x = patches(b=3)
    sel = net.select(x)
    for b in range(3):
        assert torch.equal(sel.patches[b], x[b, sel.indices[b]])
        assert len(set(sel.indices[b].tolist())) == 6


def test_patch_order_styles() -> None:
    torch.manual_seed(0)
    batch = patch_order(10, 3, shuffle=True, style="batch")
    assert (batch == batch[0]).all() and sorted(batch[0].tolist()) == list(range(10))
    inst = patch_order(10, 3, shuffle=True, style="instance")
    assert all(sorted(r.tolist()) == list(range(10)) for r in inst) and not (inst == inst[0]).all()
    with pytest.raises(ConfigError, match="'batch', 'instance'"):
        patch_order(10, 3, shuffle=True, style="image")


def test_memory_at_least_n_keeps_everything() -> None:
    net = make_net(memory=40).eval()
    x = patches()
    state = torch.get_rng_state()
    sel = net.select(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(sel.patches, x) and torch.equal(sel.indices, torch.arange(40).expand(2, 40))
    assert torch.allclose(sel.scores, one_shot_scores(net, x), atol=1e-6)
    assert net(sel)["majority"].shape == (2, 10)


@pytest.mark.parametrize("training", [True, False])
def test_modes_restored(training) -> None:
    net = make_net().train(training)
    seen = []
    net.encoder.register_forward_hook(lambda m, i, o: seen.append(m.training))
    net.select(patches())
    assert not any(seen)
    assert net.training is net.encoder.training is net.aggregator.training is training


def test_gradients_reach_only_the_selected_patches() -> None:
    net = make_net().train()
    x = patches().requires_grad_(True)
    grad_calls = []
    net.encoder.register_forward_hook(
        lambda m, i, o: grad_calls.append(i[0].shape[0]) if torch.is_grad_enabled() else None
    )
    sel = net.select(x)
    assert grad_calls == []
    sum(v.sum() for v in net(sel).values()).backward()
    assert grad_calls == [2 * 5]
    touched = x.grad.flatten(2).abs().sum(-1) > 0  # (B, N)
    for b in range(2):
        assert set(touched[b].nonzero().flatten().tolist()) == set(sel.indices[b].tolist())
    assert all(p.grad is not None for p in net.encoder.parameters())


def blank_heavy(b=2, n=40, seed=2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, n, 1, P, P)
    keep = torch.rand(b, n, generator=g) < 0.25
    k = int(keep.sum())
    x[keep] = torch.rand(k, 1, P, P, generator=g) * (torch.rand(k, 1, P, P, generator=g) > 0.8)  # sparse strokes
    x[:, 3] = x[0, 5] + 0.5  # an exact non-blank duplicate across images
    x[:, 7] = 0.25  # constant, non-zero patches
    return x


@pytest.mark.parametrize("use_pos", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_dedup_gives_identical_selection(use_pos, training) -> None:
    x = blank_heavy()
    results = []
    for dedup in (True, False):
        net = make_net(dedup=dedup, use_pos=use_pos, memory=5, iters=6).train(training)
        torch.manual_seed(7)
        results.append(net.select(x))
    assert torch.equal(results[0].indices, results[1].indices)
    assert torch.allclose(results[0].scores, results[1].scores, atol=1e-6)


def test_encode_unique_encodes_each_distinct_patch_once() -> None:
    net = make_net().eval()
    x = blank_heavy().flatten(0, 1)
    distinct = len({tuple(row.tolist()) for row in x.flatten(1)})
    sizes = []
    net.encoder.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    with torch.no_grad():
        fast = encode_unique(net.encoder, x)
        assert sizes == [distinct] and distinct < len(x) // 2
        assert torch.allclose(fast, net.encoder(x), atol=1e-6)


class LazySource:
    """A PatchSource that records what it is asked for."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.requests = x, []
        self.batch_size, self.n_patches = x.shape[:2]

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        self.requests.append(indices.shape[1])
        return torch.stack([self.x[b, indices[b]] for b in range(self.batch_size)])


def test_patch_source_streams_chunks() -> None:
    x = patches()
    source = LazySource(x)
    torch.manual_seed(3)
    sel = make_net(memory=5, iters=7).select(source)
    torch.manual_seed(3)
    dense = make_net(memory=5, iters=7).select(x)
    assert torch.equal(sel.indices, dense.indices) and torch.equal(sel.patches, dense.patches)
    assert max(source.requests) <= 7 and sum(source.requests) == 40 + 5


def test_stkim_with_p_zero_changes_nothing() -> None:
    x = patches()
    states, indices = [], []
    for stkim in (STKIMConfig(), STKIMConfig(stkim_k=3, stkim_p=0.0)):
        net = make_net(stkim=stkim).train()
        torch.manual_seed(11)
        indices.append(net.select(x).indices)
        states.append(torch.get_rng_state())
    assert torch.equal(indices[0], indices[1]) and torch.equal(states[0], states[1])


def test_selection_draws_no_random_numbers_without_shuffle_or_stkim() -> None:
    net = make_net(shuffle=False).train()
    state = torch.get_rng_state()
    net.select(patches())
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("training,in_eval,masked", [(True, None, True), (False, None, True), (False, False, False)])
def test_author_stkim_with_p_one_evicts_the_top_k(training, in_eval, masked) -> None:
    stkim = STKIMConfig(stkim_k=4, stkim_p=1.0, stkim_mode="seed_selection", stkim_in_eval=in_eval)
    net = make_net(stkim=stkim, memory=5, iters=35).train(training)  # one iteration: all N are candidates
    x = patches()
    sel = net.select(x)
    ranked = one_shot_scores(net, x).argsort(dim=1, descending=True)
    expected = ranked[:, 4:9] if masked else ranked[:, :5]
    assert as_sets(sel.indices) == as_sets(expected)


@pytest.mark.parametrize("sampling,expected", [("exact_fraction", 2), ("bernoulli", None)])
def test_acmil_stkim_masks_aggregation_in_training_only(sampling, expected) -> None:
    stkim = STKIMConfig(stkim_k=3, stkim_p=0.67, stkim_mode="acmil_aggregation", stkim_sampling=sampling)
    net = make_net(stkim=stkim, memory=6).train()
    x = patches()
    torch.manual_seed(0)
    sel = net.select(x)
    torch.manual_seed(0)
    assert torch.equal(sel.indices, make_net(memory=6).train().select(x).indices)  # selection untouched
    zeros = (net.forward_features(sel).attention == 0).sum(-1)  # (B, H, T)
    if expected is not None:
        assert (zeros == expected).all()
    else:
        assert zeros.max() <= 3
    net.eval()
    assert not (net.forward_features(sel).attention == 0).any()


def test_double_forward_keeps_first_call_logits() -> None:
    reg = RegulariserConfig(diversity_weight=1.0, semantic_weight=1.0)
    double = make_net(reg=RegulariserConfig(diversity_weight=1.0, semantic_weight=1.0, double_forward=True)).train()
    single = make_net(reg=reg).train()
    sel = single.select(patches())
    outs, states = [], []
    for net in (double, single):
        torch.manual_seed(4)
        outs.append(net.forward_features(sel))
        states.append(torch.get_rng_state())
    assert all(torch.equal(outs[0].logits[k], outs[1].logits[k]) for k in MNIST)
    assert not torch.equal(outs[0].head_outputs, outs[1].head_outputs)  # second call, other dropout masks
    assert not torch.equal(states[0], states[1])
    double.eval(), single.eval()
    assert torch.equal(double.forward_features(sel).head_outputs, single.forward_features(sel).head_outputs)


def test_more_patches_than_at_training_time() -> None:
    """Positional rows are computed on demand, so a model selects on images larger than its training size."""
    sel = make_net().select(patches(n=41))
    assert sel.indices.max() <= 40 and sel.indices.shape == (2, 5)
