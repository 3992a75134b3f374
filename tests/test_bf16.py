"""``amp: bf16``: the selection's encoder runs in bfloat16, scores and top-M in float32; a clear error where the
device has no native bfloat16; the agreement and equivalence helpers of ``benchmarks.bf16``."""

from __future__ import annotations

import pytest
import torch

from benchmarks.bf16 import equivalent, jaccard
from ipslib.config import RunConfig
from ipslib.data import build_dataset
from ipslib.engine import runtime, steps
from ipslib.model.ips import IPSNet

CFG = dict(
    canvas_size=300,
    digit_size=28,
    n_noise=10,
    n_train=8,
    n_test=8,
    digit_source="sample",
    patch_size=30,
    memory_size=10,
    iter_size=20,
    n_res_blocks=1,
    n_heads=4,
    head_dim=8,
    mlp_dim=32,
    batch_size=4,
    device="cpu",
    threads=1,
)
needs_bf16 = pytest.mark.skipif(not runtime.cpu_has_bf16(), reason="this CPU has no native bfloat16")


def test_bf16_is_refused_where_the_cpu_would_emulate_it(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    with pytest.raises(runtime.Bf16Unavailable, match="amp: none"):
        runtime.autocast(torch.device("cpu"), "bf16")
    with runtime.autocast(torch.device("cpu"), "none"):
        assert not torch.is_autocast_enabled("cpu")


@needs_bf16
def test_scores_are_float32_under_autocast():
    net = IPSNet.from_config(RunConfig.from_flat(CFG)).eval()
    emb, idx = torch.randn(2, 30, net.embed_dim), torch.arange(30).expand(2, 30)
    with torch.no_grad():
        plain = net._score(emb, idx, stkim_on=False)
        with runtime.autocast(torch.device("cpu"), "bf16"):
            under = net._score(emb, idx, stkim_on=False)
            assert net.aggregator.get_scores(emb).dtype == torch.bfloat16  # what it would be without the guard
    assert under.dtype == torch.float32 and torch.equal(under, plain)


@needs_bf16
def test_select_batch_encodes_in_bf16_and_keeps_nearly_the_same_patches():
    cfg = RunConfig.from_flat(CFG)
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg)
    dtypes = []
    net.encoder.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    view = build_dataset(cfg, "test", patches=True)
    batch, _ = view.collate([view[i] for i in range(4)])
    kept = {}
    for amp in ("none", "bf16"):
        dtypes.clear()
        torch.manual_seed(1)
        selection = steps.select_batch(net, batch, steps.Context(cfg.replace(amp=amp), torch.device("cpu")))
        assert selection.scores.dtype == torch.float32 and set(dtypes) == {
            torch.float32 if amp == "none" else torch.bfloat16
        }
        kept[amp] = selection.indices.tolist()
    agreement = [jaccard(a, b) for a, b in zip(kept["none"], kept["bf16"])]
    assert min(agreement) >= 0.8, agreement


def test_jaccard_and_equivalence_rule():
    assert jaccard([1, 2, 3], [1, 2, 3]) == 1.0 and jaccard([1, 2], [2, 3]) == pytest.approx(1 / 3)
    fp32 = [{"majority": 0.40}, {"majority": 0.44}, {"majority": 0.42}]
    close = equivalent(fp32, [{"majority": 0.41}, {"majority": 0.45}, {"majority": 0.43}])["majority"]
    assert close["within_spread"] and close["float32_spread"] == pytest.approx(0.04)
    far = equivalent(fp32, [{"majority": 0.30}, {"majority": 0.31}, {"majority": 0.32}])["majority"]
    assert not far["within_spread"] and far["mean_difference"] == pytest.approx(-0.11)
