"""The performance chapter's per-patch cost section (ipslib.study.pages.roofline), on made-up benchmark JSON."""

from __future__ import annotations

import pytest

from ipslib.study.pages import performance as performance_page
from ipslib.study.pages import roofline as roofline_page


def steps_json(share=0.5):
    def row(mode, phase, dtype, patches, ms, gflop, peak):
        achieved = gflop / (ms / 1000)
        return {
            "setting": "1500",
            "mode": mode,
            "phase": phase,
            "dtype": dtype,
            "patches": patches,
            "ms_per_patch": ms,
            "gflop_per_patch": gflop,
            "achieved_gflops": achieved,
            "peak_gflops": peak,
            "share_of_peak": achieved / peak,
        }

    peak = {"float32": 0.105 / 0.001 / share, "bf16": 300.0}
    return {
        "matmul_peak_gflops": peak,
        "roofline": [
            row("ours_fp32", "scoring", "float32", 344, 1.0, 0.105, peak["float32"]),
            row("ours_fp32", "gradient pass", "float32", 400, 3.0, 0.3115, peak["float32"]),
            row("ours_bf16", "scoring", "bf16", 344, 0.35, 0.105, 300.0),
            row("ours_bf16", "gradient pass", "bf16", 400, 1.2, 0.3115, 300.0),
            row("dense", "scoring", "float32", 3600, 1.1, 0.105, peak["float32"]),
            row("dense", "gradient pass", "float32", 400, 3.0, 0.3115, peak["float32"]),
        ],
    }


def test_roofline_table_and_figure():
    table = roofline_page.roofline_table(steps_json()).data
    assert list(table.columns) == [
        "setting",
        "mode",
        "phase",
        "patches",
        "ms per patch",
        "GFLOP per patch",
        "achieved GFLOP/s",
        "matmul peak GFLOP/s",
        "of peak",
    ]
    assert table["mode"].tolist()[:3] == ["ours, float32", "ours, float32", "ours, bf16"]
    assert table.iloc[0]["of peak"] == "50%" and table.iloc[0]["achieved GFLOP/s"] == pytest.approx(105.0)
    fig = roofline_page.roofline_figure(steps_json())
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.patches) >= 6  # 3 modes x 2 phases
    assert sorted(round(line.get_ydata()[0]) for line in ax.get_lines() if line.get_linestyle() in ("--", ":")) == [
        210,
        300,
    ]


def test_roofline_note_names_costs_and_peaks():
    note = roofline_page.roofline_note(steps_json())
    assert note.startswith("This CPU multiplied 2048² matrices at 210 GFLOP/s in float32 and 300 GFLOP/s in bfloat16")
    assert "ours, float32: scoring 1.00 ms per encoded patch (105 GFLOP/s, 50% of the float32 peak)" in note
    assert "gradient pass 1.20 ms per kept patch (260 GFLOP/s, 87%)" in note and "above 100 %" not in note
    assert "A share above 100 % means" in roofline_page.roofline_note(steps_json(share=2.0))


def test_bf16_status_says_which_precision_the_profile_uses():
    agreement = {
        "rows": [
            {
                "setting": "cpu",
                "canvas": 144,
                "n_patches": 16,
                "memory_size": 6,
                "model": "trained",
                "items": 200,
                "mean_jaccard": 0.99,
                "min_jaccard": 0.71,
                "identical_share": 0.95,
            }
        ]
    }
    text = roofline_page.bf16_status(agreement, None, "none")
    assert "cpu (144², N = 16, M = 6), trained: mean Jaccard **0.9900** over 200 test canvases (min 0.71" in text
    assert "**not been run yet**" in text and text.endswith("bf16 stays an option (`--set amp=bf16`).")
    training = {"seeds": [0, 1, 2], "settings": {"cpu": {"equivalent": True}, "1500": {"equivalent": True}}}
    assert "Both checks hold, but the cpu profile still trains in **float32**" in roofline_page.bf16_status(
        None, training, "none"
    )
    training["settings"]["1500"]["equivalent"] = False
    mixed = roofline_page.bf16_status(None, training, "none")
    assert "1500: NOT equivalent" in mixed and "not measured yet" in mixed and "still" not in mixed
    assert roofline_page.bf16_status(None, None, "bf16").endswith("The cpu profile **uses bf16** (`amp: bf16`).")
    assert roofline_page.cpu_default_amp() == "none"


def test_bf16_benchmarks_are_known_to_the_chapter(tmp_path, monkeypatch):
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    data, note = performance_page.load_benchmark("bf16_training")
    assert data is None and "`python -m benchmarks.bf16 training" in note
