"""Instance segmentation: training targets, post-processing to labels, and stitching tiles.

The representation a network learns for the *instances* task has two channels, channel last:

0. foreground: 1 inside objects, 0 on background (trained as a probability);
1. distance: Euclidean distance from each object pixel to the nearest pixel outside that
   object, divided by the object's largest distance (so every object peaks at 1 whatever its
   size; touching objects dip to the 1-pixel level at their shared border).

:func:`instances_from_outputs` turns such outputs back into labels with a seeded watershed,
which separates touching objects; :func:`tune_instance_thresholds` picks its thresholds on
validation images; :func:`stored_thresholds` reads them back from a model file. For images
processed tile by tile, :func:`pixlearn.postprocess.stitching.merge_tile_labels` gives each
tile's objects their global ids so that objects crossing tile borders come out as one label;
:func:`pixlearn.predict.label_tiled` is the whole loop, in memory or into a Zarr array.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.config import Config
from pixlearn.postprocess.labels import (
    LABEL_DTYPE,
    relabel_sequential,
    remove_small_objects,
)

logger = logging.getLogger(__name__)


N_OUTPUTS = 2


SEED_METHODS: tuple[str, ...] = ("threshold", "h_maxima")


@dataclasses.dataclass(frozen=True)
class InstanceThresholds(Config):
    """Post-processing parameters of :func:`instances_from_outputs`, stored with the model.

    Parameters
    ----------
    prob_thresh : float
        Foreground is ``outputs[..., 0] > prob_thresh``.
    seed_thresh : float
        With ``seed_method="threshold"``: seeds are the connected regions of
        ``outputs[..., 1] > seed_thresh`` inside the foreground.
    min_size : int
        Objects with fewer pixels are removed.
    seed_method : {"threshold", "h_maxima"}
        ``"h_maxima"``: seeds are the regional maxima of the distance that rise at least `h`
        above their surroundings (:func:`skimage.morphology.h_maxima`); good for objects whose
        predicted distance peaks at different heights.
    h : float
        Height of the maxima for ``"h_maxima"``.
    min_peak : float
        Objects whose predicted distance never exceeds this are removed. A real object's
        normalised distance rises to about 1 at its centre; the slivers a watershed leaves at
        object borders and specks of noisy foreground peak low. A property of each object alone,
        so tiled prediction keeps or drops an object as whole-image prediction does.
    """

    prob_thresh: float = 0.5
    seed_thresh: float = 0.5
    min_size: int = 0
    seed_method: str = "threshold"
    h: float = 0.1
    min_peak: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prob_thresh", "seed_thresh", "min_peak"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if int(self.min_size) != self.min_size or self.min_size < 0:
            raise ValueError(f"min_size must be a non-negative integer, got {self.min_size}")
        if self.seed_method not in SEED_METHODS:
            raise ValueError(f"seed_method {self.seed_method!r} is not one of {SEED_METHODS}")
        if not self.h > 0:
            raise ValueError(f"h must be positive, got {self.h}")


def stored_thresholds(stored: Any) -> InstanceThresholds | None:
    """The thresholds stored with a model, or ``None`` (the defaults) when absent or unusable.

    Parameters
    ----------
    stored : dict or None
        :meth:`InstanceThresholds.to_dict` output, as read from ``thresholds.json``.

    Returns
    -------
    thresholds : InstanceThresholds or None
        ``None`` for anything but a valid dict; an invalid one is logged as a warning.

    Examples
    --------
    >>> stored_thresholds({"prob_thresh": 0.4}).prob_thresh
    0.4
    >>> stored_thresholds(None) is None
    True
    """
    if not isinstance(stored, dict):
        return None
    try:
        return InstanceThresholds.from_dict(stored)
    except ValueError:
        logger.warning("ignoring unusable instance thresholds %s", stored)
        return None


def check_outputs(outputs: np.ndarray) -> np.ndarray:
    """`outputs` as an array of shape (M, N, 2) or (P, M, N, 2) of floats.

    Raises
    ------
    ValueError
        Another shape, or not floats.
    """
    outputs = np.asarray(outputs)
    if outputs.ndim not in (3, 4) or outputs.shape[-1] != N_OUTPUTS:
        raise ValueError(
            f"instance outputs must have shape (M, N, 2) or (P, M, N, 2), got {outputs.shape}"
        )
    if not np.issubdtype(outputs.dtype, np.floating):
        raise ValueError(f"instance outputs must be floats, got dtype {outputs.dtype}")
    return outputs


def instances_from_outputs(
    outputs: np.ndarray, thresholds: InstanceThresholds | None = None
) -> np.ndarray:
    """Instance labels from (foreground probability, distance) outputs by seeded watershed.

    Steps: foreground mask ``prob > prob_thresh``; seeds from the distance (see
    :class:`InstanceThresholds`), and each foreground region without a seed becomes a seed
    itself (so no object is lost); watershed on ``-distance`` from the seeds, restricted to
    the mask, which splits touching objects along the distance valleys between them; objects
    below ``min_size`` or whose distance peaks below ``min_peak`` removed; ids made
    sequential. Seeds are connected through corners (full connectivity), foreground regions
    and the watershed through faces only.

    Parameters
    ----------
    outputs : ndarray of shape (M, N, 2) or (P, M, N, 2), float
        As :func:`instance_targets` makes them (or a network predicts them).
    thresholds : InstanceThresholds, optional
        Default ``InstanceThresholds()``.

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), uint32
        0 background, objects ``1..n``.

    Raises
    ------
    ValueError
        Wrong shape or dtype.

    Examples
    --------
    >>> from pixlearn.nets.targets import instance_targets
    >>> y = np.zeros((5, 7), int); y[:, :3] = 1; y[:, 3:6] = 2
    >>> instances_from_outputs(instance_targets(y))[2].tolist()
    [1, 1, 1, 2, 2, 2, 0]
    """
    outputs = check_outputs(outputs)
    thresholds = InstanceThresholds() if thresholds is None else thresholds
    labels = seeded_watershed(outputs, thresholds)
    return filter_objects(labels, outputs[..., 1], thresholds)


def seeded_watershed(outputs: np.ndarray, thresholds: InstanceThresholds) -> np.ndarray:
    """The seeded watershed of :func:`instances_from_outputs`, before any object is removed.

    Tuning (:mod:`pixlearn.postprocess.tuning`) runs it once per seed setting and then tries
    every object filter on its result with :func:`filter_objects`.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    probability, distance = outputs[..., 0], outputs[..., 1]
    mask = probability > thresholds.prob_thresh
    if not mask.any():
        return np.zeros(mask.shape, LABEL_DTYPE)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    # seeds connect through corners too: a convex object's discrete distance plateau can
    # touch only diagonally, and seeds of two objects are always apart by their low borders
    full = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    inside = np.where(mask, distance, 0).astype(np.float64)
    if thresholds.seed_method == "threshold":
        seed_mask = mask & (distance > thresholds.seed_thresh)
    else:
        seed_mask = mask & (h_maxima(inside, thresholds.h, footprint=structure) > 0)
    seeds, n_seeds = ndimage.label(seed_mask, structure=full)
    regions, n_regions = ndimage.label(mask, structure=structure)
    seeded = np.zeros(n_regions + 1, bool)
    seeded[regions[seeds > 0]] = True
    seeded[0] = True
    unseeded = ~seeded[regions]
    if unseeded.any():
        # a region without a seed is one object: give it ids after the seeds'
        seeds = np.where(unseeded, regions + n_seeds, seeds)
    return watershed(-inside, markers=seeds, mask=mask, connectivity=1)


def filter_objects(labels: np.ndarray, distance: np.ndarray, thresholds: InstanceThresholds) -> np.ndarray:
    """Remove the objects below ``min_size`` or ``min_peak``; sequential uint32 ids."""
    if thresholds.min_size > 1:
        labels = remove_small_objects(labels, thresholds.min_size)
    if thresholds.min_peak > 0 and labels.any():
        high = np.zeros(int(labels.max()) + 1, bool)
        high[labels[distance >= thresholds.min_peak]] = True
        labels = np.where(high[labels], labels, 0)
    return relabel_sequential(labels)



