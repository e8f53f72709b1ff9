"""Configuration of image classification by a CNN, importable without torch.

:class:`ClassifierNetConfig` (the residual network), :class:`ClassifyAugmentConfig` (random
augmentation of training images), :class:`ClassifyTrainConfig` (how it is trained) and
:class:`ClassifyConfig`, the ``classify`` section of :class:`pixlearn.experiment.ExperimentConfig`
that holds the first and the last. Like :mod:`pixlearn.nets.config`, this module imports no torch,
so configuration files are read and checked without it.
"""

from __future__ import annotations

import dataclasses

from pixlearn.config import Config

CLASSIFY_NORMS: tuple[str, ...] = ("batch", "group")
CLASSIFY_LOSSES: tuple[str, ...] = ("ce", "focal")
BALANCES: tuple[str, ...] = ("sampler", "weights", "none")
SELECTIONS: tuple[str, ...] = ("macro_f1", "balanced_accuracy", "loss")
NORMALIZATIONS: tuple[str, ...] = ("dataset", "image")
SWITCHES: tuple[str, ...] = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class ClassifierNetConfig(Config):
    """Architecture of a :class:`pixlearn.nets.classifier.ResidualClassifier`.

    A stem convolution (stride `stem_stride`), then `depth` stages of `blocks_per_stage` residual
    blocks (two 3x3(x3) convolutions with normalisation and ReLU around an identity or 1x1
    shortcut); every stage after the first halves the resolution and multiplies the channels by
    `growth`. Global average pooling, dropout and one linear layer give the class logits, so the
    network takes images of any size.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions.
    in_channels : int
        Channels of the input images.
    n_classes : int
        Classes (outputs); at least 2.
    width : int
        Channels of the stem and the first stage.
    depth : int
        Number of stages.
    blocks_per_stage : int
        Residual blocks per stage.
    growth : float
        Channel factor between consecutive stages (at most `max_width` channels).
    max_width : int
    stem_stride : int
        Stride of the stem convolution: 2 halves the resolution before the first stage (about 4x
        cheaper; 64x64 crops then run their first stage at 32x32), 1 keeps it.
    dropout : float
        Dropout probability before the linear layer.
    norm : {"batch", "group"}
        Normalisation after each convolution (group norm: 8 groups at most, for tiny batches).

    Examples
    --------
    >>> ClassifierNetConfig(width=32, depth=4).stage_widths
    (32, 64, 128, 256)
    >>> ClassifierNetConfig(width=32, depth=4).reduction
    16
    """

    ndim: int = 2
    in_channels: int = 1
    n_classes: int = 2
    width: int = 32
    depth: int = 4
    blocks_per_stage: int = 1
    growth: float = 2.0
    max_width: int = 256
    stem_stride: int = 2
    dropout: float = 0.1
    norm: str = "batch"

    def __post_init__(self) -> None:
        if self.ndim not in (2, 3):
            raise ValueError(f"ClassifierNetConfig.ndim must be 2 or 3, got {self.ndim}")
        if self.n_classes < 2:
            raise ValueError(f"ClassifierNetConfig.n_classes must be >= 2, got {self.n_classes}")
        for name in ("in_channels", "width", "depth", "blocks_per_stage", "max_width", "stem_stride"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ClassifierNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.growth <= 0:
            raise ValueError(f"ClassifierNetConfig.growth must be > 0, got {self.growth}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ClassifierNetConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.norm not in CLASSIFY_NORMS:
            raise ValueError(f"ClassifierNetConfig.norm {self.norm!r} is not one of {CLASSIFY_NORMS}")

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Channels of each stage, `depth` entries."""
        return tuple(min(self.max_width, max(1, round(self.width * self.growth**s))) for s in range(self.depth))

    @property
    def reduction(self) -> int:
        """Resolution factor between the input and the last stage's feature map."""
        return int(self.stem_stride * 2 ** (self.depth - 1))


@dataclasses.dataclass(frozen=True)
class ClassifyAugmentConfig(Config):
    """Random augmentation of one training image (:func:`pixlearn.nets.classify_data.augment_image`).

    Parameters
    ----------
    flips : bool
        Flip each spatial axis with probability 1/2.
    rotations : bool
        Rotate by a random multiple of 90 degrees in the row/column plane (square images; others
        get 0 or 180 degrees).
    rotation_deg : float
        Largest free rotation in the row/column plane, degrees (0: none).
    scale_range : tuple of float
        Random zoom factor (1, 1: none); with `rotation_deg` one affine resampling.
    brightness, contrast : float
        Largest additive shift and relative contrast change, of the normalised intensities.
    colour : float
        Largest relative change of each channel's intensity, independently (several channels).
    blur_probability : float
        Chance of a Gaussian blur with a sigma drawn from `blur_sigma_px`.
    blur_sigma_px : tuple of float
    noise_std : float
        Largest standard deviation of additive Gaussian noise.
    """

    flips: bool = True
    rotations: bool = True
    rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.1
    contrast: float = 0.15
    colour: float = 0.05
    blur_probability: float = 0.2
    blur_sigma_px: tuple[float, float] = (0.3, 1.0)
    noise_std: float = 0.02

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"ClassifyAugmentConfig.scale_range must be 0 < low <= high, got {self.scale_range}")
        if not 0 <= self.blur_sigma_px[0] <= self.blur_sigma_px[1]:
            raise ValueError(f"ClassifyAugmentConfig.blur_sigma_px must be 0 <= low <= high, got {self.blur_sigma_px}")
        for name in ("rotation_deg", "brightness", "contrast", "colour", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"ClassifyAugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.contrast >= 1 or self.colour >= 1:
            raise ValueError("ClassifyAugmentConfig: contrast and colour must be < 1")
        if not 0.0 <= self.blur_probability <= 1.0:
            raise ValueError(f"ClassifyAugmentConfig.blur_probability must be in [0, 1], got {self.blur_probability}")


NO_CLASSIFY_AUGMENT = ClassifyAugmentConfig(flips=False, rotations=False, rotation_deg=0.0, scale_range=(1.0, 1.0),
                                            brightness=0.0, contrast=0.0, colour=0.0, blur_probability=0.0,
                                            noise_std=0.0)


@dataclasses.dataclass(frozen=True)
class ClassifyTrainConfig(Config):
    """How an image classifier is trained (:func:`pixlearn.nets.classify_training.train_classifier`).

    Parameters
    ----------
    epochs : int
    steps_per_epoch : int or None
        Batches per epoch; ``None``: as many as one pass over the training images takes.
    batch_size : int
    input_shape : tuple of int or None
        Spatial shape of the training batches: smaller images are padded (edge values), larger
        ones cropped (at random in training, centred for validation). ``None``: the most common
        shape of the training images. Prediction takes each image whole, whatever its size.
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    warmup_fraction : float
        Share of the run (steps, or the time limit) over which the rate rises linearly to `lr`,
        before the cosine decay (:func:`pixlearn.nets.training.cosine_learning_rate`) to ``lr / 100``.
    grad_clip : float
        Largest gradient norm; 0 disables clipping.
    patience : int
        Stop after this many epochs without a better validation score; 0 disables.
    val_fraction : float
        Share of each class held out for validation (stratified) when no validation set is given.
    loss : {"ce", "focal"}
        Cross-entropy, or focal loss ``(1 - p_t) ** focal_gamma`` times it.
    focal_gamma : float
    label_smoothing : float
        Share of the target probability spread over all classes.
    balance : {"sampler", "weights", "none"}
        Class balance: draw every class equally often, weight the loss by inverse class frequency,
        or neither.
    select : {"macro_f1", "balanced_accuracy", "loss"}
        Validation score that chooses the best epoch (and that early stopping watches); ties go to
        the lower validation loss.
    normalization : {"dataset", "image"}
        ``"dataset"``: one pair of bounds for every image, the 1st and 99.8th percentiles of the
        training pixels (absolute brightness and colour stay informative); ``"image"``: each image
        and channel on its own percentiles (for images whose scale varies arbitrarily).
    augmentation : ClassifyAugmentConfig
    seed : int
    time_limit_s : float or None
        Stop when this much wall time is spent, keeping the best epoch.
    autocast : {"auto", "on", "off"}
        Mixed precision (bf16 on CPU, AMP on CUDA); ``"auto"``: on CUDA only.
    channels_last : {"auto", "on", "off"}
        Channels-last memory for 2D networks; ``"auto"``: on CUDA only.
    """

    epochs: int = 100
    steps_per_epoch: int | None = None
    batch_size: int = 64
    input_shape: tuple[int, ...] | None = None
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.03
    grad_clip: float = 2.0
    patience: int = 15
    val_fraction: float = 0.15
    loss: str = "ce"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.1
    balance: str = "sampler"
    select: str = "macro_f1"
    normalization: str = "dataset"
    augmentation: ClassifyAugmentConfig = ClassifyAugmentConfig()
    seed: int = 0
    time_limit_s: float | None = None
    autocast: str = "auto"
    channels_last: str = "auto"

    def __post_init__(self) -> None:
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape) or None)
        shape = self.input_shape or ()
        if len(shape) not in (0, 2, 3) or any(s < 1 for s in shape):
            raise ValueError(f"ClassifyTrainConfig.input_shape must be None or 2/3 positive sizes, got {self.input_shape}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ClassifyTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"ClassifyTrainConfig.steps_per_epoch must be None or >= 1, got {self.steps_per_epoch}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.patience < 0:
            raise ValueError("ClassifyTrainConfig: lr must be > 0; weight_decay, grad_clip and patience >= 0")
        if not 0.0 <= self.warmup_fraction < 1.0 or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("ClassifyTrainConfig: warmup_fraction and val_fraction must be in [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0 or self.focal_gamma < 0:
            raise ValueError("ClassifyTrainConfig: label_smoothing must be in [0, 1), focal_gamma >= 0")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"ClassifyTrainConfig.time_limit_s must be positive, got {self.time_limit_s}")
        for name, allowed in (("loss", CLASSIFY_LOSSES), ("balance", BALANCES), ("select", SELECTIONS),
                              ("normalization", NORMALIZATIONS), ("autocast", SWITCHES),
                              ("channels_last", SWITCHES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ClassifyTrainConfig.{name} {getattr(self, name)!r} is not one of {allowed}")


@dataclasses.dataclass(frozen=True)
class ClassifyConfig(Config):
    """The ``classify`` section of an experiment: network and training of an image classifier.

    Parameters
    ----------
    net : ClassifierNetConfig
        Its `ndim`, `in_channels` and `n_classes` are set from the training data
        (:func:`pixlearn.nets.classify_fit.fit_image_classifier`); the rest is kept.
    train : ClassifyTrainConfig

    Examples
    --------
    >>> cfg = ClassifyConfig.from_dict({"net": {"width": 16}, "train": {"batch_size": 32}})
    >>> cfg.net.width, cfg.train.batch_size, cfg.train.lr
    (16, 32, 0.002)
    """

    net: ClassifierNetConfig = ClassifierNetConfig()
    train: ClassifyTrainConfig = ClassifyTrainConfig()


__all__ = [
    "BALANCES",
    "CLASSIFY_LOSSES",
    "CLASSIFY_NORMS",
    "NORMALIZATIONS",
    "NO_CLASSIFY_AUGMENT",
    "SELECTIONS",
    "ClassifierNetConfig",
    "ClassifyAugmentConfig",
    "ClassifyConfig",
    "ClassifyTrainConfig",
]
