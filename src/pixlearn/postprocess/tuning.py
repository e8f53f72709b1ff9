"""Tuning instance post-processing thresholds on validation images."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixlearn.metrics import average_precision, matching_dataset
from pixlearn.postprocess.instances import (
    InstanceThresholds,
    check_outputs,
    filter_objects,
    seeded_watershed,
)

logger = logging.getLogger(__name__)

DEFAULT_TUNING_GRID: tuple[dict[str, tuple[Any, ...]], ...] = (
    {"prob_thresh": (0.5, 0.6), "seed_method": ("threshold",), "seed_thresh": (0.5, 0.6, 0.7),
     "min_peak": (0.0, 0.3, 0.5, 0.6)},
    {"prob_thresh": (0.5, 0.6), "seed_method": ("h_maxima",), "h": (0.1, 0.15, 0.2),
     "min_peak": (0.0, 0.3, 0.5, 0.6)},
)


"""The settings :func:`tune_instance_thresholds` tries by default: both seed methods, each with
its own parameter, times the foreground and peak thresholds (48 settings, 12 watersheds)."""


_FILTER_FIELDS = ("min_size", "min_peak")


def tune_instance_thresholds(
    outputs_list: Sequence[np.ndarray],
    labels_list: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]] | None = None,
    *,
    base: InstanceThresholds | None = None,
    iou_thresholds: Sequence[float] = (0.5,),
) -> tuple[InstanceThresholds, float]:
    """Grid-search the post-processing thresholds that best segment validation images.

    The score of a setting is the matching accuracy ``tp/(tp+fp+fn)`` with counts summed over
    all images (:func:`pixlearn.metrics.matching_dataset`), averaged over `iou_thresholds`;
    by default that is the accuracy at IoU 0.5 alone (the DSB2018/StarDist "AP50"). Pass
    ``pixlearn.metrics.DEFAULT_IOU_THRESHOLDS`` to average over IoU 0.5..0.95 instead.

    Parameters
    ----------
    outputs_list : sequence of ndarray of shape (M, N, 2) or (P, M, N, 2), float
        Network outputs on the validation images.
    labels_list : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Their true instance labels.
    grid : mapping of str to sequence, or a sequence of such mappings, optional
        Values to try per field of :class:`InstanceThresholds`; every combination is tried
        (of each mapping in turn, for a sequence). Default :data:`DEFAULT_TUNING_GRID`. The
        watershed runs once per setting of the other fields; ``min_size`` and ``min_peak``
        only filter its objects.
    base : InstanceThresholds, optional
        Values of the fields not in `grid`. Default ``InstanceThresholds()``.
    iou_thresholds : sequence of float
        IoU thresholds the score averages over.

    Returns
    -------
    best : InstanceThresholds
        The first best setting in grid order.
    score : float
        Its score.

    Raises
    ------
    ValueError
        Empty or unequal lists, unknown fields in `grid`, or an empty grid axis.

    Examples
    --------
    >>> y = np.zeros((8, 12), int); y[2:6, 1:6] = 1; y[2:6, 6:11] = 2
    >>> best, score = tune_instance_thresholds([instance_targets(y)], [y],
    ...                                         {"seed_thresh": (0.2, 0.6)})
    >>> best.seed_thresh, score
    (0.6, 1.0)
    """
    if len(outputs_list) != len(labels_list):
        raise ValueError(f"{len(outputs_list)} outputs but {len(labels_list)} label images")
    if not outputs_list:
        raise ValueError("no validation images to tune on")
    grids = [dict(g) for g in (DEFAULT_TUNING_GRID if grid is None else [grid] if isinstance(grid, Mapping) else grid)]
    base = InstanceThresholds() if base is None else base
    known = {f.name for f in dataclasses.fields(InstanceThresholds)}
    unknown = sorted(set().union(*grids) - known)
    if unknown:
        raise ValueError(f"unknown threshold fields {unknown}; known: {sorted(known)}")
    if not grids or any(len(values) == 0 for g in grids for values in g.values()):
        raise ValueError("every grid field needs at least one value")
    outputs_list = [check_outputs(o) for o in outputs_list]
    best: tuple[float, InstanceThresholds] | None = None
    for g in grids:
        segment = [n for n in g if n not in _FILTER_FIELDS]
        filters = [n for n in g if n in _FILTER_FIELDS]
        for values in itertools.product(*(g[n] for n in segment)):
            setting = base.replace(**dict(zip(segment, values)))
            raw = [seeded_watershed(o, setting) for o in outputs_list]
            for filter_values in itertools.product(*(g[n] for n in filters)):
                candidate = setting.replace(**dict(zip(filters, filter_values)))
                predictions = [filter_objects(r, o[..., 1], candidate) for r, o in zip(raw, outputs_list)]
                score = average_precision(matching_dataset(labels_list, predictions, iou_thresholds))
                logger.debug("thresholds %s: score %.4f", candidate.to_dict(), score)
                if best is None or score > best[0]:
                    best = (score, candidate)
    assert best is not None  # the grid is never empty here
    return best[1], float(best[0])

