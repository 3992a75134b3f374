"""The discrepancy register: the spec's 42 items without gaps, every reference resolving, the outcome rule on
constructed ledger records, the values computed from the author's logs, and the page built from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ipslib.config import ConfigError
from ipslib.study import book, register
from ipslib.study.experiments import load_experiments
from ipslib.study.pages import register as page

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"P{i}" for i in range(1, 20)] + [f"F{i}" for i in range(1, 11)] + [f"T{i}" for i in range(1, 14)]
EXPERIMENTS = load_experiments(ROOT)


def record(verdict: str, *, register_ids=("P1",), seeds=(3, 3), learned=True, reason="", experiment="x") -> dict:
    arms = [{"label": f"arm{i}", "n_seeds": n} for i, n in enumerate(seeds)]
    tasks = [{"task": "sign", "arms": [{"learned": learned}, {"learned": True}]}]
    return {
        "experiment": experiment,
        "claim": 1,
        "text": "a claim",
        "verdict": verdict,
        "reason": reason,
        "register": list(register_ids),
        "arms": arms,
        "tasks": tasks,
    }


@pytest.fixture(scope="module")
def table():
    return register.register_table("cpu", root=ROOT)


def test_the_register_holds_the_42_items_of_the_spec_in_order():
    groups, items = register.load_register(ROOT)
    assert [i["id"] for i in items] == IDS
    assert list(groups) == ["P", "F", "T"]
    assert all(i["group"] == i["id"][0] for i in items)


def test_every_reference_resolves(table):
    assert list(table.index) == IDS
    for _, row in table.iterrows():
        assert set(row["chapters"]) <= set(EXPERIMENTS), row["id"]
        for ref in row["tests"]:
            file, _, name = ref.partition("::")
            assert (ROOT / file).is_file() and f"def {name}(" in (ROOT / file).read_text(), (row["id"], ref)
        assert row["outcome"] in register.OUTCOMES and row["reason"] or row["basis"] == "not testable here"


def test_every_register_id_named_by_a_claim_exists():
    ids = set(IDS)
    named = {(name, i): set(c.register) for name, e in EXPERIMENTS.items() for i, c in enumerate(e.claims, 1)}
    assert all(r <= ids for r in named.values()), {k: v - ids for k, v in named.items() if v - ids}
    assert set().union(*named.values()) >= {"P1", "P5", "P11", "P13", "T3", "T9"}


def test_a_claim_naming_an_unknown_item_is_an_error_naming_the_claim():
    with pytest.raises(ConfigError, match=r"params/x\.yaml claim 1: register id 'P99'"):
        register.register_table("cpu", root=ROOT, records=[record("supported", register_ids=["P99"])])


def test_outcome_rule_on_constructed_records():
    item = {"conclusion": "a conclusion", "not_testable": "no weights"}
    assert register.item_outcome(item, [record("supported"), record("supported")])[:2] == ("yes", "claims")
    assert register.item_outcome(item, [record("supported"), record("contradicted")])[0] == "no"
    for other in ("inconclusive", "mixed", "not testable here"):
        outcome, basis, reason = register.item_outcome(item, [record("supported"), record(other)])
        assert (outcome, basis) == ("untested", "claims") and f"1 {other}" in reason
    assert register.item_outcome(item, []) == ("untested", "not testable here", "no weights")
    plain = {"tests": ["a", "b"], "log_checks": [{}]}
    outcome, basis, reason = register.item_outcome(plain, [])
    assert (outcome, basis) == ("untested", "no conclusion at stake")
    assert "2 unit test(s)" in reason and "1 log check(s)" in reason


def test_claim_reasons_come_from_the_record_structure():
    assert register.claim_reason(record("supported")) == "supported (3 and 3 seeds)"
    text = register.claim_reason(record("inconclusive", seeds=(1, 2), learned=False))
    assert text == "inconclusive: 1 and 2 seed(s) per arm, 3 needed; an arm did not learn sign"
    wide = register.claim_reason(record("inconclusive", reason="the 95 % interval [-1.0, 2.0] includes 0"))
    assert wide == "inconclusive: the 95 % interval [-1.0, 2.0] includes 0"
    assert register.claim_reason(record("not testable here", reason="no ImageNet")) == "not testable here: no ImageNet"


@pytest.mark.parametrize(
    "item,expected",
    [
        ("T3", ["printed 64.4; logs 64.4 % (1 log, epoch 100, interrupted)", "logs 57.3 % (1 log, epoch 150)"]),
        ("T6", ["printed 46.4; logs 46.4 % (1 log, epoch 50)"]),
        ("T7", ["printed 25.4; logs 15.2 % (1 log, epoch 50)"]),
        ("T8", ["printed 68.78%; logs 73.14 ± 18.15 % (5 logs, population std)"]),
        ("T9", ["printed 79.745; logs 82.25 ± 3.26 % (5 logs"]),
        ("T10", ["logs 98.33 ± 0.22 % (5 logs", "logs 95.78 ± 3.15 % (5 logs"]),
        ("T13", ["printed 0.45.32%; logs 44.73 ± 3.01 %"]),
    ],
)
def test_log_checks_reproduce_the_values_of_the_spec(table, item, expected):
    checks = table.loc[item, "log_checks"]
    assert len(checks) == len(expected)
    assert all(e in c for e, c in zip(expected, checks)), checks


def _tmp_root(tmp_path: Path, items: list[dict]) -> Path:
    for name in ("params", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    reference = tmp_path / "book" / "reference"
    reference.mkdir(parents=True)
    (tmp_path / "book" / "templates").symlink_to(ROOT / "book" / "templates")
    for name in ("paper_tables.csv", "runs_final.csv", "runs_per_epoch.csv.gz"):
        (reference / name).symlink_to(ROOT / "book" / "reference" / name)
    groups = yaml.safe_load((ROOT / "book" / "reference" / "register.yaml").read_text())["groups"]
    (reference / "register.yaml").write_text(yaml.safe_dump({"groups": groups, "items": items}, sort_keys=False))
    return tmp_path


ITEM = {"id": "P1", "topic": "t", "says": "s", "shows": "c", "ipslib": "i"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"tested_in": {"tests": ["tests/test_ips.py::test_nothing_like_this"]}}, "P1: test 'tests/test_ips.py::"),
        ({"tested_in": {"tests": ["tests/test_none.py::test_a"]}}, "P1: test 'tests/test_none.py::test_a'"),
        ({"tested_in": {"chapters": ["no_such_chapter"]}}, "P1: chapter 'no_such_chapter' is not a params file"),
        ({"tested_in": {"analyses": ["ipslib.analysis.attention.nothing"]}}, "P1: analysis 'ipslib.analysis"),
        ({"conclusion": "c", "tested_in": {"chapters": ["noise_count"]}}, "P1: a conclusion is at stake"),
        ({}, "P1: nothing tests it"),
        ({"log_checks": [{"label": "a", "printed": {"table": "Table 99"}, "logs": {}, "metric": "m"}]}, "0 printed"),
    ],
)
def test_a_broken_reference_is_an_error_naming_the_item(tmp_path, change, message):
    root = _tmp_root(tmp_path, [{**ITEM, **change}])
    with pytest.raises(ConfigError, match=re.escape(message)):
        register.register_table("cpu", root=root, records=[])


def test_gaps_in_the_numbering_are_an_error(tmp_path):
    root = _tmp_root(tmp_path, [ITEM, {**ITEM, "id": "P3"}])
    with pytest.raises(ConfigError, match="P1, P2, ... without gaps"):
        register.load_register(root)


def test_a_claim_chapter_missing_from_tested_in_is_an_error(tmp_path):
    root = _tmp_root(
        tmp_path, [{**ITEM, "conclusion": "c", "tested_in": {"tests": ["tests/test_ips.py::test_shapes"]}}]
    )
    with pytest.raises(ConfigError, match="P1: tested_in.chapters lacks noise_count"):
        register.register_table("cpu", root=root, records=[record("inconclusive", experiment="noise_count")])


def test_page_tables_wrap_and_carry_every_item(table):
    groups = register.load_register(ROOT)[0]
    pages = {g: page.group_html(table, g, groups) for g in register.GROUPS}
    assert all(f'id="register-{i}"' in pages[i[0]] for i in IDS)
    assert all("table-layout: fixed" in h and "white-space: normal" in h for h in pages.values())
    assert sum(page.WIDTHS) == 100
    counts = page.summary(table, groups)
    assert counts.loc["all", "items"] == 42 and list(counts["items"][:3]) == [19, 10, 13]
    assert (counts[list(register.OUTCOMES)].sum(axis=1) == counts["items"]).all()
    template = (ROOT / "book" / "templates" / "register.md").read_text()
    assert all(f"## {g['title']}\n" in template for g in groups.values())
    assert "42 items" in page.intro(table, "cpu")


def test_the_register_page_is_a_book_page_in_the_front_part():
    names = [p.name for p in book.BOOK_PAGES]
    assert {"register", "status"} <= set(names) and len(set(names)) == len(names)
    assert all((ROOT / "book" / "templates" / f"{p.name}.md").is_file() for p in book.BOOK_PAGES)
    front = [c["file"] for c in book.toc("cpu")["parts"][0]["chapters"]]
    assert front == ["book/methods", "outputs/cpu/notebooks/ledger", "outputs/cpu/notebooks/register"]
    files = [c["file"] for part in book.toc("smoke")["parts"] for c in part["chapters"]]
    assert "book/discrepancies" not in files and not (ROOT / "book" / "discrepancies.md").exists()
    assert all(f"outputs/smoke/notebooks/{p.name}" in files for p in book.BOOK_PAGES)


def test_paper_profile_uses_the_logged_transformer_sizes():
    sizes = {
        (r.config.dataset, r.config.aggregator.head_dim, r.config.aggregator.mlp_dim, r.config.encoder.embed_dim)
        for e in EXPERIMENTS.values()
        for r in e.runs("paper")
    }
    assert sizes == {("megapixel_mnist", 16, 512, 128), ("traffic_signs", 64, 2048, 512)}


def test_paper_profile_uses_the_logged_learning_rates():
    rates = {(r.config.dataset, r.config.train.lr) for e in EXPERIMENTS.values() for r in e.runs("paper")}
    assert rates == {("megapixel_mnist", 1e-3), ("traffic_signs", 3e-4)}
    pretrained = [r for r in EXPERIMENTS["mnist_encoders"].runs("paper") if r.config.encoder.weights != "none"]
    assert len(pretrained) == 6 and all(r.config.train.lr == 1e-3 for r in pretrained)


def test_paper_profile_follows_the_logs_where_the_text_differs():
    def configs(name):
        return [r.config for r in EXPERIMENTS[name].runs("paper")]

    assert all(c.data.canvas_size == 1500 and c.train.epochs == 150 for c in configs("mnist_stkim_p"))  # T3
    thickness = configs("noise_thickness")  # T4
    assert {(c.data.canvas_size, c.data.n_noise, c.data.n_train, c.train.epochs) for c in thickness} == {
        (1500, 800, 2000, 50)
    }
    assert {c.data.n_train for c in configs("noise_count")} == {5000}  # T5
    assert {c.train.epochs for c in configs("mnist_encoders")} == {50}  # T6


def test_no_reference_to_the_old_static_page_is_left():
    texts = [ROOT / "README.md", *(ROOT / "book").glob("*.md"), *(ROOT / "params").glob("*.yaml"), ROOT / "_toc.yml"]
    assert not [p.name for p in texts if "discrepancies" in p.read_text()]
