"""RunConfig: flat round trip, derived values, and clear errors for bad keys, types and ranges."""

import pytest

from ipslib.config import ConfigError, MegapixelMNISTConfig, RunConfig, build


def test_flat_round_trip_and_key_stability():
    cfg = RunConfig.from_flat(canvas_size=3000, digit_size=56, n_noise="o2i_rule", lr=3e-4)
    again = RunConfig.from_flat(cfg.to_flat())
    assert again == cfg
    assert again.key() == cfg.key()
    assert cfg.replace(lr=1e-3).key() != cfg.key()
    assert cfg.replace(device="cpu", num_workers=2).key() == cfg.key()  # where it runs is not what it is
    assert cfg.replace(threads=2).key() != cfg.replace(threads=1).key()  # CPU sums depend on the thread count


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


# --------------------------------------------------------------- Literal option types, read from the annotations
def _option_fields() -> list[tuple[str, type, str, tuple]]:
    """(dataset, section class, field, valid values) for every Literal-typed field of every config class."""
    import typing

    from ipslib.config import DATASETS, SECTIONS
    from ipslib.config.base import literal_values

    found = [("megapixel_mnist", RunConfig, "dataset", literal_values(typing.get_type_hints(RunConfig)["dataset"]))]
    classes = [(name, cls) for name, cls in DATASETS.items()] + [("megapixel_mnist", cls) for cls in SECTIONS.values()]
    for dataset, cls in classes:
        for name, annotation in typing.get_type_hints(cls).items():
            values = literal_values(annotation)
            if values is not None:
                found.append((dataset, cls, name, values))
    return found


OPTION_FIELDS = _option_fields()
FREE_TEXT = {"root", "weights_path", "device"}  # paths, and "cuda:1" (its kind is checked against DeviceKind)


def test_every_fixed_choice_field_is_a_literal():
    import typing

    from ipslib.config import DATASETS, SECTIONS

    plain = [
        f"{cls.__name__}.{name}"
        for cls in [*DATASETS.values(), *SECTIONS.values()]
        for name, annotation in typing.get_type_hints(cls).items()
        if annotation is str and name not in FREE_TEXT
    ]
    assert not plain, f"option fields typed plain str (give them a Literal alias in ipslib.config.options): {plain}"
    named = {name for _, _, name, _ in OPTION_FIELDS}
    assert named >= {
        "dataset", "digit_source", "n_noise", "noise_type", "thickness_mode", "subset_mode", "train_set",
        "shuffle_style", "arch", "weights", "diversity_target", "semantic_heads", "stkim_mode", "stkim_sampling", "amp",
    }  # fmt: skip


@pytest.mark.parametrize("dataset, cls, name, values", OPTION_FIELDS, ids=[f[2] for f in OPTION_FIELDS])
def test_invalid_option_names_the_key_and_the_annotated_choices(dataset, cls, name, values):
    expected = f"{name}='nonsense' is not valid; choose one of {', '.join(map(repr, values))}"
    params = {name: "nonsense"} if name == "dataset" else {"dataset": dataset, name: "nonsense"}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_flat(params)
    assert expected in str(err.value)
    if cls is not RunConfig:  # direct construction checks the same way
        with pytest.raises(ConfigError, match="is not valid; choose one of"):
            cls(**{name: "nonsense"})


@pytest.mark.parametrize("dataset, cls, name, values", OPTION_FIELDS, ids=[f[2] for f in OPTION_FIELDS])
def test_every_annotated_choice_is_accepted(dataset, cls, name, values):
    for value in values:
        extra = {"weights_path": "w.pt"} if value == "file" else {}
        if value == "resnet50":
            extra = {"proj_dim": 128}
        if value == "imagenet_v2":
            extra = {"arch": "resnet50", "proj_dim": 128}
        if value == "traffic_signs" or value == "synthetic_traffic":
            extra = {"patch_size": 100}
        cfg = RunConfig.from_flat({"dataset": dataset, name: value, **extra})
        assert cfg.to_flat()[name] == value


def test_option_values_are_the_literal_aliases():
    import typing

    from ipslib.config import DATASETS, STKIMConfig, choices, options

    assert tuple(DATASETS) == choices(options.DatasetName)
    assert typing.get_type_hints(STKIMConfig)["stkim_sampling"] == options.STKIMSampling | None
    with pytest.raises(TypeError, match="not a Literal"):
        choices(str)


def test_union_options_keep_their_other_members():
    from ipslib.config import STKIMConfig

    assert MegapixelMNISTConfig(n_noise=7).noise_count == 7
    assert STKIMConfig(stkim_sampling=None).sampling == "bernoulli"
    with pytest.raises(ConfigError, match=r"n_noise='many' is not valid; choose one of 'o2i_rule' \(or int\)"):
        MegapixelMNISTConfig(n_noise="many")
    with pytest.raises(ConfigError, match=r"'bernoulli', 'exact_fraction' \(or None\)"):
        STKIMConfig(stkim_sampling="coin")
    with pytest.raises(ConfigError, match="noise_type=3 has the wrong type"):
        RunConfig.from_flat(noise_type=3)
    with pytest.raises(ConfigError, match="noise_type=3 is not valid; choose one of 'bezier', 'lines'"):
        MegapixelMNISTConfig(noise_type=3)


@pytest.mark.parametrize(
    "device, ok", [("auto", True), ("cpu", True), ("cuda", True), ("cuda:1", True), ("tpu", False)]
)
def test_device_kind(device, ok):
    if ok:
        assert RunConfig.from_flat(device=device).train.device == device
    else:
        with pytest.raises(ConfigError, match="device='tpu' is not valid; choose one of 'auto', 'cpu', 'cuda'"):
            RunConfig.from_flat(device=device)


def test_split_is_checked_against_its_literal():
    from ipslib.config import SyntheticTrafficConfig

    assert MegapixelMNISTConfig(n_test=3).n_items("test") == 3
    with pytest.raises(ConfigError, match="split='val' is not valid; choose one of 'train', 'test'"):
        SyntheticTrafficConfig().n_items("val")


# --------------------------------------------------------------------------------------------------- TaskSpec
def test_task_spec_validates_kind_and_classes():
    from ipslib.config import TaskSpec

    assert TaskSpec(10, "multilabel").kind == "multilabel"
    with pytest.raises(ConfigError, match="TaskSpec: kind='regression' is not valid; choose one of 'multiclass', "):
        TaskSpec(3, "regression")
    with pytest.raises(ConfigError, match="TaskSpec: n_classes=0 is out of range; it must be >= 1"):
        TaskSpec(0, "multiclass")
    for bad in (2.0, True, "3"):
        with pytest.raises(ConfigError, match="n_classes=.* has the wrong type"):
            TaskSpec(bad, "multiclass")
