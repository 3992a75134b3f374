"""RunConfig: flat round trip, derived values, and clear errors for bad keys, types and ranges."""

import pytest

from ipslib.config import ConfigError, MegapixelMNISTConfig, RunConfig, build


def test_flat_round_trip_and_key_stability():
    cfg = RunConfig.from_flat(canvas_size=3000, digit_size=56, n_noise="o2i_rule", lr=3e-4)
    again = RunConfig.from_flat(cfg.to_flat())
    assert again == cfg
    assert again.key() == cfg.key()
    assert cfg.replace(lr=1e-3).key() != cfg.key()
    assert cfg.replace(threads=2, device="cpu").key() == cfg.key()  # where it runs is not what it is


@pytest.mark.parametrize(
    "canvas,patch,stride,grid",
    [(3000, 50, None, (60, 60)), (1500, 50, None, (30, 30)), (3000, 150, None, (20, 20)), (1500, 50, 25, (59, 59))],
)
def test_derived_grid(canvas, patch, stride, grid):
    cfg = RunConfig.from_flat(canvas_size=canvas, patch_size=patch, patch_stride=stride)
    assert cfg.grid_shape == grid
    assert cfg.n_patches == grid[0] * grid[1]
    assert cfg.in_channels == 1 and cfg.embed_dim == 128 and list(cfg.tasks) == ["majority", "max", "top", "multi"]


def test_traffic_derived_values():
    cfg = RunConfig.from_flat(dataset="synthetic_traffic", patch_size=100, n_res_blocks=4, use_pos=False)
    assert cfg.n_patches == 192 and cfg.in_channels == 3 and cfg.embed_dim == 512 and list(cfg.tasks) == ["sign"]


def test_noise_rule():
    assert [
        MegapixelMNISTConfig(canvas_size=3000, digit_size=d, n_noise="o2i_rule").noise_count for d in (28, 56, 84, 112)
    ] == [800, 600, 400, 200]


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"canvas_sizee": 3}, "unknown key(s) canvas_sizee"),
        ({"canvas_size": 100}, "canvas_size=100 is too small"),
        ({"n_train": -1}, "n_train=-1 is out of range"),
        ({"noise_type": "zigzag"}, "noise_type='zigzag' is not valid; choose one of 'bezier', 'lines'"),
        ({"thickness_mode": "round"}, "thickness_mode='round' is not valid"),
        ({"digit_size": 0}, "digit_size=0 is out of range"),
        ({"lr": "fast"}, "lr='fast' has the wrong type"),
        ({"shuffle": 1}, "shuffle=1 has the wrong type"),
        ({"dataset": "cifar"}, "dataset='cifar' is not valid"),
        ({"dataset": "synthetic_traffic", "canvas_size": 3000}, "unknown key(s) canvas_size"),
        ({"arch": "resnet50"}, "needs proj_dim"),
        ({"weights": "file"}, "needs weights_path"),
        ({"stkim_p": 1.5}, "stkim_p=1.5 is out of range"),
        ({"patch_size": 2000}, "larger than the image"),
        ({"noise_thickness": 0.5}, "draws nothing"),
    ],
)
def test_bad_configs_name_the_key(params, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        RunConfig.from_flat(params)
    assert fragment in str(err.value)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml: expected a mapping"):
        RunConfig.from_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("epoch: 3\n")
    with pytest.raises(ConfigError, match="typo.yaml: unknown key"):
        RunConfig.from_yaml(typo)
    with pytest.raises(ConfigError, match="no such file"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_build_accepts_dicts_and_coerces_numbers():
    cfg = build(MegapixelMNISTConfig, {"noise_thickness": 2, "canvas_size": 300})
    assert isinstance(cfg.noise_thickness, float) and cfg.o2i == 28**2 / 300**2


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("lr: 3e-4\nweight_decay: 1E-2\nstkim_p: .5e0\n")
    cfg = RunConfig.from_yaml(path)
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.stkim.stkim_p) == (3e-4, 1e-2, 0.5)
