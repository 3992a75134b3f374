"""A new user's first hour, piece by piece (issue 15): papermill on the templates, the project found from any
folder, the shipped predict model and its picture, tiled TIFFs read without thrashing, the command line's
conventions, the run browser and the pinned set-up."""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from ipslib.cli import EXIT_CODES, build_parser, main
from ipslib.config import ConfigError
from ipslib.study.pages.parameters import check_parameters

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "outputs" / "models" / "mnist_cpu"
TEMPLATES = sorted((ROOT / "book" / "templates").glob("*.md"))
JOURNEY = """title: Journey test
family: megapixel_mnist
profiles:
  smoke:
    fixed: {n_train: 8, n_test: 4}
    grid: {n_noise: [1, 3]}
  cpu: {runs: false}
  paper: {runs: false}
"""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project folder with one tiny experiment (two smoke runs), named through IPSLIB_ROOT."""
    root = tmp_path / "project"
    (root / "params").mkdir(parents=True)
    shutil.copy(ROOT / "params" / "_defaults.yaml", root / "params")
    shutil.copytree(ROOT / "book" / "templates", root / "book" / "templates")
    shutil.copytree(ROOT / "book" / "reference", root / "book" / "reference")
    (root / "params" / "journey.yaml").write_text(JOURNEY)
    monkeypatch.setenv("IPSLIB_ROOT", str(root))
    return root


# ---------------------------------------------------------------- 1. templates that papermill users can drive
def _declared(template: Path) -> dict[str, str]:
    """name -> type of the template's parameters cell."""
    cell = re.search(r":tags: \[parameters[^\]]*\]\n\n(.*?)```", template.read_text(), re.S).group(1)
    return {n.target.id: n.annotation.id for n in ast.parse(cell).body if isinstance(n, ast.AnnAssign)}


def _checked(template: Path) -> dict[str, str]:
    """name -> type passed to check_parameters in the template."""
    call = re.search(r"check_parameters\(globals\(\), ([^)]*)\)", template.read_text()).group(1)
    return dict(item.strip().split("=") for item in call.split(","))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_each_template_checks_exactly_the_parameters_it_declares(template):
    text = template.read_text()
    first_code = text.split("```{code-cell}")[2]  # the cell after the parameters cell
    assert "check_parameters(globals()" in first_code
    assert _checked(template) == _declared(template)
    assert "profile" in _declared(template)


def test_unknown_parameters_are_an_error_naming_the_declared_ones():
    namespace = {"experiment": "x", "profile": "cpu", "profle": "smoke", "pd": types.ModuleType("pd"), "f": print}
    with pytest.raises(ConfigError, match=r"unknown notebook parameter\(s\) profle; this template takes experiment"):
        check_parameters(namespace, experiment=str, profile=str)
    del namespace["profle"]
    check_parameters(namespace, experiment=str, profile=str)  # modules and functions are not parameters


def test_an_experiment_file_given_to_papermill_is_refused_with_what_to_pass():
    injected = {"profile": "cpu", "title": "Noise count", "family": "megapixel_mnist", "profiles": {}}
    with pytest.raises(ConfigError, match=r"keys of a params/<experiment>\.yaml file.*-p experiment NAME"):
        check_parameters(injected, profile=str)


def test_mistyped_parameters_are_an_error():
    with pytest.raises(ConfigError, match=r"overrides='epochs=1' must be a dict"):
        check_parameters({"overrides": "epochs=1"}, overrides=dict)
    with pytest.raises(ConfigError, match=r"train_missing=1 must be a bool"):
        check_parameters({"train_missing": 1}, train_missing=bool)


def test_overrides_apply_to_every_run_and_refuse_what_the_experiment_varies(project):
    from ipslib.study.results import load_results

    plain = load_results("journey", "smoke")
    changed = load_results("journey", "smoke", overrides={"epochs": 1, "lr": 0.01})
    assert [s.config.train.epochs for s in changed.specs] == [1, 1]
    assert {s.key for s in changed.specs}.isdisjoint(s.key for s in plain.specs)
    assert [s.varied for s in changed.specs] == [s.varied for s in plain.specs]
    with pytest.raises(ConfigError, match="n_noise is varied by this experiment"):
        load_results("journey", "smoke", overrides={"n_noise": 2})
    with pytest.raises(ConfigError, match="epochz"):
        load_results("journey", "smoke", overrides={"epochz": 1})


@pytest.mark.slow
def test_papermill_command_line_from_another_folder(project, tmp_path):
    """The README's papermill journey: a template as .ipynb, one experiment with overrides trained by the
    notebook; an experiment file passed with -f is refused with a message, and so is a typo."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_dir = Path(sys.executable).parent
    run = lambda *args: subprocess.run(args, cwd=elsewhere, capture_output=True, text=True)  # noqa: E731
    made = run(str(bin_dir / "ipslib"), "template", "experiment", "--out", "chapter.ipynb")
    assert made.returncode == 0, made.stderr
    papermill = [str(bin_dir / "papermill"), "chapter.ipynb", "out.ipynb", "--no-progress-bar"]
    done = run(*papermill, "-p", "experiment", "journey", "-p", "profile", "smoke", "-y", "overrides: {epochs: 1}",
               "-p", "train_missing", "True")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    shown = (elsewhere / "out.ipynb").read_text()
    assert "Missing runs" not in shown and "n_noise" in shown
    runs = sorted((project / "outputs" / "smoke" / "runs").glob("*/metrics.json"))
    assert len(runs) == 2 and all(json.loads(p.read_text())["epochs"] == 1 for p in runs)
    refused = run(*papermill, "-f", str(project / "params" / "journey.yaml"))
    assert refused.returncode != 0 and "params/<experiment>.yaml" in refused.stderr + refused.stdout
    typo = run(*papermill, "-p", "experimnet", "journey")
    assert typo.returncode != 0 and "unknown notebook parameter(s) experimnet" in typo.stderr + typo.stdout


# ---------------------------------------------------------------- 2. the project root from the package or an option
def test_project_root_is_the_checkout_from_any_folder(monkeypatch, tmp_path):
    from ipslib.study.project import project_root

    monkeypatch.delenv("IPSLIB_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert project_root() == ROOT


def test_without_a_checkout_or_root_the_error_says_what_to_do(monkeypatch, tmp_path):
    from ipslib.study import project

    monkeypatch.delenv("IPSLIB_ROOT", raising=False)
    monkeypatch.setattr(project, "package_checkout", lambda: None)
    with pytest.raises(ConfigError, match=r"pass --root DIR or set IPSLIB_ROOT=DIR"):
        project.project_root()
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no such folder"):
        project.project_root()


def test_runs_from_another_folder_lists_the_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "IPSLIB_ROOT"}
    done = subprocess.run(
        [sys.executable, "-m", "ipslib.cli", "runs", "--profile", "smoke"], cwd=tmp_path, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    count = int(re.search(r"^(\d+) runs", done.stdout.splitlines()[-1]).group(1))
    assert count > 10


def test_root_option_names_the_project(project, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("IPSLIB_ROOT")
    assert main(["--root", str(tmp_path), "runs"]) == 2
    assert "not an ipslib project" in capsys.readouterr().err
    assert main(["--root", str(project), "runs", "--profile", "smoke"]) == 0
    assert "2 runs (2 distinct), 0 finished" in capsys.readouterr().out


# ---------------------------------------------------------------- 4. a predict model that learned, a helpful picture
def test_the_shipped_model_learned_and_loads_cleanly():
    from ipslib.data.registry import chance_levels
    from ipslib.engine.predict import load_model
    from ipslib.engine.records import read_metrics

    assert (MODEL / "checkpoint.pt").stat().st_size < 5 * 2**20  # small enough to commit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # re-keyed, with a content hash: no warning
        _, cfg = load_model(MODEL)
    metrics = read_metrics(MODEL)
    assert metrics["finished"] and metrics["config_key"] == cfg.key()
    chance = chance_levels(cfg)
    last = {task: v["accuracy"] for task, v in metrics["last"]["test"].items()}
    assert all(last[task] > chance[task] + 0.2 for task in last), (last, chance)
    card = (MODEL / "README.md").read_text()
    for task in last:  # the card's numbers are the record's
        assert f"{100 * last[task]:.1f} %" in card and f"{100 * chance[task]:.1f} %" in card


def test_predict_writes_scored_kept_patches_gallery_and_probabilities(tmp_path, monkeypatch, capsys):
    from ipslib.engine import predict as predict_module

    drawn = {}
    real = predict_module.draw_attention_map

    def spy(*args, **kwargs):
        drawn["fig"], drawn["kwargs"] = real(*args, **kwargs), kwargs
        return drawn["fig"]

    monkeypatch.setattr(predict_module, "draw_attention_map", spy)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    out = tmp_path / "pred"
    assert main(["predict", str(MODEL), "--mnist-index", "3", "--top-k", "5", "--out", str(out)]) == 0
    report = json.loads((out / "prediction.json").read_text())
    kept = report["kept_patches"]
    assert len(kept["indices"]) == 32 and max(kept["scores"]) - min(kept["scores"]) > 1e-3  # the scores differ
    cols = 224 // 16
    assert kept["top_left"] == [[16 * (i // cols), 16 * (i % cols)] for i in kept["indices"]]
    crops = drawn["kwargs"]["crops"]
    assert [c.score for c in crops] == sorted(kept["scores"], reverse=True)[:5]
    assert all(c.pixels.shape == (16, 16) for c in crops) and drawn["kwargs"]["truth"] == report["true_labels"]
    axes = drawn["fig"].axes  # image, colour bar, 4 task panels, 5 crops
    assert len(axes) == 1 + 1 + 4 + 5
    assert report["threads"] == 1 and report["device"] == "cpu"
    assert "scoring" in capsys.readouterr().err  # the progress bar
    assert (out / "attention.png").stat().st_size > 20_000


def test_predict_device_and_threads_options(capsys):
    parser = build_parser()
    args = parser.parse_args(["predict", str(MODEL), "--mnist-index", "0"])
    assert args.threads == 1 and args.device == "cpu"
    if not torch.cuda.is_available():
        assert main(["predict", str(MODEL), "--mnist-index", "0", "--device", "cuda", "--no-progress"]) == 2
        assert "--device cuda" in capsys.readouterr().err


# ---------------------------------------------------------------- 5. tiled TIFFs in shuffled patch order
def _tiff(tmp_path: Path) -> tuple[Path, np.ndarray]:
    image = np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8)
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image, tile=(64, 64), compression="zlib")
    return path, image


def _shuffled_pass(source) -> torch.Tensor:
    order = torch.randperm(source.n_patches, generator=torch.Generator().manual_seed(0))
    return torch.cat([source.take(order[i : i + 10][None]) for i in range(0, source.n_patches, 10)], dim=1)


def test_a_tiled_tiff_is_decoded_once_per_tile_in_shuffled_order(tmp_path):
    from ipslib.streaming.disk import ArrayPatchSource, TiffPatchSource

    path, image = _tiff(tmp_path)
    tiff = TiffPatchSource([path], 16, scratch_dir=tmp_path)
    assert torch.equal(_shuffled_pass(tiff), _shuffled_pass(ArrayPatchSource([image], 16)))
    assert tiff.segments_read == 64 and tiff.scratch_bytes == 512 * 512
    lru = TiffPatchSource([path], 16, scratch=False, cache_mb=0)  # the small cache alone thrashes
    _shuffled_pass(lru)
    assert lru.segments_read > 4 * 64
    tiff.close()


def test_the_tiff_scratch_copy_gives_way_when_the_disk_is_full(tmp_path, monkeypatch):
    from ipslib.streaming import disk

    path, image = _tiff(tmp_path)
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=2**20))
    with pytest.warns(UserWarning, match="does not fit"):
        tiff = disk.TiffPatchSource([path], 16)
    assert tiff.scratch_bytes == 0
    assert torch.equal(_shuffled_pass(tiff), _shuffled_pass(disk.ArrayPatchSource([image], 16)))


# ---------------------------------------------------------------- 6. command-line conventions
def test_version_and_exit_codes_in_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and re.fullmatch(r"ipslib \d+\.\d+\.\d+\n", capsys.readouterr().out)
    text = build_parser().format_help()
    assert "exit codes:" in text and all(f"  {code} " in text for code in EXIT_CODES)
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{code}`" in readme for code in EXIT_CODES)


def _subparsers(parser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + name, sub
                yield from _subparsers(sub, f"{prefix}{name} ")


def test_every_subcommand_has_a_one_line_description():
    found = dict(_subparsers(build_parser()))
    assert {"runs", "predict", "data fetch", "template"} <= set(found)
    for name, sub in found.items():
        assert sub.description and "``" not in sub.description, name


def test_json_into_a_pipe_that_closes_early_is_quiet():
    child = subprocess.Popen(
        [sys.executable, "-m", "ipslib.cli", "runs", "--profile", "paper", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout.readline().strip() == b"["
    child.stdout.close()  # as `| head -1` does
    assert child.wait(timeout=120) == 141
    assert b"Traceback" not in child.stderr.read()


# ---------------------------------------------------------------- 8. the run browser
def test_runs_metrics_lists_finished_runs_with_accuracy_time_and_memory(capsys):
    assert main(["runs", "--metrics", str(MODEL.parent)]) == 0
    text = capsys.readouterr().out
    assert "majority 90.0" in text and "finished run(s)" in text
    assert main(["runs", "--metrics", str(MODEL), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["last_test"]["majority"] == 0.9 and row["wall_seconds"] > 60 and row["peak_memory_mb"] > 100


def test_runs_history_prints_and_draws_each_epoch(tmp_path, capsys):
    assert main(["runs", "--history", str(MODEL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + 40 and lines[-1].split()[0] == "40"
    png = tmp_path / "curves.png"
    assert main(["runs", "--history", str(MODEL), "--out", str(png)]) == 0 and png.stat().st_size > 10_000
    assert main(["runs", "--history", str(tmp_path)]) == 2
    assert "history.csv: no such file" in capsys.readouterr().err


# ---------------------------------------------------------------- 7. packaging: the pinned set-up
def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_constraints_pin_every_requirement_within_its_range():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _constraints()
    for text in requirements:
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in constraints.txt (make constraints)"
        assert requirement.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]} outside {text}"
    assert "notebook" in project["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in project["optional-dependencies"]["notebook"])


def test_the_set_up_uses_the_constraints_and_the_readme_names_every_system_piece():
    makefile = (ROOT / "Makefile").read_text()
    env_recipe = makefile.split("$(STAMP): ")[1].split("\n\n")[0]
    assert re.search(r'pip install --quiet -c constraints\.txt -e "\.\[report,dev[\],]', env_recipe), env_recipe
    readme = (ROOT / "README.md").read_text()
    for piece in ("npm", "apt-get", "chromium", "constraints.txt", "papermill", "jupyter lab", "--root", "IPSLIB_ROOT"):
        assert piece in readme, piece
