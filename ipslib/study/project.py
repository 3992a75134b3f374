"""Where the project lives: the folder holding ``params/``, ``book/`` and ``outputs/``.

Found, in this order, from ``$IPSLIB_ROOT`` (the command line's ``--root DIR`` sets it, so notebook kernels
and training processes started from there see the same folder) or from the location of the ``ipslib``
package when it is installed from a checkout (``pip install -e .``, the README's set-up). The working
directory is never consulted: commands and notebooks give the same answer from any folder, and an installed
package without a checkout fails with a message that says how to name the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from ipslib.config import ConfigError

__all__ = ["project_root", "is_project", "package_checkout", "ROOT_VARIABLE"]

ROOT_VARIABLE = "IPSLIB_ROOT"
_MARKER = Path("params") / "_defaults.yaml"


def is_project(folder: Path) -> bool:
    """True when ``folder`` holds a project (its ``params/_defaults.yaml``)."""
    return (folder / _MARKER).is_file()


def package_checkout() -> Path | None:
    """The checkout the ``ipslib`` package was imported from (editable install), or None."""
    folder = Path(__file__).resolve().parents[2]  # ipslib/study/project.py -> the checkout
    return folder if is_project(folder) else None


def project_root() -> Path:
    """The project folder: ``$IPSLIB_ROOT`` if set, else the checkout holding the imported package.

    Raises:
        ConfigError: ``$IPSLIB_ROOT`` names no folder, or it is unset and the package is not in a checkout.
    """
    named = os.environ.get(ROOT_VARIABLE)
    if named:
        folder = Path(named).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"{ROOT_VARIABLE}={named}: no such folder; name the project folder (it holds params/)")
        return folder
    checkout = package_checkout()
    if checkout is None:
        raise ConfigError(
            "no ipslib project found: this ipslib is not installed from a checkout; pass --root DIR or set "
            f"{ROOT_VARIABLE}=DIR, DIR being the folder that holds params/, book/ and outputs/"
        )
    return checkout
