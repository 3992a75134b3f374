"""ipslib: Iterative Patch Selection (Bergner et al., ICLR 2023) and the testbed of Riffi-Aslett (2024).

Public API; submodules hold the details (``ipslib.data``, ``ipslib.ips``, ``ipslib.engine``, ...).
Importing ``ipslib`` does not import torch.
"""
from ipslib.config import ConfigError, RunConfig

__all__ = ["ConfigError", "RunConfig", "__version__"]
__version__ = "0.1.0"
