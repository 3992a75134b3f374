"""A notebook template's parameters: checked before anything runs, then turned into the chapter's runs.

papermill injects what it is given (``-p``, ``-y``, ``-f``) as a cell after the template's ``parameters`` cell
and only warns about names that cell does not declare; the template's first code cell therefore calls
:func:`check_parameters`, which refuses an unknown name (naming the declared ones) or a value of the wrong
type. An experiment's template then calls :func:`experiment_results`: its parameters ``experiment``,
``profile``, ``overrides`` (flat run settings applied to every run) and ``train_missing`` define everything the
notebook does, so a papermill run is one experiment at one profile with the settings given::

    papermill experiment.ipynb out.ipynb -p experiment noise_count -p profile smoke \\
        -y "overrides: {epochs: 1}" -p train_missing True

A ``params/<experiment>.yaml`` file describes an experiment (its profiles, grid, claims), not a notebook's
parameters: passed with ``-f``, its keys are refused with a message saying what to pass instead.
"""

from __future__ import annotations

import types
from typing import Any

from ipslib.config import ConfigError
from ipslib.study.results import ExperimentResults, load_results

__all__ = ["check_parameters", "experiment_results", "EXPERIMENT_FILE_KEYS"]

EXPERIMENT_FILE_KEYS = {"title", "ids", "dissertation", "family", "notebook", "reference", "profiles", "claims"}
"""Top-level keys of a ``params/<experiment>.yaml`` file: their presence means ``-f`` got an experiment file."""


def _kernel_names(namespace: dict[str, Any]) -> set[str]:
    """The names IPython itself put into ``namespace`` (``In``, ``Out``, ``exit``, ...), when it is the kernel's."""
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(shell.user_ns_hidden) if shell is not None and shell.user_ns is namespace else set()


def _given(namespace: dict[str, Any]) -> set[str]:
    """The parameter-like names of ``namespace``: not private, IPython's own, a module or a callable."""
    hidden = _kernel_names(namespace)
    return {
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in hidden
        and not isinstance(value, types.ModuleType)
        and not callable(value)
    }


def check_parameters(namespace: dict[str, Any], **declared: type) -> None:
    """Refuse parameters the template does not declare, and declared ones of the wrong type.

    Call it first in the template's first code cell, as ``check_parameters(globals(), name=type, ...)`` with
    the names and types of the ``parameters`` cell (a test checks the two agree).

    Raises:
        ConfigError: naming the unknown parameters and the declared ones, or the mistyped one.
    """
    unknown = sorted(_given(namespace) - set(declared))
    takes = ", ".join(f"{name} ({kind.__name__})" for name, kind in declared.items())
    if unknown and EXPERIMENT_FILE_KEYS & set(unknown):
        raise ConfigError(
            f"the parameters {', '.join(unknown)} are the keys of a params/<experiment>.yaml file, which describes "
            "an experiment, not this notebook's parameters: pass `-p experiment NAME -p profile PROFILE` to "
            f"papermill (run settings with -y 'overrides: {{key: value}}'); this template takes {takes}"
        )
    if unknown:
        raise ConfigError(f"unknown notebook parameter(s) {', '.join(unknown)}; this template takes {takes}")
    for name, kind in declared.items():
        if name not in namespace:
            raise ConfigError(f"notebook parameter {name} is not set; this template takes {takes}")
        value = namespace[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"notebook parameter {name}={value!r} must be a {kind.__name__}")


def experiment_results(
    experiment: str, profile: str, *, overrides: dict[str, Any] | None = None, train_missing: bool = False
) -> ExperimentResults:
    """The chapter's runs and records: ``experiment``'s runs in ``profile`` with ``overrides`` applied to each.

    With ``train_missing`` the runs without a finished record are trained first (one ``ipslib train`` process
    each, as ``ipslib run`` does, logs in each run directory); a failed run raises RuntimeError naming its log.
    Otherwise missing runs are listed on the page (:func:`ipslib.study.pages.experiment.missing_note`).
    """
    results = load_results(experiment, profile, overrides=overrides)
    if not (train_missing and results.missing):
        return results
    from ipslib.study.runner import train_runs

    missing = set(results.missing)
    trained = train_runs([s for s in results.specs if s.name in missing], jobs=1)
    failed = [f"{r['name']} (log: {r['log']})" for r in trained if r["returncode"] != 0]
    if failed:
        raise RuntimeError(f"training failed: {'; '.join(failed)}")
    return load_results(experiment, profile, overrides=overrides)
