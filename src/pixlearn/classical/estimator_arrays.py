"""Fitted scikit-learn classifiers as a JSON description plus plain numeric arrays.

A classical model's estimator is stored as ``meta`` (JSON-safe: the estimator type from a fixed
list, the hyper-parameters, the classes, the number of features, the names and sizes of the
per-tree arrays) and a flat dict of numeric NumPy arrays (no object or structured dtypes) that
:func:`safetensors.numpy.save` writes. Loading runs no code from the file: every array's dtype
and shape and every index in it (child nodes, features, support-vector counts) is checked
before any scikit-learn object is built, because scikit-learn's compiled tree and SVM code reads
those arrays without bounds checks. Any problem raises ``ValueError`` naming the array.

Supported types (:data:`ESTIMATOR_TYPES`): ``RandomForestClassifier``,
``ExtraTreesClassifier``, ``HistGradientBoostingClassifier`` (numeric features only) and the
SVM pipeline ``Pipeline([StandardScaler, CalibratedClassifierCV(SVC or LinearSVC,
method="sigmoid", ensemble=False)])``: what :func:`pixlearn.classical.config` builds. Classes
must be integers. Neither this module nor the modules it imports import torch or skops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixlearn.classical._array_checks import get_int, get_str
from pixlearn.classical._boosting_arrays import BOOSTING_TYPES, boosting_from_arrays, boosting_to_arrays
from pixlearn.classical._forest_arrays import FOREST_TYPES, forest_from_arrays, forest_to_arrays
from pixlearn.classical._svm_arrays import SVM_TYPES, svm_from_arrays, svm_to_arrays, svm_type_name

__all__ = [
    "ESTIMATOR_TYPES",
    "FORMAT",
    "FORMAT_VERSION",
    "estimator_from_arrays",
    "estimator_to_arrays",
    "load_estimator_bytes",
    "save_estimator_bytes",
]

FORMAT = "pixlearn.estimator_arrays"
FORMAT_VERSION = 1
#: The estimator types the array format stores; any other is refused.
ESTIMATOR_TYPES: tuple[str, ...] = (*FOREST_TYPES, *BOOSTING_TYPES, *SVM_TYPES)


def _type_name(estimator: Any) -> str:
    """The :data:`ESTIMATOR_TYPES` name of `estimator` (exact class, no subclasses)."""
    name = type(estimator).__name__
    module = type(estimator).__module__
    if name in (*FOREST_TYPES, *BOOSTING_TYPES) and module.startswith("sklearn.ensemble."):
        return name
    svm = svm_type_name(estimator)
    if svm is not None:
        return svm
    raise ValueError(f"{module}.{name} is not supported by the array format (supported: {', '.join(ESTIMATOR_TYPES)})")


def estimator_to_arrays(estimator: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Describe a fitted estimator as JSON-safe metadata and plain numeric arrays.

    Parameters
    ----------
    estimator : object
        A fitted estimator of one of the :data:`ESTIMATOR_TYPES`, with integer ``classes_``.

    Returns
    -------
    meta : dict
        JSON-safe: ``format``, ``version``, ``type``, ``classes``, ``n_features_in``, the
        hyper-parameters and the per-tree (per-predictor) array names and sizes.
    arrays : dict of str to ndarray
        C-contiguous numeric arrays (int64, float64, uint8 or uint32), e.g. ``tree3.left_child``.

    Raises
    ------
    ValueError
        If the estimator's type, classes or a hyper-parameter is not supported by the format.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> rf = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, [0, 0, 1, 1])
    >>> meta, arrays = estimator_to_arrays(rf)
    >>> meta["type"], meta["classes"], arrays["tree0.left_child"].dtype
    ('RandomForestClassifier', [0, 1], dtype('int64'))
    >>> again = estimator_from_arrays(meta, arrays)
    >>> bool(np.array_equal(again.predict_proba(x), rf.predict_proba(x)))
    True
    """
    type_name = _type_name(estimator)
    classes = np.asarray(estimator.classes_)
    if classes.ndim != 1 or classes.dtype.kind not in "iu":
        raise ValueError(f"classes of dtype {classes.dtype} are not supported by the array format (integers only)")
    if getattr(estimator, "feature_names_in_", None) is not None:
        raise ValueError("estimators fitted on named features (DataFrames) are not supported by the array format")
    if type_name in FOREST_TYPES:
        meta, arrays = forest_to_arrays(estimator, type_name)
    elif type_name in BOOSTING_TYPES:
        meta, arrays = boosting_to_arrays(estimator)
    else:
        meta, arrays = svm_to_arrays(estimator, type_name)
    head = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "type": type_name,
        "classes": [int(c) for c in classes],
        "n_features_in": int(estimator.n_features_in_),
    }
    return {**head, **meta}, arrays


def estimator_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """Rebuild a fitted estimator from :func:`estimator_to_arrays` output, checking it first.

    Parameters
    ----------
    meta : dict
        The description, as read back from JSON (untrusted).
    arrays : dict of str to ndarray
        The arrays, e.g. from :func:`safetensors.numpy.load` (untrusted).

    Returns
    -------
    estimator : object
        A fitted scikit-learn estimator whose ``predict_proba`` equals the original's bit for bit.

    Raises
    ------
    ValueError
        If the type is not in :data:`ESTIMATOR_TYPES`, a value is missing or of the wrong type,
        an array has the wrong dtype or shape, an index lies out of range, a tree is not a
        tree stored parents first, or the declared sizes exceed the format's limits. The
        message names the entry or array and the problem.
    """
    if not isinstance(meta, dict):
        raise ValueError(f"estimator description must be a dict, got {type(meta).__name__}")
    if not isinstance(arrays, dict):
        raise ValueError(f"estimator arrays must be a dict, got {type(arrays).__name__}")
    get_str(meta, "format", (FORMAT,))
    get_int(meta, "version", FORMAT_VERSION, FORMAT_VERSION)
    type_name = get_str(meta, "type", ESTIMATOR_TYPES)
    if type_name in FOREST_TYPES:
        return forest_from_arrays(type_name, meta, arrays)
    if type_name in BOOSTING_TYPES:
        return boosting_from_arrays(meta, arrays)
    return svm_from_arrays(type_name, meta, arrays)


def save_estimator_bytes(estimator: Any) -> tuple[dict[str, Any], bytes]:
    """The description of `estimator` and its arrays as safetensors bytes.

    Parameters
    ----------
    estimator : object
        A fitted estimator of one of the :data:`ESTIMATOR_TYPES`.

    Returns
    -------
    meta : dict
        JSON-safe description (see :func:`estimator_to_arrays`).
    data : bytes
        The arrays in the safetensors format.

    Raises
    ------
    ValueError
        If the estimator is not supported by the array format.
    """
    from safetensors.numpy import save

    meta, arrays = estimator_to_arrays(estimator)
    return meta, save(arrays)


def load_estimator_bytes(meta: dict[str, Any], data: bytes) -> Any:
    """Rebuild an estimator from :func:`save_estimator_bytes` output.

    Parameters
    ----------
    meta : dict
        The description (untrusted).
    data : bytes
        safetensors bytes (untrusted): parsing is bounded by their length and runs no code.

    Returns
    -------
    estimator : object
        The fitted estimator.

    Raises
    ------
    ValueError
        If `data` is not valid safetensors or the arrays do not pass
        :func:`estimator_from_arrays`' checks.
    """
    from safetensors.numpy import load

    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"estimator data must be bytes, got {type(data).__name__}")
    try:
        arrays = load(bytes(data))
    except Exception as error:  # safetensors raises its own SafetensorError and others
        raise ValueError(f"estimator arrays are not valid safetensors data: {error}") from None
    return estimator_from_arrays(meta, arrays)
