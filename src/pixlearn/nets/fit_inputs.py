"""The inputs of :func:`pixlearn.nets.fit.fit_network`: pairs checked for the task, and stacks as
their planes when a 2D network trains on them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import TASKS
from pixlearn.nets.autoconfig import choose_layout
from pixlearn.nets.config import UNetConfig

logger = logging.getLogger(__name__)


def check_pairs(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], task: str) -> None:
    """Raise :class:`~pixlearn.errors.PixlearnError` unless the pairs are canonical images of one
    channel count and dimensionality with annotations of their spatial shape (restoration: targets
    of the same spatial shape)."""
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


Pairs = tuple[list[np.ndarray], list[np.ndarray]]


def planes_if_2d(
    images: list[np.ndarray], labels: list[np.ndarray], validation: Pairs | None, unet: UNetConfig | None,
    spacing: Sequence[float] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], Pairs | None]:
    """Stacks as their planes when a 2D network trains on them: one given (`unet`), or the rule of
    :func:`pixlearn.nets.autoconfig.choose_layout` (thin stacks, or planes far apart by `spacing`)."""
    layout = unet.ndim if unet is not None else choose_layout([im.shape for im in images], spacing)
    if images[0].ndim != 4 or layout != 2:
        return images, labels, validation
    logger.info("training a 2D network on the planes of %d stack(s)", len(images))

    def planes(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [plane for array in arrays for plane in array]

    if validation is not None:
        validation = (planes(validation[0]), planes(validation[1]))
    return planes(images), planes(labels), validation


def check_inputs(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    task: str,
    validation: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None,
) -> tuple[list[np.ndarray], list[np.ndarray], tuple[list[np.ndarray], list[np.ndarray]] | None]:
    """The pairs (and validation pairs) as arrays, checked for the task.

    Raises
    ------
    PixlearnError
        An unknown task, or pairs that do not fit it (see :func:`check_pairs`).
    """
    if task not in TASKS:
        raise PixlearnError(f"task {task!r} is not one of {TASKS}")
    images = [np.asarray(im) for im in images]
    labels = [np.asarray(lab) for lab in labels]
    check_pairs(images, labels, task)
    if validation is not None:
        validation = ([np.asarray(v) for v in validation[0]], [np.asarray(v) for v in validation[1]])
        check_pairs(validation[0], validation[1], task)
    return images, labels, validation


__all__ = ["Pairs", "check_inputs", "check_pairs", "planes_if_2d"]
