"""Running a model: the training loop, losses, metrics, the learning-rate schedule, run records, prediction.

Layer 5: builds on the model, streaming and data layers. :func:`train` (``ipslib.engine.training``)
trains one configuration into a run directory (:mod:`ipslib.engine.records`); :mod:`ipslib.engine.predict`
classifies one image with a trained run. Importing this package does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":  # lazily, so that records can be read without importing torch
        from ipslib.engine.training import train

        return train
    raise AttributeError(f"module 'ipslib.engine' has no attribute {name!r}")
