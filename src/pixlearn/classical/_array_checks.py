"""Checks shared by the array formats of :mod:`pixlearn.classical.estimator_arrays`.

Every function here reads a value from the untrusted description (``meta``) or the untrusted
array dict and either returns it, checked, or raises ``ValueError`` naming the entry and the
problem. Nothing here builds a scikit-learn object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURES",
    "MAX_TOTAL_NODES",
    "MAX_TREES",
    "check_children",
    "check_params",
    "get_array",
    "get_classes",
    "get_float",
    "get_int",
    "get_list",
    "get_str",
    "scalar_params",
]

#: Most tree nodes (all trees or predictors together) a description may declare.
MAX_TOTAL_NODES = 10**8
#: Most features, classes and trees a description may declare.
MAX_FEATURES = 10**6
MAX_CLASSES = 10**5
MAX_TREES = 10**6

_SCALARS = (str, int, float, bool, type(None))


def get_int(meta: Mapping[str, Any], key: str, low: int, high: int) -> int:
    """``meta[key]``, an int (not a bool) in ``[low, high]``."""
    value = meta.get(key) if isinstance(meta, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{key!r} = {value} is outside [{low}, {high}]")
    return value


def get_float(meta: Mapping[str, Any], key: str) -> float:
    """``meta[key]``, a finite float (ints are accepted)."""
    value = meta.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number, got {value!r}")
    return float(value)


def get_str(meta: Mapping[str, Any], key: str, allowed: Sequence[str] | None = None) -> str:
    """``meta[key]``, a string, one of `allowed` if given."""
    value = meta.get(key)
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        expected = f"one of {sorted(allowed)}" if allowed is not None else "a string"
        raise ValueError(f"{key!r} must be {expected}, got {value!r}")
    return value


def get_list(meta: Mapping[str, Any], key: str, high: int) -> list[Any]:
    """``meta[key]``, a list of at most `high` entries."""
    value = meta.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list, got {type(value).__name__}")
    if len(value) > high:
        raise ValueError(f"{key!r} has {len(value)} entries, more than the {high} allowed")
    return value


def get_classes(meta: Mapping[str, Any]) -> np.ndarray:
    """``meta["classes"]``: at least two distinct increasing ints, as an int64 array."""
    classes = get_list(meta, "classes", MAX_CLASSES)
    if len(classes) < 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        raise ValueError(f"'classes' must be a list of at least two integers, got {classes[:10]!r}")
    if any(abs(c) >= 2**63 for c in classes):
        raise ValueError("'classes' must fit in int64")
    out = np.asarray(classes, dtype=np.int64)
    if np.any(np.diff(out) <= 0):
        raise ValueError("'classes' must be strictly increasing")
    return out


def get_array(arrays: Mapping[str, np.ndarray], name: str, dtype: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """``arrays[name]`` if it has exactly `dtype` and `shape` (``None``: any length)."""
    array = arrays.get(name)
    if array is None:
        raise ValueError(f"array {name!r} is missing")
    if not isinstance(array, np.ndarray):
        raise ValueError(f"array {name!r} is a {type(array).__name__}, not a NumPy array")
    if array.dtype != np.dtype(dtype):
        raise ValueError(f"array {name!r} has dtype {array.dtype}, expected {np.dtype(dtype)}")
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        wanted = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"array {name!r} has shape {array.shape}, expected {wanted}")
    return array


def check_params(params: Any, allowed: Sequence[str], where: str) -> dict[str, Any]:
    """`params`: a dict from names in `allowed` to JSON scalars (finite floats)."""
    if not isinstance(params, dict):
        raise ValueError(f"{where} parameters must be a dict, got {type(params).__name__}")
    for key, value in params.items():
        if key not in allowed:
            raise ValueError(f"{where} has no parameter {key!r}")
        if not isinstance(value, _SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{where} parameter {key!r} must be a string, number, bool or null, got {value!r}")
    return dict(params)


def scalar_params(params: dict[str, Any], where: str) -> dict[str, Any]:
    """Constructor parameters `params` as JSON scalars; ``ValueError`` if one is not a scalar."""
    out = {}
    for key, value in params.items():
        value = value.item() if isinstance(value, (np.integer, np.floating, np.bool_)) else value
        if not isinstance(value, _SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{where} parameter {key}={value!r} is not supported by the array format")
        out[key] = value
    return out


def check_children(left: np.ndarray, right: np.ndarray, is_split: np.ndarray, names: tuple[str, str]) -> None:
    """Check that the split nodes' children form a tree stored parents first.

    Parameters
    ----------
    left, right : ndarray of shape (n_nodes,), int64
        Children of every node (only those of split nodes are checked here).
    is_split : ndarray of shape (n_nodes,), bool
        Which nodes are split nodes.
    names : (str, str)
        Names of the `left` and `right` arrays, for error messages.

    Raises
    ------
    ValueError
        If a child of node ``i`` lies outside ``(i, n_nodes)``, if both children are the same,
        or if a node other than the root has not exactly one parent.
    """
    n_nodes = left.shape[0]
    index = np.arange(n_nodes)
    for side, child in zip(names, (left, right)):
        bad = is_split & ((child <= index) | (child >= n_nodes))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"array {side}: node {i} has child {int(child[i])}, outside ({i}, {n_nodes}) "
                "(children must come after their parent)"
            )
    parents = np.bincount(np.concatenate([left[is_split], right[is_split]]), minlength=n_nodes)
    if parents[0] != 0 or np.any(parents[1:] != 1):
        node = 0 if parents[0] else 1 + int(np.flatnonzero(parents[1:] != 1)[0])
        raise ValueError(f"arrays {names[0]}/{names[1]}: node {node} has {int(parents[node])} parents (expected a tree)")


def check_split_features(feature: np.ndarray, is_split: np.ndarray, n_features: int, name: str) -> None:
    """Every split node (`is_split`) splits on a feature in ``[0, n_features)``.

    Raises
    ------
    ValueError
        Naming the array `name` and the first bad node.
    """
    bad = is_split & ((feature < 0) | (feature >= n_features))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"array {name}: node {i} splits on feature {int(feature[i])}, outside [0, {n_features})")


def check_split_thresholds(threshold: np.ndarray, is_split: np.ndarray, name: str) -> None:
    """No split node has a NaN or ``-inf`` threshold (``+inf`` is scikit-learn's "all values
    left, missing values right", in both tree kinds).

    Raises
    ------
    ValueError
        Naming the array `name` and the first bad node.
    """
    bad = is_split & (np.isnan(threshold) | (threshold == -np.inf))
    if bad.any():
        raise ValueError(f"array {name}: split node {int(np.flatnonzero(bad)[0])} has threshold NaN or -inf")
