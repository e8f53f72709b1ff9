"""Random and extra-trees forests as plain arrays (see :mod:`pixlearn.classical.estimator_arrays`).

Each tree ``i`` is stored as one array per field of scikit-learn's node record,
``tree{i}.left_child`` ... ``tree{i}.missing_go_to_left``, plus ``tree{i}.value`` of shape
``(node_count, 1, n_classes)``. Loading checks every array before a ``Tree`` is built with
``Tree(n_features, [n_classes], 1)`` and filled with ``Tree.__setstate__`` (scikit-learn's own
unpickling entry point), because scikit-learn walks the node arrays without bounds checks.
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

__all__ = ["FOREST_TYPES", "forest_from_arrays", "forest_to_arrays"]

FOREST_TYPES: tuple[str, ...] = ("RandomForestClassifier", "ExtraTreesClassifier")

#: Stored dtype of every field of scikit-learn's tree node record.
TREE_FIELDS: dict[str, np.dtype] = {
    "left_child": np.dtype(np.int64),
    "right_child": np.dtype(np.int64),
    "feature": np.dtype(np.int64),
    "threshold": np.dtype(np.float64),
    "impurity": np.dtype(np.float64),
    "n_node_samples": np.dtype(np.int64),
    "weighted_n_node_samples": np.dtype(np.float64),
    "missing_go_to_left": np.dtype(np.uint8),
}
_LEAF = -1


def _classes_of(type_name: str) -> tuple[Any, Any]:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    if type_name == "RandomForestClassifier":
        return RandomForestClassifier, DecisionTreeClassifier
    return ExtraTreesClassifier, ExtraTreeClassifier


def forest_to_arrays(forest: Any, type_name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Description and arrays of a fitted forest (single output, integer classes)."""
    forest_cls, tree_cls = _classes_of(type_name)
    if type(forest) is not forest_cls:
        raise ValueError(f"{type(forest).__qualname__} is not supported by the array format (subclass of {type_name})")
    if forest.n_outputs_ != 1:
        raise ValueError("multi-output forests are not supported by the array format")
    meta: dict[str, Any] = {"params": scalar_params(forest.get_params(deep=False), type_name), "trees": []}
    arrays: dict[str, np.ndarray] = {}
    for i, estimator in enumerate(forest.estimators_):
        if type(estimator) is not tree_cls:
            raise ValueError(f"tree {i} is a {type(estimator).__name__}, not supported by the array format")
        tree = estimator.tree_
        name = f"tree{i}"
        public = {"left_child": "children_left", "right_child": "children_right"}
        for field, dtype in TREE_FIELDS.items():
            arrays[f"{name}.{field}"] = np.ascontiguousarray(getattr(tree, public.get(field, field)), dtype=dtype)
        arrays[f"{name}.value"] = np.ascontiguousarray(tree.value, dtype=np.float64)
        seed = estimator.random_state
        meta["trees"].append(
            {
                "name": name,
                "node_count": int(tree.node_count),
                "max_depth": int(tree.max_depth),
                "random_state": int(seed) if isinstance(seed, (int, np.integer)) else None,
            }
        )
    return meta, arrays


def _check_tree(
    arrays: dict[str, np.ndarray], name: str, n_nodes: int, n_features: int, n_classes: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The validated node fields and value array of tree `name`."""
    fields = {f: get_array(arrays, f"{name}.{f}", dtype, (n_nodes,)) for f, dtype in TREE_FIELDS.items()}
    value = get_array(arrays, f"{name}.value", np.float64, (n_nodes, 1, n_classes))
    left, right = fields["left_child"], fields["right_child"]
    half_leaf = (left == _LEAF) != (right == _LEAF)
    if half_leaf.any():
        i = int(np.flatnonzero(half_leaf)[0])
        raise ValueError(f"arrays {name}.left_child/right_child: node {i} has only one child -1 (leaf)")
    is_split = left != _LEAF
    check_children(left, right, is_split, (f"{name}.left_child", f"{name}.right_child"))
    check_split_features(fields["feature"], is_split, n_features, f"{name}.feature")
    check_split_thresholds(fields["threshold"], is_split, f"{name}.threshold")
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(f"array {name}.value must be finite and non-negative")
    if np.any(fields["missing_go_to_left"] > 1):
        raise ValueError(f"array {name}.missing_go_to_left must hold 0 or 1")
    for f in ("impurity", "weighted_n_node_samples"):
        if not np.all(np.isfinite(fields[f])):
            raise ValueError(f"array {name}.{f} must be finite")
    if np.any(fields["n_node_samples"] < 0):
        raise ValueError(f"array {name}.n_node_samples must be non-negative")
    return fields, value


def _build_tree(fields: dict[str, np.ndarray], value: np.ndarray, max_depth: int, n_features: int) -> Any:
    """A scikit-learn ``Tree`` holding validated `fields` and `value`."""
    from sklearn.tree._tree import Tree

    n_nodes, _, n_classes = value.shape
    tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
    node_dtype = tree.__getstate__()["nodes"].dtype  # the record layout this scikit-learn expects
    unknown = [f for f in node_dtype.names if f not in fields]
    if unknown:
        raise ValueError(f"this scikit-learn's tree nodes have fields {unknown} that the array format lacks")
    nodes = np.zeros(n_nodes, dtype=node_dtype)
    for field in node_dtype.names:
        nodes[field] = fields[field]
    state = {"max_depth": max_depth, "node_count": n_nodes, "nodes": nodes, "values": np.ascontiguousarray(value)}
    tree.__setstate__(state)
    return tree


def _tree_entries(meta: dict[str, Any]) -> list[tuple[str, int, int, int | None]]:
    """``(name, node_count, max_depth, random_state)`` per tree, total size bounded first."""
    entries = get_list(meta, "trees", MAX_TREES)
    if not entries:
        raise ValueError("'trees' is empty")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("name") != f"tree{i}":
            raise ValueError(f"'trees' entry {i} must be a dict named 'tree{i}'")
        n_nodes = get_int(entry, "node_count", 1, MAX_TOTAL_NODES)
        seed = entry.get("random_state")
        seed = None if seed is None else get_int(entry, "random_state", 0, 2**32 - 1)
        out.append((f"tree{i}", n_nodes, get_int(entry, "max_depth", 0, n_nodes), seed))
    total = sum(e[1] for e in out)
    if total > MAX_TOTAL_NODES:
        raise ValueError(f"the trees declare {total} nodes in total, more than the {MAX_TOTAL_NODES} allowed")
    return out


def forest_from_arrays(type_name: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """A fitted forest rebuilt from checked arrays (inverse of :func:`forest_to_arrays`)."""
    forest_cls, tree_cls = _classes_of(type_name)
    classes = get_classes(meta)
    n_features = get_int(meta, "n_features_in", 1, MAX_FEATURES)
    params = check_params(meta.get("params"), list(forest_cls().get_params(deep=False)), type_name)
    entries = _tree_entries(meta)
    if params.get("n_estimators", len(entries)) != len(entries):
        raise ValueError(f"n_estimators = {params['n_estimators']!r} but {len(entries)} trees are described")
    expected = {f"{e[0]}.{f}" for e in entries for f in (*TREE_FIELDS, "value")}
    extra = sorted(set(arrays) - expected)
    if extra:
        raise ValueError(f"unexpected arrays for a {type_name}: {extra[:5]}")
    checked = [_check_tree(arrays, name, n, n_features, classes.size) for name, n, _, _ in entries]

    forest = forest_cls(**params)
    forest._validate_params()  # InvalidParameterError is a ValueError
    tree_params = {k: getattr(forest, k) for k in forest.estimator_params}
    trees = []
    for (_, _, max_depth, seed), (fields, value) in zip(entries, checked):
        tree = tree_cls(**{**tree_params, "random_state": seed})
        tree.tree_ = _build_tree(fields, value, max_depth, n_features)
        tree.n_features_in_ = n_features
        tree.n_outputs_ = 1
        tree.classes_ = np.arange(classes.size, dtype=np.float64)  # forests fit trees on class indices
        tree.n_classes_ = np.int64(classes.size)
        trees.append(tree)
    forest.estimator_ = tree_cls(**tree_params)
    forest.estimators_ = trees
    forest.classes_ = classes
    forest.n_classes_ = int(classes.size)
    forest.n_outputs_ = 1
    forest.n_features_in_ = n_features
    return forest
