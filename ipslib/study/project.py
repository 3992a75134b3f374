"""Where the project lives: the folder holding ``params/``, ``book/`` and ``outputs/``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root"]


def project_root() -> Path:
    """The project folder: ``$IPSLIB_ROOT``, else the nearest folder up from here holding ``params/``."""
    if os.environ.get("IPSLIB_ROOT"):
        return Path(os.environ["IPSLIB_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params" / "_defaults.yaml").is_file():
            return folder
    return here
