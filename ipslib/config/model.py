"""Model and training configurations: IPS selection, patch encoder, aggregator, regularisers, STKIM, training."""

from __future__ import annotations

from dataclasses import dataclass

from ipslib.config.base import ConfigError, _at_least, _choice, _within, check_options
from ipslib.config.options import (
    Amp,
    Arch,
    CompileMode,
    DeviceKind,
    DiversityTarget,
    ModelArchitecture,
    SelectionMode,
    SemanticHeads,
    ShuffleStyle,
    STKIMMode,
    STKIMSampling,
    Weights,
    choices,
)

__all__ = ["IPSConfig", "EncoderConfig", "AggregatorConfig", "RegulariserConfig", "STKIMConfig", "TrainConfig"]


@dataclass(frozen=True)
class IPSConfig:
    """Patch grid and iterative selection (spec §1). ``patch_stride`` None means = ``patch_size``.

    ``dedup_blank`` encodes identical patches once during the no-grad selection (exact in eval mode).

    Control arms (issue 16; defaults = IPS as before, see :mod:`ipslib.model.controls`):

    * ``selection``: ``ips`` (learned top-M), ``random`` (M patches drawn uniformly from the non-blank
      ones: fresh at every training step; in eval fixed by ``selection_seed`` and the image's content)
      or ``all`` (every patch through the gradient pass; refused when the estimate of
      :func:`ipslib.config.memory.pass_memory_mb` exceeds ``memory_budget_mb``, in MiB).
    * ``architecture``: ``ips`` (patches + aggregator) or ``downsampled`` (the whole image area-resized
      to ``downsample_size`` x ``downsample_size`` pixels, one trunk pass, the same heads).
    """

    patch_size: int = 50
    patch_stride: int | None = None
    memory_size: int = 100
    iter_size: int = 100
    shuffle: bool = True
    shuffle_style: ShuffleStyle = "batch"
    use_pos: bool = True
    dedup_blank: bool = True
    selection: SelectionMode = "ips"
    selection_seed: int = 0
    memory_budget_mb: float = 16384.0
    architecture: ModelArchitecture = "ips"
    downsample_size: int = 256

    def __post_init__(self) -> None:
        _at_least("patch_size", self.patch_size, 1)
        if self.patch_stride is not None:
            _at_least("patch_stride", self.patch_stride, 1)
        _at_least("memory_size", self.memory_size, 1)
        _at_least("iter_size", self.iter_size, 1)
        check_options(self)  # shuffle_style, selection, architecture
        _at_least("selection_seed", self.selection_seed, 0)
        if not self.memory_budget_mb > 0:
            raise ConfigError(f"memory_budget_mb={self.memory_budget_mb!r} is out of range; it must be > 0")
        _at_least("downsample_size", self.downsample_size, 8)
        if self.architecture == "downsampled" and self.selection != "ips":
            raise ConfigError(
                f"selection={self.selection!r} needs architecture='ips'; architecture='downsampled' selects no "
                "patches (leave selection at 'ips')"
            )

    @property
    def stride(self) -> int:
        return self.patch_size if self.patch_stride is None else self.patch_stride


@dataclass(frozen=True)
class EncoderConfig:
    """Patch encoder (spec §2). ``n_res_blocks`` ResNet stages are kept; ``proj_dim`` adds Linear(C → proj_dim).

    ``weights``: ``none``, ``imagenet_v1``, ``imagenet_v2`` (torchvision weights API) or ``file`` (a local
    state dict at ``weights_path``). ``freeze`` None means frozen for ResNet-50 and trainable otherwise.
    """

    arch: Arch = "resnet18"
    n_res_blocks: int = 2
    weights: Weights = "none"
    weights_path: str = ""
    freeze: bool | None = None
    freeze_bn: bool = False
    proj_dim: int | None = None

    def __post_init__(self) -> None:
        check_options(self)  # arch, weights
        _choice("n_res_blocks", self.n_res_blocks, [1, 2, 3, 4])
        if self.weights == "file" and not self.weights_path:
            raise ConfigError("weights='file' needs weights_path (a torch state-dict file)")
        if self.weights == "imagenet_v2" and self.arch == "resnet18":
            raise ConfigError("weights='imagenet_v2' exists only for arch='resnet50'; use 'imagenet_v1'")
        if self.proj_dim is not None:
            _at_least("proj_dim", self.proj_dim, 1)

    @property
    def trunk_dim(self) -> int:
        width = 64 * 2 ** (self.n_res_blocks - 1)
        return width * (4 if self.arch == "resnet50" else 1)

    @property
    def embed_dim(self) -> int:
        """D, the width of a patch embedding."""
        return self.trunk_dim if self.proj_dim is None else self.proj_dim

    @property
    def frozen(self) -> bool:
        return self.arch == "resnet50" if self.freeze is None else self.freeze


@dataclass(frozen=True)
class AggregatorConfig:
    """Cross-attention aggregation (spec §3): H heads of width D_k = D_v, MLP of width D_inner."""

    n_heads: int = 8
    head_dim: int = 16
    mlp_dim: int = 512
    attn_dropout: float = 0.1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _at_least("n_heads", self.n_heads, 1)
        _at_least("head_dim", self.head_dim, 1)
        _at_least("mlp_dim", self.mlp_dim, 1)
        _within("attn_dropout", self.attn_dropout, 0, 1)
        _within("dropout", self.dropout, 0, 1)


@dataclass(frozen=True)
class RegulariserConfig:
    """Diversity and semantic losses (spec §4). A weight of 0 switches that loss off.

    ``diversity_target``: ``head_outputs`` (author's code), ``head_attention`` (paper Eq. 10),
    ``branch_attention`` (ACMIL). ``semantic_heads``: ``shared`` (author's code) or ``per_head``
    (paper Eq. 12). ``double_forward`` repeats the author's second transformer call.
    """

    diversity_weight: float = 0.0
    semantic_weight: float = 0.0
    diversity_target: DiversityTarget = "head_outputs"
    semantic_heads: SemanticHeads = "shared"
    double_forward: bool = False

    def __post_init__(self) -> None:
        _at_least("diversity_weight", self.diversity_weight, 0)
        _at_least("semantic_weight", self.semantic_weight, 0)
        check_options(self)  # diversity_target, semantic_heads

    @property
    def enabled(self) -> bool:
        return self.diversity_weight > 0 or self.semantic_weight > 0


@dataclass(frozen=True)
class STKIMConfig:
    """Stochastic top-K instance masking (spec §5). ``stkim_k = 0`` or ``stkim_p = 0`` switches it off.

    ``seed_selection``: the author's masking of selection scores (Bernoulli, also at test time by default);
    ``acmil_aggregation``: ACMIL's masking of aggregation logits (exactly floor(K·P), training only).
    ``stkim_sampling`` and ``stkim_in_eval`` None take the chosen mode's own behaviour.
    """

    stkim_k: int = 0
    stkim_p: float = 0.0
    stkim_mode: STKIMMode = "seed_selection"
    stkim_sampling: STKIMSampling | None = None
    stkim_in_eval: bool | None = None

    def __post_init__(self) -> None:
        _at_least("stkim_k", self.stkim_k, 0)
        _within("stkim_p", self.stkim_p, 0, 1)
        check_options(self)  # stkim_mode, stkim_sampling

    @property
    def active(self) -> bool:
        return self.stkim_k > 0 and self.stkim_p > 0

    @property
    def sampling(self) -> STKIMSampling:
        if self.stkim_sampling is not None:
            return self.stkim_sampling
        return "bernoulli" if self.stkim_mode == "seed_selection" else "exact_fraction"

    @property
    def in_eval(self) -> bool:
        if self.stkim_in_eval is not None:
            return self.stkim_in_eval
        return self.stkim_mode == "seed_selection"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping (spec §6-§7). ``sub_batch_size`` None means = ``batch_size``."""

    epochs: int = 3
    batch_size: int = 16
    sub_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_epochs: float = 10.0
    min_lr_ratio: float = 1e-3
    train_seed: int = 0
    device: str = "auto"  # a DeviceKind, optionally with a CUDA index ("cuda:1")
    amp: Amp = "none"
    compile_mode: CompileMode = "none"
    """``torch.compile`` the patch encoder with this mode (``none``: eager). In the key only when set."""
    num_workers: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        _at_least("epochs", self.epochs, 1)
        _at_least("batch_size", self.batch_size, 1)
        if self.sub_batch_size is not None:
            _within("sub_batch_size", self.sub_batch_size, 1, self.batch_size)
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr!r} is out of range; it must be > 0")
        _at_least("weight_decay", self.weight_decay, 0)
        _at_least("warmup_epochs", self.warmup_epochs, 0)
        _within("min_lr_ratio", self.min_lr_ratio, 0, 1)
        _choice("device", self.device.split(":")[0], choices(DeviceKind))
        check_options(self)  # amp
        _at_least("num_workers", self.num_workers, 0)
        _at_least("threads", self.threads, 0)
