"""Datasets: megapixel MNIST (generated), Swedish traffic signs (real files) and a synthetic traffic stand-in.

Every dataset offers a torch view whose items are ``(image, targets)``: a float tensor (C, H, W) and a dict
mapping each task name to its target (a long scalar for softmax tasks, a float 0/1 vector for multi-label
tasks). :func:`build_dataset` returns that view for a :class:`~ipslib.config.RunConfig`; what differs per
dataset lives in the registry (:mod:`ipslib.data.registry`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ipslib.config import Split, choices

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from ipslib.config import RunConfig

_EXPORTS = {
    "load_mnist": "ipslib.data.mnist",
    "MegapixelMNIST": "ipslib.data.megapixel_mnist",
    "TrafficSigns": "ipslib.data.traffic_signs",
    "SyntheticTraffic": "ipslib.data.synthetic_traffic",
}
__all__ = [*_EXPORTS, "build_dataset"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ipslib.data' has no attribute {name!r}")


def build_dataset(cfg: RunConfig, split: Split, *, patches: bool = False) -> Dataset:
    """The torch view of the run's dataset for ``split`` ("train" or "test").

    With ``patches``, a dataset whose canvases come from a layout (megapixel MNIST) returns instead, when
    the model selects patches (``architecture: ips``), items of only the patches the layout says are not
    blank (:mod:`ipslib.data.layout_items`): batch them with the view's ``collate`` (which the training
    loop passes to its ``DataLoader``); selection and gradients are bit-identical to the image view's.
    """
    from ipslib.data.registry import entry

    if split not in choices(Split):
        raise ValueError(f"split={split!r} is not valid; choose one of {', '.join(map(repr, choices(Split)))}")
    found = entry(cfg.dataset)
    if patches and found.layout_streaming and cfg.ips.architecture == "ips":
        return found.open(cfg.data, split).patch_view(cfg.ips.patch_size, cfg.ips.patch_stride)
    return found.torch_view(cfg.data, split)
