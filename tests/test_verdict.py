"""Computed verdicts (ipslib.study.verdict): claim parsing, arm selection, the decision rule and the real params."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ipslib.config import ConfigError
from ipslib.study.experiments import load_experiment, load_experiments
from ipslib.study.verdict import Z_THRESHOLD, evaluate, parse_claims, verdict_markdown, verdict_table

ROOT = Path(__file__).resolve().parents[1]

PARAMS = """
title: t
family: traffic
profiles:
  smoke: {grid: {n_train: [100, 400]}, repeats: 2}
  cpu: {grid: {n_train: [100, 400]}}
  paper: {grid: {n_train: [100, 400]}}
claims:
  - text: more data helps
    source: Table 0
    higher: {n_train: max}
    lower: {n_train: min}
  - text: no difference
    higher: {n_train: 400}
    lower: {n_train: 100}
    expect: similar
"""
DEFAULTS = """
traffic:
  smoke: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32, class_probs: [0.4, 0.2, 0.2, 0.2]}
  cpu: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
        sign_max_size: 24, patch_size: 32}
  paper: {dataset: synthetic_traffic, image_height: 64, image_width: 64, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32}
"""


@pytest.fixture
def experiment(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text(DEFAULTS)
    (tmp_path / "params" / "x.yaml").write_text(PARAMS)
    return load_experiment(tmp_path / "params" / "x.yaml", root=tmp_path)


def _runs(specs, accuracy_by_n_train: dict[int, list[float]]) -> pd.DataFrame:
    rows = []
    for spec in specs:
        values = accuracy_by_n_train.get(spec.config.data.n_train)
        acc = values[spec.repeat] if values else None
        rows.append({"key": spec.key, "finished": acc is not None, "last_test_sign": acc})
    return pd.DataFrame(rows)


def test_clear_gain_is_confirmed_and_the_similarity_claim_is_not(experiment):
    specs = experiment.runs("smoke")
    runs = _runs(specs, {100: [0.55, 0.57], 400: [0.80, 0.82]})
    more, same = (evaluate(c, specs, runs) for c in experiment.claims)
    row = more.tasks.loc["sign"]
    assert more.outcome == "confirmed" and row["result"] == "supported"
    assert row["higher arm (%)"] == pytest.approx(81.0) and row["lower arm (%)"] == pytest.approx(56.0)
    assert row["chance (%)"] == pytest.approx(40.0) and row["repeats"] == 2
    # binomial standard errors over 200 x 2 test images dominate the repeats' spread of 1 point
    se = math.hypot(math.sqrt(0.81 * 0.19 / 400), math.sqrt(0.56 * 0.44 / 400))
    assert row["z"] == pytest.approx(0.25 / se)
    assert same.outcome == "not confirmed" and same.tasks.loc["sign", "result"] == "differs"


def test_small_or_reversed_differences_and_chance_level_runs(experiment):
    specs = experiment.runs("smoke")
    more = experiment.claims[0]
    tiny = evaluate(more, specs, _runs(specs, {100: [0.60, 0.62], 400: [0.62, 0.63]}))
    assert tiny.tasks.loc["sign", "result"] == "no clear difference" and tiny.outcome == "not confirmed"
    reversed_ = evaluate(more, specs, _runs(specs, {100: [0.80, 0.80], 400: [0.60, 0.60]}))
    assert reversed_.tasks.loc["sign", "result"] == "reversed"
    # both arms at the 40 % majority-class rate: the comparison says nothing
    flat = evaluate(more, specs, _runs(specs, {100: [0.40, 0.41], 400: [0.42, 0.40]}))
    assert flat.outcome == "not testable here"
    missing = evaluate(more, specs, _runs(specs, {100: [0.6, 0.6]}))
    assert missing.outcome == "not testable here"
    assert "no finished run" in missing.tasks.loc["sign", "result"]


def test_spread_over_repeats_widens_the_error(experiment):
    specs = experiment.runs("smoke")
    more = experiment.claims[0]
    # means 10 points apart, but the repeats disagree by 40 points: no clear difference
    noisy = evaluate(more, specs, _runs(specs, {100: [0.45, 0.85], 400: [0.55, 0.95]}))
    row = noisy.tasks.loc["sign"]
    assert abs(row["z"]) < Z_THRESHOLD and row["result"] == "no clear difference"


def test_verdict_text_and_table_carry_the_numbers(experiment):
    specs = experiment.runs("smoke")
    runs = _runs(specs, {100: [0.55, 0.57], 400: [0.80, 0.82]})
    evaluated = [evaluate(c, specs, runs) for c in experiment.claims]
    text = verdict_markdown(evaluated, "smoke")
    assert "1 confirmed, 1 not confirmed" in text and "81.0 vs 56.0 %" in text and "Source: Table 0." in text
    assert "one seed" not in text  # two repeats per arm
    single = experiment.runs("cpu")
    once = [evaluate(c, single, _runs(single, {100: [0.55], 400: [0.80]})) for c in experiment.claims]
    assert "**Confirmed (one seed)**" in verdict_markdown(once, "cpu") and "weak evidence" in verdict_markdown(
        once, "cpu"
    )
    table = verdict_table(evaluated)
    assert list(table.index.get_level_values("claim")) == [1, 2]
    assert verdict_markdown([], "cpu").startswith("This chapter makes no comparative claim")


def test_an_arm_matching_two_settings_fails_naming_the_claim(tmp_path, experiment):
    claim = parse_claims([{"text": "vague", "higher": {"patch_size": 32}, "lower": {"n_train": 100}}], "x")[0]
    specs = experiment.runs("cpu")
    with pytest.raises(ConfigError, match="'vague'.*narrow its selector"):
        evaluate(claim, specs, _runs(specs, {}))


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"text": "a", "higher": {"n_train": 1}}, "missing key 'lower'"),
        ({"text": "a", "higher": {"n_trian": 1}, "lower": {"n_train": 1}}, "n_trian is not a config key"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "expect": "lower"}, "expect='lower'"),
        ({"text": "a", "higher": {}, "lower": {"n_train": 2}}, "higher: must be a non-empty mapping"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "why": 1}, "unknown key(s) why"),
    ],
)
def test_bad_claims_fail_clearly(raw, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_claims([raw], "params/x.yaml")


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_every_claim_of_the_params_resolves_to_two_settings(profile):
    """Each claim's arms select exactly one setting each (typos and ambiguous selectors fail here); in the
    cpu and paper profiles every claim resolves unless the params file says why it cannot."""
    experiments = load_experiments(ROOT)
    tested = 0
    for exp in experiments.values():
        specs = exp.runs(profile)
        runs = pd.DataFrame({"key": [s.key for s in specs], "finished": [False] * len(specs)})
        for claim in exp.claims:
            result = evaluate(claim, specs, runs)
            if isinstance(claim.overrides.get(profile), str):
                assert result.outcome == "not testable here" and result.reason == claim.overrides[profile]
            elif profile != "smoke":
                assert result.reason == "", (exp.name, claim.text, result.reason)
                assert result.higher_name and result.lower_name and result.higher_name != result.lower_name
            tested += 1
    assert tested >= 25
