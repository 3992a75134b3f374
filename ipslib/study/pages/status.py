"""The execution-status page: how much compute the profile took, and where it went.

Training time comes from the run records (the sum of each run's epoch times), each distinct run counted once:
under the first chapter, in the book's order, that lists it. So the per-chapter times add up to the total, and
runs that are no longer in the manifest (stale records) count nowhere. Notebook times come from ``status.json``.
The environment and GPU tables come from :mod:`ipslib.study.book`.
"""

from __future__ import annotations

import pandas as pd

from ipslib.engine.records import is_finished, load_run
from ipslib.study.book import _papermill_meta, _reading_order, notebook_seconds
from ipslib.study.experiments import load_experiments
from ipslib.study.project import project_root
from ipslib.study.runner import read_status

__all__ = ["compute_summary", "summary_text", "execution_rows", "run_seconds"]


def run_seconds(run_dir) -> float:
    """A finished run's training time: the sum of its epoch times."""
    return float(load_run(run_dir).history["epoch_seconds"].sum())


def execution_rows(profile: str) -> pd.DataFrame:
    """Per chapter: distinct runs, finished, runs counted here (first chapter listing them), their training
    hours, and the notebook's status and time. The training column sums to the profile's training total."""
    status, counted, rows = read_status(profile), set(), []
    for experiment in sorted(load_experiments().values(), key=_reading_order):
        specs = {s.key: s for s in experiment.runs(profile)}
        finished = {k: s for k, s in specs.items() if is_finished(s.run_dir, s.config)}
        own = [k for k in finished if k not in counted]
        counted |= set(own)
        entry = status.get(experiment.name, {})
        meta = _papermill_meta(project_root() / entry.get("notebook", "")) if entry.get("notebook") else {}
        failed = ", ".join(f"{f['name']} ({f['log']})" for f in entry.get("failed", []))
        rows.append(
            {
                "chapter": experiment.name,
                "runs": len(specs),
                "finished": len(finished),
                "counted here": len(own),
                "training (h)": sum(run_seconds(finished[k].run_dir) for k in own) / 3600,
                "failed": failed,
                "notebook": entry.get("status", "not executed"),
                "notebook (s)": meta.get("duration"),
            }
        )
    table = pd.DataFrame(rows).set_index("chapter")
    total = {
        "runs": None,
        "finished": None,
        "counted here": table["counted here"].sum(),
        "training (h)": table["training (h)"].sum(),
        "failed": "",
        "notebook": "",
        "notebook (s)": None,
    }
    table.loc["total (each run once)"] = total
    return table.round({"training (h)": 3, "notebook (s)": 1})


def summary_text(profile: str, train_s: float, n_runs: int, notebooks_s: float) -> str:
    """The page's opening sentence: total compute, training time of the distinct runs, notebook time."""
    total = train_s + notebooks_s
    return (
        f"Profile **{profile}**: **{total / 3600:.2f} h** of compute in all: {n_runs} distinct "
        f"runs trained for {train_s / 3600:.2f} h (the sum of their epoch times from the run "
        "records, a run shared by several chapters counted once, under the first chapter that lists it; "
        "runs trained two at a time on 2 cores take about half that in wall-clock time), and the "
        f"notebooks executed in {notebooks_s / 60:.1f} min."
    )


def compute_summary(profile: str) -> tuple[float, str]:
    """Total hours of compute of ``profile`` (training from the run records, each distinct run once, plus
    notebook execution from ``status.json``) and :func:`summary_text`."""
    rows = execution_rows(profile)
    train_s = 3600 * float(rows.loc["total (each run once)", "training (h)"])
    n_runs = int(rows.loc["total (each run once)", "counted here"])
    notebooks_s = notebook_seconds(profile)
    return (train_s + notebooks_s) / 3600, summary_text(profile, train_s, n_runs, notebooks_s)
