"""The option types of the configuration: every set of valid option strings, written once.

Each alias is the annotation of the config fields that take it, and the only list of its values: the
config checks (:func:`ipslib.config.base.check_options`), the modules that act on an option and the
command line all read the values with :func:`choices` (``typing.get_args``) instead of repeating them.
"""

from __future__ import annotations

import typing
from typing import Literal

__all__ = [
    "Amp",
    "Arch",
    "ClusterKind",
    "CompileMode",
    "DatasetName",
    "DeviceKind",
    "DigitSource",
    "DiversityTarget",
    "Executor",
    "ModelArchitecture",
    "NoiseRule",
    "NoiseType",
    "SelectionMode",
    "SemanticHeads",
    "ShuffleStyle",
    "Split",
    "STKIMMode",
    "STKIMSampling",
    "SubsetMode",
    "TaskKind",
    "ThicknessMode",
    "TrainSet",
    "Weights",
    "choices",
    "choice_error",
]

# data
DatasetName = Literal["megapixel_mnist", "traffic_signs", "synthetic_traffic"]
Split = Literal["train", "test"]
DigitSource = Literal["mnist", "sample"]
NoiseType = Literal["bezier", "lines"]
NoiseRule = Literal["o2i_rule"]  # the n_noise alternative to a count: round(-7.14 * digit_size + 1000)
ThicknessMode = Literal["integer", "antialiased"]
SubsetMode = Literal["first_k", "stratified_random"]
TrainSet = Literal["Set1", "Set2"]
TaskKind = Literal["multiclass", "multilabel"]

# model and training
ShuffleStyle = Literal["batch", "instance"]
Arch = Literal["resnet18", "resnet50"]
Weights = Literal["none", "imagenet_v1", "imagenet_v2", "file"]
DiversityTarget = Literal["head_outputs", "head_attention", "branch_attention"]
SemanticHeads = Literal["shared", "per_head"]
STKIMMode = Literal["seed_selection", "acmil_aggregation"]
STKIMSampling = Literal["bernoulli", "exact_fraction"]
DeviceKind = Literal["auto", "cpu", "cuda"]  # the part of ``device`` before an optional ``:index``
Amp = Literal["none", "bf16"]
CompileMode = Literal["none", "default", "max-autotune"]  # torch.compile of the patch encoder, and its mode
# control arms (issue 16): which patches reach the gradient pass, and the whole-image alternative to patches
SelectionMode = Literal["ips", "random", "all"]  # learned top-M | M drawn from the non-blank patches | every patch
ModelArchitecture = Literal["ips", "downsampled"]  # patches + aggregator | the image resized to one input

# running a profile (ipslib run): where the runs train, and which scheduler a submitit array goes to
Executor = Literal["local", "submitit"]  # a process pool here | a submitit job array
ClusterKind = Literal["auto", "slurm", "local"]  # slurm when sbatch is on the PATH | Slurm | subprocesses here


def choices(option: typing.Any) -> tuple[str, ...]:
    """The valid values of a ``Literal`` option type, in their written order."""
    if typing.get_origin(option) is not Literal:
        raise TypeError(f"{option!r} is not a Literal option type")
    return typing.get_args(option)


def choice_error(name: str, value: typing.Any, option: typing.Any) -> str | None:
    """``None`` when ``value`` is one of ``option``'s values, else the message naming ``name`` and the choices."""
    valid = choices(option)
    if value in valid:
        return None
    return f"{name}={value!r} is not valid; choose one of {', '.join(repr(v) for v in valid)}"
