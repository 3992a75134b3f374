"""Patch encoders: shapes, weights from files / the weights API, freezing and BatchNorm handling."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from ipslib.config import EncoderConfig
from ipslib.model.encoder import PatchEncoder, WeightsUnavailableError


@pytest.mark.parametrize("n_blocks", [1, 2, 4])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_resnet18_shapes(n_blocks: int, in_channels: int) -> None:
    config = EncoderConfig(arch="resnet18", n_res_blocks=n_blocks)
    encoder = PatchEncoder(config=config, in_channels=in_channels)
    out = encoder(torch.rand(3, in_channels, 16, 16))
    assert out.shape == (3, 64 * 2 ** (n_blocks - 1)) == (3, config.embed_dim)
    assert encoder.trunk[0].in_channels == in_channels
    assert all(p.requires_grad for p in encoder.parameters())


def test_one_channel_conv1_is_the_specified_layer() -> None:
    conv1 = PatchEncoder(config=EncoderConfig(), in_channels=1).trunk[0]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride, conv1.padding) == (
        1,
        64,
        (7, 7),
        (2, 2),
        (3, 3),
    )
    assert conv1.bias is None


@pytest.mark.parametrize("in_channels", [1, 3])
def test_frozen_resnet50_trains_only_the_projection(in_channels: int) -> None:
    config = EncoderConfig(arch="resnet50", n_res_blocks=4, proj_dim=24)
    encoder = PatchEncoder(config=config, in_channels=in_channels)
    assert encoder(torch.rand(2, in_channels, 16, 16)).shape == (2, 24)
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {"proj.weight", "proj.bias"}
    assert encoder.proj.in_features == 2048


def test_resnet18_projection() -> None:
    encoder = PatchEncoder(config=EncoderConfig(n_res_blocks=2, proj_dim=10), in_channels=3)
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, 10)


@pytest.fixture()
def resnet18_file(tmp_path):
    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-default BN statistics so that a load is visible
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_weights_file_loads_kept_layers(resnet18_file) -> None:
    net, path = resnet18_file
    encoder = PatchEncoder(config=EncoderConfig(n_res_blocks=2, weights="file", weights_path=str(path)), in_channels=3)
    own = encoder.trunk.state_dict()
    assert torch.equal(own["0.weight"], net.conv1.weight)
    assert torch.equal(own["5.1.bn2.running_var"], net.layer2[1].bn2.running_var)
    assert len(encoder.trunk) == 4 + 2 + 2  # stem, two stages, pool, flatten


def test_weights_file_one_channel_sums_rgb_kernels(resnet18_file) -> None:
    net, path = resnet18_file
    config = EncoderConfig(n_res_blocks=1, weights="file", weights_path=str(path))
    grey = PatchEncoder(config=config, in_channels=1).eval()
    rgb = PatchEncoder(config=config, in_channels=3).eval()
    assert torch.allclose(grey.trunk[0].weight, net.conv1.weight.sum(dim=1, keepdim=True))
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5)


def test_weights_file_errors(tmp_path) -> None:
    missing = EncoderConfig(weights="file", weights_path=str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        PatchEncoder(config=missing, in_channels=1)
    garbled = tmp_path / "garbled.pth"
    garbled.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(ValueError, match="not a readable torch state-dict"):
        PatchEncoder(config=EncoderConfig(weights="file", weights_path=str(garbled)), in_channels=1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    wrong = tmp_path / "wrong.pth"
    torch.save({**state, "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}, wrong)
    with pytest.raises(ValueError, match="wrong architecture"):
        PatchEncoder(config=EncoderConfig(weights="file", weights_path=str(wrong)), in_channels=3)
    del state["layer2.0.bn1.bias"]
    torch.save(state, wrong)
    with pytest.raises(ValueError, match="missing"):
        PatchEncoder(config=EncoderConfig(weights="file", weights_path=str(wrong)), in_channels=3)


def test_imagenet_without_network_says_how_to_supply_a_file(monkeypatch, tmp_path) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match=r"weights='file', weights_path="):
        PatchEncoder(config=EncoderConfig(weights="imagenet_v1"), in_channels=3)


def test_bad_in_channels_names_choices() -> None:
    with pytest.raises(ValueError, match="choose one of 1, 3"):
        PatchEncoder(config=EncoderConfig(), in_channels=2)


def _bn_means(encoder: PatchEncoder) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("freeze_bn", [False, True])
def test_freeze_bn(freeze_bn: bool) -> None:
    encoder = PatchEncoder(config=EncoderConfig(n_res_blocks=1, freeze=True, freeze_bn=freeze_bn), in_channels=1)
    assert not any(p.requires_grad for p in encoder.trunk.parameters())
    encoder.train()
    before = _bn_means(encoder)
    encoder(torch.rand(4, 1, 16, 16))
    changed = any(not torch.equal(a, b) for a, b in zip(before, _bn_means(encoder)))
    assert changed is not freeze_bn  # the author's frozen trunk (freeze_bn=False) lets the statistics drift
    bn_modes = {m.training for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)}
    assert bn_modes == {not freeze_bn}
    assert encoder.training
