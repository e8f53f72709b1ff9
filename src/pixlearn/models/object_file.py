"""Object classifiers (kind ``"object-classifier"``) in model files: loaded with every field checked.

An object classifier is saved like a classical pixel model (:mod:`pixlearn.models.model_file`):
``model.json`` holds its settings (object measurements, classifier, class and measurement names)
and the description of its estimator, ``classifier.safetensors`` the estimator as plain arrays
(:mod:`pixlearn.classical.estimator_arrays`; never pickle). A model file is untrusted input:
before anything is built, the metadata's types and sizes are checked, the measurement settings
against :data:`OBJECT_FEATURE_LIMITS`, the measurement names against those the settings give,
and the rebuilt estimator as for pixel models (:func:`pixlearn.models.validate.validate_estimator`).
Every problem raises :class:`~pixlearn.errors.ModelFileError` naming the file. No torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pixlearn.errors import ModelFileError
from pixlearn.models.validate import validate_classical_meta, validate_estimator

__all__ = ["OBJECT_FEATURE_LIMITS", "load_object_classifier", "validate_object_meta"]

#: Upper bounds of the measurement settings of a file (what measuring one object may cost).
OBJECT_FEATURE_LIMITS: dict[str, int] = {
    "ring_px": 256,
    "n_percentiles": 32,
    "glcm_levels": 256,
    "n_glcm_distances": 16,
    "glcm_distance_px": 256,
    "lbp_points": 64,
}


def _fail(message: str, path: str | os.PathLike[str] | None) -> ModelFileError:
    return ModelFileError(message, path)


def _feature_config(meta: Mapping[str, Any], path: str | os.PathLike[str] | None) -> Any:
    """The :class:`~pixlearn.classical.objects.ObjectFeatureConfig` of `meta`, bounded."""
    from pixlearn.classical.objects import ObjectFeatureConfig

    if not isinstance(meta.get("object_features"), dict):
        raise _fail("model.json: an object classifier needs its object_features settings", path)
    try:
        cfg = ObjectFeatureConfig.from_dict(meta["object_features"])
    except (TypeError, ValueError) as exc:
        raise _fail(f"model object_features: {exc}", path) from None
    sizes = {"ring_px": cfg.ring_px, "n_percentiles": len(cfg.percentiles), "glcm_levels": cfg.glcm_levels,
             "n_glcm_distances": len(cfg.glcm_distances_px), "glcm_distance_px": max(cfg.glcm_distances_px),
             "lbp_points": cfg.lbp_points}
    for name, value in sizes.items():
        if value > OBJECT_FEATURE_LIMITS[name]:
            raise _fail(f"model object_features {name} = {value} exceeds the limit {OBJECT_FEATURE_LIMITS[name]}", path)
    return cfg


def validate_object_meta(meta: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Check an object classifier's metadata before its estimator is read.

    Raises
    ------
    ModelFileError
        Another kind, dimensions, channels or classes out of range, class names that are not
        distinct strings, measurement settings past :data:`OBJECT_FEATURE_LIMITS` or of the wrong
        type, classifier settings that do not validate, or measurement names other than those
        the settings give.
    """
    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.objects import object_feature_names

    if meta.get("kind") != "object-classifier":
        raise _fail(f"model.json: the model describes a {meta.get('kind')!r}, not an object classifier", path)
    validate_classical_meta(meta, path)
    names = meta["class_names"]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise _fail("model class_names must be distinct, non-empty strings", path)
    cfg = _feature_config(meta, path)
    if not isinstance(meta.get("classifier"), dict):
        raise _fail("model.json: an object classifier needs its classifier settings", path)
    try:
        ClassifierConfig.from_dict(meta["classifier"])
    except (TypeError, ValueError) as exc:
        raise _fail(f"model classifier: {exc}", path) from None
    expected = object_feature_names(meta["ndim"], meta["n_channels"], cfg)
    if meta.get("feature_names") != expected:
        raise _fail(f"model feature_names must be the {len(expected)} measurements its object_features "
                    "settings give", path)
    if meta.get("n_measurements", len(expected)) != len(expected):
        raise _fail(f"model n_measurements {meta.get('n_measurements')!r} is not {len(expected)}", path)


def load_object_classifier(header: Mapping[str, Any], meta: dict[str, Any], arrays: bytes | None,
                           path: str | os.PathLike[str]) -> Any:
    """An :class:`~pixlearn.classical.object_model.ObjectClassifier` from a checked model file.

    Parameters
    ----------
    header : mapping
        The parsed ``model.json`` (its ``"estimator"`` description is used).
    meta : dict
        Its ``"model"`` section.
    arrays : bytes or None
        The ``classifier.safetensors`` member.
    path : path-like
        Named in errors.

    Returns
    -------
    model : ObjectClassifier

    Raises
    ------
    ModelFileError
        No estimator, a corrupt one, or anything :func:`validate_object_meta` and
        :func:`~pixlearn.models.validate.validate_estimator` refuse.
    """
    from pixlearn.classical.estimator_arrays import load_estimator_bytes
    from pixlearn.classical.object_model import ObjectClassifier
    from pixlearn.errors import PixlearnError

    validate_object_meta(meta, path)
    if arrays is None or not isinstance(header.get("estimator"), dict):
        raise _fail("object classifier without classifier.safetensors and its estimator description", path)
    try:
        estimator = load_estimator_bytes(dict(header["estimator"]), arrays)
    except ValueError as exc:
        raise _fail(f"classifier.safetensors: {exc}", path) from None
    validate_estimator(estimator, n_outputs=len(meta["class_names"]), path=path)
    try:
        return ObjectClassifier.from_metadata(meta, estimator)
    except PixlearnError as exc:
        raise _fail(str(exc), path) from None
