"""The rules and figures of the book's pages (ipslib.study.pages) on constructed inputs: every verdict in both
outcomes and its not-testable branch, the tables' columns and the texts' numbers."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from ipslib.analysis.attention import AttentionMaps, Example
from ipslib.config import RunConfig
from ipslib.study.pages import attention as attention_page
from ipslib.study.pages import chance as chance_page
from ipslib.study.pages import density as density_page
from ipslib.study.pages import experiment as experiment_page
from ipslib.study.pages import performance as performance_page
from ipslib.study.pages import status as status_page
from ipslib.study.pages import stkim as stkim_page
from ipslib.study.pages import throughput as throughput_page


def fake_results(profile="cpu", missing=(), datasets=("megapixel_mnist",), note=""):
    specs = [SimpleNamespace(key=f"k{i}", config=SimpleNamespace(dataset=d)) for i, d in enumerate(datasets)]
    runs = pd.DataFrame({"key": [s.key for s in specs], "finished": [i % 2 == 0 for i in range(len(specs))]})
    experiment = SimpleNamespace(profiles={profile: SimpleNamespace(note=note)})
    return SimpleNamespace(profile=profile, missing=list(missing), specs=specs, runs=runs, experiment=experiment)


# --- shared parts of an experiment page ---------------------------------------------------------------------


def test_notes_name_the_missing_runs():
    both = experiment_page.notes(fake_results("smoke", missing=["e/a=1", "e/a=2"], note="Extra."))
    assert len(both) == 2 and "**smoke** profile" in both[0] and both[0].endswith("Extra.")
    assert both[1] == ("**Missing runs** (no finished record; see `outputs/smoke/status.json`): `e/a=1`, `e/a=2`")
    assert len(experiment_page.notes(fake_results("cpu"))) == 1
    assert experiment_page.missing_note(fake_results("cpu")) == ""


def test_finished_specs_keep_manifest_order():
    results = fake_results(datasets=("megapixel_mnist",) * 4)
    assert [s.key for s in experiment_page.finished_specs(results)] == ["k0", "k2"]
    empty = SimpleNamespace(specs=[], runs=pd.DataFrame())
    assert experiment_page.finished_specs(empty) == []


def test_reduced_note_and_verdict_paragraph():
    assert experiment_page.reduced_note("paper") == ""
    assert experiment_page.reduced_note("cpu").startswith(" These are **cpu-profile** runs")
    assert experiment_page.verdict_paragraph("Rule.", "Yes.", "paper", " Note.") == "Rule. Yes. Note."
    assert experiment_page.verdict_paragraph("Rule.", "Yes.", "smoke").startswith("Rule. Yes. These are **smoke")


# --- attention maps -----------------------------------------------------------------------------------------


def where_rows(*rows):
    """Rows of the overlap table: (objects, p, kept on object %, all cells %, moved, kept)."""
    columns = ["objects", attention_page.P_COLUMN, "kept on an object (%)", "all cells on an object (%)"]
    columns += [attention_page.MOVED_COLUMN, "kept patches"]
    return pd.DataFrame(rows, columns=columns)


def test_overlap_verdict_confirmed_and_moved_patches():
    verdict = attention_page.overlap_verdict(where_rows((5, 0.001, 80, 20, 3, 10), (5, 0.01, 60, 20, 0, 10)))
    assert verdict.startswith("On 2 of 2 image(s) the kept patches touch objects more often")
    assert "(on average 70 % of kept patches against 20 % of all cells)" in verdict
    assert "**confirmed**" in verdict
    assert "moves 3 of 10 kept patches to other cells on 1 image(s)" in verdict


@pytest.mark.parametrize(
    "p_values,outcome", [((0.01, 0.2), "**partly confirmed**"), ((0.05, 0.5), "**not confirmed**")]
)
def test_overlap_verdict_partly_and_not_confirmed(p_values, outcome):
    verdict = attention_page.overlap_verdict(where_rows(*[(5, p, 30, 20, 0, 10) for p in p_values]))
    assert outcome in verdict and verdict.endswith("moves no patch here (shuffling off, or every patch kept).")


def test_overlap_verdict_not_testable():
    assert attention_page.overlap_verdict(pd.DataFrame(), 2) == (
        "Not testable here: no finished run has an image with an object box (2 run(s) missing)."
    )
    no_objects = where_rows((0, 1.0, math.nan, 0, 0, 10))
    assert attention_page.overlap_verdict(no_objects).endswith("has an image with an object box.")


def test_synthetic_notes_follow_the_registry():
    real, synthetic = fake_results(), fake_results(datasets=("megapixel_mnist", "synthetic_traffic"))
    assert not attention_page.is_synthetic(real) and attention_page.is_synthetic(synthetic)
    assert attention_page.synthetic_warning(real) == "" and attention_page.synthetic_note(real) == ""
    assert attention_page.synthetic_warning(synthetic).startswith("**The traffic images on this page are SYNTHETIC**")
    assert attention_page.synthetic_note(synthetic) == " The traffic images are synthetic stand-ins, not the real data."


def grid_maps(indices=(7, 13, 21), order=None) -> AttentionMaps:
    """A 5 x 5 grid of 8-px patches with three kept patches; ``order`` defaults to no shuffling."""
    n = len(indices)
    return AttentionMaps(
        grid_shape=(5, 5),
        patch_size=8,
        stride=8,
        indices=np.array(indices),
        selection_scores=np.linspace(1.0, 0.5, n),
        aggregation=np.full((2, n), 1 / n),
        task_names=["majority", "max"],
        predictions={"majority": 3, "max": 7},
        order=np.arange(25) if order is None else np.asarray(order),
    )


def example(boxes, index=0) -> Example:
    return Example(index, torch.zeros(1, 40, 40), np.zeros((40, 40), np.uint8), np.asarray(boxes), {"majority": 3})


def test_overlap_row():
    spec = SimpleNamespace(name="mnist_attention_maps/shuffle=True")
    cfg = SimpleNamespace(ips=SimpleNamespace(patch_size=8, stride=8))
    order = np.r_[7, 0, 1, 2, 3, 4, 5, 6, 8:25]  # cell 7 enters first: the author's script puts it at cell 0
    row = attention_page.overlap_row(spec, cfg, example([[8, 16, 8, 8]]), grid_maps(order=order))  # box on cell 7
    assert row["run"] == "shuffle=True" and (row["objects"], row["kept patches"]) == (1, 3)
    assert row["kept on an object (%)"] == pytest.approx(100 / 3) and row["all cells on an object (%)"] == 4
    assert row[attention_page.P_COLUMN] == pytest.approx(3 / 25)  # P(the object cell is among 3 drawn)
    assert row["author's placement on an object (%)"] == 0 and row[attention_page.MOVED_COLUMN] == 1
    assert row["prediction"] == "majority=3  max=7"


def test_examples_of_adds_an_image_with_an_object(monkeypatch):
    spec = SimpleNamespace(name="traffic/x")
    calls = []

    def load(boxes_at_zero, found=True):
        def fake(cfg, index, *, with_object=False):
            calls.append(with_object)
            if with_object and not found:
                raise IndexError("none")
            return example([[0, 0, 8, 8]] if with_object or boxes_at_zero else np.zeros((0, 4)), 4 * with_object)

        return fake

    monkeypatch.setattr(attention_page.attention, "load_example", load(True))
    examples, note = attention_page.examples_of(spec, None)
    assert [e.index for e in examples] == [0] and note == "" and calls == [False]
    monkeypatch.setattr(attention_page.attention, "load_example", load(False))
    examples, note = attention_page.examples_of(spec, None)
    assert [e.index for e in examples] == [0, 4] and note == ""
    monkeypatch.setattr(attention_page.attention, "load_example", load(False, found=False))
    examples, note = attention_page.examples_of(spec, None)
    assert len(examples) == 1 and note == "No test image of `traffic/x` contains a sign."


def test_example_maps_glue_keys_notes_and_placement(monkeypatch):
    specs = [SimpleNamespace(name=f"e/run{k}", run_dir=k) for k in range(3)]
    shuffle = {0: False, 1: True, 2: True}
    cfgs = {k: SimpleNamespace(ips=SimpleNamespace(patch_size=8, stride=8, shuffle=shuffle[k])) for k in range(3)}
    found = {0: ([example([[8, 16, 8, 8]])], ""), 1: ([example([]), example([[0, 0, 8, 8]], 9)], ""), 2: ([], "none")}
    monkeypatch.setattr(attention_page.attention, "load_trained", lambda run_dir: (run_dir, cfgs[run_dir]))
    monkeypatch.setattr(attention_page, "examples_of", lambda spec, cfg: found[spec.run_dir])
    monkeypatch.setattr(attention_page.attention, "compute_maps", lambda net, cfg, tensor, seed: grid_maps())
    monkeypatch.setattr(attention_page, "plot_maps", lambda image, maps, boxes, title: title)
    out = attention_page.example_maps(specs)
    assert [key for key, _ in out.shown] == ["attention_map_0_0", "attention_map_1_0", "attention_map_1_9", None]
    assert out.shown[0][1] == "e/run0 | test image 0 | truth: majority=3" and out.shown[-1] == (None, "none")
    assert list(out.where["image"]) == [0, 0, 9] and list(out.where["objects"]) == [1, 0, 1]
    assert out.placement[0] is specs[1] and out.placement[1].index == 0  # first run with shuffling on
    assert attention_page.example_maps([]).shown == [(None, "No finished run, so there is no map to draw.")]


def test_placement_figure():
    assert attention_page.placement_figure(attention_page.ExampleMaps()) is None
    spec = SimpleNamespace(name="e/run")
    examples = attention_page.ExampleMaps(placement=(spec, example([[8, 16, 8, 8]], 2), grid_maps()))
    fig = attention_page.placement_figure(examples)
    assert isinstance(fig, Figure) and fig.get_suptitle() == "e/run | test image 2"


def tiny_run(tmp_path, **changes):
    """A run folder holding an untrained tiny model (sample digits, 40 px canvas, 25 patches)."""
    from ipslib.model.ips import IPSNet

    flat = dict(canvas_size=40, digit_size=8, n_noise=0, n_test=2, digit_source="sample", patch_size=8)
    flat |= dict(memory_size=3, iter_size=4, n_res_blocks=1, n_heads=2, head_dim=4, mlp_dim=8, **changes)
    cfg = RunConfig.from_flat(flat)
    torch.manual_seed(0)
    run_dir = tmp_path / cfg.key()
    run_dir.mkdir()
    torch.save({"model": IPSNet.from_config(cfg).state_dict(), "config": cfg.to_flat()}, run_dir / "checkpoint.pt")
    return SimpleNamespace(name=f"e/{cfg.key()}", run_dir=run_dir)


def test_example_maps_and_score_sets_on_a_tiny_model(tmp_path):
    plain, masked = tiny_run(tmp_path), tiny_run(tmp_path, stkim_k=2, stkim_p=0.5, shuffle=True)
    out = attention_page.example_maps([plain, masked])
    assert [key for key, _ in out.shown] == ["attention_map_0_0", "attention_map_1_0"]
    assert all(isinstance(fig, Figure) for _, fig in out.shown)
    assert list(out.where["kept patches"]) == [3, 3] and out.where["objects"].min() == 5  # five digits
    scores, stats = density_page.score_sets([plain, masked])
    assert len(scores) == 2 * (3 + 25) and set(scores["run"]) == {"no masking", "masked (K=2, P=0.5)"}
    assert list(stats["set"]) == [density_page.KEPT, density_page.ALL] * 2 and list(stats["n"]) == [3, 25] * 2


# --- STKIM --------------------------------------------------------------------------------------------------


def stkim_table(author, baseline=70.0, acmil=()):
    """A survival table: ``author`` = [(P, survival, accuracy)], one repeat, ACMIL runs as [(P, accuracy)]."""
    rows = [("seed_selection", p, s, acc) for p, s, acc in author] + [
        ("acmil_aggregation", p, 1.0, a) for p, a in acmil
    ]
    return pd.DataFrame(
        [
            {
                "run": f"{arm}/P={p}",
                "arm": arm,
                "K": 10,
                "P": p,
                "N": 900,
                "M": 100,
                "I": 100,
                "n_iter": 8,
                "survival": s,
                "accuracy (%)": acc,
                "baseline accuracy (%)": baseline,
                "drop (points)": baseline - acc,
                "repeat": 0,
            }
            for arm, p, s, acc in rows
        ]
    )


def verdict_of(table):
    return stkim_page.trend_verdict(stkim_page.settings_table(table), table)


def test_settings_table_averages_repeats():
    table = pd.concat([stkim_table([(0.5, 0.3, 40.0)]), stkim_table([(0.5, 0.3, 50.0)], baseline=80.0)])
    settings = stkim_page.settings_table(table)
    assert len(settings) == 1 and settings.loc[0, "runs"] == 2
    assert (settings.loc[0, "accuracy"], settings.loc[0, "baseline"], settings.loc[0, "drop"]) == (45, 75, 30)
    assert list(settings.columns[:3]) == ["arm", "K", "P"] and settings.loc[0, "n_iter"] == 8


def test_trend_verdict_tracks_and_does_not_track():
    rho, verdict = verdict_of(stkim_table([(0.9, 0.1, 20.0), (0.5, 0.4, 50.0)]))
    assert rho == pytest.approx(1.0) and "Over 3 settings (survival 0.10 to 1), Spearman's rho is 1.00" in verdict
    assert "**tracks**" in verdict
    rho, verdict = verdict_of(stkim_table([(0.9, 0.1, 90.0), (0.5, 0.4, 50.0)]))
    assert rho < stkim_page.MIN_RHO and "**does not track**" in verdict


def test_trend_verdict_with_two_survival_values():
    rho, verdict = verdict_of(stkim_table([(0.5, 0.3, 40.0), (0.6, 0.3, 60.0)]))
    assert math.isnan(rho) and "Only two survival values are present (1 and 0.30)" in verdict
    assert "2 of 2 masked setting(s) score below the baseline (70.0 %), as predicted." in verdict
    _, verdict = verdict_of(stkim_table([(0.5, 0.3, 40.0), (0.6, 0.3, 75.0)]))
    assert verdict.endswith(
        "1 of 2 masked setting(s) score below the baseline (70.0 %), where the formula predicts all of them."
    )


def test_trend_verdict_not_testable():
    rho, verdict = verdict_of(stkim_table([(0.5, 0.3, 40.0)], baseline=math.nan))
    assert math.isnan(rho) and verdict == "Not testable here: no finished baseline in this profile."
    _, verdict = verdict_of(stkim_table([(0.5, 0.3, math.nan)]))
    assert verdict == "Not testable here: no finished run of the author's arm in this profile."


def test_trend_verdict_names_acmil_change():
    _, verdict = verdict_of(stkim_table([(0.5, 0.3, 40.0)], acmil=[(0.5, 71.5)]))
    assert verdict.endswith("changes accuracy by +1.5 points against the baseline.")
    _, verdict = verdict_of(stkim_table([(0.5, 0.3, 40.0)], acmil=[(0.5, 68.0), (0.7, 72.0)]))
    assert "changes accuracy by -2.0 to +2.0 points" in verdict


# --- score densities ----------------------------------------------------------------------------------------


def spread_stats(masked_entropy, masked_top, unmasked=True):
    rows = [
        {
            "run": "masked (K=10, P=0.5)",
            "set": density_page.ALL,
            "normalised entropy": masked_entropy,
            "top-10 share": masked_top,
        }
    ]
    if unmasked:
        rows.append({"run": "no masking", "set": density_page.ALL, "normalised entropy": 0.5, "top-10 share": 0.4})
    rows.append({"run": "no masking", "set": density_page.KEPT, "normalised entropy": 0.99, "top-10 share": 0.01})
    return pd.DataFrame(rows)


def test_spread_verdict_both_outcomes():
    verdict, entropies = density_page.spread_verdict(spread_stats(0.7, 0.2))
    assert verdict.startswith("Normalised entropy 0.700 with masking against 0.500 without; top-10 share 0.200")
    assert "**confirmed**" in verdict and entropies == {"entropy_masked": 0.7, "entropy_unmasked": 0.5}
    verdict, _ = density_page.spread_verdict(spread_stats(0.7, 0.6))  # higher entropy, but more in the top 10
    assert "**not confirmed**" in verdict


def test_spread_verdict_not_testable():
    for stats in (spread_stats(0.7, 0.2, unmasked=False), pd.DataFrame()):
        verdict, entropies = density_page.spread_verdict(stats)
        assert verdict.startswith("Not testable here") and entropies == {}


def test_arm_label_and_density_figure():
    active = SimpleNamespace(stkim=SimpleNamespace(active=True, stkim_k=10, stkim_p=0.25))
    assert density_page.arm_label(active) == "masked (K=10, P=0.25)"
    assert density_page.arm_label(SimpleNamespace(stkim=SimpleNamespace(active=False))) == "no masking"
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {"score": rng.random(40), "set": [density_page.KEPT] * 10 + [density_page.ALL] * 30, "run": "no masking"}
    )
    fig = density_page.density_figure(scores)
    assert [ax.get_title() for ax in fig.axes] == [density_page.KEPT, density_page.ALL]
    assert fig.axes[0].get_xlabel() == "log10 of the score"


# --- chance levels ------------------------------------------------------------------------------------------


def chance_table(simulated):
    table = pd.DataFrame({"chance (%)": [50.0, 10.0], "simulated (%)": simulated}, index=["majority", "max"])
    return chance_page.with_standard_errors(table, 100)


def test_standard_errors_and_agreement():
    table = chance_table([52.0, 10.0])
    assert table["3 standard errors (%)"].tolist() == pytest.approx([15.0, 9.0])
    assert chance_page.agreement(table) == "agrees with the exact values within three standard errors on every task"
    assert chance_page.agreement(chance_table([52.0, 19.5])).startswith("does NOT agree")


def test_chance_levels_smoke():
    levels = chance_page.chance_levels("smoke")
    assert (levels.n, levels.source) == (300, "sample") and levels.n_digits > 0
    assert list(levels.table.columns) == ["prediction", "chance (%)", "simulated (%)", "3 standard errors (%)"]
    assert levels.table.loc["max", "prediction"] == 9 and levels.max_chance == levels.table.loc["max", "chance (%)"]
    assert chance_page.digits_note(levels) == (
        f"Digits: **sample** test split ({levels.n_digits} digits); simulation: the first 300 generated test canvases."
    )


# --- status -------------------------------------------------------------------------------------------------


def test_status_summary(monkeypatch):
    text = status_page.summary_text("cpu", 7200.0, 10, 600.0)
    assert text.startswith("Profile **cpu**: **2.17 h** of compute in all: 10 distinct runs trained for 2.00 h")
    assert text.endswith("notebooks executed in 10.0 min.")
    import pandas as pd

    rows = pd.DataFrame(
        {"counted here": [2, 0, 2], "training (h)": [1.0, 0.0, 1.0]}, index=["a", "b", "total (each run once)"]
    )
    monkeypatch.setattr(status_page, "execution_rows", lambda profile: rows)
    monkeypatch.setattr(status_page, "notebook_seconds", lambda profile: 1800.0)
    hours, text = status_page.compute_summary("smoke")
    assert hours == 1.5 and "**1.50 h**" in text and "2 distinct runs" in text


# --- performance --------------------------------------------------------------------------------------------


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    folder = tmp_path / "outputs" / "benchmarks"
    folder.mkdir(parents=True)
    return folder


def test_load_benchmark(bench):
    data, note = performance_page.load_benchmark("train_step")
    assert data is None and note == (
        "**`train_step` has not been run yet** (no `outputs/benchmarks/train_step.json`). "
        "Run it with `python -m benchmarks.train_step`."
    )
    (bench / "train_step.json").write_text('{"results": []}')
    assert performance_page.load_benchmark("train_step") == ({"results": []}, "")
    with pytest.raises(KeyError, match="choose one of inference_scale, train_step"):
        performance_page.load_benchmark("nope")


def scale_json(goal_canvas=3000, threads=1):
    def row(canvas, mode, total, rss, **extra):
        return {
            "canvas": canvas,
            "mode": mode,
            "n_patches": (canvas // 50) ** 2,
            "n_noise": canvas // 30,
            "total_s": total,
            "peak_rss_mb": rss,
            "process_peak_mb": None if rss is None else rss + 100,
            "baseline_rss_mb": 700.0,
            **extra,
        }

    return {
        "results": [
            row(1500, "dense", 0.5, 820.0),
            row(1500, "streaming", 0.4, 810.0),
            row(3000, "streaming", 2.0, 830.0),
            {**row(3000, "dense", None, None), "skipped": "skipped: would need 9 GB"},
        ],
        "goal": {"canvas": goal_canvas, "peak_rss_mb": 2048, "met": True},
        "comparison": [{"canvas": 1500, "same_selection": True}],
        "setting": {"threads": threads},
        "machine": {"load_average_1min": 1.25},
    }


def test_scale_values_and_summary():
    scale = scale_json()
    assert performance_page.scale_values(scale) == {
        "stream_biggest_canvas": 3000,
        "stream_biggest_rss_mb": 830.0,
        "stream_biggest_s": 2.0,
        "stream_rss_range_mb": 20.0,
    }
    text = performance_page.scale_summary(scale)
    assert "Streaming classified a 3,000² canvas (3,600 patches) in 2 s" in text
    assert "its peak varied by only 20 MB" in text and "(about 700 MB before inference starts)" in text
    assert "is met: the process peaked at 930 MB" in text and "drawing the 100 noise patterns" in text
    assert "Dense inference reached 820 MB at 1,500²; beyond that it was skipped (would need 9 GB at 3,000²)." in text
    assert "they selected the same patches" in text and "with 1 CPU thread on" in text and "average 1.2)" in text
    other = performance_page.scale_summary(scale_json(goal_canvas=48000, threads=2))
    assert "is not measured yet (the benchmark ran smaller canvases only)." in other and "2 CPU threads" in other


def test_scale_table_and_figure():
    table = performance_page.scale_table(scale_json()).data
    assert list(table.columns) == [
        "canvas",
        "patches",
        "noise curves",
        "mode",
        "time (s)",
        "peak memory during inference",
        "process peak",
        "note",
    ]
    assert table.iloc[0].tolist()[:2] == ["1,500²", "900"] and table.iloc[3]["time (s)"] == ""
    assert table.iloc[3]["note"] == "skipped: would need 9 GB" and table.iloc[0]["process peak"] == "920 MB"
    fig = performance_page.scale_figure(scale_json())
    assert [ax.get_xscale() for ax in fig.axes[:2]] == ["log", "log"] and fig.axes[1].get_yscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1.5k", "3k"]


def test_step_table_and_notes():
    steps = {
        "results": [
            {
                "canvas": 1500,
                "dedup_blank": True,
                "batch_size": 4,
                "n_patches": 900,
                "step_s": 2.0,
                "peak_rss_mb": 1500.0,
            },
            {
                "canvas": 1500,
                "dedup_blank": False,
                "batch_size": 4,
                "n_patches": 900,
                "step_s": 8.0,
                "peak_rss_mb": 1600.0,
            },
        ]
    }
    styler, per_canvas = performance_page.step_table(steps)
    assert per_canvas == 500.0 and styler.data["mode"].tolist() == ["ours (dedup_blank)", "dense (every patch encoded)"]
    assert styler.data["ms per step"].tolist() == [2000.0, 8000.0]
    steps["results"] = [r | {"canvas": 3000} for r in steps["results"]]
    assert performance_page.step_table(steps)[1] is None
    diss = pd.Series({"eff_time_ms_mean": 368.0, "eff_peak_memory_gb": 1.844, "eff_n_timed_batches": 311.0})
    assert performance_page.step_note(500.0, diss) == (
        "Per canvas at 1500²: ours 500 ms on this CPU, the dissertation 23 ms on its GPU."
    )
    assert performance_page.dissertation_note(diss) == (
        "Dissertation (GPU, B = 16, 1500²): **368 ms per batch**, **1.84 GB** peak allocated CUDA memory "
        "(311 timed batches)."
    )


def test_dissertation_cost_reads_the_run_logs():
    diss = performance_page.dissertation_cost()
    assert diss["digit_size"] == 28 and diss["eff_time_ms_mean"] > 0 and pd.isna(diss["duplicate_of"])


def test_gpu_section(bench):
    (note,) = performance_page.gpu_section()
    assert note.startswith("**No GPU measurement exists yet**")
    check = {
        "gpu": "H200",
        "torch": "2.14.1",
        "results": [{"canvas": 1500, "ms_per_step": 90.0, "ms_per_step_all": [1]}],
    }
    (bench / "gpu_check.json").write_text(json.dumps(check))
    name, table = performance_page.gpu_section()
    assert name == "Measured on **H200** with PyTorch 2.14.1." and list(table.data.columns) == ["canvas", "ms_per_step"]


def flow_json(best=(300.0, 40.0)):
    production = [
        {"setting": s, "workers": w, "canvases_per_s": best[i] / (w + 1)}
        for i, s in enumerate(("cpu", "paper_1500"))
        for w in (0, 1)
    ]
    consumption = [
        {"setting": "cpu", "source": "measured here", "canvases_per_s": 5.0},
        {"setting": "paper_1500", "source": "dissertation log (GPU)", "canvases_per_s": 43.0},
        {"setting": "paper_3000", "source": "ours", "canvases_per_s": 0.1},
    ]
    headroom = [
        {**c, "best_production_per_s": b, "headroom": b / c["canvases_per_s"]} for c, b in zip(consumption[:2], best)
    ]
    return {
        "production": production,
        "consumption": consumption,
        "headroom": headroom,
        "machine": {"load_average_1min": 7.79},
    }


def test_throughput_note_both_outcomes():
    assert throughput_page.throughput_note(flow_json()) == (
        "Training would wait for data in: paper_1500 against dissertation log (GPU) (40 produced vs 43 consumed "
        "per second). More worker processes help only on a machine with idle cores; on this shared 2-core machine "
        "they competed with the other processes (1-minute load average 7.8)."
    )
    assert throughput_page.throughput_note(flow_json(best=(300.0, 50.0))).startswith("Production exceeds consumption")


def test_throughput_figure_and_headroom_table():
    fig = throughput_page.throughput_figure(flow_json())
    lines = fig.axes[0].collections
    assert len(lines) == 2  # paper_3000 was not produced, so it has no line
    assert [line.get_linestyle()[0][1] is None for line in lines] == [True, False]  # solid, then dashed
    table = throughput_page.headroom_table(flow_json()).data
    assert list(table.columns) == ["setting", "source", "consumed / s", "produced / s (best)", "produced / consumed"]
