"""Training targets of each network task, computed from annotations (NumPy only)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pixlearn.data.labels import IGNORE
from pixlearn.errors import PixlearnError
from pixlearn.postprocess.instances import N_OUTPUTS
from pixlearn.postprocess.labels import (
    relabel_sequential,
)

logger = logging.getLogger(__name__)


def _check_label_image(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must have shape (M, N) or (P, M, N), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"instance labels must be integers, got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"instance labels hold negative value {int(labels.min())}")
    return labels


def _check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or min(spacing) <= 0:
        raise ValueError(f"spacing must be {ndim} positive numbers, got {spacing}")
    return spacing


def instance_targets(
    labels: np.ndarray, *, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """Training targets (foreground, normalised boundary distance) from instance labels.

    The distance of an object pixel is its Euclidean distance to the nearest pixel that is not
    in the same object (background, another object, or outside the image), divided by the
    largest such distance in that object. It is computed per object on its bounding box
    (:func:`scipy.ndimage.find_objects`), so the cost grows with the objects' total area, and
    thousands of objects take well under a second.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels: 0 background, one positive id per object (not necessarily sequential).
    spacing : sequence of float, optional
        Pixel size along each axis, e.g. ``(2.0, 0.5, 0.5)`` for planes four times farther
        apart than pixels within a plane. Default isotropic.

    Returns
    -------
    targets : ndarray of shape (M, N, 2) or (P, M, N, 2), float32
        Channel 0: foreground 0/1. Channel 1: distance in (0, 1] inside objects, 0 outside.

    Raises
    ------
    ValueError
        Wrong dimensionality, non-integer or negative labels, or bad spacing.

    Examples
    --------
    >>> y = np.zeros((5, 7), int); y[:, :3] = 1; y[:, 3:6] = 2      # two touching objects
    >>> t = instance_targets(y)
    >>> t.shape, t.dtype
    ((5, 7, 2), dtype('float32'))
    >>> t[2, :, 1].round(2).tolist()
    [0.5, 1.0, 0.5, 0.5, 1.0, 0.5, 0.0]
    """
    labels = _check_label_image(labels)
    spacing = _check_spacing(spacing, labels.ndim)
    targets = np.zeros(labels.shape + (N_OUTPUTS,), np.float32)
    targets[..., 0] = labels > 0
    if not targets[..., 0].any():
        return targets
    compact = relabel_sequential(labels)
    distance = targets[..., 1]
    for idx, box in enumerate(ndimage.find_objects(compact), start=1):
        if box is None:
            continue
        obj = compact[box] == idx
        # the bounding box plus a 1-pixel frame of "not this object" holds the nearest outside
        # pixel of every object pixel; the frame also makes the image border a boundary
        dist = ndimage.distance_transform_edt(np.pad(obj, 1), sampling=spacing)
        dist = dist[(slice(1, -1),) * labels.ndim][obj]
        distance[box][obj] = dist / dist.max()
    return targets


def task_targets(labels: Sequence[np.ndarray], task: str) -> tuple[list[np.ndarray], list[np.ndarray | None], int]:
    """Training targets of `task`, foreground masks for oversampling, and the number of network outputs.

    Parameters
    ----------
    labels : sequence of ndarray
        ``semantic``: class indices with :data:`~pixlearn.data.labels.IGNORE` for unannotated
        pixels; ``instances``: instance label images; ``restore``: canonical target images.
    task : {"semantic", "instances", "restore"}

    Returns
    -------
    targets : list of ndarray
        Class indices (int64), :func:`instance_targets`, or float32 images.
    masks : list of bool ndarray or None
        Where patches are centred preferentially (annotated pixels of sparse annotations, else
        the foreground); ``None`` for restoration.
    n_outputs : int
        Raw outputs the network needs.

    Raises
    ------
    PixlearnError
        No object or no foreground class in any label image, or class indices below ``IGNORE``.
    """
    if task == "instances":
        if not any(np.any(np.asarray(lab) > 0) for lab in labels):
            raise PixlearnError("no label image has any object (all are 0): nothing to learn")
        return [instance_targets(np.asarray(lab)) for lab in labels], [np.asarray(lab) > 0 for lab in labels], N_OUTPUTS
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
