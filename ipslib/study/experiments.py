"""Experiments: parameter files in ``params/`` expanded into the manifest of runs, per profile.

A params file describes one experiment of the dissertation (spec §12). It names a family of defaults
(``params/_defaults.yaml``) and, for each profile (``smoke``, ``cpu``, ``paper``, and optionally ``gpu``: absent
means no runs), the settings that stay fixed, explicit ``cases`` (settings that vary together) and a ``grid``
(cartesian product), and the number of ``repeats`` (training seeds 0..repeats-1 on the same data). Every run
is a fully resolved :class:`~ipslib.config.RunConfig`; its results live in
``outputs/<profile>/runs/<config key>/``, so a run shared by two experiments trains once. The manifest is the
single source the notebooks, the book and any external scheduler read.

**Matching the dissertation's printed cells** (:mod:`ipslib.study.cells`). ``reference: tables:`` lists the
tables whose cells belong to this experiment's page (``Table 4``, or ``{table: Table 8, panel: top}`` for
one panel); every cell of ``book/reference/paper_tables.csv`` belongs to exactly one page. A cell's settings
are its ``match_key`` in our flat keys (``reference.REFERENCE_KEYS``) plus ``reference: implied:``, the
settings the dissertation leaves unstated for one experiment of the match keys
(``implied: {mnist_stkim_vary_P: {stkim_mode: seed_selection}}``). A profile other than ``paper`` may
declare the ``scaling:`` it applies to the dissertation's settings: per flat key, a mapping of the
dissertation's value to this profile's, or to a mapping of this profile's settings when the profile
expresses it through other keys::

    cpu:
      scaling:
        digit_size: {28: 14, 56: 28}        # the 28-px level runs with 14-px digits here
        n_train: {1000: 1000}               # only the 1000-canvas level has a counterpart
        subset_fraction: {0.25: {n_train: 150}}

A key the scaling does not list keeps the dissertation's value; a listed key's values that its mapping does
not list have no counterpart in this profile. A cell is *compared* where runs of the profile carry its
scaled settings; otherwise it is *not testable here* with its reason (:data:`ipslib.study.cells.REASONS`).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ipslib.config import ConfigError, RunConfig, check_keys, load_yaml_mapping
from ipslib.study.claims import Claim, parse_claims
from ipslib.study.project import project_root
from ipslib.study.scaling import apply_scaling, parse_reference, parse_scaling

__all__ = [
    "PROFILES",
    "PARTS",
    "Experiment",
    "RunSpec",
    "project_root",
    "load_experiment",
    "load_experiments",
    "manifest",
]

PROFILES = ("smoke", "cpu", "paper", "gpu")
OPTIONAL_PROFILES = {"gpu": {"runs": False}}
"""Profiles a params file may leave out (read as these blocks). ``gpu``: a short campaign for one GPU
(``benchmarks/gpu_check.sh``); a family without a ``gpu`` block in ``_defaults.yaml`` uses its ``paper`` one."""
_FAMILY_FALLBACK = {"gpu": "paper"}
PARTS = {"testbed": "Testbed experiments", "variants": "Method variants", "performance": "Performance"}
_TOP_KEYS = {
    "title",
    "ids",
    "dissertation",
    "family",
    "notebook",
    "reference",
    "profiles",
    "description",
    "part",
    "claims",
}
_PROFILE_KEYS = {"fixed", "cases", "grid", "repeats", "note", "runs", "scaling"}


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment in a profile."""

    experiment: str
    profile: str
    name: str
    config: RunConfig
    varied: dict[str, Any]
    repeat: int
    root: Path = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return self.config.key()

    @cached_property
    def flat(self) -> dict[str, Any]:
        """The run's flat config (``config.to_flat()``, computed once; do not mutate)."""
        return self.config.to_flat()

    @property
    def run_dir(self) -> Path:
        return self.root / "outputs" / self.profile / "runs" / self.key

    def to_dict(self) -> dict[str, Any]:
        from ipslib.engine.records import is_finished

        return {
            "experiment": self.experiment,
            "profile": self.profile,
            "name": self.name,
            "key": self.key,
            "run_dir": str(self.run_dir.relative_to(self.root)),
            "varied": self.varied,
            "repeat": self.repeat,
            "finished": is_finished(self.run_dir, self.config),
            "config": self.config.to_flat(),
        }


@dataclass(frozen=True)
class ProfileSpec:
    fixed: dict[str, Any]
    cases: list[dict[str, Any]]
    grid: dict[str, list[Any]]
    repeats: int
    note: str
    enabled: bool = True
    scaling: dict[str, dict[Any, Any]] = field(default_factory=dict)
    """Flat key -> {the dissertation's value: this profile's value or settings} (see the module docstring)."""

    def scale(self, settings: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The dissertation's ``settings`` at this profile's scale, and the keys without a counterpart here."""
        return apply_scaling(settings, self.scaling)


@dataclass(frozen=True)
class Experiment:
    """A parsed params file. ``profiles`` maps profile name to its :class:`ProfileSpec`."""

    name: str
    title: str
    ids: tuple[str, ...]
    dissertation: str
    family: str | None
    notebook: str
    reference: dict[str, Any] | None
    description: str
    part: str
    profiles: dict[str, ProfileSpec]
    path: Path
    root: Path
    claims: tuple[Claim, ...] = ()
    """The dissertation's comparative claims, tested by :mod:`ipslib.study.verdict`."""

    def runs(self, profile: str) -> list[RunSpec]:
        """Every run of this experiment in ``profile``, in a stable order."""
        if profile not in PROFILES:
            raise ConfigError(f"profile={profile!r} is not valid; choose one of {', '.join(PROFILES)}")
        spec = self.profiles[profile]
        if not spec.enabled:
            return []
        base = _family_defaults(self.root, self.family, profile, self.path)
        grid_keys = list(spec.grid)
        specs = []
        for case in spec.cases or [{}]:
            axes = [range(len(spec.grid[k])) for k in grid_keys]
            for indices in itertools.product(*axes):
                varied = dict(case)
                for key, index in zip(grid_keys, indices):
                    value = spec.grid[key][index]
                    varied.update(value if isinstance(value, dict) else {key: value})
                for repeat in range(spec.repeats):
                    flat = {**base, **spec.fixed, **varied}
                    flat["train_seed"] = flat.get("train_seed", 0) + repeat
                    label = ",".join(f"{k}={v}" for k, v in varied.items()) or "default"
                    name = f"{self.name}/{label}" + (f"/seed={repeat}" if spec.repeats > 1 else "")
                    config = RunConfig.from_flat(flat, where=f"{self.path} (profile {profile}, run {name})")
                    specs.append(RunSpec(self.name, profile, name, config, varied, repeat, self.root))
        return specs

    def base_settings(self, profile: str) -> dict[str, Any]:
        """The settings every run of ``profile`` starts from: the family's defaults and the profile's ``fixed``."""
        return {**_family_defaults(self.root, self.family, profile, self.path), **self.profiles[profile].fixed}


def _family_defaults(root: Path, family: str | None, profile: str, where: Path) -> dict[str, Any]:
    if family is None:
        return {}
    defaults_path = root / "params" / "_defaults.yaml"
    defaults = load_yaml_mapping(defaults_path)
    if family not in defaults:
        raise ConfigError(f"{where}: family={family!r} is not in {defaults_path}; choose one of {', '.join(defaults)}")
    profile = profile if profile in defaults[family] else _FAMILY_FALLBACK.get(profile, profile)
    if profile not in defaults[family]:
        raise ConfigError(f"{defaults_path}: family {family!r} has no profile {profile!r}")
    return dict(defaults[family][profile])


def _parse_profile(raw: Any, where: str, profile: str = "") -> ProfileSpec:
    raw = check_keys(raw, _PROFILE_KEYS, where)
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(
            f"{where}: grid must map each key to a non-empty list of values (a value may be a "
            "mapping of settings that vary together)"
        )
    cases = raw.get("cases") or []
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError(f"{where}: cases must be a list of mappings")
    repeats = raw.get("repeats", 1)
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"{where}: repeats={repeats!r} must be an integer >= 1")
    enabled = raw.get("runs", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: runs={enabled!r} must be true or false")
    scaling = parse_scaling(raw.get("scaling"), where, profile)
    return ProfileSpec(dict(raw.get("fixed") or {}), cases, grid, repeats, str(raw.get("note", "")), enabled, scaling)


def load_experiment(path: str | Path, *, root: Path | None = None) -> Experiment:
    """Parse and validate one params file (every run of every profile is resolved once here)."""
    path = Path(path)
    root = project_root() if root is None else root
    raw = load_yaml_mapping(path)
    check_keys(raw, _TOP_KEYS, str(path))
    profiles_raw = {**OPTIONAL_PROFILES, **(raw.get("profiles") or {})}
    missing = [p for p in PROFILES if p not in profiles_raw]
    if missing or set(profiles_raw) - set(PROFILES):
        raise ConfigError(
            f"{path}: profiles must be exactly {', '.join(p for p in PROFILES if p not in OPTIONAL_PROFILES)} "
            f"(optionally {', '.join(OPTIONAL_PROFILES)}); "
            f"missing {missing}, extra {sorted(set(profiles_raw) - set(PROFILES))}"
        )
    profiles = {p: _parse_profile(profiles_raw[p], f"{path} profiles.{p}", p) for p in PROFILES}
    experiment = Experiment(
        name=path.stem,
        title=str(raw.get("title", path.stem)),
        ids=tuple(raw.get("ids", ())),
        dissertation=str(raw.get("dissertation", "")),
        family=raw.get("family"),
        notebook=str(raw.get("notebook", "experiment")),
        reference=parse_reference(raw.get("reference"), str(path)),
        description=str(raw.get("description", "")),
        part=str(raw.get("part", "testbed")),
        profiles=profiles,
        path=path,
        root=root,
        claims=parse_claims(raw.get("claims"), str(path)),
    )
    if experiment.part not in PARTS:
        raise ConfigError(f"{path}: part={experiment.part!r} is not valid; choose one of {', '.join(PARTS)}")
    template = root / "book" / "templates" / f"{experiment.notebook}.md"
    if not template.is_file():
        raise ConfigError(f"{path}: notebook={experiment.notebook!r} has no template {template}")
    for profile in PROFILES:
        experiment.runs(profile)
    return experiment


def load_experiments(root: Path | None = None, *, broken: dict[str, str] | None = None) -> dict[str, Experiment]:
    """All experiments of ``params/`` (files starting with ``_`` hold defaults), by name.

    A params file that fails to parse or validate affects only its own experiment: it is left out, and its
    error (naming the file and key) goes into ``broken`` (name -> message) when given, else into a warning.
    A broken ``_defaults.yaml`` breaks every experiment that names a family.
    """
    root = project_root() if root is None else root
    files = sorted(p for p in (root / "params").glob("*.yaml") if not p.name.startswith("_"))
    found: dict[str, Experiment] = {}
    for path in files:
        try:
            found[path.stem] = load_experiment(path, root=root)
        except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as err:  # malformed content
            message = str(err) if isinstance(err, ConfigError) else f"{path}: malformed ({type(err).__name__}: {err})"
            if broken is None:
                warnings.warn(f"experiment {path.stem} left out: {message}", stacklevel=2)
            else:
                broken[path.stem] = message
    return found


def manifest(profile: str, experiment: str | None = None, *, root: Path | None = None) -> list[dict[str, Any]]:
    """Manifest rows (see :meth:`RunSpec.to_dict`) of one experiment or of all, in ``profile`` (broken params
    files left out with a warning; naming a broken one raises its error)."""
    broken: dict[str, str] = {}
    experiments = load_experiments(root, broken=broken)
    if experiment in broken:
        raise ConfigError(broken[experiment])
    for message in broken.values():
        warnings.warn(f"left out: {message}", stacklevel=2)
    if experiment is not None and experiment not in experiments:
        raise ConfigError(f"experiment={experiment!r} is not in params/; choose one of {', '.join(experiments)}")
    chosen = [experiments[experiment]] if experiment else list(experiments.values())
    return [spec.to_dict() for exp in chosen for spec in exp.runs(profile)]
