"""Fitting a U-Net to image/annotation pairs: :func:`fit_network`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from pixlearn.data.labels import IGNORE
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import TASKS
from pixlearn.nets.autoconfig import auto_config
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.patches import NO_AUGMENT, PatchDataset, normalize_images
from pixlearn.nets.training import History, TrainConfig, resolve_device, train
from pixlearn.nets.unet import UNet, UNetConfig, size_divisor

logger = logging.getLogger(__name__)

TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "semantic": ("ce_dice", "ce"),
    "instances": ("instance",),
    "restore": ("l1", "mse"),
}


def _check_pairs(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], task: str) -> None:
    if len(images) != len(labels):
        raise PixlearnError(f"{len(images)} images but {len(labels)} label images")
    if not images:
        raise PixlearnError("no training images")
    channels = {im.shape[-1] for im in images}
    if len(channels) > 1:
        raise PixlearnError(f"training images have different channel counts {sorted(channels)}")
    ndims = {im.ndim for im in images}
    if len(ndims) > 1 or ndims - {3, 4}:
        raise PixlearnError(f"images must all be canonical 2D (M, N, C) or 3D (P, M, N, C), got dimensions {sorted(ndims)}")
    for i, (image, label) in enumerate(zip(images, labels)):
        spatial = image.shape[:-1]
        if task == "restore":
            if label.ndim != image.ndim or label.shape[:-1] != spatial:
                raise PixlearnError(
                    f"restore pair {i}: input of shape {image.shape} and target of shape {label.shape} differ "
                    "(both must be canonical (..., C) with the same spatial shape)"
                )
        elif label.shape != spatial:
            raise PixlearnError(f"pair {i}: image of spatial shape {spatial} but labels of shape {label.shape}")


def _targets(labels: Sequence[np.ndarray], task: str) -> tuple[list[np.ndarray], list[np.ndarray | None], int]:
    """Training targets, foreground masks for oversampling, and the number of network outputs."""
    if task == "instances":
        from pixlearn.nets.targets import instance_targets

        if not any(np.any(np.asarray(lab) > 0) for lab in labels):
            raise PixlearnError("no label image has any object (all are 0): nothing to learn")
        return [instance_targets(np.asarray(lab)) for lab in labels], [np.asarray(lab) > 0 for lab in labels], 2
    if task == "semantic":
        targets = [np.asarray(lab).astype(np.int64) for lab in labels]
        if any(t.min(initial=0) < IGNORE for t in targets):
            raise PixlearnError(f"class targets must be >= {IGNORE} (-1 marks unannotated pixels)")
        n_classes = max(int(t.max(initial=0)) for t in targets) + 1
        if n_classes < 2 or not any(np.any(t > 0) for t in targets):
            raise PixlearnError("no label image has any foreground class (all annotated pixels are 0): nothing to learn")
        annotated = sum(int(np.count_nonzero(t != IGNORE)) for t in targets) / sum(t.size for t in targets)
        masks = [(t != IGNORE) if annotated < 0.5 else (t > 0) for t in targets]
        return targets, masks, n_classes
    return [np.asarray(lab, np.float32) for lab in labels], [None] * len(labels), int(labels[0].shape[-1])


def _fit_patch(patch: tuple[int, ...], images: Sequence[np.ndarray], divisor: tuple[int, ...]) -> tuple[int, ...]:
    """Shrink `patch` to the smallest image (in multiples of `divisor`), or raise."""
    smallest = np.min(np.array([im.shape[:-1] for im in images]), axis=0)
    fitted = tuple(int(min(p, s // d * d)) for p, s, d in zip(patch, smallest, divisor))
    if any(f < d for f, d in zip(fitted, divisor)):
        raise PixlearnError(
            f"an image of spatial shape {tuple(int(s) for s in smallest)} is smaller than the network's minimum "
            f"input {divisor}: use a shallower network (depth) or larger images"
        )
    if fitted != tuple(patch):
        logger.warning("patch shape %s does not fit the smallest image %s: using %s", patch, tuple(smallest), fitted)
    return fitted


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if n < 2 or fraction <= 0:
        logger.warning("a single training pair: validating on the training image")
        return list(range(n)), list(range(n))
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


def fit_network(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    task: str,
    *,
    unet: UNetConfig | None = None,
    train_config: TrainConfig | None = None,
    normalization: NormalizeConfig | None = None,
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
    class_names: Sequence[str] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    device: Any = None,
    callbacks: Sequence[Callable[[int, dict[str, float], Any], bool | None]] = (),
) -> NetworkModel:
    """Train a U-Net on canonical image/label pairs and return it ready to predict.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
        Raw canonical training images (normalised here with `normalization`).
    labels : sequence of ndarray
        ``semantic``: class indices ``(M, N)`` with -1 for unannotated pixels
        (:func:`pixlearn.data.labels.to_class_targets`); ``instances``: instance label images;
        ``restore``: canonical target images ``(M, N, K)``, normalised here like the inputs.
    task : {"semantic", "instances", "restore"}
    unet, train_config : UNetConfig, TrainConfig, optional
        Default from :func:`pixlearn.nets.autoconfig.auto_config`; an empty ``patch_shape`` is filled in
        from the data too (with the batch size, unless it differs from the default 8). A loss
        that does not fit the task is replaced by the task's default.
    normalization : NormalizeConfig, optional
        Default percentile 1..99.8.
    validation : (images, labels), optional
        Validation pairs; default a ``train_config.val_fraction`` split of the training pairs.
    class_names : sequence of str, optional
    checkpoint_dir : path-like, optional
        Checkpoints, logs and curves (see :func:`pixlearn.nets.training.train`).
    resume : bool
        Continue from the last checkpoint in `checkpoint_dir`.
    progress : bool
    device : str or torch.device, optional
    callbacks : sequence of callable
        Passed to :func:`pixlearn.nets.training.train`: ``callback(epoch, record, net)`` after
        each epoch (progress); returning ``True`` stops training, keeping the best weights.

    Returns
    -------
    model : NetworkModel
        With the best validation weights; for ``instances`` also post-processing thresholds
        tuned on the validation images.

    Raises
    ------
    PixlearnError
        Pairs of different shapes, no foreground in any label, images smaller than the network's
        minimum input, or a network that does not match the data.
    """
    if task not in TASKS:
        raise PixlearnError(f"task {task!r} is not one of {TASKS}")
    images = [np.asarray(im) for im in images]
    labels = [np.asarray(lab) for lab in labels]
    _check_pairs(images, labels, task)
    if validation is not None:
        _check_pairs([np.asarray(v) for v in validation[0]], [np.asarray(v) for v in validation[1]], task)
    normalization = NormalizeConfig() if normalization is None else normalization
    device = resolve_device(device)
    targets, masks, n_outputs = _targets(labels, task)

    axes = "ZYXC" if images[0].ndim == 4 else "YXC"
    auto_unet, auto_train = auto_config(images, None if task == "restore" else labels, task, axes,
                                        out_channels=n_outputs, device=device)
    unet = auto_unet if unet is None else unet
    if unet.in_channels != images[0].shape[-1] or unet.out_channels != n_outputs or unet.ndim != images[0].ndim - 1:
        raise PixlearnError(
            f"network takes {unet.ndim}D images with {unet.in_channels} channel(s) and gives {unet.out_channels} "
            f"output(s), but the data is {images[0].ndim - 1}D with {images[0].shape[-1]} channel(s) and needs {n_outputs}"
        )
    cfg = auto_train if train_config is None else train_config
    if not cfg.patch_shape:  # the data decides; so does memory, unless a batch size was chosen
        default_batch = TrainConfig.__dataclass_fields__["batch_size"].default
        batch = auto_train.batch_size if cfg.batch_size == default_batch else cfg.batch_size
        cfg = cfg.replace(patch_shape=auto_train.patch_shape, batch_size=batch)
    if cfg.loss not in TASK_LOSSES[task]:
        logger.info("loss %r does not fit the %s task: using %r", cfg.loss, task, TASK_LOSSES[task][0])
        cfg = cfg.replace(loss=TASK_LOSSES[task][0])
    if task == "restore" and cfg.augmentation.intensity:
        cfg = cfg.replace(augmentation=cfg.augmentation.replace(intensity=False))
    if len(cfg.patch_shape) != unet.ndim:
        raise PixlearnError(f"patch shape {cfg.patch_shape} does not match the {unet.ndim}D network")

    normalised = normalize_images(images, normalization)
    if task == "restore":
        targets = normalize_images(targets, normalization)
    if validation is None:
        train_idx, val_idx = _split(len(images), cfg.val_fraction, cfg.seed)
        val_images = [normalised[i] for i in val_idx]
        val_targets, val_labels = [targets[i] for i in val_idx], [labels[i] for i in val_idx]
        normalised, targets, masks = ([seq[i] for i in train_idx] for seq in (normalised, targets, masks))
    else:
        val_images = normalize_images([np.asarray(v) for v in validation[0]], normalization)
        val_labels = [np.asarray(v) for v in validation[1]]
        val_targets, _, _ = _targets(val_labels, task)
        if task == "restore":
            val_targets = normalize_images(val_targets, normalization)
    patch = _fit_patch(tuple(cfg.patch_shape), list(normalised) + list(val_images), size_divisor(unet))
    cfg = cfg.replace(patch_shape=patch)

    fraction = cfg.foreground_fraction
    if task == "semantic":
        annotated = sum(int(np.count_nonzero(t != IGNORE)) for t in targets) / sum(t.size for t in targets)
        if annotated < 0.5:  # sparse scribbles: centre most patches on annotated pixels
            fraction = max(fraction, 0.9)
    train_set = PatchDataset(normalised, targets, patch, cfg.steps_per_epoch * cfg.batch_size, seed=cfg.seed,
                             augmentation=cfg.augmentation, foreground=masks, foreground_fraction=fraction)
    val_set = PatchDataset(val_images, val_targets, patch, cfg.val_patches, seed=cfg.seed + 1,
                           augmentation=NO_AUGMENT, foreground_fraction=0.0)

    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching global state
        torch.manual_seed(cfg.seed)
        net = UNet(unet)
    history: History = train(net, train_set, val_set, cfg, checkpoint_dir=checkpoint_dir, resume=resume,
                             progress=progress, device=device, callbacks=callbacks)
    model = NetworkModel(unet, task, net, normalization=normalization, class_names=class_names,
                         history=history.summary(), train_config=cfg, device=device)
    if task == "instances":
        from pixlearn.postprocess.tuning import tune_instance_thresholds

        outputs = [model.predict_raw(im) for im in val_images]
        best, score = tune_instance_thresholds(outputs, val_labels)
        model.thresholds = best.to_dict()
        model.history["val_instance_score"] = float(score)
        logger.info("instance thresholds %s (validation accuracy at IoU 0.5: %.3f)", model.thresholds, score)
    return model

