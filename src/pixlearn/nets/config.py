"""The nets room's configuration dataclasses, importable without torch.

:class:`UNetConfig` (architecture), :class:`TrainConfig` (how a network is trained) and
:class:`AugmentConfig` (random augmentation of training patches) are plain frozen
:class:`pixlearn.config.Config` dataclasses. They live here, apart from the torch code they
configure (:mod:`pixlearn.nets.unet`, :mod:`pixlearn.nets.training`, :mod:`pixlearn.nets.patches`,
which re-export them), so that :class:`pixlearn.experiment.ExperimentConfig` and the command line
can read, check and write them without importing torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from typing_extensions import Self

from pixlearn.config import Config
from pixlearn.nets.augment_config import NO_AUGMENT as NO_AUGMENT  # re-exported from its own module
from pixlearn.nets.augment_config import AugmentConfig as AugmentConfig
from pixlearn.nets.augment_config import ColourAugmentConfig as ColourAugmentConfig

LOSS_NAMES: tuple[str, ...] = ("ce", "ce_dice", "bce", "bce_dice", "l1", "mse", "instance")
"""Names of the losses of :data:`pixlearn.nets.losses.LOSSES` (a test checks they agree)."""

NORMS: tuple[str, ...] = ("batch", "instance", "group", "none")
SKIP_MERGES: tuple[str, ...] = ("concat", "add")
UPSAMPLES: tuple[str, ...] = ("transpose", "nearest")
DOWNSAMPLES: tuple[str, ...] = ("maxpool", "conv")


@dataclasses.dataclass(frozen=True)
class UNetConfig(Config):
    """Architecture of a :class:`UNet`.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions.
    in_channels, out_channels : int
        Channels of the input image and of the raw output (logits or regression values).
    depth : int
        Number of down-sampling steps; the network has ``depth + 1`` resolution levels.
    base_channels : int
        Feature channels at the first level.
    channel_growth : float
        Factor between the channels of consecutive levels (level ``l`` has
        ``round(base_channels * channel_growth ** l)``, at most `max_channels`).
    max_channels : int
        Upper bound on the channels of any level.
    convs_per_block : int
        3x3(x3) convolutions (each followed by normalisation and ReLU) per level and path.
    kernel_size : int
        Odd convolution kernel size.
    norm : {"batch", "instance", "group", "none"}
        Normalisation after each convolution.
    residual : bool
        Add a (1x1-projected) shortcut around each block.
    pool_kernels : tuple of tuple of int
        Per level, the pooling factor per spatial axis (planes, rows, columns), e.g.
        ``((1, 2, 2), (1, 2, 2), (2, 2, 2))`` for a stack whose Z spacing is 4x coarser than XY
        (see :func:`anisotropic_pool_kernels`). Empty: 2 on every axis at every level.
    stem_factor : int
        Space-to-depth factor applied to the row and column axes before the first level (and
        depth-to-space after the last): ``2`` runs the whole U-Net at half resolution in-plane,
        which is about 4x cheaper, and still predicts every pixel. ``1`` disables it.
    skip_merge : {"concat", "add"}
        How a decoder level joins the up-sampled features with the encoder's skip connection:
        channel concatenation (classic U-Net) or addition (LinkNet/FPN style, whose decoder
        convolutions see half the channels: about 2x cheaper decoders).
    downsample : {"maxpool", "conv"}
        Encoder down-sampling: max pooling before a level's convolutions, or a stride equal to
        the pooling factor in the level's first convolution (as nnU-Net and MONAI do).
    upsample : {"transpose", "nearest"}
        Decoder up-sampling: a transposed convolution with kernel = stride = pooling factor, or
        a 1x1 convolution at the coarse level followed by nearest-neighbour enlargement (several
        times cheaper on CPUs; the block's convolutions after the merge do the refinement).
    final_activation : {"none"}
        The network returns raw values; losses and :mod:`pixlearn.nets.model` apply softmax/sigmoid.

    Examples
    --------
    >>> UNetConfig(ndim=2, depth=2, base_channels=4).channels
    (4, 8, 16)
    """

    ndim: int = 2
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 4
    base_channels: int = 16
    channel_growth: float = 2.0
    max_channels: int = 512
    convs_per_block: int = 2
    kernel_size: int = 3
    norm: str = "batch"
    residual: bool = False
    pool_kernels: tuple[tuple[int, ...], ...] = ()
    stem_factor: int = 1
    skip_merge: str = "concat"
    downsample: str = "maxpool"
    upsample: str = "transpose"
    final_activation: str = "none"

    def __post_init__(self) -> None:
        if self.ndim not in (2, 3):
            raise ValueError(f"UNetConfig.ndim must be 2 or 3, got {self.ndim}")
        for name in ("in_channels", "out_channels", "base_channels", "max_channels", "convs_per_block", "stem_factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"UNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.depth < 0:
            raise ValueError(f"UNetConfig.depth must be >= 0, got {self.depth}")
        if self.channel_growth <= 0:
            raise ValueError(f"UNetConfig.channel_growth must be > 0, got {self.channel_growth}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"UNetConfig.kernel_size must be odd, got {self.kernel_size}")
        if self.norm not in NORMS:
            raise ValueError(f"UNetConfig.norm {self.norm!r} is not one of {NORMS}")
        if self.skip_merge not in SKIP_MERGES:
            raise ValueError(f"UNetConfig.skip_merge {self.skip_merge!r} is not one of {SKIP_MERGES}")
        if self.downsample not in DOWNSAMPLES:
            raise ValueError(f"UNetConfig.downsample {self.downsample!r} is not one of {DOWNSAMPLES}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"UNetConfig.upsample {self.upsample!r} is not one of {UPSAMPLES}")
        if self.final_activation != "none":
            raise ValueError("UNetConfig.final_activation must be 'none' (activations live in the losses)")
        if self.pool_kernels:
            if len(self.pool_kernels) != self.depth:
                raise ValueError(
                    f"UNetConfig.pool_kernels has {len(self.pool_kernels)} levels but depth is {self.depth}"
                )
            for kernel in self.pool_kernels:
                if len(kernel) != self.ndim or any(int(k) < 1 for k in kernel):
                    raise ValueError(
                        f"UNetConfig.pool_kernels: {kernel} must have {self.ndim} factors >= 1"
                    )

    @property
    def channels(self) -> tuple[int, ...]:
        """Feature channels per level, ``depth + 1`` entries."""
        return tuple(
            min(self.max_channels, max(1, round(self.base_channels * self.channel_growth**level)))
            for level in range(self.depth + 1)
        )

    @property
    def level_pool_kernels(self) -> tuple[tuple[int, ...], ...]:
        """Pooling factor per level and axis (`pool_kernels` or 2 everywhere)."""
        if self.pool_kernels:
            return tuple(tuple(int(k) for k in kernel) for kernel in self.pool_kernels)
        return tuple((2,) * self.ndim for _ in range(self.depth))

    @property
    def stem_factors(self) -> tuple[int, ...]:
        """Space-to-depth factor per spatial axis (1 along planes in 3D)."""
        return (1,) * (self.ndim - 2) + (self.stem_factor,) * 2





SCHEDULES: tuple[str, ...] = ("cosine", "plateau")
DEFAULT_EPOCHS = 100
"""Epochs of a run given neither `epochs` nor a time limit (:attr:`TrainConfig.max_epochs`)."""
SWITCHES: tuple[str, ...] = ("auto", "on", "off")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: Which weights a run leaves in the model (:attr:`TrainConfig.keep`).
KEEPS: tuple[str, ...] = ("auto", "best", "last")
"""Values of the precision settings (:func:`pixlearn.nets.precision.resolve_precision`)."""

_LEGACY_AUTOCAST: dict[str, str] = {"auto": "auto", "on": "bf16", "off": "fp32"}


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How a network is trained.

    Parameters
    ----------
    epochs : int or None
        Most epochs to train (an epoch is `steps_per_epoch` batches). ``None`` (the default)
        means no cap when a `time_limit_s` is given (the run trains for its whole budget, unless
        early stopping ends it), else :data:`DEFAULT_EPOCHS`. An explicit value always caps,
        also one equal to the default (see :attr:`max_epochs`).
    steps_per_epoch : int
        Optimiser steps between two validations.
    batch_size : int or None
        Patches per optimiser step, in total over all processes of a distributed run (each of
        ``N`` processes takes ``batch_size / N``); ``None`` means "choose from the data and the
        memory" (:func:`pixlearn.nets.fit.resolve_setup`). An explicit value is always kept,
        also one equal to a default.
    patch_shape : tuple of int or None
        Spatial patch shape; ``None`` (or empty, as older files write it) means "choose from the
        data" (:func:`pixlearn.nets.autoconfig.auto_config`).
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    schedule : {"cosine", "plateau"}
        ``"cosine"``: a linear warm-up from ``lr / 100`` to `lr` over the first `warmup_fraction`
        of the run, then half a cosine down to ``lr / 100`` at its end. The run's progress is
        its share of the steps of `max_epochs` or, with a `time_limit_s`, of the wall-clock
        budget, whichever is further (:func:`pixlearn.nets.schedule.run_progress`), so a
        time-limited run ends at the low rate exactly when its time is up. ``"plateau"``: halve
        the rate on a validation plateau.
    warmup_fraction : float
        Share of the run (in ``0..0.5``) spent warming up; 0 disables the warm-up.
    grad_clip : float
        Largest gradient norm; 0 disables clipping.
    patience : int
        Early stopping: stop after this many epochs in which the smoothed validation loss has
        not improved on its best by `min_improvement` (see
        :func:`pixlearn.nets.schedule.stale_epochs`); 0 disables. The instances task is judged
        on its loss too: its instance score needs whole-image predictions, seeded watershed and a
        threshold search on every validation image, too slow for every epoch.
    val_smoothing : float
        Weight of the past in the exponential moving average of the validation loss that early
        stopping judges (``0``: the raw loss; the default ``0.9`` averages about the last 19
        epochs, so that the noise of a small validation set does not end a run that improves).
    min_improvement : float
        Relative decrease of the smoothed validation loss that counts as an improvement.
    val_fraction : float
        Share of the pairs held out for validation when no validation set is given.
    val_patches : int
        Number of (fixed, unaugmented) validation patches.
    loss : str
        A key of :data:`pixlearn.nets.losses.LOSSES`.
    foreground_fraction : float
        Share of patches centred on foreground.
    augmentation : AugmentConfig
    seed : int
    time_limit_s : float or None
        Wall-clock budget of the training loop in seconds: the optimiser steps stop early enough
        that the last validation and checkpoint end within it (as long as the previous ones
        took), and the best model is kept.
    precision : {"auto", "fp32", "bf16"}
        Arithmetic of training (:func:`pixlearn.nets.precision.resolve_precision`). ``"auto"``:
        on CUDA, mixed precision (bf16, else fp16 with a gradient scaler); on a CPU, bf16
        autocast and channels-last only where a short measurement on this machine found them
        at least 10% faster than fp32 (cached per machine and torch version), else fp32.
        ``"fp32"``/``"bf16"`` force it without measuring. Files written before this field have
        ``autocast`` instead, read as ``"on"``: ``"bf16"``, ``"off"``: ``"fp32"``.
    channels_last : {"auto", "on", "off"}
        Channels-last memory format for 2D networks. ``"auto"``: on for CUDA; on a CPU, the
        measured choice when `precision` is ``"auto"``, else off.
    num_workers : int
        DataLoader worker processes (0: load in the training process).
    warmup_steps : int or None
        The learning rate rises linearly from ``lr / warmup_steps`` to `lr` over the first
        `warmup_steps` optimiser steps (both schedules). ``None``: chosen by
        :func:`pixlearn.nets.fit.fit_network`: none from scratch,
        :data:`pixlearn.nets.finetune.FINE_TUNE_WARMUP_STEPS` (at most a tenth of the run's
        steps) when fine-tuning.
    init_lr_factor : float
        Fine-tuning (training that starts from a trained model, ``fit_network(init=...)``,
        ``pixlearn train --init``) runs at ``lr * init_lr_factor``: the full rate by default
        (after the short warm-up). Measured on DSB2018's colour group with a base that never
        saw it (``benchmarks/builtin.py``, 10 images, 10 minutes): pooled AP@0.5 0.562 at 1
        against 0.541 at 0.1 (untouched 0.409). A smaller factor keeps a model closer to what it
        knows. Ignored from scratch. The model's
        resolved configuration holds the learning rate used, with a factor of 1.
    target_diameter : float, "auto" or None
        Scale normalisation (:mod:`pixlearn.nets.scaling`): each training image is resized so
        that the median diameter of its objects becomes this many pixels (``"auto"``: the median
        over the training set; images without objects keep their scale), and the model records
        it as its ``object_diameter`` for ``predict --diameter``. ``None`` (default): off. The
        resolved configuration holds the number.
    scale_jitter : float
        With a `target_diameter`, each training patch is zoomed by a random factor in
        ``[1/scale_jitter, scale_jitter]`` (log-uniform); 1 disables. Ignored without one.
    keep : {"auto", "best", "last"}
        The weights the model holds when the run ends: those of the epoch of lowest validation
        loss (``"best"``) or of the last epoch (``"last"``, where the schedule has annealed).
        ``"auto"``: ``"last"`` when fine-tuning (a few images give a validation loss too noisy
        to pick an epoch by, and the model starts good, so the first epochs often "win"),
        ``"best"`` from scratch.
    """

    epochs: int | None = None
    steps_per_epoch: int = 50
    batch_size: int | None = None
    patch_shape: tuple[int, ...] | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_fraction: float = 0.02
    grad_clip: float = 1.0
    patience: int = 20
    val_smoothing: float = 0.9
    min_improvement: float = 0.005
    val_fraction: float = 0.15
    val_patches: int = 32
    loss: str = "ce_dice"
    foreground_fraction: float = 0.33
    augmentation: AugmentConfig = AugmentConfig()
    seed: int = 0
    time_limit_s: float | None = None
    precision: str = "auto"
    channels_last: str = "auto"
    num_workers: int = 0
    warmup_steps: int | None = None
    init_lr_factor: float = 1.0
    target_diameter: float | str | None = None
    scale_jitter: float = 1.25
    keep: str = "auto"

    def __post_init__(self) -> None:
        if self.patch_shape is not None:
            object.__setattr__(self, "patch_shape", tuple(int(p) for p in self.patch_shape) or None)
        for name in ("epochs", "steps_per_epoch", "batch_size", "val_patches"):
            value = getattr(self, name)
            if (value is not None or name not in ("batch_size", "epochs")) and int(value) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {value}")
        patch = self.patch_shape or ()
        if any(p < 1 for p in patch) or len(patch) not in (0, 2, 3):
            raise ValueError(f"TrainConfig.patch_shape must be None or 2/3 positive sizes, got {self.patch_shape}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TrainConfig: lr must be > 0, weight_decay and grad_clip >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.patience < 0 or self.num_workers < 0:
            raise ValueError("TrainConfig: patience and num_workers must be >= 0")
        if not 0.0 <= self.warmup_fraction <= 0.5:
            raise ValueError(f"TrainConfig.warmup_fraction must be in [0, 0.5], got {self.warmup_fraction}")
        if not 0.0 <= self.val_smoothing < 1.0 or not 0.0 <= self.min_improvement < 1.0:
            raise ValueError("TrainConfig: val_smoothing and min_improvement must be in [0, 1)")
        if not 0.0 <= self.val_fraction < 1.0 or not 0.0 <= self.foreground_fraction <= 1.0:
            raise ValueError("TrainConfig: val_fraction must be in [0, 1), foreground_fraction in [0, 1]")
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"TrainConfig.loss {self.loss!r} is not one of {sorted(LOSS_NAMES)}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"TrainConfig.time_limit_s must be positive, got {self.time_limit_s}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.keep not in KEEPS:
            raise ValueError(f"TrainConfig.keep must be one of {KEEPS}, got {self.keep!r}")
        if self.channels_last not in SWITCHES:
            raise ValueError(f"TrainConfig.channels_last must be one of {SWITCHES}, got {self.channels_last!r}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.warmup_steps must be None or >= 0, got {self.warmup_steps}")
        if not 0.0 < self.init_lr_factor <= 1.0:
            raise ValueError(f"TrainConfig.init_lr_factor must be in (0, 1], got {self.init_lr_factor}")
        target = self.target_diameter
        if target is not None and target != "auto" and (isinstance(target, (str, bool)) or not target > 0):
            raise ValueError(f"TrainConfig.target_diameter must be None, 'auto' or positive, got {target!r}")
        if isinstance(target, int):
            object.__setattr__(self, "target_diameter", float(target))
        if not self.scale_jitter >= 1.0:
            raise ValueError(f"TrainConfig.scale_jitter must be >= 1, got {self.scale_jitter}")

    @property
    def max_epochs(self) -> int | None:
        """The epoch cap: `epochs` when given, else none with a time limit, else :data:`DEFAULT_EPOCHS`.

        Examples
        --------
        >>> TrainConfig().max_epochs, TrainConfig(time_limit_s=60.0).max_epochs
        (100, None)
        >>> TrainConfig(epochs=100, time_limit_s=60.0).max_epochs  # an explicit value is kept
        100
        """
        if self.epochs is not None:
            return int(self.epochs)
        return None if self.time_limit_s is not None else DEFAULT_EPOCHS

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a dict; the ``autocast`` key of files of before is read as `precision`.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict`, or with ``autocast`` (``"auto"``, ``"on"``: bf16,
            ``"off"``: fp32) in place of ``precision``.

        Returns
        -------
        config : TrainConfig

        Raises
        ------
        ValueError
            Unknown keys, both ``autocast`` and ``precision``, or invalid values.

        Examples
        --------
        >>> TrainConfig.from_dict({"autocast": "off"}).precision
        'fp32'
        """
        if isinstance(data, dict) and "autocast" in data:
            data = dict(data)
            legacy = data.pop("autocast")
            if "precision" in data:
                raise ValueError("TrainConfig: give precision, not both precision and the older autocast")
            if legacy not in _LEGACY_AUTOCAST:
                raise ValueError(f"TrainConfig.autocast must be one of {tuple(_LEGACY_AUTOCAST)}, got {legacy!r}")
            data["precision"] = _LEGACY_AUTOCAST[legacy]
        return super().from_dict(data)

    @property
    def is_resolved(self) -> bool:
        """Whether every "choose from the data" field (`batch_size`, `patch_shape`) has a value."""
        return self.batch_size is not None and self.patch_shape is not None


__all__ = [
    "DEFAULT_EPOCHS",
    "DOWNSAMPLES",
    "LOSS_NAMES",
    "NORMS",
    "NO_AUGMENT",
    "PRECISIONS",
    "SCHEDULES",
    "SKIP_MERGES",
    "SWITCHES",
    "UPSAMPLES",
    "AugmentConfig",
    "ColourAugmentConfig",
    "TrainConfig",
    "UNetConfig",
]
