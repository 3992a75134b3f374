"""The book's front and back pages: the claims ledger, the limits of a profile, the paper-scale cost, the
execution status (each run's training time counted once)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ipslib.study import ledger
from ipslib.study.experiments import load_experiment, load_experiments
from ipslib.study.pages import scale
from ipslib.study.statistics import t_ppf

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = """
traffic:
  smoke: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32, class_probs: [0.4, 0.2, 0.2, 0.2]}
  cpu: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
        sign_max_size: 24, patch_size: 32, class_probs: [0.4, 0.2, 0.2, 0.2]}
  paper: {dataset: synthetic_traffic, image_height: 64, image_width: 64, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32}
"""
A = """
title: A
ids: [E1]
family: traffic
profiles:
  smoke: {grid: {n_train: [100, 400]}, repeats: 3}
  cpu: {grid: {n_train: [100, 400]}}
  paper: {grid: {n_train: [100, 400]}}
claims:
  - {text: more data helps, higher: {n_train: max}, lower: {n_train: min}, register: [P14]}
"""
B = """
title: B
ids: [E2]
family: traffic
profiles:
  smoke: {fixed: {n_train: 100}, repeats: 3}
  cpu: {fixed: {n_train: 100}}
  paper: {fixed: {n_train: 100}}
"""


@pytest.fixture
def root(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text(DEFAULTS)
    (tmp_path / "params" / "a.yaml").write_text(A)
    (tmp_path / "params" / "b.yaml").write_text(B)
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    return tmp_path


def record(spec, test: float, seconds: float = 10.0) -> None:
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    block = {
        "epoch": 1,
        "train": {"sign": {"accuracy": 0.95, "loss": 1.0}},
        "test": {"sign": {"accuracy": test, "loss": 1.0}},
    }
    (spec.run_dir / "metrics.json").write_text(
        json.dumps({"last": block, "best": block, "finished": True, "config_key": spec.key})
    )
    (spec.run_dir / "history.csv").write_text(f"epoch,epoch_seconds\n1,{seconds}\n")
    spec.run_dir.joinpath("config.yaml").write_text(f"# key {spec.key}\n")


def test_the_ledger_lists_every_claim_with_its_verdict_and_links(root):
    experiment = load_experiment(root / "params" / "a.yaml", root=root)
    for spec in experiment.runs("smoke"):
        record(spec, 0.8 if spec.config.data.n_train == 400 else 0.55 + 0.01 * spec.repeat)
    records = ledger.ledger("smoke", root)
    assert [(r["experiment"], r["verdict"]) for r in records] == [("a", "supported")]
    assert ledger.ledger_counts(records)["supported"] == 1 and sum(ledger.ledger_counts(records).values()) == 1
    page = ledger.ledger_html(records)
    assert '<a href="a.html">A</a>' in page and 'href="register.html#p14"' in page and "<b>supported</b>" in page
    assert "1 claims tested" in ledger.ledger_summary(records, "smoke")
    box = ledger.found_box([], "smoke")
    assert "What we found" in box and "no comparative claim" in box


def test_detectable_difference_follows_the_t_formula():
    got = scale.detectable_difference(200, 3, seed_sd=2.0)
    sd = math.sqrt(4.0 + 1e4 * 0.25 / 200)
    assert got == pytest.approx((t_ppf(0.975, 4) + t_ppf(0.8, 4)) * sd * math.sqrt(2 / 3))
    assert (
        scale.detectable_difference(200, 5) < scale.detectable_difference(200, 3) < scale.detectable_difference(100, 3)
    )
    assert scale.detectable_difference(200, 1) == math.inf
    table = scale.power_table(200, {"none": 0.0, "wide": 10.0})
    assert list(table.index) == ["none", "wide"] and (table.iloc[1] > table.iloc[0]).all()


def test_paper_cost_counts_each_paper_run_once():
    cost = scale.paper_cost(ROOT)
    distinct = {s.key for e in load_experiments(ROOT).values() for s in e.runs("paper")}
    assert cost["new runs"].sum() == len(distinct)
    assert (cost["GPU hours (estimate)"] >= 0).all() and cost["GPU hours (estimate)"].sum() > 0
    assert all(c.startswith("ipslib run ") and c.endswith("--profile paper") for c in cost["command"])


def test_limits_table_sets_the_profile_beside_the_paper(root):
    table = scale.limits_table("cpu", root)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "n_train (cpu)"] == "100-400" and table.loc["b", "image (paper)"] == "64"


def test_status_counts_a_shared_run_once_and_adds_up(root):
    from ipslib.study.pages import status

    experiments = load_experiments(root)
    for spec in experiments["a"].runs("cpu"):
        record(spec, 0.6, seconds=3600.0)
    (shared,) = experiments["b"].runs("cpu")  # n_train 100: the same run as a's n_train=100 arm
    assert shared.key in {s.key for s in experiments["a"].runs("cpu")}
    rows = status.execution_rows("cpu")
    assert rows.loc["a", "counted here"] == 2 and rows.loc["b", "counted here"] == 0
    assert rows.loc["b", "finished"] == 1
    assert rows.loc["total (each run once)", "training (h)"] == pytest.approx(2.0)
    assert isinstance(rows, pd.DataFrame)


def test_campaign_note_times_the_missing_runs_from_finished_ones(root):
    experiments = load_experiments(root)
    specs = experiments["a"].runs("cpu")
    record(specs[0], 0.6, seconds=1800.0)
    note = scale.campaign_note("cpu", root)
    assert note.startswith("**1 of 2 distinct runs**") and "1 runs missing, about 0.5 h at the 30 min" in note
