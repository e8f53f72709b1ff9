"""Classical pixel classification: filter-bank features and scikit-learn classifiers, no torch.

The room owns the multi-scale filter bank (:mod:`~.features`; its per-scale filters in
:mod:`~.filters`, smoothing and eigenvalues on shared threads in :mod:`~.fast_filters` with the
numba kernels of :mod:`~.filter_kernels`, closed-form eigenvalues in :mod:`~.eigen`, scales too
large for an image in :mod:`~.scales`), what a memory budget allows in training
(:mod:`~.budget`), the nested classifier settings
(:mod:`~.config`: ``ClassifierConfig`` with ``rf``/``svm``/``hgb`` sections) and the estimators
they describe (:mod:`~.estimators`), fitting from labelled pixels (:mod:`~.fit`), prediction
from feature stacks (:mod:`~.predict`) with the compiled random forest (:mod:`~.forest`, numba
kernels in :mod:`~.forest_kernels`), :class:`PixelClassifier`, the model that holds them
(:mod:`~.model`), and the live preview while painting: the session (:mod:`~.interactive`), its
forest settings (:mod:`~.preview`), the feature cache (:mod:`~.feature_cache`) and the pure
uncertainty and suggestion functions (:mod:`~.annotation`). Objects: per-object measurements
of an instance label image (:mod:`~.objects`; bounding boxes found tile by tile in :mod:`~.object_boxes`) and the :class:`ObjectClassifier` fitted on them
(:mod:`~.object_model`).

Imports: :mod:`pixlearn.data`, :mod:`pixlearn.config`, :mod:`pixlearn.errors`, NumPy, SciPy,
scikit-learn (inside the calls that need it), threadpoolctl and, optionally, numba. Never torch,
:mod:`pixlearn.predict` or :mod:`pixlearn.nets`. The names below are imported on first use, so
``import pixlearn.classical`` is cheap.
"""

from __future__ import annotations

from pixlearn.lazy import lazy_exports

_HOMES = {
    "METHODS": "config",
    "LEGACY_KEYS": "config",
    "BoostingConfig": "config",
    "ClassifierConfig": "config",
    "ForestConfig": "config",
    "SVMConfig": "config",
    "make_estimator": "estimators",
    "n_threads": "estimators",
    "FEATURES": "features",
    "ILASTIK_SIGMAS": "features",
    "FeatureConfig": "features",
    "compute_features": "features",
    "compute_features_block": "features",
    "compute_features_at": "features",
    "sigma_warnings": "scales",
    "TrainingPlan": "budget",
    "training_plan": "budget",
    "default_block_shape": "features",
    "feature_halo": "features",
    "feature_names": "features",
    "features_last": "features",
    "n_features": "features",
    "fit_pixel_classifier": "fit",
    "CompiledForest": "forest",
    "compile_forest": "forest",
    "predict_forest": "forest",
    "predict_forest_labels": "forest",
    "PixelClassifier": "model",
    "ObjectClassifier": "object_model",
    "ObjectPredictions": "object_model",
    "class_label_image": "object_model",
    "fit_object_classifier": "object_model",
    "objects_at_points": "object_model",
    "ObjectBoxes": "object_boxes",
    "find_object_boxes": "object_boxes",
    "ObjectFeatureConfig": "objects",
    "object_feature_names": "objects",
    "object_features": "objects",
    "object_ids": "objects",
    "compile_forest_or_none": "predict",
    "predict_stack": "predict",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
