"""Training-time scale normalisation: objects brought to one diameter, with jitter per patch.

With ``TrainConfig.target_diameter`` set, :func:`scale_training_pairs` resizes each training (and
validation) image so that the median equivalent diameter of its objects
(:func:`pixlearn.data.labels.object_diameters`) becomes the target: the image linearly (without
anti-aliasing, as :class:`pixlearn.predict.rescale.ScaledModel` resizes at prediction, so that
training and prediction see the same resampling), its labels by nearest neighbour (instance ids
and class indices stay integers; objects too small to hit a sample point vanish). Images without
objects keep their scale. The model then records the target as its ``object_diameter``, which
``pixlearn predict --diameter N|auto`` reads to bring other images to it.

An image made smaller than the patch is padded (:func:`pad_to_shape`) with its channel medians
and background labels. Each training patch is then cut at a random zoom
(``TrainConfig.scale_jitter``, :func:`draw_zoom`): a region of ``patch / zoom`` pixels resized to
the patch (:func:`resize_patch`), so that the network also sees objects somewhat off the target.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from pixlearn.data.labels import IGNORE, median_object_diameter
from pixlearn.errors import PixlearnError
from pixlearn.nets.config import TrainConfig

logger = logging.getLogger(__name__)

#: Factors are clipped to this range (as :data:`pixlearn.predict.rescale.SCALE_LIMITS` at prediction).
SCALE_LIMITS = (0.25, 4.0)

Pairs = tuple[list[np.ndarray], list[np.ndarray]]


def object_labels(labels: np.ndarray, task: str) -> np.ndarray:
    """The objects of an annotation: instance labels as they are, else the connected components
    of the foreground classes (index > 0) of class targets."""
    labels = np.asarray(labels)
    return labels if task == "instances" else ndimage.label(labels > 0)[0]


def resolve_target_diameter(value: float | str | None, labels: Sequence[np.ndarray], task: str) -> float | None:
    """The target diameter of a run: `value` itself, or for ``"auto"`` the median equivalent
    diameter of all objects of the training `labels`; ``None`` when scale normalisation is off.

    Raises
    ------
    PixlearnError
        Scale normalisation asked for restoration, or ``"auto"`` with no objects.

    Examples
    --------
    >>> labels = np.zeros((8, 8), int); labels[:4, :4] = 1
    >>> round(resolve_target_diameter("auto", [labels], "instances"), 2)
    4.51
    """
    if value is None:
        return None
    if task == "restore":
        raise PixlearnError("target_diameter (--object-diameter) needs objects: instances or semantic tasks only")
    if value != "auto":
        return float(value)
    found = median_object_diameter([object_labels(lab, task) for lab in labels])
    if found is None:
        raise PixlearnError("--object-diameter auto: the training labels hold no objects")
    return found


def scale_factor(labels: np.ndarray, target: float, task: str) -> float:
    """Resize factor that brings the median object diameter of `labels` to `target` (1 without
    objects), clipped to :data:`SCALE_LIMITS`."""
    diameter = median_object_diameter([object_labels(labels, task)])
    if diameter is None:
        return 1.0
    return float(np.clip(target / diameter, *SCALE_LIMITS))


def _nearest(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of the leading ``len(shape)`` axes (sample points at pixel centres)."""
    index = [np.minimum(((np.arange(n) + 0.5) * (s / n)).astype(np.intp), s - 1) for n, s in zip(shape, array.shape)]
    return np.ascontiguousarray(array[np.ix_(*index)])


def _linear(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resize of a ``(..., C)`` image to the spatial `shape` (channels kept)."""
    return resize(image, tuple(shape) + image.shape[-1:], order=1, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype(np.float32, copy=False)


def rescale_pair(image: np.ndarray, labels: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image (linear) and its labels (nearest neighbour) by `factor` on every spatial axis.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
    labels : ndarray of shape (M, N) or (P, M, N), integer
    factor : float
        Larger than 1 enlarges.

    Returns
    -------
    image : ndarray, float32
        Spatial shape ``max(1, round(s * factor))`` per axis.
    labels : ndarray, dtype of the input

    Examples
    --------
    >>> image, labels = rescale_pair(np.zeros((4, 6, 1)), np.arange(24).reshape(4, 6), 0.5)
    >>> image.shape, labels.tolist()
    ((2, 3, 1), [[7, 9, 11], [19, 21, 23]])
    """
    image, labels = np.asarray(image), np.asarray(labels)
    if factor == 1.0:
        return image.astype(np.float32), labels.copy()
    shape = tuple(max(1, round(s * factor)) for s in labels.shape)
    return _linear(image, shape), _nearest(labels, shape)


def rescale_pairs(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], target: float, task: str) -> Pairs:
    """Each pair resized by :func:`scale_factor` so that its objects reach `target` px across."""
    factors = [scale_factor(lab, target, task) for lab in labels]
    pairs = [rescale_pair(im, lab, f) for im, lab, f in zip(images, labels, factors)]
    logger.info("scale normalisation to %.1f px: factors %.2f..%.2f (median %.2f) over %d images", target,
                min(factors), max(factors), float(np.median(factors)), len(factors))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def scale_training_pairs(
    images: list[np.ndarray], labels: list[np.ndarray], validation: Pairs | None, cfg: TrainConfig, task: str
) -> tuple[list[np.ndarray], list[np.ndarray], Pairs | None, TrainConfig]:
    """The training (and validation) pairs at the target scale, and `cfg` with the target resolved.

    Unchanged pairs and `cfg` when ``cfg.target_diameter`` is ``None``; ``"auto"`` becomes the
    median over the training labels (:func:`resolve_target_diameter`), so that the model's
    configuration holds the number.
    """
    target = resolve_target_diameter(cfg.target_diameter, labels, task)
    if target is None:
        return images, labels, validation, cfg
    images, labels = rescale_pairs(images, labels, target, task)
    if validation is not None:
        validation = rescale_pairs(validation[0], validation[1], target, task)
    return images, labels, validation, cfg.replace(target_diameter=target)


def pad_to_shape(array: np.ndarray, shape: Sequence[int], fill: float | np.ndarray) -> np.ndarray:
    """`array` centred in a block at least `shape` large along its leading axes, the rest `fill`.

    Parameters
    ----------
    array : ndarray of shape (M, N, ...) or (P, M, N, ...)
    shape : sequence of int
        Smallest size of each leading (spatial) axis.
    fill : float or ndarray
        Value of the new pixels (broadcast over the trailing axes: per-channel values work).

    Returns
    -------
    padded : ndarray, dtype of `array`
        `array` itself when it is large enough.

    Examples
    --------
    >>> pad_to_shape(np.ones((1, 2), int), (3, 2), 0).tolist()
    [[0, 0], [1, 1], [0, 0]]
    """
    spatial = array.shape[: len(shape)]
    if all(s >= p for s, p in zip(spatial, shape)):
        return array
    size = tuple(max(s, int(p)) for s, p in zip(spatial, shape))
    out = np.empty(size + array.shape[len(shape):], array.dtype)
    out[...] = fill
    out[tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(size, spatial))] = array
    return out


def pad_pairs(
    images: Sequence[np.ndarray], targets: Sequence[np.ndarray], shape: Sequence[int], task: str
) -> Pairs:
    """Pad normalised images (their channel medians) and their targets (background: 0, or
    :data:`~pixlearn.data.labels.IGNORE` for class indices) to at least `shape`."""
    fill = IGNORE if task == "semantic" else 0
    padded_images = [pad_to_shape(im, shape, np.median(im.reshape(-1, im.shape[-1]), axis=0)) for im in images]
    padded_targets = [pad_to_shape(t, shape, fill if np.issubdtype(t.dtype, np.integer) else 0) for t in targets]
    return padded_images, padded_targets


def draw_zoom(rng: np.random.Generator, jitter: float) -> float:
    """A zoom factor drawn log-uniformly in ``[1/jitter, jitter]`` (1 without drawing for ``jitter == 1``)."""
    if jitter <= 1.0:
        return 1.0
    return float(math.exp(rng.uniform(-math.log(jitter), math.log(jitter))))


def zoomed_region(patch_shape: Sequence[int], spatial: Sequence[int], zoom: float) -> tuple[int, ...]:
    """Spatial size of the region that, resized to `patch_shape`, shows it at `zoom` (> 1 enlarges);
    the zoom is raised where needed so that the region fits `spatial` on every axis (one factor for
    all axes: the aspect ratio is kept).

    Examples
    --------
    >>> zoomed_region((16, 16), (40, 20), 0.5)
    (20, 20)
    """
    zoom = max(zoom, max(p / s for p, s in zip(patch_shape, spatial)))
    return tuple(min(int(s), max(1, round(p / zoom))) for p, s in zip(patch_shape, spatial))


def resize_patch(image: np.ndarray, target: np.ndarray, patch_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """An image region (linear) and its target (nearest neighbour: class indices, binary
    foreground and normalised distances stay valid) resized to `patch_shape`."""
    shape = tuple(int(p) for p in patch_shape)
    if tuple(image.shape[:-1]) == shape:
        return image, target
    return _linear(np.asarray(image, np.float32), shape), _nearest(np.asarray(target), shape)


__all__ = [
    "SCALE_LIMITS",
    "draw_zoom",
    "object_labels",
    "pad_pairs",
    "pad_to_shape",
    "rescale_pair",
    "rescale_pairs",
    "resize_patch",
    "resolve_target_diameter",
    "scale_factor",
    "scale_training_pairs",
    "zoomed_region",
]
