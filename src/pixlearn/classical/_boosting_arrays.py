"""Histogram gradient boosting as plain arrays (see :mod:`pixlearn.classical.estimator_arrays`).

Predictor ``k`` of iteration ``i`` is stored as one array per field of scikit-learn's predictor
node record, ``predictor{i}_{k}.left`` ..., categorical splits are refused (pixlearn feeds
numeric arrays only, so there are none). The bin mapper's thresholds are stored flat in
``bin_thresholds`` with ``n_bins_non_missing`` per feature; ``baseline_prediction`` holds the
raw starting score. Loading checks every array, then builds ``TreePredictor`` objects and sets
the private state ``HistGradientBoostingClassifier.predict_proba`` reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixlearn.classical._array_checks import (
    MAX_FEATURES,
    MAX_TOTAL_NODES,
    MAX_TREES,
    check_children,
    check_params,
    check_split_features,
    check_split_thresholds,
    get_array,
    get_classes,
    get_int,
    get_list,
    scalar_params,
)

__all__ = ["BOOSTING_TYPES", "boosting_from_arrays", "boosting_to_arrays"]

BOOSTING_TYPES: tuple[str, ...] = ("HistGradientBoostingClassifier",)

#: Stored dtype of every stored field of scikit-learn's predictor node record.
PREDICTOR_FIELDS: dict[str, np.dtype] = {
    "value": np.dtype(np.float64),
    "count": np.dtype(np.uint32),
    "feature_idx": np.dtype(np.int64),
    "num_threshold": np.dtype(np.float64),
    "missing_go_to_left": np.dtype(np.uint8),
    "left": np.dtype(np.int64),
    "right": np.dtype(np.int64),
    "gain": np.dtype(np.float64),
    "depth": np.dtype(np.uint32),
    "is_leaf": np.dtype(np.uint8),
    "bin_threshold": np.dtype(np.uint8),
}
_CATEGORICAL_FIELDS = ("is_categorical", "bitset_idx")  # always 0: no categorical splits


def boosting_to_arrays(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Description and arrays of a fitted ``HistGradientBoostingClassifier`` (numeric features)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(model) is not HistGradientBoostingClassifier:
        raise ValueError(f"{type(model).__qualname__} is not supported by the array format")
    if model._preprocessor is not None or (model.is_categorical_ is not None and np.any(model.is_categorical_)):
        raise ValueError("categorical features are not supported by the array format")
    mapper = model._bin_mapper
    arrays: dict[str, np.ndarray] = {
        "baseline_prediction": np.ascontiguousarray(model._baseline_prediction, dtype=np.float64),
        "bin_thresholds": np.concatenate([np.asarray(t, dtype=np.float64) for t in mapper.bin_thresholds_]),
        "n_bins_non_missing": np.ascontiguousarray(mapper.n_bins_non_missing_, dtype=np.uint32),
    }
    predictors = []
    for i, iteration in enumerate(model._predictors):
        entries = []
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]) or predictor.raw_left_cat_bitsets.size:
                raise ValueError("categorical splits are not supported by the array format")
            name = f"predictor{i}_{k}"
            for field, dtype in PREDICTOR_FIELDS.items():
                arrays[f"{name}.{field}"] = np.ascontiguousarray(nodes[field], dtype=dtype)
            entries.append({"name": name, "node_count": int(nodes.shape[0])})
        predictors.append(entries)
    meta = {
        "params": scalar_params(model.get_params(deep=False), "HistGradientBoostingClassifier"),
        "n_trees_per_iteration": int(model.n_trees_per_iteration_),
        "n_bins": int(mapper.n_bins),
        "do_early_stopping": bool(model.do_early_stopping_),
        "predictors": predictors,
    }
    return meta, arrays


def _check_predictor(arrays: dict[str, np.ndarray], name: str, n_nodes: int, n_features: int) -> dict[str, np.ndarray]:
    """The validated node fields of predictor `name`."""
    fields = {f: get_array(arrays, f"{name}.{f}", dtype, (n_nodes,)) for f, dtype in PREDICTOR_FIELDS.items()}
    for f in ("is_leaf", "missing_go_to_left"):
        if np.any(fields[f] > 1):
            raise ValueError(f"array {name}.{f} must hold 0 or 1")
    is_split = fields["is_leaf"] == 0
    left, right = fields["left"], fields["right"]
    bad = ~is_split & ((left != 0) | (right != 0))
    if bad.any():
        raise ValueError(f"arrays {name}.left/right: leaf {int(np.flatnonzero(bad)[0])} has children (is_leaf inconsistent)")
    check_children(left, right, is_split, (f"{name}.left", f"{name}.right"))
    check_split_features(fields["feature_idx"], is_split, n_features, f"{name}.feature_idx")
    check_split_thresholds(fields["num_threshold"], is_split, f"{name}.num_threshold")
    for f in ("value", "gain"):
        if not np.all(np.isfinite(fields[f])):
            raise ValueError(f"array {name}.{f} must be finite")
    depth = fields["depth"].astype(np.int64)
    if depth[0] != 0 or np.any(depth[left[is_split]] != depth[is_split] + 1) or np.any(depth[right[is_split]] != depth[is_split] + 1):
        raise ValueError(f"array {name}.depth does not match the tree (root 0, children one deeper)")
    return fields


def _build_predictor(fields: dict[str, np.ndarray]) -> Any:
    """A ``TreePredictor`` holding validated `fields` and no categorical bitsets."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    unknown = [f for f in PREDICTOR_RECORD_DTYPE.names if f not in fields and f not in _CATEGORICAL_FIELDS]
    if unknown:
        raise ValueError(f"this scikit-learn's predictor nodes have fields {unknown} that the array format lacks")
    nodes = np.zeros(fields["value"].shape[0], dtype=PREDICTOR_RECORD_DTYPE)
    for field in PREDICTOR_RECORD_DTYPE.names:
        if field in fields:
            nodes[field] = fields[field]
    no_bitsets = np.zeros((0, 8), dtype=np.uint32)
    return TreePredictor(nodes, no_bitsets, no_bitsets.copy())


def _predictor_entries(meta: dict[str, Any], n_per_iteration: int) -> list[list[tuple[str, int]]]:
    """``(name, node_count)`` per predictor and iteration, total size bounded first."""
    iterations = get_list(meta, "predictors", MAX_TREES)
    if not iterations:
        raise ValueError("'predictors' is empty")
    out, total = [], 0
    for i, iteration in enumerate(iterations):
        if not isinstance(iteration, list) or len(iteration) != n_per_iteration:
            raise ValueError(f"'predictors' entry {i} must be a list of {n_per_iteration} predictors")
        row = []
        for k, entry in enumerate(iteration):
            if not isinstance(entry, dict) or entry.get("name") != f"predictor{i}_{k}":
                raise ValueError(f"'predictors' entry {i}, {k} must be a dict named 'predictor{i}_{k}'")
            row.append((f"predictor{i}_{k}", get_int(entry, "node_count", 1, MAX_TOTAL_NODES)))
            total += row[-1][1]
        out.append(row)
    if total > MAX_TOTAL_NODES:
        raise ValueError(f"the predictors declare {total} nodes in total, more than the {MAX_TOTAL_NODES} allowed")
    return out


def _check_bins(arrays: dict[str, np.ndarray], n_features: int, n_bins: int) -> list[np.ndarray]:
    """The bin mapper's thresholds, one array per feature."""
    counts = get_array(arrays, "n_bins_non_missing", np.uint32, (n_features,)).astype(np.int64)
    if np.any(counts < 1) or np.any(counts > n_bins - 1):
        raise ValueError(f"array n_bins_non_missing must lie in [1, {n_bins - 1}]")
    flat = get_array(arrays, "bin_thresholds", np.float64, (int(np.sum(counts - 1)),))
    if not np.all(np.isfinite(flat)):
        raise ValueError("array bin_thresholds must be finite")
    return np.split(flat.copy(), np.cumsum(counts - 1)[:-1])


def boosting_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """A fitted ``HistGradientBoostingClassifier`` rebuilt from checked arrays."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.preprocessing import LabelEncoder

    classes = get_classes(meta)
    n_features = get_int(meta, "n_features_in", 1, MAX_FEATURES)
    params = check_params(meta.get("params"), list(HistGradientBoostingClassifier().get_params()), "HistGradientBoostingClassifier")
    if params.get("loss", "log_loss") != "log_loss":
        raise ValueError(f"loss {params['loss']!r} is not supported by the array format")
    n_per_iteration = 1 if classes.size == 2 else classes.size
    get_int(meta, "n_trees_per_iteration", n_per_iteration, n_per_iteration)
    n_bins = get_int(meta, "n_bins", 3, 256)
    if not isinstance(meta.get("do_early_stopping"), bool):
        raise ValueError("'do_early_stopping' must be a bool")
    entries = _predictor_entries(meta, n_per_iteration)
    expected = {f"{name}.{f}" for row in entries for name, _ in row for f in PREDICTOR_FIELDS}
    extra = sorted(set(arrays) - expected - {"baseline_prediction", "bin_thresholds", "n_bins_non_missing"})
    if extra:
        raise ValueError(f"unexpected arrays for a HistGradientBoostingClassifier: {extra[:5]}")
    baseline = get_array(arrays, "baseline_prediction", np.float64, (1, n_per_iteration))
    if not np.all(np.isfinite(baseline)):
        raise ValueError("array baseline_prediction must be finite")
    thresholds = _check_bins(arrays, n_features, n_bins)
    checked = [[_check_predictor(arrays, name, n, n_features) for name, n in row] for row in entries]

    model = HistGradientBoostingClassifier(**params)
    model._validate_params()  # InvalidParameterError is a ValueError
    mapper = _BinMapper(n_bins=n_bins)
    mapper.bin_thresholds_ = thresholds
    mapper.n_bins_non_missing_ = get_array(arrays, "n_bins_non_missing", np.uint32, (n_features,)).copy()
    mapper.missing_values_bin_idx_ = n_bins - 1
    mapper.is_categorical_ = np.zeros(n_features, dtype=np.uint8)
    model._predictors = [[_build_predictor(fields) for fields in row] for row in checked]
    model._bin_mapper = mapper
    model._baseline_prediction = baseline.copy()
    model._preprocessor = None
    model.is_categorical_ = None
    model._is_categorical_remapped = None
    model.classes_ = classes
    model._label_encoder = LabelEncoder().fit(classes)
    model.n_trees_per_iteration_ = n_per_iteration
    model.n_features_in_ = n_features
    model._n_features = n_features
    model.do_early_stopping_ = meta["do_early_stopping"]
    model._loss = model._get_loss(sample_weight=None)
    return model
