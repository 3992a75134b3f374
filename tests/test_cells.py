"""Every printed cell of the dissertation, matched to our runs by settings (issue 13): pages, statuses, reasons,
our values over all seeds, the scaling of a profile and its validation, the page's table and ``ipslib cells``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipslib.config import ConfigError
from ipslib.engine.records import summarise, write_config, write_history
from ipslib.study import cells as cells_mod
from ipslib.study.arms import setting_key
from ipslib.study.experiments import load_experiment, load_experiments
from ipslib.study.scaling import apply_scaling
from ipslib.system.files import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_cells():
    return {profile: cells_mod.profile_cells(profile, root=ROOT) for profile in ("cpu", "paper")}


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_every_printed_cell_has_a_page_and_a_status(real_cells, profile):
    cells = real_cells[profile]
    assert len(cells) == 407
    experiments = load_experiments(ROOT)
    for cell in cells:
        claimed = [e["table"] for e in experiments[cell.page].reference["tables"]]
        assert cell.table in claimed
        assert (cell.status == "compared") == (cell.reason_id is None)
        assert cell.reason_id is None or cell.reason_id in cells_mod.REASONS
    pages = {c.table: c.page for c in cells if c.table != "Table 8"}
    assert pages == {
        "Table 2": "traffic_subset",
        "Table 3": "traffic_patch_size",
        "Table 4": "mnist_encoders",
        "Table 5": "traffic_encoders",
        "Table 6": "mnist_diversity",
        "Table 7": "traffic_diversity",
        "Table 9": "traffic_stkim",
        "Table 10": "o2i_datasize",
        "Table 11": "noise_count",
    }
    assert {c.panel: c.page for c in cells if c.table == "Table 8"} == {
        "top": "mnist_stkim_p",
        "bottom": "mnist_stkim_k",
    }


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_compared_cells_runs_carry_the_scaled_settings(real_cells, profile):
    experiments = load_experiments(ROOT)
    specs = {s.key: s for exp in experiments.values() for s in exp.runs(profile)}
    compared = [c for c in real_cells[profile] if c.status == "compared"]
    assert compared
    for cell in compared:
        scaled, outside = apply_scaling(cell.settings, experiments[cell.page].profiles[profile].scaling)
        assert not outside and scaled == cell.scaled
        assert cell.run_keys and len({setting_key(specs[k].flat) for k in cell.run_keys}) == 1
        for key in cell.run_keys:
            flat = specs[key].flat
            assert all(str(flat[k]) == str(v) or float(flat[k]) == float(v) for k, v in scaled.items()), (cell, key)
    assert not [c for c in real_cells[profile] if c.reason_id == "ambiguous"]


def test_reasons_where_expected(real_cells):
    cpu, paper = real_cells["cpu"], real_cells["paper"]
    pretrained = [c for c in cpu if c.table == "Table 4" and c.settings.get("weights") != "none"]
    assert len(pretrained) == 24 and {c.reason_id for c in pretrained} == {"no_weights"}
    traffic = [c for c in cpu if c.table in ("Table 2", "Table 3", "Table 5", "Table 7", "Table 9")]
    assert {c.reason_id for c in traffic if c.stat in ("mean", "std")} == {"synthetic"}
    assert {c.reason_id for c in cpu if c.stat in ("time_per_batch", "peak_memory") and c.unit != "s"} == {"gpu_scale"}
    assert {c.reason_id for c in cpu if c.stat in ("loss", "diversity_loss")} == {"loss_scale"}
    assert {c.reason_id for c in cpu if c.stat == "n"} == {"sample_counts"}
    # the STKIM page runs P = 0.2 and 0.6, not the dissertation's 0.1, 0.4, 0.8
    stkim = {c.row_labels.split("; ", 3)[-1]: c.reason_id for c in cpu if c.page == "mnist_stkim_p"}
    assert stkim == {
        "K=-; P=-": None,
        "K=10; P=0.1": "no_run",
        "K=10; P=0.2": None,
        "K=10; P=0.4": "no_run",
        "K=10; P=0.6": None,
        "K=10; P=0.8": "no_run",
    }
    # the paper profile runs every setting; only the dataset's sample counts and Table 2's unclear time remain
    assert {(c.table, c.reason_id) for c in paper if c.reason_id} == {
        ("Table 2", "sample_counts"),
        ("Table 2", "unclear_quantity"),
    }


# ---------------------------------------------------------------------------------- a constructed project
DEFAULTS = """
mnist:
  paper: &base {dataset: megapixel_mnist, digit_source: sample, canvas_size: 160, digit_size: 28, n_noise: 5,
                n_train: 16, n_test: 8, patch_size: 40, memory_size: 4, iter_size: 4, n_res_blocks: 1,
                n_heads: 2, head_dim: 8, mlp_dim: 32, epochs: 2, batch_size: 8, warmup_epochs: 0}
  cpu: *base
  smoke: *base
"""
STKIM = """
title: masking
family: mnist
reference:
  tables: [Table 8]
  implied:
    vary_p: {stkim_mode: seed_selection}
profiles:
  paper:
    fixed: {n_train: 5000}
    cases:
      - {stkim_k: 0, stkim_p: 0.0}
      - {stkim_mode: seed_selection, stkim_k: 10, stkim_p: 0.1}
      - {stkim_mode: seed_selection, stkim_k: 10, stkim_p: 0.2}
      - {stkim_mode: acmil_aggregation, stkim_k: 10, stkim_p: 0.2}
  cpu:
    scaling:
      n_train: {5000: 16}
      stkim_k: {0: 0, 10: 4}
    cases:
      - {stkim_k: 0, stkim_p: 0.0}
      - {stkim_mode: seed_selection, stkim_k: 4, stkim_p: 0.2}
    repeats: 2
  smoke: {runs: false}
"""
HEAD = "table,panel,row_labels,column,col_index,value,unit,value_numeric,dataset,split,task,stat,match_key,notes\n"
ROWS = [
    "K=-;P=-,Maj (%),0,88.0,%,88.0,val,majority,accuracy,experiment=base;train_size=5000;stkim_K=0;stkim_P=0",
    "K=10;P=0.1,Maj (%),0,74.5,%,74.5,val,majority,accuracy,experiment=vary_p;stkim_K=10;stkim_P=0.1",
    "K=10;P=0.2,Maj (%),0,64.4,%,64.4,val,majority,accuracy,experiment=vary_p;stkim_K=10;stkim_P=0.2",
    "K=10;P=0.2,Maj std (%),0,3.0,%,3.0,val,majority,std,experiment=vary_p;stkim_K=10;stkim_P=0.2",
    "K=10;P=0.2,loss,0,1.2,,1.2,val,avg_over_tasks,loss,experiment=vary_p;stkim_K=10;stkim_P=0.2",
]


def _csv(rows: list[str]) -> str:
    out = HEAD
    for row in rows:
        label, column, col, value, unit, numeric, split, task, stat, key = row.split(",")
        out += (
            f'Table 8,,"{label}",{column},{col},{value},{unit},{numeric},megapixel_mnist,{split},{task},{stat},{key},\n'
        )
    return out


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    (tmp_path / "book" / "templates").mkdir(parents=True)
    (tmp_path / "book" / "reference").mkdir()
    (tmp_path / "book" / "templates" / "stkim.md").write_text("")
    (tmp_path / "book" / "templates" / "experiment.md").write_text("")
    (tmp_path / "params" / "_defaults.yaml").write_text(DEFAULTS)
    (tmp_path / "params" / "masking.yaml").write_text(STKIM)
    (tmp_path / "book" / "reference" / "paper_tables.csv").write_text(_csv(ROWS))
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    return tmp_path


def _record(spec, majority: float) -> None:
    rows = []
    for epoch in (1, 2):
        row = {"epoch": epoch, "lr": 1e-3, "epoch_seconds": 1.0, "ms_per_batch": 5.0, "peak_memory_mb": 10.0}
        for split in ("train", "test"):
            for task in spec.config.tasks:
                row[f"{split}/{task}/accuracy"] = majority if task == "majority" else 0.5
                row[f"{split}/{task}/loss"] = 1.0
            row[f"{split}/accuracy"] = majority
        rows.append(row)
    spec.run_dir.mkdir(parents=True)
    write_config(spec.run_dir, spec.config)
    write_history(spec.run_dir, rows)
    summary = summarise(rows, list(spec.config.tasks), finished=True, config_key=spec.key, epochs=2, device="cpu")
    atomic_write_json(spec.run_dir / "metrics.json", summary)


def test_cells_match_settings_not_grid_positions(project):
    exp = load_experiments(project)["masking"]
    cpu, paper = exp.runs("cpu"), exp.runs("paper")
    treated = [s for s in cpu if s.config.stkim.stkim_k == 4]
    # the old pairing by position put our P = 0.2 run beside the dissertation's P = 0.1 row
    # the grid's second case: P = 0.2 here, P = 0.1 in the paper profile
    assert treated[0].config.stkim.stkim_p == 0.2 and paper[1].config.stkim.stkim_p == 0.1
    for spec, majority in zip(treated, (0.6, 0.7)):  # two seeds of one setting
        _record(spec, majority)
    cells = {(c.row_labels, c.column): c for c in cells_mod.profile_cells("cpu", root=project)}
    assert cells[("K=10;P=0.1", "Maj (%)")].reason_id == "no_run"
    p02 = cells[("K=10;P=0.2", "Maj (%)")]
    assert p02.status == "compared" and p02.run_keys == tuple(s.key for s in treated)
    assert p02.scaled == {"stkim_k": 4, "stkim_p": 0.2, "stkim_mode": "seed_selection"}
    assert p02.ours == pytest.approx(65.0) and p02.n_seeds == 2  # mean over both seeds, in %
    assert cells[("K=10;P=0.2", "Maj std (%)")].ours == pytest.approx(5.0)  # population std (ddof = 0)
    assert cells[("K=10;P=0.2", "loss")].reason_id == "loss_scale"
    baseline = cells[("K=-;P=-", "Maj (%)")]
    assert baseline.status == "compared" and baseline.n_seeds == 0 and baseline.ours is None  # not run yet
    assert baseline.setting_text == "n_train=5000→16, stkim_k=0, stkim_p=0"
    # the paper profile: the ACMIL arm has K = 10, P = 0.2 too; the implied author's masking picks one setting
    paper_cells = {(c.row_labels, c.column): c for c in cells_mod.profile_cells("paper", root=project)}
    chosen = {s.key: s for s in paper}[paper_cells[("K=10;P=0.2", "Maj (%)")].run_keys[0]]
    assert chosen.config.stkim.stkim_mode == "seed_selection"
    assert paper_cells[("K=10;P=0.2", "loss")].status == "compared"


def test_page_table_shows_every_cell_with_full_settings(project):
    from ipslib.study import report
    from ipslib.study.results import load_results

    exp = load_experiments(project)["masking"]
    for spec in exp.runs("cpu"):
        _record(spec, 0.6)
    results = load_results("masking", "cpu")
    page = report.comparison_html(results)
    assert "5 printed cells of Table 8" in page and "3 compared" in page
    assert "<td>64.4</td><td>60.0</td><td>2</td>" in page  # the dissertation's and our value side by side
    assert "stkim_k=10→4, stkim_p=0.2, stkim_mode=seed_selection" in page  # no truncation
    assert "no run of this profile at the scaled setting (1 cells)" in page
    assert "loss values not comparable across scales (1 cells)" in page
    assert "table-layout:fixed" in page and "white-space:normal" in page
    table = report.comparison_table(results)
    assert len(table) == 5 and list(table.columns[:4]) == ["cell", "setting", "status", "dissertation"]


def test_cells_command_prints_one_object_per_cell(project, capsys):
    from ipslib import cli

    assert cli.main(["cells", "--profile", "cpu", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    fields = {"table", "row_labels", "column", "value", "match_key", "status", "run_keys", "reason", "page"}
    assert all(fields <= set(row) and row["page"] == "masking" for row in rows)
    assert cli.main(["cells", "--profile", "cpu", "--experiment", "nope"]) == 2
    assert "experiment='nope' is not in params/" in capsys.readouterr().err


def test_a_cell_claimed_twice_or_by_nobody_is_an_error(project):
    (project / "params" / "other.yaml").write_text(STKIM.replace("title: masking", "title: other"))
    with pytest.raises(ConfigError, match="claimed by masking too"):
        cells_mod.profile_cells("cpu", root=project)
    (project / "params" / "other.yaml").unlink()
    (project / "book" / "reference" / "paper_tables.csv").write_text(
        _csv(ROWS) + "Table 9,,Mean,x,0,1,%,1,traffic_signs,val,sign,mean,experiment=t;subset_pct=25,\n"
    )
    with pytest.raises(ConfigError, match="Table 9 .* claimed by no params file"):
        cells_mod.profile_cells("cpu", root=project)


def test_apply_scaling():
    scaling = {"digit_size": {28: 14, 56: 28}, "subset_fraction": {0.25: {"n_train": 150}}}
    assert apply_scaling({"digit_size": 56, "n_noise": 800}, scaling) == ({"digit_size": 28, "n_noise": 800}, [])
    assert apply_scaling({"digit_size": 84}, scaling) == ({}, ["digit_size"])
    assert apply_scaling({"subset_fraction": 0.25, "patch_size": 100}, scaling) == (
        {"n_train": 150, "patch_size": 100},
        [],
    )


@pytest.mark.parametrize(
    "profile_body,fragment",
    [
        ("paper: {scaling: {n_train: {1000: 1000}}}", "scaling is not valid in the paper profile"),
        ("cpu: {scaling: {n_trian: {1000: 500}}}", "scaling.n_trian is not a flat config key"),
        ("cpu: {scaling: {n_train: 500}}", "scaling.n_train must be a non-empty mapping"),
        ("cpu: {scaling: {n_train: {1000: [1, 2]}}}", "scaling.n_train.1000 must be one value or a mapping"),
        ("cpu: {scaling: {subset_fraction: {0.25: {n_trian: 150}}}}", "names unknown key(s) n_trian"),
        ("cpu: {scaling: [n_train]}", "scaling must map flat config keys"),
    ],
)
def test_scaling_errors_name_the_key(tmp_path, profile_body, fragment):
    profiles = {"smoke": "smoke: {}", "cpu": "cpu: {}", "paper": "paper: {}"}
    profiles[profile_body.split(":")[0]] = profile_body
    _write_params(tmp_path, "profiles:\n" + "".join(f"  {body}\n" for body in profiles.values()))
    with pytest.raises(ConfigError, match="x.yaml profiles") as err:
        load_experiment(tmp_path / "params" / "x.yaml", root=tmp_path)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "reference,fragment",
    [
        ("reference: {tables: [8]}", "entries must be 'Table N'"),
        ("reference: {tables: Table 8}", "reference.tables must be a list"),
        ("reference: {tables: [Table 8], implied: {vary_p: {stkim_kk: 1}}}", "unknown key(s) stkim_kk"),
        ("reference: {tables: [Table 8], extra: 1}", "reference must be a mapping with keys tables, implied"),
    ],
)
def test_reference_errors_name_the_key(tmp_path, reference, fragment):
    _write_params(tmp_path, reference + "\nprofiles: {smoke: {}, cpu: {}, paper: {}}\n")
    with pytest.raises(ConfigError, match="x.yaml") as err:
        load_experiment(tmp_path / "params" / "x.yaml", root=tmp_path)
    assert fragment in str(err.value)


def _write_params(root: Path, body: str) -> None:
    (root / "params").mkdir()
    (root / "book" / "templates").mkdir(parents=True)
    (root / "book" / "templates" / "experiment.md").write_text("")
    (root / "params" / "_defaults.yaml").write_text("mnist: {smoke: {}, cpu: {}, paper: {}}\n")
    (root / "params" / "x.yaml").write_text("family: mnist\n" + body)
