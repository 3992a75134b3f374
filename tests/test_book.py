"""End to end: `ipslib book --profile smoke` trains every smoke run, executes every notebook with papermill and
builds the Jupyter Book strictly; then headless Chromium visits every page of the table of contents."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "smoke" / "_build" / "html"


@pytest.fixture(scope="module")
def smoke_book():
    env = {**os.environ, "TQDM_DISABLE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "ipslib.cli", "book", "--profile", "smoke", "--jobs", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_smoke_book_executes_every_notebook(smoke_book):
    status = json.loads((ROOT / "outputs" / "smoke" / "status.json").read_text())
    from ipslib.study.experiments import load_experiments

    assert set(status) == set(load_experiments(ROOT))
    bad = {name: entry for name, entry in status.items() if entry["status"] != "ok" or entry["failed"]}
    assert not bad
    assert all(entry["finished"] == entry["runs"] for entry in status.values())
    assert "warning" not in smoke_book.stderr.lower() or "build succeeded" in smoke_book.stdout


@pytest.mark.slow
def test_browser_visits_every_page(smoke_book):
    if not (browser.CHROMIUM and browser.DRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are needed for the browser test (make test installs them)")
        pytest.skip("chromium/chromedriver not installed")
    shots = ROOT / "_build" / "smoke" / "screenshots"
    problems, facts = browser.check_book(HTML, shots)
    assert not problems, problems
    from ipslib.study.experiments import load_experiments

    notebook_pages = [name for name in facts if "notebooks" in name]
    from ipslib.study.book import BOOK_PAGES

    assert len(notebook_pages) == len(load_experiments(ROOT)) + len(BOOK_PAGES)  # + register, status, ...
    assert all(facts[name]["tables"] > 0 for name in notebook_pages)
    with_runs = [
        f"outputs/smoke/notebooks/{name}.html" for name, exp in load_experiments(ROOT).items() if exp.runs("smoke")
    ]
    assert all(facts[name]["images"] > 0 for name in with_runs), {n: facts[n]["images"] for n in with_runs}
    assert (shots / "intro.png").stat().st_size > 10_000 and (shots / "results.png").stat().st_size > 10_000
