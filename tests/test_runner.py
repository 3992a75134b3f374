"""The runner trains missing runs in subprocesses, records failures with their log, never retrains finished
runs, and still executes the notebook, which names the missing run."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

PARAMS = """title: Runner test
family: megapixel_mnist
profiles:
  smoke:
    fixed: {n_train: 8, n_test: 4}
    cases:
      - {weights: none}
      - {weights: imagenet_v1}    # cannot be downloaded here: this run fails
  cpu: {runs: false}
  paper: {runs: false}
"""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    shutil.copy(ROOT / "params" / "_defaults.yaml", tmp_path / "params")
    shutil.copytree(ROOT / "book" / "templates", tmp_path / "book" / "templates")
    shutil.copytree(ROOT / "book" / "reference", tmp_path / "book" / "reference")
    (tmp_path / "params" / "runner_test.yaml").write_text(PARAMS)
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights to find
    return tmp_path


@pytest.mark.slow
def test_failed_run_is_reported_and_others_continue(project):
    from ipslib.study.experiments import load_experiments
    from ipslib.study.runner import run_experiment, status_path

    lines = []
    experiment = load_experiments()["runner_test"]
    entry = run_experiment(experiment, "smoke", echo=lines.append)
    assert entry["runs"] == 2 and entry["finished"] == 1
    assert len(entry["failed"]) == 1 and "weights=imagenet_v1" in entry["failed"][0]["name"]
    log = project / entry["failed"][0]["log"]
    assert "weights" in log.read_text() and "FAILED" in "\n".join(lines)
    assert entry["status"] == "ok"  # the notebook ran anyway
    notebook = nbformat.read(project / entry["notebook"], as_version=4)
    shown = json.dumps([c.get("outputs", []) for c in notebook.cells])
    assert "Missing runs" in shown and "weights=imagenet_v1" in shown
    assert json.loads(status_path("smoke").read_text())["runner_test"]["failed"]

    again = run_experiment(experiment, "smoke", echo=lines.append)
    assert "1 of 2 runs already finished; training 1" in "\n".join(lines)
    assert again["finished"] == 1


def test_run_all_trains_every_experiment_in_one_pool(project, monkeypatch):
    """All experiments' runs go to one train_runs call (so both jobs stay busy across experiments);
    each experiment's status records only its own runs' training time."""
    from ipslib.study import runner

    (project / "params" / "second.yaml").write_text(
        PARAMS.replace("Runner test", "Second").replace(
            "- {weights: imagenet_v1}    # cannot be downloaded here: this run fails", "- {n_noise: 3}"
        )
    )
    calls = []

    def fake_train(specs, *, jobs=1, force=False, echo=print):
        calls.append([s.key for s in specs])
        return [
            {"name": s.name, "key": s.key, "returncode": 0, "seconds": 1.0, "log": ""}
            for s in {s.key: s for s in specs}.values()
        ]

    monkeypatch.setattr(runner, "train_runs", fake_train)
    monkeypatch.setattr(
        runner, "execute_notebook", lambda exp, profile: {"notebook": exp.name, "status": "ok", "seconds": 0.0}
    )
    entries = runner.run_all("smoke", jobs=2, echo=lambda line: None)
    assert len(calls) == 1
    experiments = runner.load_experiments()
    keys = {name: {s.key for s in experiments[name].runs("smoke")} for name in ("runner_test", "second")}
    assert set(calls[0]) == keys["runner_test"] | keys["second"]
    for name in keys:
        assert set(entries[name]["train_seconds"]) == keys[name]


def test_fingerprint_follows_packages_through_importlib():
    from ipslib.study.runner import NOTEBOOK_PACKAGES, package_files

    files = package_files()
    assert "ipslib.study/runner.py" in files and "ipslib.data/chance.py" in files
    assert all(path.is_file() for path in files.values())
    assert {name.split("/")[0] for name in files} == set(NOTEBOOK_PACKAGES)


def test_fingerprint_refuses_a_package_it_cannot_find():
    from ipslib.study.runner import package_files

    with pytest.raises(ModuleNotFoundError, match="ipslib.no_such_package"):
        package_files(("ipslib.no_such_package",))


TEMPLATES = sorted(p.stem for p in (ROOT / "book" / "templates").glob("*.md"))


def test_every_params_file_names_a_markdown_template():
    from ipslib.study.book import BOOK_PAGES
    from ipslib.study.experiments import load_experiments
    from ipslib.study.runner import template_path

    used = {exp.notebook for exp in load_experiments(ROOT).values()} | {page.notebook for page in BOOK_PAGES}
    assert used == set(TEMPLATES)
    assert all(template_path(name).suffix == ".md" for name in used)


def test_missing_template_names_the_file(project):
    from ipslib.study.runner import template_path

    with pytest.raises(FileNotFoundError, match=r"book/templates/nope\.md not found"):
        template_path("nope")


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_read_as_stable_v4_notebooks(name):
    """Each template: a typed parameters cell hidden from the book, stable ids, nothing of jupytext left."""
    from ipslib.study.runner import read_template

    notebook = read_template(name)
    assert notebook.nbformat == 4 and notebook.metadata["kernelspec"]["name"] == "python3"
    assert "jupytext" not in notebook.metadata
    assert [cell.id for cell in notebook.cells] == [f"cell-{i}" for i in range(len(notebook.cells))]
    assert nbformat.writes(read_template(name)) == nbformat.writes(notebook)
    nbformat.validate(notebook)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert "remove-cell" in parameters.metadata["tags"] and 'profile: str = "' in parameters.source
    assert all(c.metadata.get("tags") for c in notebook.cells if c.cell_type == "code")  # every code cell hidden


def test_prepare_notebook_puts_the_experiment_header_in_the_title_cell():
    from ipslib.study.experiments import load_experiments
    from ipslib.study.runner import prepare_notebook

    experiment = load_experiments(ROOT)["mnist_stkim_p"]
    notebook = prepare_notebook(experiment)
    assert notebook.cells[0].source.startswith(f"# {experiment.title}\n")
    assert not any("title" in c.metadata.get("tags", []) for c in notebook.cells)
