"""Attention maps: loading a run, placement of kept patches on the grid (shuffle on/off), figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from ipslib.analysis import attention, attention_plots
from ipslib.config import RunConfig
from ipslib.model.ips import IPSNet

P, SIDE = 8, 40  # 5 x 5 grid
BRIGHT = {7: 1.0, 13: 0.8, 21: 0.6}  # grid index -> brightness of the patches the stub model must keep


def config(**changes) -> RunConfig:
    flat = dict(
        canvas_size=SIDE,
        digit_size=8,
        n_noise=0,
        patch_size=P,
        memory_size=3,
        iter_size=4,
        use_pos=False,
        dedup_blank=False,
        n_res_blocks=1,
        n_heads=2,
        head_dim=4,
        mlp_dim=8,
    )
    return RunConfig.from_flat({**flat, **changes})


class _MeanEncoder(nn.Module):
    """Embedding = (patch mean, 0, ..., 0): the scorer below then ranks patches by brightness."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x):
        out = torch.zeros(len(x), self.dim)
        out[:, 0] = x.flatten(1).mean(dim=1)
        return out


def known_model(cfg: RunConfig) -> IPSNet:
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg)
    net.encoder = _MeanEncoder(cfg.embed_dim)
    net.aggregator.get_scores = lambda emb: (20 * emb[..., 0]).softmax(dim=-1)
    return net.eval()


def image() -> torch.Tensor:
    x = torch.zeros(1, SIDE, SIDE)
    for index, value in BRIGHT.items():
        r, c = divmod(index, SIDE // P)
        x[0, r * P : (r + 1) * P, c * P : (c + 1) * P] = value
    return x


@pytest.mark.parametrize("shuffle", [True, False])
def test_scores_land_in_the_right_cells(shuffle):
    cfg = config(shuffle=shuffle)
    maps = attention.compute_maps(known_model(cfg), cfg, image(), seed=5)
    assert sorted(maps.indices.tolist()) == sorted(BRIGHT)
    grid = maps.to_grid()
    assert grid.shape == (5, 5) and np.isnan(grid).sum() == 25 - 3
    cells = [divmod(i, 5) for i in BRIGHT]
    assert grid[cells[0]] > grid[cells[1]] > grid[cells[2]]  # brightest patch scores highest
    assert maps.aggregation.shape == (4, 3) and np.allclose(maps.aggregation.sum(axis=1), 1, atol=1e-5)
    assert set(maps.predictions) == {"majority", "max", "top", "multi"}
    author = attention.author_style_grid(maps)
    if shuffle:
        assert not np.array_equal(np.isnan(author), np.isnan(grid))
    else:
        np.testing.assert_array_equal(author, grid)


def test_author_style_uses_positions_in_the_entry_order():
    cfg = config(shuffle=True)
    net = known_model(cfg)
    seen = []
    score = net._score
    net._score = lambda emb, idx, **kw: (seen.append(idx.clone()), score(emb, idx, **kw))[1]
    maps = attention.compute_maps(net, cfg, image(), seed=11)
    np.testing.assert_array_equal(seen[0][0].numpy(), maps.order[:7])  # the order select really used
    author = attention.author_style_grid(maps)
    for index, value in zip(maps.indices, maps.selection_scores):
        position = int(np.flatnonzero(maps.order == index)[0])
        assert author.ravel()[position] == pytest.approx(value)


def test_seed_makes_maps_reproducible():
    cfg = config(shuffle=True, stkim_k=2, stkim_p=0.5)
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).eval()
    a, b = (attention.compute_maps(net, cfg, image(), seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.selection_scores, b.selection_scores)


def test_load_trained_errors_name_the_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        attention.load_trained(missing)
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"run holds no checkpoint\.pt"):
        attention.load_trained(tmp_path / "run")


def test_load_trained_round_trip(tmp_path):
    cfg = config()
    torch.manual_seed(1)
    net = IPSNet.from_config(cfg)
    torch.save({"model": net.state_dict(), "config": cfg.to_flat()}, tmp_path / "checkpoint.pt")
    loaded, loaded_cfg = attention.load_trained(tmp_path)
    assert loaded_cfg == cfg and not loaded.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_all_patch_scores_and_summaries():
    cfg = config(use_pos=True)
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).eval()
    scores = attention.score_all_patches(net, cfg, image(), chunk=7)
    assert scores.shape == (25,) and scores.sum() == pytest.approx(1, abs=1e-5)
    summary = attention.score_summary(np.ones(20), top=10)
    assert summary["normalised entropy"] == pytest.approx(1) and summary["top-10 share"] == pytest.approx(0.5)
    maps = attention.compute_maps(net, cfg, image())
    frame = attention.score_density(maps, scores, label="x")
    assert len(frame) == 3 + 25 and set(frame["run"]) == {"x"}


def test_object_overlap():
    grid = np.full((5, 5), np.nan)
    grid[1, 2] = grid[4, 4] = 1.0
    out = attention.object_overlap(grid, np.array([[8, 16, 8, 8]]), patch_size=P, stride=P)
    assert (out["kept"], out["on_object"], out["share"]) == (2, 1, 0.5) and out["blind_share"] == pytest.approx(1 / 25)
    assert out["p_value"] == pytest.approx(1 - (24 / 25) * (23 / 24))  # P(the object cell is among 2 drawn)


def test_figures():
    cfg = config(shuffle=True)
    maps = attention.compute_maps(known_model(cfg), cfg, image())
    canvas = (image()[0].numpy() * 255).astype(np.uint8)
    boxes = np.array([[8, 16, 8, 8]])
    fig = attention_plots.plot_maps(canvas, maps, boxes=boxes, title="t")
    assert isinstance(fig, Figure) and fig.get_suptitle() == "t"
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title()[:3] for ax in panels] == ["(a)"] + ["(b)"] * 4  # selection, then one per task
    assert all(len(ax.collections[0].get_paths()) == 3 for ax in panels)  # the M = 3 kept patches
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 2
    placement = attention_plots.plot_placement(canvas, maps, boxes=boxes)
    assert [ax.get_title() for ax in placement.axes[:2]] == [
        "grid indices (ipslib)",
        "shuffled positions as cells (author's script)",
    ]


def test_colour_scale_of_equal_scores_is_readable():
    from ipslib.analysis.attention_plots import _score_norm

    flat = _score_norm(np.array([0.25, 0.25]))
    assert (flat.vmin, flat.vmax) == (0.0, 0.25)
    spread = _score_norm(np.array([0.1, 0.3]))
    assert (spread.vmin, spread.vmax) == (0.1, 0.3)
    assert _score_norm(np.array([0.2, 0.4]), low=0.0).vmin == 0.0
