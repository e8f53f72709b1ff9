"""Fitting a U-Net to image/annotation pairs: :func:`fit_network`, in named steps.

The steps, in order: check the pairs, bring their objects to one size when asked
(``TrainConfig.target_diameter``, :mod:`pixlearn.nets.scaling`), make the per-task targets, resolve the set-up
(:func:`resolve_setup`: what the caller left ``None`` is chosen from the data by
:func:`pixlearn.nets.autoconfig.auto_config`, what the caller gave is kept), normalise and split
train/validation, build the patch datasets, train (:func:`pixlearn.nets.training.train`) from
random weights or, fine-tuning, from a trained model's (``init``, :mod:`pixlearn.nets.finetune`),
tune the instance thresholds on the validation images, and build the :class:`NetworkModel`. The resolved
configuration is what the model stores (``NetworkModel.unet`` and ``.train_config``).

In a distributed run (``FitOptions(world=...)``) every process calls :func:`fit_network` with the
same data; the processes join one process group for the set-up and the training, use the main
process's resolved set-up, and only the main process tunes the thresholds (its model is the one
to save).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixlearn.data.labels import IGNORE, median_object_diameter
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.nets.autoconfig import auto_config, choose_batch_size
from pixlearn.nets.checkpoints import resumed_setup
from pixlearn.nets.distributed import World, joined, process_device
from pixlearn.nets.finetune import as_model_channels, fine_tune_schedule, model_outputs, start_from, threshold_grid
from pixlearn.nets.fit_inputs import check_inputs, planes_if_2d
from pixlearn.nets.history import History
from pixlearn.nets.model import NetworkModel
from pixlearn.nets.patches import NO_AUGMENT, PatchDataset, normalize_images
from pixlearn.nets.precision import resolve_device, resolve_precision
from pixlearn.nets.scaling import pad_pairs, pad_to_shape, scale_training_pairs
from pixlearn.nets.targets import task_targets
from pixlearn.nets.training import TrainConfig, train
from pixlearn.nets.unet import UNet, UNetConfig, size_divisor

logger = logging.getLogger(__name__)

TASK_LOSSES: dict[str, tuple[str, ...]] = {
    "semantic": ("ce_dice", "ce"),
    "instances": ("instance",),
    "restore": ("l1", "mse"),
}


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


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """How :func:`fit_network` runs, as opposed to what it learns (that is the configs).

    Parameters
    ----------
    checkpoint_dir : path-like, optional
        Checkpoints, logs and curves (see :func:`pixlearn.nets.training.train`).
    resume : bool
        Continue from the last checkpoint in `checkpoint_dir`, with the network it recorded and
        its patch shape and batch size where the call leaves them to be chosen (a given network
        other than the checkpoint's is refused; see :func:`pixlearn.nets.checkpoints.resumed_setup`).
    progress : bool
        Show a progress bar.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    callbacks : tuple of callable
        Passed to :func:`pixlearn.nets.training.train`: ``callback(epoch, record, net)`` after
        each epoch (progress in a GUI, say); returning ``True`` stops training, keeping the best
        weights.
    world : World, optional
        This process's place in a distributed run (:func:`pixlearn.nets.distributed.world_from_environment`
        under ``torchrun``, :func:`pixlearn.nets.spawn.spawn_local` for local processes); the
        process group is joined here. Default a single process.
    """

    checkpoint_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    progress: bool = False
    device: Any = None
    callbacks: tuple[Callable[[int, dict[str, float], Any], bool | None], ...] = ()
    world: World | None = None


@dataclasses.dataclass
class _Data:
    """Normalised training and validation images with their targets (one fit's working set)."""

    images: list[np.ndarray]
    targets: list[np.ndarray]
    masks: list[np.ndarray | None]
    val_images: list[np.ndarray]
    val_targets: list[np.ndarray]
    val_labels: list[np.ndarray]


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
    options: FitOptions | None = None,
    init: NetworkModel | None = None,
    spacing: Sequence[float] | None = None,
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
    unet : UNetConfig, optional
        Default chosen from the data (:func:`pixlearn.nets.autoconfig.auto_config`).
    train_config : TrainConfig, optional
        Its ``None`` fields (`patch_shape`, `batch_size`) are chosen from the data; given values
        are kept (see :func:`resolve_setup`). A loss that does not fit the task is replaced by
        the task's default. With a `target_diameter`, the pairs (validation pairs too) are first
        resized so that their objects reach it (:mod:`pixlearn.nets.scaling`), and the model
        records it as its ``object_diameter``.
    normalization : NormalizeConfig, optional
        Default percentile 1..99.8.
    validation : (images, labels), optional
        Validation pairs; default a ``train_config.val_fraction`` split of the training pairs.
    class_names : sequence of str, optional
    options : FitOptions, optional
        Checkpoint folder, resumption, progress bar, device.
    init : NetworkModel, optional
        Fine-tune: start from this trained network (a built-in model, say) instead of random
        weights. It keeps its architecture (a different `unet` is refused), task and classes,
        and its normalisation unless `normalization` is given; grey models take colour images as
        the mean of their colours; training runs at ``lr * train_config.init_lr_factor`` (the
        full rate by default) after a short warm-up (see :mod:`pixlearn.nets.finetune`). `init`
        itself is not changed.
    spacing : sequence of float, optional
        Voxel size ``(z, y, x)`` of 3D images, in any one unit (``pixlearn train --spacing`` or
        the files' metadata). Without a given `unet`, planes at least
        :data:`~pixlearn.nets.autoconfig.MAX_ANISOTROPY_3D` times farther apart than the pixels
        train a 2D network plane by plane (:func:`~pixlearn.nets.autoconfig.choose_layout`), and
        a 3D network pools the finer axes first. Default isotropic.

    Returns
    -------
    model : NetworkModel
        With the best validation weights and the resolved configuration; for ``instances``
        also post-processing thresholds tuned on the validation images (when fine-tuning, the
        initial model's are kept unless others score better; by the main process of a distributed
        run, the others return the model untuned).

    Raises
    ------
    PixlearnError
        Pairs of different shapes, no foreground in any label, images smaller than the network's
        minimum input, a network that does not match the data, or an `init` that does not fit
        the request.
    """
    options = FitOptions() if options is None else options
    world = World() if options.world is None else options.world
    images, labels, validation = check_inputs(images, labels, task, validation)
    if options.resume and options.checkpoint_dir is not None:  # go on with the network that was checkpointed
        unet, train_config = resumed_setup(Path(options.checkpoint_dir), unet,
                                           TrainConfig() if train_config is None else train_config)
    images, labels, validation = planes_if_2d(images, labels, validation, unet if init is None else init.unet,
                                              spacing)
    if init is not None:
        start = start_from(init, task, unet=unet, normalization=normalization, class_names=class_names)
        unet, normalization, class_names = start.unet, start.normalization, start.class_names
        images = as_model_channels(init, images)
        validation = None if validation is None else (as_model_channels(init, validation[0]), validation[1])
    normalization = NormalizeConfig() if normalization is None else normalization
    images, labels, validation, train_config = scale_training_pairs(
        images, labels, validation, TrainConfig() if train_config is None else train_config, task)
    device = process_device(world, resolve_device(options.device))
    targets, masks, n_outputs = task_targets(labels, task)
    if init is not None:
        n_outputs = model_outputs(init, task, n_outputs)
    with joined(world, device):
        unet, cfg = _agreed(world, *resolve_setup(images, labels, task, out_channels=n_outputs, unet=unet,
                                                  train_config=train_config, device=device,
                                                  world_size=world.world_size, spacing=spacing))
        cfg = fine_tune_schedule(cfg) if init is not None else cfg.replace(warmup_steps=cfg.warmup_steps or 0)
        data = _split_data(images, labels, targets, masks, task, validation, normalization, cfg)
        patch, _ = _patch_and_batch(cfg)
        data = _padded(data, patch, task) if cfg.target_diameter is not None else data
        cfg = cfg.replace(patch_shape=_fit_patch(patch, data.images + data.val_images, size_divisor(unet)))
        train_set, val_set = _datasets(data, cfg, task)
        net, history = _train_network(unet, (train_set, val_set), cfg, options, device, world, init)
    diameter = median_object_diameter(labels) if task == "instances" else None
    diameter = diameter if cfg.target_diameter is None else float(cfg.target_diameter)
    model = NetworkModel(unet, task, net, normalization=normalization, class_names=class_names,
                         history=history.summary(), train_config=cfg, object_diameter=diameter, device=device)
    if task == "instances" and world.is_main:
        _tune_instance_thresholds(model, data, None if init is None else init.thresholds)
    return model


def _agreed(world: World, unet: UNetConfig, cfg: TrainConfig) -> tuple[UNetConfig, TrainConfig]:
    """The main process's set-up on every process (a choice from free memory may differ between them)."""
    if not world.is_distributed:
        return unet, cfg
    unet_dict, cfg_dict = world.broadcast_object((unet.to_dict(), cfg.to_dict()))
    return UNetConfig.from_dict(unet_dict), TrainConfig.from_dict(cfg_dict)


def resolve_setup(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    task: str,
    *,
    out_channels: int,
    unet: UNetConfig | None = None,
    train_config: TrainConfig | None = None,
    device: Any = None,
    world_size: int = 1,
    spacing: Sequence[float] | None = None,
) -> tuple[UNetConfig, TrainConfig]:
    """The network and a complete training set-up: given values kept, ``None`` ones chosen.

    A ``None`` `unet` and the ``None`` fields of `train_config` (`patch_shape`, `batch_size`)
    come from :func:`pixlearn.nets.autoconfig.auto_config`; the batch size is chosen for the
    resolved network and patch shape (:func:`pixlearn.nets.autoconfig.choose_batch_size`), per
    process: the total batch of `world_size` processes is `world_size` times that. A value
    the caller gave is never replaced, even one equal to a default. Two corrections follow the
    task: a loss that does not fit it becomes the task's default, and restoration trains
    without intensity augmentation (the target's intensities must follow the input's).

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
        Canonical training images.
    labels : sequence of ndarray
        Their annotations (ignored for ``restore``).
    task : {"semantic", "instances", "restore"}
    out_channels : int
        Raw network outputs the task needs.
    unet : UNetConfig, optional
    train_config : TrainConfig, optional
    device : str or torch.device, optional
    world_size : int
        Processes of a distributed run (an explicit batch size must be a multiple of it).
    spacing : sequence of float, optional
        Voxel size ``(z, y, x)`` of 3D images: the anisotropy of a chosen 3D network's pooling.

    Returns
    -------
    unet : UNetConfig
    train_config : TrainConfig
        With `patch_shape` and `batch_size` set (:attr:`TrainConfig.is_resolved`).

    Raises
    ------
    PixlearnError
        A network or patch shape that does not match the data, or a batch size that
        `world_size` processes cannot share.
    """
    device = resolve_device(device)
    cfg = TrainConfig() if train_config is None else train_config
    ndim = images[0].ndim - 1
    if unet is None or cfg.patch_shape is None:
        axes = "ZYXC" if ndim == 3 else "YXC"
        auto_unet, auto_train = auto_config(images, None if task == "restore" else labels, task, axes,
                                            out_channels=out_channels, device=device,
                                            spacing=spacing if ndim == 3 else None,
                                            bf16=unet is None and _trains_in_bf16(cfg, task, ndim, device),
                                            time_limit_s=cfg.time_limit_s)
        unet = auto_unet if unet is None else unet
        if cfg.patch_shape is None:
            cfg = cfg.replace(patch_shape=auto_train.patch_shape)
    if unet.in_channels != images[0].shape[-1] or unet.out_channels != out_channels or unet.ndim != ndim:
        raise PixlearnError(
            f"network takes {unet.ndim}D images with {unet.in_channels} channel(s) and gives {unet.out_channels} "
            f"output(s), but the data is {ndim}D with {images[0].shape[-1]} channel(s) and needs {out_channels}"
        )
    patch = cfg.patch_shape
    if patch is None or len(patch) != unet.ndim:
        raise PixlearnError(f"patch shape {patch} does not match the {unet.ndim}D network")
    if cfg.batch_size is None:
        cfg = cfg.replace(batch_size=choose_batch_size(unet, patch, device=device) * world_size)
    World(world_size=world_size).local_batch_size(int(cfg.batch_size or 0))  # refuses an uneven split
    if cfg.loss not in TASK_LOSSES[task]:
        logger.info("loss %r does not fit the %s task: using %r", cfg.loss, task, TASK_LOSSES[task][0])
        cfg = cfg.replace(loss=TASK_LOSSES[task][0])
    if task == "restore" and cfg.augmentation.intensity:
        cfg = cfg.replace(augmentation=cfg.augmentation.replace(intensity=False))
    return unet, cfg


def _trains_in_bf16(cfg: TrainConfig, task: str, ndim: int, device: torch.device) -> bool:
    """Whether a 2D instance network will train in bf16 on this CPU (the only case where
    :func:`auto_config` asks; measured once per machine and cached)."""
    if device.type != "cpu" or ndim != 2 or task != "instances":
        return False
    return resolve_precision(cfg.precision, device, mode="train", ndim=ndim,
                             channels_last=cfg.channels_last).dtype == "bf16"


def _split_data(
    images: list[np.ndarray],
    labels: list[np.ndarray],
    targets: list[np.ndarray],
    masks: list[np.ndarray | None],
    task: str,
    validation: tuple[list[np.ndarray], list[np.ndarray]] | None,
    normalization: NormalizeConfig,
    cfg: TrainConfig,
) -> _Data:
    """Normalise, then hold out validation pairs (a seeded split unless `validation` is given)."""
    normalised = normalize_images(images, normalization)
    if task == "restore":
        targets = normalize_images(targets, normalization)
    if validation is None:
        train_idx, val_idx = _split(len(images), cfg.val_fraction, cfg.seed)
        return _Data(
            images=[normalised[i] for i in train_idx], targets=[targets[i] for i in train_idx],
            masks=[masks[i] for i in train_idx], val_images=[normalised[i] for i in val_idx],
            val_targets=[targets[i] for i in val_idx], val_labels=[labels[i] for i in val_idx],
        )
    val_images = normalize_images(validation[0], normalization)
    val_targets, _, _ = task_targets(validation[1], task)
    if task == "restore":
        val_targets = normalize_images(val_targets, normalization)
    return _Data(images=normalised, targets=targets, masks=masks, val_images=val_images,
                 val_targets=val_targets, val_labels=validation[1])


def _padded(data: _Data, patch: tuple[int, ...], task: str) -> _Data:
    """`data` with the images that scale normalisation made smaller than the patch padded to it."""
    images, targets = pad_pairs(data.images, data.targets, patch, task)
    val_images, val_targets = pad_pairs(data.val_images, data.val_targets, patch, task)
    fill = IGNORE if task == "semantic" else 0
    return _Data(images, targets, [None if m is None else pad_to_shape(m, patch, False) for m in data.masks],
                 val_images, val_targets, [pad_to_shape(lab, patch, fill) for lab in data.val_labels])


def _patch_and_batch(cfg: TrainConfig) -> tuple[tuple[int, ...], int]:
    """The patch shape and batch size of a resolved set-up (:func:`resolve_setup` fills both)."""
    if cfg.patch_shape is None or cfg.batch_size is None:
        raise ValueError("the training set-up is not resolved: patch_shape and batch_size are needed")
    return cfg.patch_shape, cfg.batch_size


def _datasets(data: _Data, cfg: TrainConfig, task: str) -> tuple[PatchDataset, PatchDataset]:
    """Augmented training patches (``steps_per_epoch * batch_size`` per epoch) and fixed validation ones."""
    patch, batch = _patch_and_batch(cfg)
    fraction = cfg.foreground_fraction
    if task == "semantic":
        annotated = sum(int(np.count_nonzero(t != IGNORE)) for t in data.targets) / sum(t.size for t in data.targets)
        if annotated < 0.5:  # sparse scribbles: centre most patches on annotated pixels
            fraction = max(fraction, 0.9)
    train_set = PatchDataset(data.images, data.targets, patch, cfg.steps_per_epoch * batch,
                             seed=cfg.seed, augmentation=cfg.augmentation, foreground=data.masks,
                             foreground_fraction=fraction,
                             scale_jitter=cfg.scale_jitter if cfg.target_diameter is not None else 1.0)
    val_set = PatchDataset(data.val_images, data.val_targets, patch, cfg.val_patches, seed=cfg.seed + 1,
                           augmentation=NO_AUGMENT, foreground_fraction=0.0)
    return train_set, val_set


def _train_network(
    unet: UNetConfig, datasets: tuple[PatchDataset, PatchDataset], cfg: TrainConfig, options: FitOptions,
    device: torch.device, world: World, init: NetworkModel | None = None,
) -> tuple[UNet, History]:
    """A seeded fresh network, or a copy of `init`'s, trained (it holds its best validation weights afterwards)."""
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching global state
        torch.manual_seed(cfg.seed)
        net = UNet(unet)
    if init is not None:
        net.load_state_dict(init.state_dict())
    history = train(net, *datasets, cfg, checkpoint_dir=options.checkpoint_dir, resume=options.resume,
                    progress=options.progress, device=device, callbacks=options.callbacks, world=world)
    return net, history


def _tune_instance_thresholds(model: NetworkModel, data: _Data, initial: dict[str, Any] | None = None) -> None:
    """Set `model`'s instance post-processing thresholds to the best on the validation images
    (the `initial` ones, a fine-tuned model's, unless others score better)."""
    from pixlearn.postprocess.tuning import DEFAULT_TUNING_GRID, tune_instance_thresholds

    outputs = [model.predict_raw(im) for im in data.val_images]
    base, grid = threshold_grid(initial, DEFAULT_TUNING_GRID)
    best, score = tune_instance_thresholds(outputs, data.val_labels, grid, base=base)
    model.thresholds = best.to_dict()
    model.history["val_instance_score"] = float(score)
    logger.info("instance thresholds %s (validation accuracy at IoU 0.5: %.3f)", model.thresholds, score)


__all__ = ["TASK_LOSSES", "FitOptions", "fit_network", "resolve_setup"]
