"""How the patch grid covers the image, and the two ways it can silently change an experiment.

* A ``patch_size``/``stride`` that does not tile the image leaves a strip at the bottom or right that no patch
  sees (spec §1.1 drops the remainder). On megapixel MNIST a digit may lie there, so the labels would not
  match what the model can see: refused. Elsewhere (the dissertation's traffic sweep uses 75-px patches on
  1600-px-wide images) it is allowed and :func:`uncovered_message` says how much is dropped, which the
  training loop shows as a warning.
* ``memory_size >= N`` keeps every patch: selection, and STKIM's masking of the top patches, do nothing
  (``selection: all`` is that control by design). Allowed, since tiny test configurations rely on it, but
  :func:`grid_warnings` names it, and the training loop shows it as a warning.
"""

from __future__ import annotations

from typing import Any

from ipslib.config.base import ConfigError

__all__ = ["EXACT_TILING", "uncovered", "uncovered_message", "check_grid", "grid_warnings"]

EXACT_TILING = frozenset({"megapixel_mnist"})
"""Datasets whose labels come from objects placed anywhere on the canvas: the grid must cover it all."""


def uncovered(height: int, width: int, patch: int, stride: int) -> tuple[int, int]:
    """(rows, columns) of pixels at the bottom and right that no patch of the grid covers."""
    return (height - patch) % stride, (width - patch) % stride


def uncovered_message(cfg: Any) -> str | None:
    """What the grid drops, as a sentence naming the keys, or None when it covers the whole image."""
    height, width = cfg.data.image_shape[1:]
    p, s = cfg.ips.patch_size, cfg.ips.stride
    rows, cols = uncovered(height, width, p, s)
    if not rows and not cols:
        return None
    return (
        f"patch_size={p} with stride {s} does not tile the {height}x{width} image: the last {rows} row(s) and "
        f"{cols} column(s) are never seen; choose a patch_size (and patch_stride) with (side - patch_size) "
        "divisible by the stride"
    )


def check_grid(cfg: Any) -> None:
    """Refuse a grid that misses part of a megapixel-MNIST canvas (a RunConfig's ``__post_init__`` calls it)."""
    message = uncovered_message(cfg) if cfg.ips.architecture == "ips" else None
    if message and cfg.dataset in EXACT_TILING:
        raise ConfigError(f"{message} (on {cfg.dataset} a digit there would make the labels wrong)")


def grid_warnings(cfg: Any) -> list[str]:
    """The allowed but surprising grids of the module docstring, one sentence each (empty when none)."""
    if cfg.ips.architecture != "ips":
        return []
    found = [uncovered_message(cfg)]
    if cfg.ips.selection != "all" and cfg.ips.memory_size >= cfg.n_patches:
        found.append(
            f"memory_size={cfg.ips.memory_size} >= N={cfg.n_patches} patches: every patch is kept, so "
            f"selection={cfg.ips.selection!r} and STKIM do nothing; choose memory_size < {cfg.n_patches}, "
            "or selection='all' for the keep-every-patch control"
        )
    return [message for message in found if message]
