"""Computed verdicts (ipslib.study.verdict): arms from every record, the learned check, seed-level intervals,
equivalence, how tasks combine, and every claim of the real params files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipslib.config import ConfigError
from ipslib.study import ledger
from ipslib.study.arms import profile_runs
from ipslib.study.claims import parse_claims
from ipslib.study.experiments import load_experiment, load_experiments
from ipslib.study.statistics import welch_interval
from ipslib.study.verdict import MIN_SEEDS, TaskVerdict, _combine, claim_record, evaluate

ROOT = Path(__file__).resolve().parents[1]

PARAMS = """
title: t
family: traffic
profiles:
  smoke: {grid: {n_train: [100, 400]}, repeats: 3}
  cpu: {grid: {n_train: [100, 400]}, repeats: 2}
  paper: {grid: {n_train: [100, 400]}}
claims:
  - text: more data helps
    source: Table 0
    higher: {n_train: max}
    lower: {n_train: min}
    register: [P14]
  - text: no difference
    higher: {n_train: 400}
    lower: {n_train: 100}
    expect: similar
    margin: 3
"""
OTHER = """
title: other
family: traffic
profiles:
  smoke: {fixed: {n_train: 100, train_seed: 7}}
  cpu: {fixed: {n_train: 100}}
  paper: {fixed: {n_train: 100}}
"""
DEFAULTS = """
traffic:
  smoke: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32, class_probs: [0.4, 0.2, 0.2, 0.2]}
  cpu: {dataset: synthetic_traffic, image_height: 64, image_width: 64, n_test: 200, sign_min_size: 16,
        sign_max_size: 24, patch_size: 32, class_probs: [0.4, 0.2, 0.2, 0.2]}
  paper: {dataset: synthetic_traffic, image_height: 64, image_width: 64, sign_min_size: 16,
          sign_max_size: 24, patch_size: 32}
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text(DEFAULTS)
    (tmp_path / "params" / "x.yaml").write_text(PARAMS)
    return tmp_path


@pytest.fixture
def experiment(root):
    return load_experiment(root / "params" / "x.yaml", root=root)


def record(spec, test: float, train: float = 0.95) -> None:
    """A finished run record with these last-epoch accuracies (what the engine writes, reduced)."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    block = {
        "epoch": 1,
        "train": {"sign": {"accuracy": train, "loss": 1.0}},
        "test": {"sign": {"accuracy": test, "loss": 1.0}},
    }
    metrics = {"last": block, "best": block, "finished": True, "config_key": spec.key}
    (spec.run_dir / "metrics.json").write_text(json.dumps(metrics))


def fill(specs, by_n_train: dict[int, list[float]], train: float = 0.95) -> None:
    for spec in specs:
        values = by_n_train.get(spec.config.data.n_train, [])
        if spec.repeat < len(values):
            record(spec, values[spec.repeat], train)


def test_a_clear_gain_on_three_seeds_is_supported_with_its_interval(experiment):
    specs = experiment.runs("smoke")
    fill(specs, {100: [0.55, 0.57, 0.56], 400: [0.80, 0.82, 0.79]})
    result = evaluate(experiment.claims[0], specs)
    (task,) = result.tasks
    expected = welch_interval([0.80, 0.82, 0.79], [0.55, 0.57, 0.56])
    assert result.verdict == "supported" and task.verdict == "supported"
    assert task.effect_pp == pytest.approx(100 * expected.estimate)
    assert task.ci95 == pytest.approx((100 * expected.low, 100 * expected.high))
    assert task.chance == pytest.approx(0.4) and task.learned == (True, True)
    assert [arm.n_seeds for arm in result.arms] == [3, 3]


def test_fewer_than_three_seeds_is_inconclusive(experiment):
    specs = experiment.runs("cpu")
    fill(specs, {100: [0.55, 0.56], 400: [0.80, 0.81]})
    result = evaluate(experiment.claims[0], specs)
    assert result.verdict == "inconclusive" and f"{MIN_SEEDS} per arm needed" in result.tasks[0].reason
    assert result.tasks[0].ci95 is not None  # the interval is still shown


def test_a_reversal_is_contradicted_and_an_overlap_inconclusive(experiment):
    specs = experiment.runs("smoke")
    fill(specs, {100: [0.80, 0.82, 0.81], 400: [0.60, 0.62, 0.61]})
    assert evaluate(experiment.claims[0], specs).verdict == "contradicted"
    fill(specs, {100: [0.60, 0.70, 0.65], 400: [0.62, 0.72, 0.60]})
    result = evaluate(experiment.claims[0], specs)
    assert result.verdict == "inconclusive" and "includes 0" in result.tasks[0].reason


def test_an_arm_that_did_not_learn_makes_the_comparison_inconclusive(experiment):
    specs = experiment.runs("smoke")
    # the 100-canvas arm sits at the 40 % majority-class rate on the test split
    fill(specs, {100: [0.40, 0.41, 0.42], 400: [0.80, 0.82, 0.79]})
    result = evaluate(experiment.claims[0], specs)
    assert result.verdict == "inconclusive"
    assert "n_train=100" in result.tasks[0].reason and "did not learn" in result.tasks[0].reason
    assert result.tasks[0].learned == (True, False)


def test_learning_needs_the_train_split_too(experiment):
    specs = experiment.runs("smoke")
    fill(specs, {100: [0.55, 0.57, 0.56], 400: [0.80, 0.82, 0.79]}, train=0.42)
    assert evaluate(experiment.claims[0], specs).tasks[0].learned == (False, False)


def test_similarity_needs_equivalence(experiment):
    specs = experiment.runs("smoke")
    same = experiment.claims[1]
    fill(specs, {100: [0.700, 0.702, 0.698], 400: [0.701, 0.699, 0.703]})
    assert evaluate(same, specs).verdict == "supported"
    fill(specs, {100: [0.60, 0.61, 0.60], 400: [0.80, 0.81, 0.80]})
    assert evaluate(same, specs).verdict == "contradicted"
    fill(specs, {100: [0.55, 0.75, 0.65], 400: [0.60, 0.80, 0.62]})  # wide: neither equivalent nor different
    assert evaluate(same, specs).verdict == "inconclusive"


def test_an_arm_pools_every_seed_of_its_setting_across_experiments(root, experiment):
    (root / "params" / "y.yaml").write_text(OTHER)
    other = load_experiment(root / "params" / "y.yaml", root=root)
    specs = experiment.runs("smoke")
    fill(specs, {100: [0.55, 0.57, 0.56], 400: [0.80, 0.82, 0.79]})
    (extra,) = other.runs("smoke")
    record(extra, 0.58)
    result = evaluate(experiment.claims[0], specs, profile_runs("smoke", root))
    low = result.arms[1]
    assert low.n_seeds == 4 and sorted(low.seeds) == [0, 1, 2, 7] and extra.key in low.run_keys


def test_profile_overrides_are_not_testable_and_missing_runs_inconclusive(experiment):
    claim = parse_claims(
        [{"text": "t", "higher": {"n_train": 400}, "lower": {"n_train": 100}, "cpu": "not posed at this scale"}], "x"
    )[0]
    result = evaluate(claim, experiment.runs("cpu"))
    assert result.verdict == "not testable here" and result.reason == "not posed at this scale"
    no_runs = evaluate(experiment.claims[0], experiment.runs("smoke"))  # posed here, not trained yet
    assert no_runs.verdict == "inconclusive" and "no finished run yet" in no_runs.reason


def _task(verdict: str) -> TaskVerdict:
    return TaskVerdict("t", 0.1, (True, True), 1.0, (0.5, 1.5), verdict)


@pytest.mark.parametrize(
    "verdicts, expect, outcome",
    [
        (["supported", "supported"], "higher", "supported"),
        (["supported", "inconclusive"], "higher", "inconclusive"),
        (["supported", "contradicted"], "higher", "mixed"),
        (["contradicted", "inconclusive"], "higher", "contradicted"),
        (["supported", "contradicted", "contradicted"], "similar", "contradicted"),
        (["not testable here", "not testable here"], "higher", "not testable here"),
        (["inconclusive", "not testable here"], "higher", "inconclusive"),
    ],
)
def test_tasks_combine_into_one_verdict(verdicts, expect, outcome):
    claim = parse_claims([{"text": "c", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "expect": expect}], "x")[0]
    assert _combine(claim, [_task(v) for v in verdicts])[0] == outcome


def test_the_record_and_the_page_text_carry_the_numbers(experiment):
    specs = experiment.runs("smoke")
    fill(specs, {100: [0.55, 0.57, 0.56], 400: [0.80, 0.82, 0.79]})
    evaluated = [evaluate(c, specs) for c in experiment.claims]
    data = claim_record(evaluated[0])
    assert data["verdict"] == "supported" and data["register"] == ["P14"]
    task = data["tasks"][0]
    assert [a["n_seeds"] for a in data["arms"]] == [3, 3] and task["effect_pp"] == pytest.approx(24.33, abs=0.01)
    assert {a["learned"] for a in task["arms"]} == {True} and task["arms"][0]["chance"] == pytest.approx(40.0)
    assert len(task["ci95"]) == 2 and task["ci95"][0] > 0
    text = ledger.verdict_markdown(evaluated, "smoke")
    assert "1 supported, 1 contradicted" in text and "Source: Table 0." in text and "+24.3 points" in text
    table = ledger.verdict_table(evaluated)
    assert list(table["verdict"]) == ["supported", "contradicted"] and list(table["seeds"]) == ["3 / 3"] * 2
    assert ledger.verdict_markdown([], "cpu").startswith("This chapter makes no comparative claim")


def test_an_arm_matching_two_settings_fails_naming_the_claim(experiment):
    claim = parse_claims([{"text": "vague", "higher": {"patch_size": 32}, "lower": {"n_train": 100}}], "x")[0]
    with pytest.raises(ConfigError, match="'vague'.*narrow its selector"):
        evaluate(claim, experiment.runs("cpu"))


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"text": "a", "higher": {"n_train": 1}}, "missing key 'lower'"),
        ({"text": "a", "higher": {"n_trian": 1}, "lower": {"n_train": 1}}, "n_trian is not a config key"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "expect": "lower"}, "expect='lower'"),
        ({"text": "a", "higher": {}, "lower": {"n_train": 2}}, "higher: must be a non-empty mapping"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "why": 1}, "unknown key(s) why"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "margin": 0}, "margin=0"),
        ({"text": "a", "higher": {"n_train": 1}, "lower": {"n_train": 2}, "register": "P1"}, "register must be"),
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
    runs = profile_runs(profile, ROOT)
    tested = 0
    for exp in experiments.values():
        specs = exp.runs(profile)
        for claim in exp.claims:
            result = evaluate(claim, specs, runs)
            if isinstance(claim.overrides.get(profile), str):
                assert result.verdict == "not testable here" and result.reason == claim.overrides[profile]
            elif profile != "smoke":
                assert len(result.arms) == 2, (exp.name, claim.text, result.reason)
                assert result.arms[0].setting != result.arms[1].setting
            tested += 1
    assert tested >= 25
