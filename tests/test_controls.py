"""Control arms of issue 16: random and all selection, the downsampled whole-image model, their memory
estimate, training through the engine, ``ipslib predict``, and unchanged config keys of existing runs."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_mnist
from torch import nn

from ipslib.cli import main
from ipslib.config import ConfigError, EncoderConfig, RunConfig
from ipslib.config.memory import pass_memory_mb, trunk_layer_sizes
from ipslib.config.run import DEFAULT_FREE_KEYS
from ipslib.data.megapixel_mnist import MegapixelMNIST, to_float
from ipslib.data.mnist_patches import MegapixelPatchSource
from ipslib.engine import records
from ipslib.engine import training as engine
from ipslib.engine.predict import load_model, mnist_source, predict
from ipslib.engine.steps import Context, select_batch
from ipslib.engine.whole_image import downsample_source
from ipslib.model.control_selection import content_seed, random_indices, scan_nonblank
from ipslib.model.controls import DownsampledNet, area_downsample, build_model
from ipslib.model.encoder import PatchEncoder
from ipslib.model.ips import IPSNet
from ipslib.model.patches import patchify
from ipslib.model.sources import DensePatches
from ipslib.streaming.disk import ArrayPatchSource

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_mnist()
ARMS = {
    "random": dict(selection="random"),
    "all": dict(selection="all"),
    "downsampled": dict(architecture="downsampled", downsample_size=48),
}


def tiny(**changes) -> RunConfig:
    return RunConfig.from_flat({**TINY, **changes})


def _sparse_patches(b: int = 2, n: int = 25, nonblank: tuple[int, ...] = (1, 5, 7, 12, 20, 24)) -> torch.Tensor:
    """(B, N, 1, 4, 4) zeros except the patches ``nonblank``, which hold distinct positive values."""
    x = torch.zeros(b, n, 1, 4, 4)
    for j in nonblank:
        x[:, j] = torch.rand(b, 1, 4, 4) + 0.1
    return x


# ------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("arm", ["random", "all"])
def test_selection_arms_keep_the_right_patches_and_logit_shapes(arm):
    cfg = tiny(**ARMS[arm])
    net = IPSNet.from_config(cfg).eval()
    images = torch.rand(3, 1, 160, 160)
    patches = patchify(images, 40)  # (3, 16, 1, 40, 40)
    selection = net.select(patches)
    k = 4 if arm == "random" else 16
    assert selection.patches.shape == (3, k, 1, 40, 40) and selection.indices.shape == (3, k)
    assert torch.allclose(selection.scores, torch.full((3, k), 1 / k))
    rows = torch.arange(3).unsqueeze(1)
    assert torch.equal(selection.patches, patches[rows, selection.indices])
    if arm == "all":
        assert torch.equal(selection.indices, torch.arange(16).expand(3, 16))
    logits = net(selection)
    assert {t: v.shape for t, v in logits.items()} == {t: (3, s.n_classes) for t, s in cfg.tasks.items()}


def test_downsampled_model_shapes_and_one_patch_selection():
    cfg = tiny(**ARMS["downsampled"])
    net = build_model(cfg)
    assert isinstance(net, DownsampledNet)
    images = torch.rand(3, 1, 160, 160)
    selection = net.select(images)
    assert selection.patches.shape == (3, 1, 1, 48, 48)
    assert torch.equal(selection.indices, torch.zeros(3, 1, dtype=torch.long))
    assert torch.allclose(selection.patches[:, 0], torch.nn.functional.interpolate(images, size=48, mode="area"))
    out = net.forward_features(selection)
    assert {t: v.shape for t, v in out.logits.items()} == {t: (3, s.n_classes) for t, s in cfg.tasks.items()}
    assert out.attention.shape == (3, 2, 4, 1) and torch.allclose(out.attention, torch.ones(3, 2, 4, 1))
    with pytest.raises(TypeError, match="whole images"):
        net.select(patchify(images, 40))


def test_build_model_keeps_ipsnet_for_the_selection_arms():
    assert type(build_model(tiny())) is IPSNet and type(build_model(tiny(selection="random"))) is IPSNet


# ------------------------------------------------------------------------------------- random draws
def test_random_selection_excludes_blank_patches_and_is_uniform_over_the_rest():
    nonblank = (1, 5, 7, 12, 20, 24)
    mask, _ = scan_nonblank(DensePatches(_sparse_patches(nonblank=nonblank)))
    assert mask.sum(dim=1).tolist() == [6, 6] and set(mask[0].nonzero().flatten().tolist()) == set(nonblank)
    torch.manual_seed(0)
    counts = Counter()
    for _ in range(600):
        kept = random_indices(mask, 4)
        assert set(kept.flatten().tolist()) <= set(nonblank)
        assert all(len(set(row)) == 4 for row in kept.tolist())  # without replacement
        counts.update(kept[0].tolist())
    expected = 600 * 4 / 6  # each of the 6 non-blank patches in 4 of 6 draws
    assert all(abs(counts[j] - expected) < 0.1 * expected for j in nonblank), counts


def test_random_selection_fills_with_blank_patches_when_too_few_are_non_blank():
    mask, _ = scan_nonblank(DensePatches(_sparse_patches(nonblank=(3, 9))))
    for _ in range(20):
        kept = random_indices(mask, 4)
        assert {3, 9} <= set(kept[0].tolist()) and len(set(kept[0].tolist())) == 4


def test_random_selection_is_fixed_by_seed_in_eval_and_fresh_in_training():
    net = IPSNet.from_config(tiny(selection="random", memory_size=3))
    patches = patchify(torch.rand(4, 1, 160, 160), 40)  # every patch non-blank
    net.eval()
    first = net.select(patches).indices
    torch.manual_seed(123)  # the eval draw does not depend on the global generator
    assert torch.equal(net.select(patches).indices, first)
    reordered = net.select(patches[[2, 0]]).indices  # same image, another batch and position
    assert torch.equal(reordered, first[[2, 0]])
    other_seed = IPSNet.from_config(tiny(selection="random", memory_size=3, selection_seed=1)).eval()
    assert not torch.equal(other_seed.select(patches).indices, first)
    net.train()
    draws = [net.select(patches).indices for _ in range(3)]
    assert not torch.equal(draws[0], draws[1]) or not torch.equal(draws[1], draws[2])
    torch.manual_seed(7)
    again = net.select(patches).indices
    torch.manual_seed(7)
    assert torch.equal(net.select(patches).indices, again)  # training draws follow torch's global seed


def test_eval_draw_is_the_same_for_a_streamed_canvas_and_its_dense_patches():
    cfg = tiny(selection="random")
    ds = MegapixelMNIST(cfg.data, "test")
    dense = patchify(to_float(ds[1].image[None]), 40)  # (16, 1, 40, 40)
    stream = MegapixelPatchSource(ds, [1], 40)
    assert content_seed(dense, 0) == scan_nonblank(stream, digest_seed=0)[1][0]
    net = IPSNet.from_config(cfg).eval()
    assert torch.equal(net.select(dense.unsqueeze(0)).indices, net.select(stream).indices)


# ------------------------------------------------------------------------------------------- memory
def _hooked_layer_sizes(encoder: EncoderConfig, side: int) -> list[int]:
    net = PatchEncoder(config=encoder, in_channels=1).train()
    sizes: list[int] = []
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
    for module in net.modules():
        if isinstance(module, kinds):
            module.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel()))
    net(torch.zeros(2, 1, side, side))
    return sizes


@pytest.mark.parametrize(
    "arch, blocks", [("resnet18", 1), ("resnet18", 2), ("resnet18", 4), ("resnet50", 1), ("resnet50", 2)]
)
@pytest.mark.parametrize("side", [20, 37, 50])
def test_memory_estimate_counts_every_layer_output_of_the_trunk(arch, blocks, side):
    encoder = EncoderConfig(arch=arch, n_res_blocks=blocks, proj_dim=128 if arch == "resnet50" else None)
    assert trunk_layer_sizes(encoder, side) == _hooked_layer_sizes(encoder, side)


def test_memory_estimate_formula():
    encoder = EncoderConfig()  # resnet18, 2 stages
    sizes = trunk_layer_sizes(encoder, 50)
    assert sum(sizes) == 240_064 and max(sizes) == 40_000
    grad = pass_memory_mb(encoder, in_channels=1, side=50, n_inputs=14_400, gradients=True)
    assert grad == pytest.approx(14_400 * (2500 + 240_064) * 4 / 2**20)
    no_grad = pass_memory_mb(encoder, in_channels=1, side=50, n_inputs=14_400, gradients=False)
    frozen = pass_memory_mb(EncoderConfig(freeze=True), in_channels=1, side=50, n_inputs=14_400, gradients=True)
    assert no_grad == frozen == pytest.approx(14_400 * (2500 + 40_000) * 4 / 2**20)


def test_all_selection_is_accepted_small_and_refused_above_the_budget():
    tiny(selection="all")  # 4·16 patches of 40 px: under 1 MiB... of patches, well within budget
    RunConfig.from_flat(selection="all")  # 1500² canvas, B = 16: about 13,324 MiB < 16,384
    with pytest.raises(ConfigError) as err:
        RunConfig.from_flat(selection="all", canvas_size=3000)
    message = str(err.value)
    assert "selection='all'" in message and "16·3600 = 57,600 patches" in message
    assert "estimated 53,298 MiB" in message and "memory_budget_mb=16384" in message
    RunConfig.from_flat(selection="all", canvas_size=3000, memory_budget_mb=60_000)  # a bigger device
    RunConfig.from_flat(canvas_size=3000)  # selection='ips' is never checked


def test_control_combinations_that_make_no_sense_are_refused():
    with pytest.raises(ConfigError, match="selection='random' needs architecture='ips'"):
        tiny(architecture="downsampled", selection="random")
    with pytest.raises(ConfigError, match="stkim_mode='seed_selection' masks selection scores"):
        tiny(selection="random", stkim_k=2, stkim_p=0.5)
    tiny(selection="random", stkim_k=2, stkim_p=0.5, stkim_mode="acmil_aggregation")
    with pytest.raises(ConfigError, match="architecture='downsampled' has none"):
        tiny(architecture="downsampled", stkim_k=2, stkim_p=0.5)
    with pytest.raises(ConfigError, match="regularisers"):
        tiny(architecture="downsampled", diversity_weight=1.0)
    with pytest.raises(ConfigError, match="downsample_size=4 is out of range"):
        tiny(architecture="downsampled", downsample_size=4)
    with pytest.raises(ConfigError, match="memory_budget_mb=0"):
        tiny(memory_budget_mb=0)


# ------------------------------------------------------------------------------------------- keys
def test_new_keys_at_their_default_leave_the_config_key_unchanged():
    cfg = tiny()
    flat = {k: v for k, v in cfg.to_flat().items() if k not in DEFAULT_FREE_KEYS}
    flat = {k: v for k, v in flat.items() if k not in ("device", "num_workers", "memory_budget_mb")}
    old_key = hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:12]
    assert cfg.key() == old_key
    assert tiny(memory_budget_mb=1000.0).key() == old_key  # the budget gates, it does not change a result
    changed = [tiny(selection="random"), tiny(selection_seed=3), tiny(architecture="downsampled")]
    changed.append(tiny(downsample_size=64))
    assert len({old_key, *(c.key() for c in changed)}) == 5


def test_recorded_runs_keep_their_keys():
    configs = sorted((ROOT / "outputs" / "cpu" / "runs").glob("*/" + records.CONFIG_FILE))
    if not configs:
        pytest.skip("no recorded cpu runs in this checkout")
    for path in configs:
        header = path.read_text().splitlines()[0]
        assert header.endswith(records.read_config(path.parent).key()), path


# ------------------------------------------------------------------------------- engine and predict
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model per arm, trained for one epoch through engine.training.train."""
    runs = {}
    for arm, extra in ARMS.items():
        out = tmp_path_factory.mktemp(arm)
        metrics = engine.train(tiny(**extra), out, progress=False)
        runs[arm] = (out, metrics)
    return runs


@pytest.mark.parametrize("arm", list(ARMS))
def test_each_arm_trains_through_the_engine(trained, arm):
    out, metrics = trained[arm]
    assert metrics["finished"] is True and metrics["config_key"] == tiny(**ARMS[arm]).key()
    for split in ("train", "test"):
        for values in metrics["last"][split].values():
            assert np.isfinite(values["loss"]) and 0 <= values["accuracy"] <= 1
    assert records.read_config(out).ips == tiny(**ARMS[arm]).ips


def test_select_batch_hands_whole_images_to_the_downsampled_model():
    cfg = tiny(**ARMS["downsampled"], sub_batch_size=2)
    selection = select_batch(build_model(cfg), torch.rand(4, 1, 160, 160), Context(cfg, torch.device("cpu")))
    assert selection.patches.shape == (4, 1, 1, 48, 48)


@pytest.mark.parametrize("arm", list(ARMS))
def test_predict_classifies_a_canvas_with_each_arm(trained, arm, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", str(trained[arm][0]), "--mnist-index", "1", "--out", str(out)]) == 0
    report = json.loads((out / "prediction.json").read_text())
    assert set(report["tasks"]) == {"majority", "max", "top", "multi"} and (out / "attention.png").is_file()
    kept = len(report["kept_patches"]["indices"])
    assert kept == {"random": 4, "all": 16, "downsampled": 0}[arm]
    assert report["selection"] == ARMS[arm].get("selection", "ips")


def test_predicted_random_patches_and_downsampled_logits_match_evaluation(trained):
    net, cfg = load_model(trained["random"][0])
    ds = MegapixelMNIST(cfg.data, "test")
    dense = patchify(to_float(ds[2].image[None]), 40).unsqueeze(0)
    assert np.array_equal(predict(net, cfg, mnist_source(cfg, 2)[0]).indices, net.select(dense).indices[0].numpy())
    net, cfg = load_model(trained["downsampled"][0])
    with torch.no_grad():
        expected = net(net.select(to_float(ds[2].image[None])[None]))
    got = predict(net, cfg, mnist_source(cfg, 2)[0]).tasks
    for task in cfg.tasks:
        probs = torch.softmax(expected[task][0], 0) if task != "multi" else torch.sigmoid(expected[task][0])
        assert np.allclose(got[task]["probabilities"], probs.numpy(), atol=1e-5)


def test_band_by_band_downsample_equals_the_whole_image_resize():
    image = (np.random.default_rng(0).random((3, 157, 203)) * 255).astype(np.uint8)
    source = ArrayPatchSource([image], patch_size=20)
    whole = area_downsample(to_float(image)[None], 48)
    assert torch.allclose(downsample_source(source, 0, 48), whole, atol=1e-6)
    assert torch.allclose(downsample_source(source, 0, 200), area_downsample(to_float(image)[None], 200), atol=1e-6)


def test_predict_refuses_all_selection_on_a_huge_canvas(trained, capsys):
    run = str(trained["all"][0])
    assert main(["predict", run, "--mnist-index", "0", "--canvas", "48000", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "selection='all' on this 48000x48000 image" in err and "1·1440000 = 1,440,000 patches" in err
    assert "without gradients: estimated" in err and "memory_budget_mb=16384" in err
