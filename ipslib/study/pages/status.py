"""The execution-status page: how much compute the profile took, in one sentence.

Its tables come from :mod:`ipslib.study.book` (``environment_table``, ``execution_table``, ``gpu_note``).
"""

from __future__ import annotations

from ipslib.study.book import notebook_seconds, training_seconds

__all__ = ["compute_summary", "summary_text"]


def summary_text(profile: str, train_s: float, n_runs: int, notebooks_s: float) -> str:
    """The page's opening sentence: total compute, training time of the distinct runs, notebook time."""
    total = train_s + notebooks_s
    return (
        f"Profile **{profile}**: **{total / 3600:.2f} h** of compute in all: {n_runs} distinct "
        f"runs trained for {train_s / 3600:.2f} h (the sum of their epoch times from the run "
        "records, a run shared by several chapters counted once; two runs trained at a time "
        "on 2 cores, as for the committed cpu outputs, take about half that in wall-clock "
        "time), and the "
        f"notebooks executed in {notebooks_s / 60:.1f} min."
    )


def compute_summary(profile: str) -> tuple[float, str]:
    """Total hours of compute of ``profile`` (training from the run records plus notebook execution from
    ``status.json``) and :func:`summary_text`."""
    train_s, n_runs = training_seconds(profile)
    notebooks_s = notebook_seconds(profile)
    return (train_s + notebooks_s) / 3600, summary_text(profile, train_s, n_runs, notebooks_s)
