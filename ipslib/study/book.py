"""The Jupyter Book: table of contents from ``params/``, the book's own pages, and the build.

``build(profile)`` runs what is missing for the profile (runs without records, notebooks whose inputs
changed), executes the book pages of :data:`BOOK_PAGES` (the discrepancy register, the execution status,
...), writes the profile's table of contents and builds the HTML book strictly (``-n -W --keep-going``).
The ``cpu`` profile uses the committed root ``_toc.yml`` and builds into ``_build/html``; other profiles
write their TOC and HTML under ``_build/<profile>/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ipslib.study.experiments import PARTS, load_experiments
from ipslib.study.project import project_root
from ipslib.study.runner import execute_notebook, fingerprint, notebook_path, read_status, run_all
from ipslib.system.files import atomic_write_text

__all__ = [
    "toc",
    "toc_path",
    "html_dir",
    "environment_table",
    "execution_table",
    "total_seconds",
    "training_seconds",
    "notebook_seconds",
    "gpu_note",
    "build",
    "BookPage",
    "BOOK_PAGES",
    "STATUS_NOTEBOOK",
]

STATUS_NOTEBOOK = "status"
STATIC_FRONT = ["book/methods"]
STATIC_BACK = ["book/references"]


@dataclass(frozen=True)
class BookPage:
    """A page of the book executed like an experiment notebook (template ``book/templates/<name>.md``), with
    the profile as its only parameter. ``part``: ``front`` (after the static front pages, in "The study")
    or ``back`` (in "About this book", before the references)."""

    name: str
    title: str
    part: str
    ids: tuple[str, ...] = ()
    dissertation: str = ""
    description: str = ""

    @property
    def notebook(self) -> str:
        return self.name


BOOK_PAGES = (
    BookPage("ledger", "Claims ledger", "front"),
    BookPage("register", "Discrepancy register", "front"),
    BookPage("limits", "Limits of the cpu scale", "back"),
    BookPage("paper_scale", "Re-running at paper scale", "back"),
    BookPage(STATUS_NOTEBOOK, "Environment and execution status", "back"),
)
"""The book's own pages, in their order within each part; adding one is one line here and its template."""


def _nb(profile: str, name: str) -> str:
    return f"outputs/{profile}/notebooks/{name}"


def _reading_order(experiment: Any) -> tuple:
    """Chapters follow the spec's experiment ids (E1, E2, ..., then the unreported X runs)."""
    first = experiment.ids[0] if experiment.ids else "Z"
    return (first[0], int(first[1:]) if first[1:].isdigit() else 0, experiment.name)


def toc(profile: str) -> dict[str, Any]:
    """The table of contents for ``profile``: static and book pages, one chapter per experiment."""
    experiments = sorted(load_experiments().values(), key=_reading_order)
    front = [*STATIC_FRONT, *(_nb(profile, p.name) for p in BOOK_PAGES if p.part == "front")]
    back = [*(_nb(profile, p.name) for p in BOOK_PAGES if p.part == "back"), *STATIC_BACK]
    parts = [{"caption": "The study", "chapters": [{"file": f} for f in front]}]
    for part, caption in PARTS.items():
        chapters = [{"file": _nb(profile, e.name)} for e in experiments if e.part == part]
        if chapters:
            parts.append({"caption": caption, "chapters": chapters})
    parts.append({"caption": "About this book", "chapters": [{"file": f} for f in back]})
    return {"format": "jb-book", "root": "book/intro", "parts": parts}


def toc_path(profile: str) -> Path:
    root = project_root()
    return root / "_toc.yml" if profile == "cpu" else root / "_build" / profile / "_toc.yml"


def html_dir(profile: str) -> Path:
    root = project_root()
    return root / "_build" / "html" if profile == "cpu" else root / "_build" / profile / "_build" / "html"


def write_toc(profile: str) -> Path:
    path = toc_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated from params/ by `ipslib book` (ipslib.study.book.toc); edit params/, not this file.\n"
    atomic_write_text(path, header + yaml.safe_dump(toc(profile), sort_keys=False))
    return path


def environment_table() -> pd.DataFrame:
    """Hardware and software this page was executed on (:func:`ipslib.system.machine.machine_info`)."""
    from ipslib.system.machine import machine_info

    info = machine_info()
    shown = {"cpu_count": "cpu cores", "memory_gib": "memory (GiB)"}
    rows = {shown.get(k, k): info[k] for k in ("python", "platform", "processor", "cpu_count")}
    rows.update({k: info[k] for k in ("torch", "torchvision", "numpy")})
    rows["gpu"] = info["gpu"] or "none"
    if info["memory_gib"] is not None:
        rows[shown["memory_gib"]] = info["memory_gib"]
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="item"))


def _papermill_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("metadata", {}).get("papermill", {})


def execution_table(profile: str) -> pd.DataFrame:
    """Per experiment: runs, finished runs, failures, training time and the notebook's papermill record."""
    rows = []
    for name, entry in read_status(profile).items():
        meta = _papermill_meta(project_root() / entry.get("notebook", ""))
        rows.append(
            {
                "experiment": name,
                "runs": entry.get("runs"),
                "finished": entry.get("finished"),
                "failed": ", ".join(f"{f['name']} ({f['log']})" for f in entry.get("failed", [])) or "",
                "training (s)": round(sum(entry.get("train_seconds", {}).values())),
                "notebook": entry.get("status"),
                "notebook (s)": meta.get("duration"),
                "executed at": (meta.get("end_time") or "")[:19],
            }
        )
    return pd.DataFrame(rows).set_index("experiment") if rows else pd.DataFrame()


def training_seconds(profile: str) -> tuple[float, int]:
    """Training time of the profile's distinct finished runs, from their records (sum of epoch times; a run
    shared by several experiments counts once), and how many runs that is."""
    from ipslib.engine.records import is_finished, load_run

    specs = {s.key: s for exp in load_experiments().values() for s in exp.runs(profile)}
    finished = [s for s in specs.values() if is_finished(s.run_dir, s.config)]
    seconds = sum(float(load_run(s.run_dir).history["epoch_seconds"].sum()) for s in finished)
    return seconds, len(finished)


def notebook_seconds(profile: str) -> float:
    """Execution time of the profile's notebooks, from the runner's status.json."""
    return float(sum(e.get("seconds") or 0 for e in read_status(profile).values()))


def total_seconds(profile: str) -> float:
    """Training (each distinct run once) plus notebook execution time of ``profile``."""
    return training_seconds(profile)[0] + notebook_seconds(profile)


def gpu_note() -> str:
    """What GPU measurements exist (``outputs/benchmarks/gpu*.json``), or a plain statement that none do."""
    files = sorted((project_root() / "outputs" / "benchmarks").glob("gpu*.json"))
    if not files:
        return (
            "No GPU measurement exists yet: every number in this book was produced on the CPU. "
            "`benchmarks/` holds the script that measures a GPU in one short run when one is available."
        )
    return "GPU measurements: " + ", ".join(f"`{p.relative_to(project_root())}`" for p in files)


def _run_stale(profile: str, jobs: int, force: bool, echo: Callable[[str], None]) -> None:
    """Train and execute every experiment whose notebook is missing or stale (all its runs in one pool)."""
    status = read_status(profile)
    stale = []
    for exp in load_experiments().values():
        entry = status.get(exp.name, {})
        fresh = (
            entry.get("status") == "ok"
            and entry.get("fingerprint") == fingerprint(exp, profile)
            and notebook_path(profile, exp.name).is_file()
        )
        if force or not fresh:
            stale.append(exp.name)
    if stale:
        run_all(profile, names=stale, jobs=jobs, force=force, echo=echo)


MATHJAX = "mathjax@3.2.2"


def ensure_mathjax(echo: Callable[[str], None] = print) -> bool:
    """Put MathJax (SVG output, one file) into ``book/_static/mathjax/`` from the npm registry, once."""
    import shutil
    import tarfile
    import tempfile

    target = project_root() / "book" / "_static" / "mathjax" / "tex-svg-full.js"
    if target.is_file():
        return True
    npm = shutil.which("npm")
    if npm is None:
        echo("note: npm not found; math in the book will load MathJax from the web")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run([npm, "pack", MATHJAX, "--silent"], cwd=tmp, capture_output=True, text=True)
        archives = list(Path(tmp).glob("mathjax-*.tgz"))
        if packed.returncode != 0 or not archives:
            echo(f"note: `npm pack {MATHJAX}` failed; math will load MathJax from the web")
            return False
        with tarfile.open(archives[0]) as archive:
            member = archive.extractfile("package/es5/tex-svg-full.js")
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, member.read().decode())
    return True


def build(
    profile: str = "cpu", *, jobs: int = 1, force: bool = False, run: bool = True, echo: Callable[[str], None] = print
) -> Path:
    """Run what is missing, execute the book pages, write the TOC and build the HTML book strictly."""
    if run:
        _run_stale(profile, jobs, force, echo)
    for page in BOOK_PAGES:
        entry = execute_notebook(page, profile, {"profile": profile})
        if entry["status"] != "ok":
            raise RuntimeError(f"the page {page.title!r} ({page.name}) failed: {entry.get('error')}")
    toc_file = write_toc(profile)
    ensure_mathjax(echo)
    root = project_root()
    command = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(root),
        "--toc",
        str(toc_file),
        "-W",
        "-n",
        "--keep-going",
        "--all",
    ]
    if profile != "cpu":
        command += ["--path-output", str(root / "_build" / profile)]
    echo("$ " + " ".join(command))
    result = subprocess.run(command, cwd=root)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")
    index = html_dir(profile) / "book" / "intro.html"
    echo(f"The book is at {index}")
    return index
