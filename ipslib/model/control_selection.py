"""Selection without scoring, for the control arms of issue 16: M patches at random, or every patch.

``random`` keeps M patches drawn uniformly, without replacement, from the image's non-blank patches (a
patch is blank when all its values are 0, the background of megapixel MNIST); an image with fewer than M
non-blank patches keeps all of them and fills up with blank ones drawn at random. The draw is

* in training, fresh at every step, from torch's global generator (so ``train_seed`` and a resumed
  checkpoint's RNG state fix the sequence);
* in evaluation, fixed per image: a private generator seeded with a 63-bit BLAKE2b digest of
  ``selection_seed`` and the image's content (the indices and float32 values of its non-blank patches).
  The same image therefore keeps the same patches in every evaluation, whether it arrives as a dense
  batch or from a streaming source, and whatever else is in its batch.

``all`` keeps every patch in grid order. Neither encodes anything here; the scores they return are
uniform (1/k for k kept patches), so attention maps show the kept set, not a ranking.

Finding the non-blank patches reads the source in chunks of :data:`SCAN_CHUNK` patches, so a streaming
source is never held whole (its certainly blank patches are not even read).

Legend: B images, N patches per image, M memory size, k kept patches, C, p channels and side of a patch.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from ipslib.config import ConfigError, SelectionMode, choices
from ipslib.model.sources import DensePatches, PatchSource

__all__ = ["SCAN_CHUNK", "scan_nonblank", "content_seed", "random_indices", "control_indices"]

SCAN_CHUNK = 4096  # patches read at a time while looking for the non-blank ones


def scan_nonblank(source: PatchSource, *, digest_seed: int | None = None) -> tuple[Tensor, list[int] | None]:
    """Which patches are non-blank; optionally a content seed per image.

    Args:
        source: B images of N patches.
        digest_seed: when given, also hash each image's non-blank patches (see :func:`content_seed`).
    Returns:
        (B, N) bool on the CPU, True where a patch has a non-zero value; and the B seeds or None.
    """
    n, b = source.n_patches, source.batch_size
    nonblank = torch.zeros(b, n, dtype=torch.bool)
    digests = None if digest_seed is None else [_new_digest(digest_seed) for _ in range(b)]
    for start in range(0, n, SCAN_CHUNK):
        index = torch.arange(start, min(start + SCAN_CHUNK, n)).expand(b, -1)  # (B, k)
        patches = source.take(index).detach().to("cpu", torch.float32)  # (B, k, C, p, p)
        found = patches.flatten(2).ne(0).any(dim=2)  # (B, k)
        nonblank[:, start : start + index.shape[1]] = found
        for i, digest in enumerate(digests or []):
            rows = found[i].nonzero().flatten()
            digest.update((rows + start).to(torch.int64).numpy().tobytes())
            digest.update(patches[i, rows].contiguous().numpy().tobytes())
    seeds = None if digests is None else [int.from_bytes(d.digest(), "little") >> 1 for d in digests]
    return nonblank, seeds


def _new_digest(seed: int):
    digest = hashlib.blake2b(digest_size=8)
    digest.update(int(seed).to_bytes(8, "little", signed=False))
    return digest


def content_seed(patches: Tensor, seed: int) -> int:
    """The evaluation seed of one image given as a patch tensor (N, C, p, p): what :func:`scan_nonblank`
    computes for it from any source."""
    return scan_nonblank(DensePatches(patches.unsqueeze(0)), digest_seed=seed)[1][0]


def random_indices(nonblank: Tensor, k: int, *, seeds: list[int] | None = None) -> Tensor:
    """k patch indices per image, uniform among the non-blank patches, filled with blank ones if needed.

    Each patch gets a uniform key in [0, 1), blank patches 1 more, and the k smallest keys are kept: a
    uniform sample without replacement of the non-blank patches, then of the blank ones.

    Args:
        nonblank: (B, N) bool.
        k: patches to keep, 1 <= k <= N.
        seeds: one seed per image for a private generator each (evaluation), or None for torch's global
            generator (training: a fresh draw at each call).
    Returns:
        (B, k) long, ascending in each row (row-major grid order).
    """
    b, n = nonblank.shape
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be in [1, N={n}]")
    if seeds is None:
        keys = torch.rand(b, n)
    else:
        keys = torch.stack([torch.rand(n, generator=torch.Generator().manual_seed(s)) for s in seeds])
    keys = keys + (~nonblank).to(keys.dtype)  # (B, N): blank patches after every non-blank one
    return keys.topk(k, dim=1, largest=False).indices.sort(dim=1).values


def control_indices(
    source: PatchSource, *, selection: SelectionMode, memory_size: int, training: bool, seed: int
) -> tuple[Tensor, Tensor]:
    """Kept indices and uniform scores of the ``random`` and ``all`` arms (module docstring).

    Args:
        source: B images of N patches.
        selection: ``random`` or ``all``.
        memory_size: M (``random`` keeps min(M, N)).
        training: fresh draws (True) or draws fixed by ``seed`` and content (False).
        seed: ``selection_seed``.
    Returns:
        indices (B, k) long and scores (B, k) = 1/k, on the CPU; k = min(M, N) for ``random``, N for ``all``.
    """
    n, b = source.n_patches, source.batch_size
    if selection == "all":
        indices = torch.arange(n).expand(b, n)
    elif selection == "random":
        nonblank, seeds = scan_nonblank(source, digest_seed=None if training else seed)
        indices = random_indices(nonblank, min(memory_size, n), seeds=seeds)
    else:
        valid = ", ".join(repr(v) for v in choices(SelectionMode) if v != "ips")
        raise ConfigError(f"selection={selection!r} is not a control arm; choose one of {valid}")
    return indices, torch.full(indices.shape, 1.0 / indices.shape[1])
