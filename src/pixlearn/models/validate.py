"""Checks that make a loaded model safe to use: run on everything a model file rebuilds.

scikit-learn's compiled code (``Tree.apply``, the gradient-boosting predictor, libsvm) and
pixlearn's numba forest kernels index the arrays of a fitted estimator without bounds checks: a
child or feature index out of range reads (or writes) arbitrary memory. A model file is
untrusted input, so :func:`validate_estimator` accepts only the estimator types pixlearn itself
builds (:func:`pixlearn.classical.config._make_estimator`), by exact type, and checks every array
those types predict with. Networks are checked in :mod:`pixlearn.models.validate_network`.

Every problem raises :class:`~pixlearn.errors.ModelFileError` naming the file and the array.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from pixlearn.errors import ModelFileError

__all__ = [
    "MAX_CHANNELS",
    "MAX_CLASSES",
    "MAX_JSON_DEPTH",
    "check_json_depth",
    "validate_classical_meta",
    "validate_estimator",
]

MAX_JSON_DEPTH = 32  # nesting of model.json / thresholds.json (pixlearn writes at most ~5)
MAX_CLASSES = 65535
MAX_CHANNELS = 1024
MAX_FEATURES = 1 << 20
MAX_HALO_PX = 4096


def _fail(message: str, path: str | os.PathLike[str] | None) -> ModelFileError:
    return ModelFileError(message, path)


def check_json_depth(value: Any, what: str, path: str | os.PathLike[str] | None, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`ModelFileError` when parsed JSON nests deeper than `limit` (iteratively).

    Examples
    --------
    >>> check_json_depth({"a": [1, {"b": 2}]}, "model.json", None)
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise _fail(f"{what} nests deeper than {limit} levels", path)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


# Classical models -------------------------------------------------------------------------------


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _exact(obj: Any, allowed: tuple[type, ...], what: str, path: Any) -> None:
    if type(obj) not in allowed:
        names = ", ".join(t.__name__ for t in allowed)
        raise _fail(f"{what} is a {_type_name(obj)}; a pixlearn model holds {names}", path)


def _array(obj: Any, what: str, path: Any, *, shape: tuple[int | None, ...] | None = None,
           kind: str | None = None) -> np.ndarray:
    """`obj` as an ndarray of the given shape (``None``: any length) and dtype kind(s)."""
    if not isinstance(obj, np.ndarray):
        raise _fail(f"{what} is a {type(obj).__name__}, not an array", path)
    if kind is not None and obj.dtype.kind not in kind:
        raise _fail(f"{what} has dtype {obj.dtype}", path)
    if shape is not None:
        if obj.ndim != len(shape) or any(s is not None and n != s for n, s in zip(obj.shape, shape)):
            raise _fail(f"{what} has shape {obj.shape}, expected {tuple('n' if s is None else s for s in shape)}", path)
    return obj


def _int_attr(obj: Any, name: str, what: str, path: Any, low: int = 0, high: int = 2**62) -> int:
    value = getattr(obj, name, None)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _fail(f"{what}.{name} is {value!r}, not an integer", path)
    if not low <= int(value) <= high:
        raise _fail(f"{what}.{name} = {int(value)} is outside {low}..{high}", path)
    return int(value)


def _check_classes(classes: Any, n_outputs: int, what: str, path: Any) -> np.ndarray:
    classes = _array(classes, f"{what}.classes_", path, shape=(None,), kind="iu")
    if classes.size < 2 or np.any(np.diff(classes) <= 0) or classes[0] < 0 or classes[-1] >= n_outputs:
        raise _fail(
            f"{what}.classes_ must be increasing class indices within 0..{n_outputs - 1}, "
            f"got {classes.tolist()[:10]}", path,
        )
    return classes


def _check_tree_structure(left: np.ndarray, right: np.ndarray, what: str, path: Any) -> np.ndarray:
    """Children of a binary tree in pre-order layout: every child index lies after its parent and
    inside the tree, every node but the root has exactly one parent. Returns the leaf mask."""
    n = left.shape[0]
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise _fail(f"{what}: a node has exactly one child", path)
    idx = np.arange(n)
    inner_left, inner_right = left[~leaf].astype(np.int64), right[~leaf].astype(np.int64)
    parents = idx[~leaf]
    if np.any(inner_left <= parents) or np.any(inner_right <= parents) or np.any(inner_left >= n) \
            or np.any(inner_right >= n):
        raise _fail(f"{what}: child index out of range (children must lie after their parent, below {n})", path)
    children = np.concatenate([inner_left, inner_right])
    if children.size != n - 1 or np.any(np.bincount(children, minlength=n)[1:] != 1):
        raise _fail(f"{what}: nodes are not one tree (shared or unreachable nodes)", path)
    return leaf


def _check_sklearn_tree(tree: Any, n_features: int, n_classes: int, what: str, path: Any) -> None:
    from sklearn.tree._tree import Tree

    _exact(tree, (Tree,), what, path)
    n = _int_attr(tree, "node_count", what, path, 1, 2**31 - 2)
    if _int_attr(tree, "n_features", what, path) != n_features:
        raise _fail(f"{what} takes {tree.n_features} features, the forest {n_features}", path)
    if _int_attr(tree, "n_outputs", what, path) != 1:
        raise _fail(f"{what} has {tree.n_outputs} outputs; pixlearn forests have one", path)
    tree_classes = _array(tree.n_classes, f"{what}.n_classes", path, shape=(1,), kind="iu")
    if int(tree_classes[0]) != n_classes:
        raise _fail(f"{what} has {int(tree_classes[0])} classes, the forest {n_classes}", path)
    left = _array(tree.children_left, f"{what}.children_left", path, shape=(n,), kind="i")
    right = _array(tree.children_right, f"{what}.children_right", path, shape=(n,), kind="i")
    leaf = _check_tree_structure(left, right, what, path)
    feature = _array(tree.feature, f"{what}.feature", path, shape=(n,), kind="i")[~leaf]
    if feature.size and (feature.min() < 0 or feature.max() >= n_features):
        raise _fail(f"{what}: feature index outside 0..{n_features - 1}", path)
    threshold = _array(tree.threshold, f"{what}.threshold", path, shape=(n,), kind="f")[~leaf]
    missing = _array(tree.missing_go_to_left, f"{what}.missing_go_to_left", path, shape=(n,), kind="iub")
    if np.any((missing != 0) & (missing != 1)):
        raise _fail(f"{what}.missing_go_to_left holds values other than 0 and 1", path)
    # +inf: scikit-learn's "missing values right, everything else left" split
    bad = np.isnan(threshold) | (np.isinf(threshold) & ((threshold < 0) | (missing[~leaf] != 0)))
    if np.any(bad):
        raise _fail(f"{what}: {int(bad.sum())} split threshold(s) are not finite", path)
    value = _array(tree.value, f"{what}.value", path, shape=(n, 1, n_classes), kind="f")
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise _fail(f"{what}.value holds negative or non-finite class weights", path)
    weights = _array(tree.weighted_n_node_samples, f"{what}.weighted_n_node_samples", path, shape=(n,), kind="f")
    if not np.all(np.isfinite(weights)):
        raise _fail(f"{what}.weighted_n_node_samples is not finite", path)
    _array(tree.n_node_samples, f"{what}.n_node_samples", path, shape=(n,), kind="iu")
    _int_attr(tree, "max_depth", what, path, 0, n)


def _check_forest(est: Any, path: Any, n_outputs: int) -> None:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    what = type(est).__name__
    tree_type = ExtraTreeClassifier if type(est) is ExtraTreesClassifier else DecisionTreeClassifier
    n_features = _int_attr(est, "n_features_in_", what, path, 1, MAX_FEATURES)
    if _int_attr(est, "n_outputs_", what, path) != 1:
        raise _fail(f"{what} has {est.n_outputs_} outputs; pixlearn forests have one", path)
    classes = _check_classes(getattr(est, "classes_", None), n_outputs, what, path)
    if _int_attr(est, "n_classes_", what, path) != classes.size:
        raise _fail(f"{what}.n_classes_ = {est.n_classes_} but it has {classes.size} classes_", path)
    trees = getattr(est, "estimators_", None)
    if type(trees) is not list or not trees:
        raise _fail(f"{what}.estimators_ is not a list of trees", path)
    for i, tree in enumerate(trees):
        name = f"{what} tree {i}"
        _exact(tree, (tree_type,), name, path)
        if _int_attr(tree, "n_features_in_", name, path) != n_features or \
                _int_attr(tree, "n_outputs_", name, path) != 1 or \
                _int_attr(tree, "n_classes_", name, path) != classes.size:
            raise _fail(f"{name} does not fit the forest (features, outputs or classes)", path)
        tree_classes = _array(getattr(tree, "classes_", None), f"{name}.classes_", path, shape=(classes.size,))
        if tree_classes.dtype.kind not in "iuf" or not np.array_equal(tree_classes, np.arange(classes.size)):
            raise _fail(f"{name}.classes_ does not match the forest", path)
        _check_sklearn_tree(getattr(tree, "tree_", None), n_features, classes.size, f"{name}.tree_", path)


def _check_boosting(est: Any, path: Any, n_outputs: int) -> None:
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

    what = type(est).__name__
    n_features = _int_attr(est, "n_features_in_", what, path, 1, MAX_FEATURES)
    classes = _check_classes(getattr(est, "classes_", None), n_outputs, what, path)
    per_iteration = 1 if classes.size == 2 else classes.size
    if _int_attr(est, "n_trees_per_iteration_", what, path) != per_iteration:
        raise _fail(f"{what}.n_trees_per_iteration_ does not match its {classes.size} classes", path)
    loss = getattr(est, "_loss", None)
    _exact(loss, (HalfBinomialLoss,) if classes.size == 2 else (HalfMultinomialLoss,), f"{what} loss", path)
    baseline = _array(getattr(est, "_baseline_prediction", None), f"{what} baseline", path,
                      shape=(1, per_iteration), kind="f")
    if not np.all(np.isfinite(baseline)):
        raise _fail(f"{what} baseline prediction is not finite", path)
    if getattr(est, "is_categorical_", None) is not None:
        raise _fail(f"{what} uses categorical features; pixlearn models never do", path)
    mapper = getattr(est, "_bin_mapper", None)
    _exact(mapper, (_BinMapper,), f"{what} bin mapper", path)
    flags = _array(getattr(mapper, "is_categorical_", None), f"{what} bin mapper is_categorical_", path,
                   shape=(n_features,))
    if np.any(flags):
        raise _fail(f"{what} bin mapper marks categorical features; pixlearn models never do", path)
    predictors = getattr(est, "_predictors", None)
    if type(predictors) is not list or not predictors:
        raise _fail(f"{what} holds no trees", path)
    for i, group in enumerate(predictors):
        if type(group) is not list or len(group) != per_iteration:
            raise _fail(f"{what} iteration {i} does not hold {per_iteration} tree(s)", path)
        for k, predictor in enumerate(group):
            _check_predictor(predictor, f"{what} tree {i}.{k}", n_features, path)


def _check_predictor(predictor: Any, name: str, n_features: int, path: Any) -> None:
    """One ``TreePredictor`` of a gradient-boosting model: its node records, structure and values."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    _exact(predictor, (TreePredictor,), name, path)
    nodes = _array(predictor.nodes, f"{name} nodes", path, shape=(None,))
    if nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.size < 1 or nodes.size > 2**31 - 2:
        raise _fail(f"{name} nodes have an unexpected layout or size", path)
    is_leaf = nodes["is_leaf"]
    if np.any(is_leaf > 1) or np.any(nodes["missing_go_to_left"] > 1):
        raise _fail(f"{name}: is_leaf / missing_go_to_left hold values other than 0 and 1", path)
    if np.any(nodes["is_categorical"] != 0):
        raise _fail(f"{name} has categorical splits; pixlearn models never do", path)
    leaf = is_leaf.astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    _check_tree_structure(left, right, name, path)
    feature = nodes["feature_idx"][~leaf]
    if feature.size and (feature.min() < 0 or feature.max() >= n_features):
        raise _fail(f"{name}: feature index outside 0..{n_features - 1}", path)
    if np.any(np.isnan(nodes["num_threshold"][~leaf])) or not np.all(np.isfinite(nodes["value"][leaf])):
        raise _fail(f"{name}: NaN threshold or non-finite leaf value", path)


def _check_svm(est: Any, path: Any, n_outputs: int) -> None:
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    steps = getattr(est, "steps", None)
    if type(steps) is not list or len(steps) != 2 or any(type(s) is not tuple or len(s) != 2 for s in steps):
        raise _fail("SVM pipeline must have two steps (scale, svm)", path)
    (_, scaler), (_, calibrated) = steps
    _exact(scaler, (StandardScaler,), "SVM pipeline step 1", path)
    _exact(calibrated, (CalibratedClassifierCV,), "SVM pipeline step 2", path)
    n_features = _int_attr(scaler, "n_features_in_", "StandardScaler", path, 1, MAX_FEATURES)
    for name in ("mean_", "scale_", "var_"):
        arr = getattr(scaler, name, None)
        if arr is not None and not np.all(np.isfinite(_array(arr, f"StandardScaler.{name}", path,
                                                               shape=(n_features,), kind="f"))):
            raise _fail(f"StandardScaler.{name} is not finite", path)
    classes = _check_classes(getattr(calibrated, "classes_", None), n_outputs, "CalibratedClassifierCV", path)
    members = getattr(calibrated, "calibrated_classifiers_", None)
    if type(members) is not list or not members:
        raise _fail("CalibratedClassifierCV holds no calibrated classifier", path)
    n_cal = 1 if classes.size == 2 else classes.size
    for i, member in enumerate(members):
        what = f"calibrated classifier {i}"
        _exact(member, (_CalibratedClassifier,), what, path)
        if not np.array_equal(_array(member.classes, f"{what} classes", path, shape=(classes.size,)), classes):
            raise _fail(f"{what} classes do not match", path)
        calibrators = getattr(member, "calibrators", None)
        if type(calibrators) is not list or len(calibrators) != n_cal:
            raise _fail(f"{what} needs {n_cal} sigmoid calibrator(s)", path)
        for cal in calibrators:
            _exact(cal, (_SigmoidCalibration,), f"{what} calibrator", path)
            if not all(isinstance(getattr(cal, a, None), (float, np.floating)) and math.isfinite(getattr(cal, a))
                       for a in ("a_", "b_")):
                raise _fail(f"{what} calibrator parameters are not finite numbers", path)
        svm = member.estimator
        _exact(svm, (SVC, LinearSVC), f"{what} estimator", path)
        if _int_attr(svm, "n_features_in_", what, path) != n_features:
            raise _fail(f"{what} takes {svm.n_features_in_} features, the scaler {n_features}", path)
        if not np.array_equal(_array(svm.classes_, f"{what} classes_", path, shape=(classes.size,)), classes):
            raise _fail(f"{what} classes_ do not match", path)
        if type(svm) is LinearSVC:
            rows = 1 if classes.size == 2 else classes.size
            coef = _array(svm.coef_, f"{what} coef_", path, shape=(rows, n_features), kind="f")
            intercept = _array(svm.intercept_, f"{what} intercept_", path, shape=(rows,), kind="f")
            if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
                raise _fail(f"{what} coefficients are not finite", path)
        else:
            _check_svc(svm, classes.size, n_features, what, path)


def _check_svc(svm: Any, n_classes: int, n_features: int, what: str, path: Any) -> None:
    """The arrays libsvm reads: support vectors, per-class counts, dual coefficients, intercepts."""
    if svm.kernel not in ("rbf", "linear") or getattr(svm, "_sparse", None) is not False:
        raise _fail(f"{what} uses kernel {svm.kernel!r}; pixlearn SVMs are dense rbf or linear", path)
    if getattr(svm, "decision_function_shape", None) not in ("ovr", "ovo"):
        raise _fail(f"{what} decision_function_shape is not ovr or ovo", path)
    vectors = _array(svm.support_vectors_, f"{what} support_vectors_", path, shape=(None, n_features), kind="f")
    n_sv = vectors.shape[0]
    counts = _array(getattr(svm, "_n_support", None), f"{what} n_support", path, shape=(n_classes,), kind="i")
    if n_sv < 1 or np.any(counts < 0) or int(counts.sum()) != n_sv:
        raise _fail(f"{what}: support vector counts do not add up to the {n_sv} support vectors", path)
    _array(svm.support_, f"{what} support_", path, shape=(n_sv,), kind="i")
    pairs = n_classes * (n_classes - 1) // 2
    for name, shape in (("_dual_coef_", (n_classes - 1, n_sv)), ("dual_coef_", (n_classes - 1, n_sv)),
                        ("_intercept_", (pairs,)), ("intercept_", (pairs,))):
        arr = _array(getattr(svm, name, None), f"{what} {name}", path, shape=shape, kind="f")
        if not np.all(np.isfinite(arr)):
            raise _fail(f"{what} {name} is not finite", path)
    for name in ("_probA", "_probB"):
        arr = _array(getattr(svm, name, None), f"{what} {name}", path, shape=(None,), kind="f")
        if arr.size not in (0, pairs):
            raise _fail(f"{what} {name} has {arr.size} entries, expected 0 or {pairs}", path)
    _array(getattr(svm, "class_weight_", None), f"{what} class_weight_", path, shape=(n_classes,), kind="f")
    gamma = getattr(svm, "_gamma", None)
    if not isinstance(gamma, (float, np.floating)) or not math.isfinite(gamma) or gamma < 0:
        raise _fail(f"{what} gamma {gamma!r} is not a finite non-negative number", path)
    if not vectors.flags.c_contiguous or vectors.dtype != np.float64:
        raise _fail(f"{what} support_vectors_ must be C-ordered float64", path)


def validate_estimator(estimator: Any, *, n_outputs: int, path: str | os.PathLike[str] | None = None) -> None:
    """Check that a rebuilt estimator is one pixlearn makes and that its arrays are consistent.

    Parameters
    ----------
    estimator : object
        What skops rebuilt from ``classifier.skops``.
    n_outputs : int
        Classes of the model (``len(class_names)``); ``classes_`` must lie within them.
    path : path-like, optional
        Named in the error.

    Raises
    ------
    ModelFileError
        Another type (even one skops trusts by default), or arrays that would make scikit-learn
        or the compiled forest read outside them: child or feature indices out of range, cycles,
        shared nodes, non-finite thresholds, value tables of the wrong shape, inconsistent class
        counts, SVM support vectors that do not match their coefficients.
    """
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline

    if not 2 <= n_outputs <= MAX_CLASSES:
        raise _fail(f"a classical model needs 2..{MAX_CLASSES} classes, the file names {n_outputs}", path)
    _exact(estimator, (RandomForestClassifier, ExtraTreesClassifier, HistGradientBoostingClassifier, Pipeline),
           "the classifier", path)
    if type(estimator) is HistGradientBoostingClassifier:
        _check_boosting(estimator, path, n_outputs)
    elif type(estimator) is Pipeline:
        _check_svm(estimator, path, n_outputs)
    else:
        _check_forest(estimator, path, n_outputs)


def validate_classical_meta(meta: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> None:
    """Bound the plain facts of a classical model description (dimensions, channels, classes, halo)."""
    ndim, channels, names = meta.get("ndim"), meta.get("n_channels"), meta.get("class_names")
    if ndim not in (2, 3) or isinstance(ndim, bool):
        raise _fail(f"model ndim must be 2 or 3, got {ndim!r}", path)
    if not isinstance(channels, int) or isinstance(channels, bool) or not 1 <= channels <= MAX_CHANNELS:
        raise _fail(f"model n_channels must be 1..{MAX_CHANNELS}, got {channels!r}", path)
    if not isinstance(names, list) or not 2 <= len(names) <= MAX_CLASSES:
        raise _fail(f"model class_names must list 2..{MAX_CLASSES} names", path)
    halo = meta.get("halo", [])
    if not isinstance(halo, list) or any(not isinstance(h, int) or not 0 <= h <= MAX_HALO_PX for h in halo):
        raise _fail(f"model halo must be at most {MAX_HALO_PX} pixels per axis, got {halo!r}", path)
