"""IPSNet: iterative patch selection without gradients, then aggregation of the kept patches with gradients.

Two named stages (spec §1.2-§1.3):

* :meth:`IPSNet.select` scores all N patches of each image in chunks, in eval mode and without gradients,
  and keeps the M best (memory grows to at most M + I embeddings);
* :meth:`IPSNet.forward_features` re-encodes only those M patches in the module's current mode (training:
  gradients, BatchNorm batch statistics) and aggregates them; :meth:`IPSNet.forward` returns its logits.

References: Bergner et al., "Iterative Patch Selection for High-Resolution Image Classification", ICLR 2023;
Riffi-Aslett, "On the Generalizability of Iterative Patch Selection ...", MSc dissertation, 2024.

Legend: B batch, N patches per image, M memory size, I iteration size, D embedding width, T tasks,
H heads, C, p channels and side of a patch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import torch
from torch import Tensor, nn

from ipslib.config import (
    AggregatorConfig,
    EncoderConfig,
    IPSConfig,
    RegulariserConfig,
    RunConfig,
    STKIMConfig,
    STKIMMode,
    TaskSpec,
)
from ipslib.model.control_selection import control_indices
from ipslib.model.encoder import PatchEncoder
from ipslib.model.selection import Selection, encode_unique, iterative_select, patch_order
from ipslib.model.sources import DensePatches, PatchSource, as_source, known_blank
from ipslib.model.stkim import mask_logits, mask_scores
from ipslib.model.transformer import Aggregator, AggregatorOutput, sinusoidal_rows

__all__ = ["IPSNet", "Selection", "PatchSource", "DensePatches", "AggregatorOutput"]


class IPSNet(nn.Module):
    """Patch encoder + cross-attention aggregator with iterative patch selection.

    Args:
        encoder: patch encoder settings (D = ``encoder.embed_dim``).
        aggregator: heads, widths and dropout of the cross-attention aggregator.
        ips: memory size M, iteration size I, shuffling, positional encoding, de-duplication.
        regulariser: builds the semantic branches when ``semantic_weight > 0``; ``double_forward``.
        stkim: stochastic top-K instance masking in selection (author) or aggregation (ACMIL).
        tasks: task name -> TaskSpec; one query token per task, in this order.
        in_channels: 1 or 3.
        n_patches: N of the patch grid; sizes the positional-encoding table.
    """

    def __init__(
        self,
        *,
        encoder: EncoderConfig,
        aggregator: AggregatorConfig,
        ips: IPSConfig,
        regulariser: RegulariserConfig,
        stkim: STKIMConfig,
        tasks: dict[str, TaskSpec],
        in_channels: int,
        n_patches: int,
    ) -> None:
        super().__init__()
        if n_patches < 1:
            raise ValueError(f"n_patches={n_patches!r} must be >= 1")
        self.ips_config, self.regulariser, self.stkim = ips, regulariser, stkim
        self.tasks = dict(tasks)
        self.n_patches = n_patches
        self.encoder = PatchEncoder(config=encoder, in_channels=in_channels)
        semantic = regulariser.semantic_heads if regulariser.semantic_weight > 0 else None
        self.aggregator = Aggregator(
            embed_dim=encoder.embed_dim, tasks=tasks, config=aggregator, semantic_heads=semantic
        )
        self.embed_dim = encoder.embed_dim

    @classmethod
    def from_config(cls, cfg: RunConfig) -> IPSNet:
        """Build from a run configuration (its model sections and derived data properties)."""
        return cls(
            encoder=cfg.encoder,
            aggregator=cfg.aggregator,
            ips=cfg.ips,
            regulariser=cfg.regulariser,
            stkim=cfg.stkim,
            tasks=cfg.tasks,
            in_channels=cfg.in_channels,
            n_patches=cfg.n_patches,
        )

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return self.aggregator.attention.query.device

    def _stkim_on(self, mode: STKIMMode) -> bool:
        s = self.stkim
        return s.active and s.stkim_mode == mode and (self.training or s.in_eval)

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Encoder and aggregator in eval mode inside the block; their previous modes restored after."""
        modes = (self.encoder.training, self.aggregator.training)
        self.encoder.eval()
        self.aggregator.eval()
        try:
            yield
        finally:
            self.encoder.train(modes[0])
            self.aggregator.train(modes[1])

    def _to_model(self, patches: Tensor) -> Tensor:
        return patches.to(device=self.device, dtype=self.aggregator.attention.query.dtype)

    def positional(self, indices: Tensor) -> Tensor | None:
        """Positional-encoding rows (..., D) of original patch indices, computed on demand; None if off."""
        if not self.ips_config.use_pos:
            return None
        return sinusoidal_rows(indices, self.embed_dim).to(self.aggregator.attention.query.dtype)

    def _add_pos(self, emb: Tensor, indices: Tensor) -> Tensor:
        """emb (B, L, D) + positional-encoding rows of the original indices (B, L), if enabled."""
        pos = self.positional(indices)
        return emb if pos is None else emb + pos

    def _encode_chunk(self, patches: Tensor, blank: Tensor | None = None) -> Tensor:
        """(B, k, C, p, p) -> (B, k, D) float32 without gradients; identical patches encoded once if
        ``dedup_blank``, and then the patches of the known-blank mask ``blank`` (B, k) not even hashed.

        Under an active autocast (``amp: bf16``) the encoder runs in its lower precision; the embeddings
        are returned in float32 either way."""
        b, k = patches.shape[:2]
        flat = self._to_model(patches).flatten(0, 1)  # (B·k, C, p, p)
        if self.ips_config.dedup_blank:
            emb = encode_unique(self.encoder, flat, None if blank is None else blank.flatten())
        else:
            emb = self.encoder(flat)
        return emb.float().view(b, k, -1)

    def _score(self, emb: Tensor, indices: Tensor, *, stkim_on: bool) -> Tensor:
        """Selection scores (B, L) float32 of candidates emb (B, L, D) with original indices (B, L).

        Always computed in float32 with autocast off, so that top-M compares float32 scores under ``amp``."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            scores = self.aggregator.get_scores(self._add_pos(emb.float(), indices))  # (B, L)
        if stkim_on:
            s = self.stkim
            scores = mask_scores(scores, k=s.stkim_k, p=s.stkim_p, sampling=s.sampling)
        return scores

    # ------------------------------------------------------------------ stage 1: selection
    def select(self, patches: Tensor | PatchSource) -> Selection:
        """Score all N patches without gradients and keep the top M (spec §1.2).

        Encoder and aggregator run in eval mode (restored afterwards). With ``shuffle`` the patches enter
        in a random order (``batch``: one permutation, ``instance``: one per image); the returned indices
        always refer to the original row-major grid. With one head and one task token the result is the
        global top-M by attention logit; otherwise scores are softmax-normalised over each candidate set
        and averaged over heads and tokens, so it approximates the one-shot top-M and equals it when
        I >= N - M (spec §1.6). The author's STKIM (``seed_selection``) masks scores
        at every iteration in training, and in eval when ``stkim.in_eval``. If M >= N every patch is kept
        in grid order, scored once without STKIM. With ``ips.dedup_blank`` identical patches of a chunk
        (typically the blank ones) are encoded once, which is exact because selection runs in eval mode;
        patches a :class:`~ipslib.model.sources.BlankAwareSource` knows to be blank are not even hashed
        (bit-identical embeddings). Under an active autocast (the engine's ``amp: bf16``) the encoder runs
        in bfloat16, but scores are computed and compared (top-M) in float32. The scoring loop runs under
        ``torch.no_grad``; the final gather of the M patches runs in the caller's grad mode, so a patch
        tensor that requires grad receives gradients at the selected patches only. With ``ips.selection``
        ``random`` or ``all`` (control arms) nothing is scored:
        :func:`~ipslib.model.control_selection.control_indices` picks.

        Args:
            patches: (B, N, C, p, p) tensor or a :class:`PatchSource`; may stay on the CPU while the model
                is on a GPU (chunks are moved as they are scored).
        Returns:
            Selection with patches (B, M, C, p, p), indices (B, M) and scores (B, M), on the model's device
            (M replaced by N when M >= N).
        """
        source = as_source(patches)
        if self.ips_config.selection != "ips":
            return self._select_control(source)
        n, b, m = source.n_patches, source.batch_size, self.ips_config.memory_size
        with torch.no_grad(), self._eval_mode():
            if m >= n:
                indices = torch.arange(n, device=self.device).expand(b, n)  # (B, N)
                emb = self._encode_chunk(source.take(indices), known_blank(source, indices))  # (B, N, D)
                scores = self._score(emb, indices, stkim_on=False)
            else:
                order = patch_order(n, b, shuffle=self.ips_config.shuffle, style=self.ips_config.shuffle_style)
                score = partial(self._score, stkim_on=self._stkim_on("seed_selection"))
                indices, scores = iterative_select(
                    source,
                    encode=self._encode_chunk,
                    score=score,
                    memory_size=m,
                    iter_size=self.ips_config.iter_size,
                    order=order,
                    device=self.device,
                )
        return Selection(patches=self._to_model(source.take(indices)), indices=indices, scores=scores)

    def _select_control(self, source: PatchSource) -> Selection:
        """The ``random`` / ``all`` arms: patches kept without scoring (:mod:`ipslib.model.control_selection`)."""
        c = self.ips_config
        with torch.no_grad():
            indices, scores = control_indices(
                source, selection=c.selection, memory_size=c.memory_size, training=self.training, seed=c.selection_seed
            )
        indices, scores = indices.to(self.device), scores.to(self.device)
        return Selection(patches=self._to_model(source.take(indices)), indices=indices, scores=scores)

    # ------------------------------------------------------------------ stage 2: aggregation
    def forward_features(self, selection: Selection) -> AggregatorOutput:
        """Re-encode the M selected patches in the current mode and aggregate them.

        With ``regulariser.double_forward`` the aggregator runs twice on the same embeddings, as in the
        author's code (spec §0.2, F1): ``logits`` come from the first call; ``attention``,
        ``head_outputs`` and ``branch_logits`` (the regularisers' inputs) from the second. This doubles the
        aggregation compute and, in training, draws a second set of dropout masks (and of ACMIL STKIM
        masks), so the regularisers see different dropout than the main logits and the global RNG stream
        advances further; in eval mode without STKIM both calls give the same values.

        Args:
            selection: from :meth:`select` (patches (B, M, C, p, p), indices (B, M)).
        Returns:
            AggregatorOutput: logits (B, n_classes) per task, attention (B, H, T, M), head outputs
            (B, H, T, D_v), branch logits (B, H, n_classes) per task or None.
        """
        patches = self._to_model(selection.patches)
        b, m = patches.shape[:2]
        emb = self.encoder(patches.flatten(0, 1)).view(b, m, -1)  # (B, M, D)
        emb = self._add_pos(emb, selection.indices.to(self.device))
        mask = None
        if self._stkim_on("acmil_aggregation"):
            s = self.stkim
            mask = partial(mask_logits, k=s.stkim_k, p=s.stkim_p, sampling=s.sampling)
        out = self.aggregator(emb, logit_mask=mask)
        if self.regulariser.double_forward:
            second = self.aggregator(emb, logit_mask=mask)
            out = AggregatorOutput(
                logits=out.logits,
                attention=second.attention,
                head_outputs=second.head_outputs,
                branch_logits=second.branch_logits,
            )
        return out

    def forward(self, selection: Selection) -> dict[str, Tensor]:
        """Task name -> logits (B, n_classes) for the selected patches (see :meth:`forward_features`)."""
        return self.forward_features(selection).logits
