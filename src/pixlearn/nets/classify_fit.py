"""Fitting an image classifier to labelled images: :func:`fit_image_classifier`, in named steps.

The steps, in order: check the images and labels, resolve the set-up (the network's `ndim`,
`in_channels` and `n_classes` from the data, the training input shape from the most common image
shape), hold out a validation set stratified by class, normalise (per-channel bounds of the
training pixels, or each image on its own), build the datasets (class-balanced sampling and
augmentation for training, :mod:`pixlearn.nets.classify_data`), train
(:func:`pixlearn.nets.classify_training.train_classifier`) and build the
:class:`~pixlearn.nets.classifier_model.ImageClassifierModel`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence

import numpy as np
import torch

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.nets.classifier import ResidualClassifier, count_parameters
from pixlearn.nets.classifier_model import ImageClassifierModel
from pixlearn.nets.classify_config import ClassifierNetConfig, ClassifyConfig, ClassifyTrainConfig
from pixlearn.nets.classify_data import ClassifyDataset, class_weights, dataset_bounds, stratified_split
from pixlearn.nets.classify_training import make_classification_loss, train_classifier
from pixlearn.nets.fit import FitOptions
from pixlearn.nets.patches import normalize_images

logger = logging.getLogger(__name__)


def check_classification_data(images: Sequence[np.ndarray], labels: Sequence[int], n_classes: int) -> np.ndarray:
    """Check canonical images and their class indices; the labels as an int64 array.

    Raises
    ------
    PixlearnError
        No images, a count mismatch, mixed dimensionality or channels, or labels outside
        ``0..n_classes-1``.
    """
    if not len(images):
        raise PixlearnError("no training images")
    if len(images) != len(labels):
        raise PixlearnError(f"{len(images)} images but {len(labels)} labels")
    ndims = {np.ndim(im) for im in images}
    if len(ndims) > 1 or ndims - {3, 4}:
        raise PixlearnError(f"images must all be canonical 2D (M, N, C) or 3D (P, M, N, C), got dimensions {sorted(ndims)}")
    channels = {np.shape(im)[-1] for im in images}
    if len(channels) > 1:
        raise PixlearnError(f"images have different channel counts {sorted(channels)}")
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise PixlearnError(f"labels must be class indices 0..{n_classes - 1}")
    return y.astype(np.int64)


def common_shape(images: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The most common spatial shape of canonical images (the largest of equally common ones).

    Examples
    --------
    >>> common_shape([np.zeros((4, 5, 1)), np.zeros((6, 6, 1)), np.zeros((4, 5, 1))])
    (4, 5)
    """
    counts = collections.Counter(tuple(int(s) for s in np.shape(im)[:-1]) for im in images)
    top = max(counts.values())
    return max(shape for shape, n in counts.items() if n == top)


def fit_image_classifier(
    images: Sequence[np.ndarray],
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    config: ClassifyConfig | None = None,
    validation: tuple[Sequence[np.ndarray], Sequence[int]] | None = None,
    options: FitOptions | None = None,
) -> ImageClassifierModel:
    """Train a residual CNN to tell the classes of whole images apart.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
        Raw canonical images (sizes may differ; normalised here).
    labels : sequence of int
        Class index ``0..K-1`` of each image.
    class_names : sequence of str
        ``K`` names.
    config : ClassifyConfig, optional
        Network and training; the network's `ndim`, `in_channels` and `n_classes` come from the
        data, a ``None`` `input_shape` from the most common image shape.
    validation : (images, labels), optional
        Validation images; default a stratified ``val_fraction`` of the training images.
    options : FitOptions, optional
        Checkpoint folder, resumption, progress bar, device, callbacks.

    Returns
    -------
    model : ImageClassifierModel
        With the weights of the best validation epoch and the resolved configuration.

    Raises
    ------
    PixlearnError
        Inconsistent images or labels, or fewer than two classes among the labels.
    """
    config = ClassifyConfig() if config is None else config
    options = FitOptions() if options is None else options
    y = check_classification_data(images, labels, len(class_names))
    if len(np.unique(y)) < 2:
        raise PixlearnError(f"the labels hold a single class ({class_names[int(y[0])]!r}); at least two are needed")
    net_cfg, cfg = resolve_classify_setup(images, len(class_names), config)
    train_images, y_train, val_images, y_val = _split(list(images), y, validation, cfg, len(class_names))
    bounds = dataset_bounds(train_images) if cfg.normalization == "dataset" else None
    normalization = NormalizeConfig()
    train_set, val_set = _datasets(train_images, y_train, val_images, y_val, cfg, bounds, normalization)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching global state
        torch.manual_seed(cfg.seed)
        net = ResidualClassifier(net_cfg)
    logger.info("training a %d-parameter classifier on %d images (%d validation), input %s", count_parameters(net),
                len(y_train), len(y_val), cfg.input_shape)
    weight = class_weights(y_train, len(class_names)) if cfg.balance == "weights" else None
    history = train_classifier(net, train_set, val_set, cfg, loss_fn=make_classification_loss(cfg, weight),
                               options=options)
    summary = history.summary()
    best = next((r for r in history.records if r["epoch"] == history.best_epoch), {})
    summary.update({k: best[k] for k in ("val_macro_f1", "val_balanced_accuracy", "val_accuracy") if k in best})
    summary.update({"n_train": len(y_train), "n_val": len(y_val), "n_parameters": count_parameters(net)})
    return ImageClassifierModel(net_cfg, class_names, net, normalization=normalization,
                                dataset_bounds=None if bounds is None else (bounds[0].tolist(), bounds[1].tolist()),
                                input_shape=cfg.input_shape, history=summary, train_config=cfg, device=options.device)


def resolve_classify_setup(images: Sequence[np.ndarray], n_classes: int,
                           config: ClassifyConfig) -> tuple[ClassifierNetConfig, ClassifyTrainConfig]:
    """The network with the data's dimensions, channels and classes, and the training input shape.

    Raises
    ------
    PixlearnError
        An `input_shape` of another dimensionality than the images.
    """
    ndim = int(np.ndim(images[0])) - 1
    net_cfg = config.net.replace(ndim=ndim, in_channels=int(np.shape(images[0])[-1]), n_classes=n_classes)
    cfg = config.train
    if cfg.input_shape is None:
        cfg = cfg.replace(input_shape=common_shape(images))
    elif len(cfg.input_shape) != ndim:
        raise PixlearnError(f"input shape {cfg.input_shape} does not fit {ndim}D images")
    return net_cfg, cfg


def _split(images: list[np.ndarray], y: np.ndarray, validation: tuple[Sequence[np.ndarray], Sequence[int]] | None,
           cfg: ClassifyTrainConfig, n_classes: int) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Training and validation images with their labels (a stratified split unless given)."""
    if validation is not None:
        y_val = check_classification_data(validation[0], validation[1], n_classes)
        if {np.ndim(im) for im in validation[0]} != {np.ndim(images[0])} or \
                {np.shape(im)[-1] for im in validation[0]} != {np.shape(images[0])[-1]}:
            raise PixlearnError("validation images differ from the training images in dimensionality or channels")
        return images, y, list(validation[0]), y_val
    train_idx, val_idx = stratified_split(y, cfg.val_fraction, cfg.seed)
    if not len(val_idx):
        logger.warning("no validation images held out: validating on the training images")
        return images, y, images, y
    return [images[i] for i in train_idx], y[train_idx], [images[i] for i in val_idx], y[val_idx]


def _datasets(train_images: list[np.ndarray], y_train: np.ndarray, val_images: list[np.ndarray], y_val: np.ndarray,
              cfg: ClassifyTrainConfig, bounds: tuple[np.ndarray, np.ndarray] | None,
              normalization: NormalizeConfig) -> tuple[ClassifyDataset, ClassifyDataset]:
    """Normalised, class-balanced and augmented training items, and fixed validation items."""
    def scaled(chunk: list[np.ndarray]) -> list[np.ndarray]:
        if bounds is None:
            return normalize_images(chunk, normalization)
        scale = np.float32(1.0) / (bounds[1] - bounds[0])
        return [(np.asarray(im, np.float32) - bounds[0]) * scale for im in chunk]

    shape = cfg.input_shape or common_shape(train_images)
    length = cfg.steps_per_epoch * cfg.batch_size if cfg.steps_per_epoch else len(train_images)
    train_set = ClassifyDataset(scaled(train_images), y_train, shape, length=length, seed=cfg.seed,
                                augmentation=cfg.augmentation, balanced=cfg.balance == "sampler")
    val_set = ClassifyDataset(scaled(val_images), y_val, shape, seed=cfg.seed + 1)
    return train_set, val_set


__all__ = ["check_classification_data", "common_shape", "fit_image_classifier", "resolve_classify_setup"]
