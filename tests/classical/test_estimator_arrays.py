"""Estimators as validated plain arrays: exact round trips, torch-free loading, crafted files refused."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from pixlearn.classical.config import BoostingConfig, ClassifierConfig, ForestConfig, SVMConfig
from pixlearn.classical.estimator_arrays import (
    estimator_from_arrays,
    estimator_to_arrays,
    load_estimator_bytes,
    save_estimator_bytes,
)
from pixlearn.classical.estimators import make_estimator


def _data(n_classes: int, *, nan: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(90, 4))
    labels = np.digitize(features[:, 0] + 0.5 * features[:, 1], np.linspace(-1, 1, n_classes - 1)).astype(np.int64)
    if nan:
        features[::7, 1] = np.nan
    return features, labels


def _round_trip(estimator: Any) -> Any:
    meta, data = save_estimator_bytes(estimator)
    return load_estimator_bytes(json.loads(json.dumps(meta)), data)


def _forest(cls: type = RandomForestClassifier, n_classes: int = 3, max_depth: int | None = None) -> Any:
    features, labels = _data(n_classes, nan=True)
    return cls(n_estimators=3, max_depth=max_depth, random_state=0, n_jobs=1).fit(features, labels)


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("max_depth", [None, 2])
def test_forest_round_trip_is_exact(cls: type, n_classes: int, max_depth: int | None) -> None:
    forest = _forest(cls, n_classes, max_depth)
    features, _ = _data(n_classes, nan=True, seed=1)
    again = _round_trip(forest)
    assert type(again) is cls
    np.testing.assert_array_equal(again.predict_proba(features), forest.predict_proba(features))
    np.testing.assert_array_equal(again.predict(features), forest.predict(features))
    assert [t.tree_.max_depth for t in again.estimators_] == [t.tree_.max_depth for t in forest.estimators_]
    np.testing.assert_array_equal(again.feature_importances_, forest.feature_importances_)


@pytest.mark.parametrize(
    ("cfg", "nan"),
    [
        (ClassifierConfig(method="rf", rf=ForestConfig(n_estimators=3, max_features="all"), n_jobs=1), True),
        (ClassifierConfig(method="hgb", hgb=BoostingConfig(max_iter=4, max_leaf_nodes=5)), True),
        (ClassifierConfig(method="hgb", hgb=BoostingConfig(max_iter=3), class_weight=None), False),
        (ClassifierConfig(method="svm", svm=SVMConfig(kernel="rbf")), False),
        (ClassifierConfig(method="svm", svm=SVMConfig(kernel="linear")), False),
    ],
    ids=["rf", "hgb-nan", "hgb", "svm-rbf", "svm-linear"],
)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_config_estimators_round_trip_is_exact(cfg: ClassifierConfig, nan: bool, n_classes: int) -> None:
    features, labels = _data(n_classes, nan=nan)
    estimator = make_estimator(cfg).fit(features, labels)
    again = _round_trip(estimator)
    test_features, _ = _data(n_classes, nan=nan, seed=2)
    np.testing.assert_array_equal(again.predict_proba(test_features), estimator.predict_proba(test_features))
    np.testing.assert_array_equal(again.classes_, estimator.classes_)


def test_arrays_are_plain_and_meta_is_json() -> None:
    meta, arrays = estimator_to_arrays(_forest())
    assert json.loads(json.dumps(meta)) == meta
    assert meta["type"] == "RandomForestClassifier" and meta["classes"] == [0, 1, 2]
    assert arrays["tree0.left_child"].dtype == np.int64 and arrays["tree0.threshold"].dtype == np.float64
    assert all(a.dtype.fields is None and a.dtype != object and a.flags.c_contiguous for a in arrays.values())


def test_loading_imports_neither_torch_nor_skops(tmp_path: Any) -> None:
    meta, data = save_estimator_bytes(_forest())
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "arrays.safetensors").write_bytes(data)
    code = (
        "import json, sys, pathlib, numpy as np\n"
        "from pixlearn.classical.estimator_arrays import load_estimator_bytes\n"
        f"d = pathlib.Path({str(tmp_path)!r})\n"
        "est = load_estimator_bytes(json.loads((d / 'meta.json').read_text()), (d / 'arrays.safetensors').read_bytes())\n"
        "est.predict_proba(np.zeros((3, 4)))\n"
        "print(sorted(m for m in ('torch', 'skops', 'skops.io') if m in sys.modules))\n"
    )
    src = str(__import__("pathlib").Path(__file__).parents[2] / "src")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unsupported_estimator_is_refused() -> None:
    features, labels = _data(2, nan=False)
    with pytest.raises(ValueError, match="not supported by the array format"):
        estimator_to_arrays(LogisticRegression().fit(features, labels))


def _crafted(change: Any, forest: Any = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The description and arrays of a small forest after `change(meta, arrays)`."""
    meta, arrays = estimator_to_arrays(forest if forest is not None else _forest())
    arrays = {k: v.copy() for k, v in arrays.items()}
    change(meta, arrays)
    return meta, arrays


def _first_split_after_root(arrays: dict[str, np.ndarray]) -> int:
    return int(np.flatnonzero(arrays["tree0.left_child"][1:] != -1)[0]) + 1


def _set(name: str, index: Any, value: Any) -> Any:
    def change(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        i = index(arrays) if callable(index) else index
        arrays[name][i] = value(arrays, meta) if callable(value) else value

    return change


def _replace(name: str, make: Any) -> Any:
    def change(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = make(arrays[name])

    return change


def _meta(change_meta: Any) -> Any:
    return lambda meta, arrays: change_meta(meta)


CRAFTED = {
    "child-too-large": (_set("tree0.left_child", 0, lambda a, m: a["tree0.left_child"].size), "outside"),
    "child-negative": (_set("tree0.right_child", 0, -5), "outside"),
    "child-backwards": (_set("tree0.left_child", _first_split_after_root, 0), "after their parent"),
    "child-self": (_set("tree0.right_child", _first_split_after_root, lambda a, m: _first_split_after_root(a)), "outside"),
    "two-parents": (_set("tree0.left_child", 0, lambda a, m: a["tree0.right_child"][0]), "parents"),
    "half-leaf": (_set("tree0.left_child", 0, -1), "only one child"),
    "feature-too-large": (_set("tree0.feature", 0, 4), "splits on feature 4"),
    "feature-negative": (_set("tree0.feature", 0, -1), "splits on feature -1"),
    "threshold-nan": (_set("tree0.threshold", 0, np.nan), "threshold NaN"),
    "value-negative": (_set("tree0.value", 0, -1.0), "non-negative"),
    "value-shape": (_replace("tree0.value", lambda v: v[:, :, :2].copy()), r"tree0\.value.*shape"),
    "node-count": (_meta(lambda m: m["trees"][0].update(node_count=m["trees"][0]["node_count"] + 1)), "shape"),
    "float-for-int": (_replace("tree0.left_child", lambda v: v.astype(np.float64)), "dtype float64, expected int64"),
    "missing-array": (lambda m, a: a.pop("tree1.feature"), "tree1.feature.*missing"),
    "extra-array": (lambda m, a: a.update(junk=np.zeros(1)), "unexpected arrays"),
    "type-unknown": (_meta(lambda m: m.update(type="os.system")), "'type' must be one of"),
    "classes-mismatch": (_meta(lambda m: m.update(classes=[0, 1])), "shape"),
    "node-count-oversize": (_meta(lambda m: m["trees"][0].update(node_count=10**8 + 1)), "outside"),
    "total-oversize": (_meta(lambda m: [t.update(node_count=4 * 10**7) for t in m["trees"]]), "more than"),
    "bad-param": (_meta(lambda m: m["params"].update(n_jobs="everything")), "n_jobs"),
    "unknown-param": (_meta(lambda m: m["params"].update(evil=1)), "no parameter 'evil'"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_forest_is_refused(case: str) -> None:
    change, message = CRAFTED[case]
    meta, arrays = _crafted(change)
    with pytest.raises(ValueError, match=message):
        estimator_from_arrays(meta, arrays)


@pytest.mark.parametrize("data", [b"", b"garbage", b"\xff" * 8 + b"{}"], ids=["empty", "text", "header"])
def test_garbage_bytes_are_refused(data: bytes) -> None:
    meta, _ = save_estimator_bytes(_forest())
    with pytest.raises(ValueError, match="not valid safetensors"):
        load_estimator_bytes(meta, data)


def test_truncated_bytes_are_refused() -> None:
    meta, data = save_estimator_bytes(_forest())
    with pytest.raises(ValueError, match="not valid safetensors"):
        load_estimator_bytes(meta, data[:-9])


def _boosting() -> Any:
    features, labels = _data(3, nan=True)
    return make_estimator(ClassifierConfig(method="hgb", hgb=BoostingConfig(max_iter=2, max_leaf_nodes=4))).fit(features, labels)


HGB_CRAFTED = {
    "left-too-large": (_set("predictor0_0.left", 0, 10**6), "outside"),
    "right-backwards": (_set("predictor0_0.right", 0, 0), "after their parent"),
    "feature-too-large": (_set("predictor0_0.feature_idx", 0, 4), "splits on feature 4"),
    "leaf-with-children": (_set("predictor0_0.left", -1, 1), "is_leaf inconsistent"),
    "split-as-leaf": (_set("predictor0_0.is_leaf", 0, 1), "is_leaf inconsistent"),
    "is-leaf-not-bool": (_set("predictor0_0.is_leaf", 0, 7), "0 or 1"),
    "depth": (_set("predictor0_0.depth", -1, 9), "depth"),
    "threshold-nan": (_set("predictor0_0.num_threshold", 0, np.nan), "threshold NaN"),
    "bin-thresholds": (_set("bin_thresholds", 0, np.inf), "bin_thresholds must be finite"),
    "baseline-shape": (_replace("baseline_prediction", lambda v: v[:, :2].copy()), "baseline_prediction.*shape"),
    "predictors-per-iteration": (_meta(lambda m: m["predictors"][0].pop()), "list of 3 predictors"),
}


@pytest.mark.parametrize("case", sorted(HGB_CRAFTED))
def test_crafted_boosting_is_refused(case: str) -> None:
    change, message = HGB_CRAFTED[case]
    meta, arrays = _crafted(change, _boosting())
    with pytest.raises(ValueError, match=message):
        estimator_from_arrays(meta, arrays)


def _svm() -> Any:
    features, labels = _data(3, nan=False)
    return make_estimator(ClassifierConfig(method="svm")).fit(features, labels)


SVM_CRAFTED = {
    "n-support-sum": (_set("svc.n_support", 0, 1000), "sum to"),
    "n-support-negative": (_set("svc.n_support", 0, -1), "non-negative"),
    "dual-coef-shape": (_replace("svc.dual_coef", lambda v: v[:, 1:].copy()), "svc.dual_coef.*shape"),
    "intercept-shape": (_replace("svc.intercept", lambda v: v[:1].copy()), "svc.intercept.*shape"),
    "vectors-features": (_replace("svc.support_vectors", lambda v: v[:, :3].copy()), "svc.support_vectors.*shape"),
    "calibrators": (_replace("calibration.a", lambda v: v[:2].copy()), "calibration.a.*shape"),
    "scale-zero": (_set("scale.scale", 0, 0.0), "scale positive"),
}


@pytest.mark.parametrize("case", sorted(SVM_CRAFTED))
def test_crafted_svm_is_refused(case: str) -> None:
    change, message = SVM_CRAFTED[case]
    meta, arrays = _crafted(change, _svm())
    with pytest.raises(ValueError, match=message):
        estimator_from_arrays(meta, arrays)
