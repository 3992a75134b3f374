"""``ipslib train`` end to end, and clear failures for bad --set keys and values."""

import json

import pytest
import yaml
from tiny import tiny_mnist

from ipslib import cli
from ipslib.cli.train import parse_sets
from ipslib.engine import records

TINY = tiny_mnist(
    canvas_size=200,
    n_noise=5,
    n_train=4,
    n_test=2,
    patch_size=20,
    iter_size=8,
    n_heads=4,
    head_dim=16,
    mlp_dim=32,
    epochs=2,
    warmup_epochs=1,
)


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_parse_sets_reads_yaml_values():
    assert parse_sets(["lr=3e-4", "shuffle=false", "sub_batch_size=null", "device=cpu", "n_noise= 7"]) == {
        "lr": 3e-4,
        "shuffle": False,
        "sub_batch_size": None,
        "device": "cpu",
        "n_noise": 7,
    }


def test_train_end_to_end_then_skip(params, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", str(params), "--out", str(out), "--set", "epochs=1"]) == 0
    assert {p.name for p in out.iterdir()} == {
        records.CONFIG_FILE,
        records.HISTORY_FILE,
        records.METRICS_FILE,
        records.CHECKPOINT_FILE,
    }
    metrics = json.loads((out / records.METRICS_FILE).read_text())
    assert metrics["finished"] and metrics["epochs"] == 1
    assert records.read_config(out).train.epochs == 1
    assert "epoch 1/1" in capsys.readouterr().out
    assert cli.main(["train", str(params), "--out", str(out), "--set", "epochs=1", "--quiet"]) == 0
    assert cli.main(["train", str(params), "--out", str(out), "--set", "epochs=1"]) == 0
    assert "complete" in capsys.readouterr().out


@pytest.mark.parametrize(
    "item, needle",
    [
        ("memory_sise=5", "memory_sise"),  # unknown key: named, valid keys listed
        ("memory_size=five", "memory_size"),  # wrong type
        ("lr=-1", "lr"),  # out of range
        ("lr=[1", "lr"),  # not YAML
        ("memory_size", "KEY=VALUE"),  # no '='
    ],
)
def test_bad_set_fails_naming_the_key(params, tmp_path, capsys, item, needle):
    out = tmp_path / "run"
    assert cli.main(["train", str(params), "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err
    assert needle in err and "error" in err
    if item.startswith("memory_sise"):
        assert "valid keys" in err and "memory_size" in err
    assert not out.exists()


def test_conflicting_run_dir_is_refused_by_the_cli(params, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", str(params), "--out", str(out), "--quiet", "--stop-after-epoch", "0"]) == 0
    assert cli.main(["train", str(params), "--out", str(out), "--set", "lr=0.01"]) == 2
    assert "lr: 0.001 -> 0.01" in capsys.readouterr().err
