"""The post-processing room: from model outputs to class maps and object labels.

Thresholds and connected components (:mod:`~.labels`), the seeded watershed of instance
outputs and its stored thresholds (:mod:`~.instances`), merging labels across tile borders
(:mod:`~.stitching`), and tuning the instance thresholds on validation images
(:mod:`~.tuning`). Pure NumPy/SciPy/scikit-image functions on arrays; the room imports only
:mod:`pixlearn.metrics` (to score thresholds), :mod:`pixlearn.data` and :mod:`pixlearn.config`,
never torch or scikit-learn.
"""

from __future__ import annotations

from pixlearn.postprocess.instances import (
    N_OUTPUTS,
    InstanceThresholds,
    instances_from_outputs,
    stored_thresholds,
)
from pixlearn.postprocess.labels import (
    LABEL_DTYPE,
    compact_ids,
    fill_holes,
    label_components,
    label_foreground,
    relabel_sequential,
    remove_small_objects,
    threshold_probabilities,
)
from pixlearn.postprocess.objects import geojson_collection, object_measurements, object_polygons
from pixlearn.postprocess.stitching import (
    TileMerge,
    apply_label_mapping,
    merge_tile_labels,
    resolve_equivalences,
)
from pixlearn.postprocess.tuning import tune_instance_thresholds

__all__ = [
    "LABEL_DTYPE",
    "N_OUTPUTS",
    "InstanceThresholds",
    "TileMerge",
    "apply_label_mapping",
    "compact_ids",
    "fill_holes",
    "instances_from_outputs",
    "label_components",
    "label_foreground",
    "merge_tile_labels",
    "geojson_collection",
    "object_measurements",
    "object_polygons",
    "relabel_sequential",
    "remove_small_objects",
    "resolve_equivalences",
    "stored_thresholds",
    "threshold_probabilities",
    "tune_instance_thresholds",
]
