"""ipslib: Iterative Patch Selection (Bergner et al., ICLR 2023) and the testbed of Riffi-Aslett (2024).

Public API; submodules hold the details (``ipslib.data``, ``ipslib.model.ips``, ``ipslib.engine.training``, ...).
Importing ``ipslib`` does not import torch.
"""

from ipslib.config import ConfigError, RunConfig

__all__ = ["ConfigError", "RunConfig", "train", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "train":  # lazily: importing ipslib must not import torch
        from ipslib.engine.training import train

        return train
    raise AttributeError(f"module 'ipslib' has no attribute {name!r}")
