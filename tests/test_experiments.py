"""params/ → manifest: every experiment parses in every profile; grids, cases, repeats and errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ipslib.config import ConfigError
from ipslib.study.experiments import PROFILES, load_experiment, load_experiments, manifest

ROOT = Path(__file__).resolve().parents[1]
SPEC_IDS = {f"E{i}" for i in range(1, 20)} | {"X1", "X2"}
BOOK_IDS = {"C1"}  # this book's own experiments (the control arms of issue 16), not in the spec's list


@pytest.fixture(scope="module")
def experiments():
    return load_experiments(ROOT)


def test_every_spec_experiment_is_covered(experiments):
    ids = {i for exp in experiments.values() for i in exp.ids}
    assert ids == SPEC_IDS | BOOK_IDS


def test_paper_profile_has_the_logged_settings(experiments):
    runs = {r.name: r.config for r in experiments["o2i_datasize"].runs("paper")}
    assert len(runs) == 16
    cfg = runs["o2i_datasize/digit_size=84,n_noise=400,n_train=2000"]
    assert (cfg.data.canvas_size, cfg.n_patches, cfg.ips.memory_size, cfg.train.epochs) == (3000, 3600, 100, 100)
    patch = {r.config.ips.patch_size: r.config for r in experiments["mnist_patch_size"].runs("paper")}
    assert {p: c.n_patches for p, c in patch.items()} == {25: 14400, 50: 3600, 100: 900, 150: 400}
    assert patch[150].ips.memory_size == patch[150].ips.iter_size == 50
    traffic = experiments["traffic_patch_size"].runs("paper")
    assert len(traffic) == 20 and {r.config.train.train_seed for r in traffic} == set(range(5))
    assert all(r.config.dataset == "traffic_signs" and r.config.train.epochs == 150 for r in traffic)
    k_sweep = experiments["mnist_stkim_k"].runs("paper")
    assert all(r.config.n_patches == 900 for r in k_sweep)  # the logs' 1500² canvas (spec §11.3)


def test_shared_runs_train_once(experiments):
    e9 = {r.key for r in experiments["mnist_stkim_p"].runs("paper")}
    e13 = {r.key for r in experiments["digit_resolution"].runs("paper")}
    assert len(e9 & e13) == 1  # the P = 0 baseline is E13's 28-px run


def test_grid_values_may_be_mappings(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text("mnist: {smoke: {}, cpu: {}, paper: {}}\n")
    path = tmp_path / "params" / "x.yaml"
    path.write_text(
        "family: mnist\nprofiles:\n  smoke:\n    grid:\n      o2i: [{digit_size: 14}, {digit_size: 28}]\n"
        "      n_train: [5, 6]\n    repeats: 2\n  cpu: {}\n  paper: {runs: false}\n"
    )
    exp = load_experiment(path, root=tmp_path)
    runs = exp.runs("smoke")
    assert len(runs) == 8 and runs[0].varied == {"digit_size": 14, "n_train": 5}
    assert [r.config.train.train_seed for r in runs[:2]] == [0, 1]
    assert exp.runs("paper") == [] and len(exp.runs("cpu")) == 1


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("titel: x\n", "unknown key(s) titel"),
        ("profiles: {smoke: {}, cpu: {}}\n", "profiles must be exactly"),
        ("profiles: {smoke: {grid: {n_train: 5}}, cpu: {}, paper: {}}\n", "grid must map each key"),
        ("profiles: {smoke: {fixed: {n_trian: 5}}, cpu: {}, paper: {}}\n", "unknown key(s) n_trian"),
        ("profiles: {smoke: {repeats: 0}, cpu: {}, paper: {}}\n", "repeats=0"),
        ("notebook: nope\nprofiles: {smoke: {}, cpu: {}, paper: {}}\n", "has no template"),
    ],
)
def test_bad_params_files_fail_clearly(tmp_path, body, fragment):
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_experiment(path, root=tmp_path)
    assert fragment in str(err.value) and "bad.yaml" in str(err.value)


def test_manifest_cli_json():
    out = subprocess.run(
        [sys.executable, "-m", "ipslib.cli", "runs", "--profile", "paper", "--experiment", "traffic_subset", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    rows = json.loads(out.stdout)
    assert len(rows) == 30 and {r["config"]["subset_fraction"] for r in rows} == {0.25, 0.5, 1.0}
    assert all(set(r) >= {"name", "key", "run_dir", "finished", "config", "varied"} for r in rows)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves(profile):
    rows = manifest(profile, root=ROOT)
    assert rows and all(r["profile"] == profile for r in rows)


def test_root_toc_is_in_step_with_params():
    import yaml

    from ipslib.study.book import toc

    committed = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert committed == toc("cpu"), "run `ipslib book --no-run` (or ipslib.study.book.write_toc('cpu')) to regenerate"
