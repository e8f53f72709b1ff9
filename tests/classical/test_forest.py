"""Compiled random-forest inference equals scikit-learn's ``predict_proba``.

The first test in a fresh environment also compiles the numba kernels (a few seconds; later runs
load them from numba's on-disk cache).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from pixlearn.classical.config import ClassifierConfig, ForestConfig
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.classical.forest import (
    compile_forest,
    predict_forest,
    predict_forest_labels,
)
from pixlearn.classical.predict import predict_stack


def _data(n_classes: int, n: int = 600, n_features: int = 6, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).astype(np.float32)
    score = x[:, 0] + x[:, 1] * x[:, 2] + noise * rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return x, y


def _check(clf, x_test: np.ndarray, order: str = "depth") -> None:
    compiled = compile_forest(clf, order=order)
    ours = predict_forest(compiled, x_test, n_threads=2)
    ref = clf.predict_proba(x_test)
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)
    labels = predict_forest_labels(compiled, x_test, n_threads=2)
    np.testing.assert_array_equal(labels, np.argmax(ours, axis=1))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("max_depth", [None, 3])
@pytest.mark.parametrize("order", ["depth", "breadth"])
def test_equals_predict_proba(n_classes, max_depth, order):
    x, y = _data(n_classes)
    clf = RandomForestClassifier(n_estimators=12, max_depth=max_depth, class_weight="balanced", random_state=0)
    clf.fit(x, y)
    x_test = np.random.default_rng(1).normal(size=(3000, x.shape[1])).astype(np.float32)
    _check(clf, x_test, order)


def test_inputs_of_any_layout_and_dtype():
    x, y = _data(2)
    clf = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(x, y)
    compiled = compile_forest(clf)
    x_test = np.random.default_rng(2).normal(size=(500, x.shape[1]))  # float64, C order
    ref = clf.predict_proba(x_test)
    for variant in (x_test, np.asfortranarray(x_test, np.float32), x_test[::2], x_test.astype(np.float32).T.copy().T):
        np.testing.assert_allclose(predict_forest(compiled, variant), clf.predict_proba(variant), atol=1e-6)
    np.testing.assert_allclose(predict_forest(compiled, x_test, n_threads=1), ref, atol=1e-6)
    out = np.empty((500, 2), np.float32)
    assert predict_forest(compiled, x_test, out=out) is out
    assert predict_forest(compiled, x_test[:0]).shape == (0, 2)


def test_thresholds_decide_float32_values_exactly():
    # training values one float32 step apart: the split threshold is their float64 midpoint
    a = np.float32(1.0)
    b = np.nextafter(a, np.float32(2.0))
    x = np.array([[a], [b]] * 4, np.float32)
    clf = RandomForestClassifier(n_estimators=3, bootstrap=False, random_state=0).fit(x, [0, 1] * 4)
    probe = np.array([[a], [b], [np.nextafter(a, np.float32(0.0))], [np.float32(1e30)], [np.float32(-1e30)]], np.float32)
    np.testing.assert_allclose(predict_forest(compile_forest(clf), probe), clf.predict_proba(probe), atol=1e-6)


def test_missing_values_follow_sklearn():
    x, y = _data(2, n=400, n_features=3)
    x[::7, 1] = np.nan  # scikit-learn learns which side NaN goes to
    clf = RandomForestClassifier(n_estimators=6, random_state=0).fit(x, y)
    x_test = np.random.default_rng(3).normal(size=(400, 3)).astype(np.float32)
    x_test[::3, 1] = np.nan
    x_test[::5, 0] = np.nan
    _check(clf, x_test)


def test_single_tree_and_single_leaf():
    x, y = _data(2, n=200)
    one_tree = RandomForestClassifier(n_estimators=1, random_state=0).fit(x, y)
    _check(one_tree, x)
    # a forest fitted on one class: every tree is a single leaf
    single_leaf = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, np.zeros(len(x), int))
    compiled = compile_forest(single_leaf)
    assert compiled.nodes.shape[0] == 4
    np.testing.assert_array_equal(predict_forest(compiled, x), np.ones((len(x), 1), np.float32))
    np.testing.assert_array_equal(predict_forest_labels(compiled, x), np.zeros(len(x), np.int64))


def test_rejects_what_it_cannot_compile():
    x, y = _data(2, n=100)
    with pytest.raises(ValueError):
        compile_forest(RandomForestClassifier())  # not fitted
    multi = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, np.stack([y, y], axis=1))
    with pytest.raises(ValueError):
        compile_forest(multi)
    compiled = compile_forest(RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y))
    with pytest.raises(ValueError):
        predict_forest(compiled, x[:, :3])


@pytest.mark.parametrize("ndim", [2, 3])
def test_pixel_classifier_same_as_sklearn_path(ndim):
    rng = np.random.default_rng(ndim)
    shape = (48, 48) if ndim == 2 else (12, 32, 32)
    image = rng.normal(size=shape + (1,)).astype(np.float32)
    image[..., 0] += np.indices(shape).sum(axis=0) % 16 < 8  # stripes
    truth = (np.indices(shape).sum(axis=0) % 16 < 8).astype(np.int64)
    targets = np.full(shape, -1, np.int64)
    pick = rng.random(shape) < 0.1
    targets[pick] = truth[pick]
    feature_cfg = FeatureConfig(sigmas=(0.7, 1.6))
    model = fit_pixel_classifier(
        [image], [targets], feature_cfg, ClassifierConfig(rf=ForestConfig(n_estimators=10), n_jobs=2), class_names=("a", "b")
    )
    assert model._compiled_forest() is not None
    probabilities = model.predict_probabilities(image)
    labels = model.predict_labels(image)
    # the same model through scikit-learn's trees (no compiled forest)
    model._forest = (model.estimator, None)
    ref_probabilities = model.predict_probabilities(image)
    ref_labels = model.predict_labels(image)
    np.testing.assert_allclose(probabilities, ref_probabilities, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(labels, ref_labels)
    model._forest = None  # recompiled lazily
    np.testing.assert_array_equal(model.predict_labels(image), labels)


def test_predict_stack_compiles_on_the_fly():
    x, y = _data(3, n=300)
    clf = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    stack = np.random.default_rng(4).normal(size=(x.shape[1], 20, 30)).astype(np.float32)
    probabilities = predict_stack(clf, stack, 4)
    ref = clf.predict_proba(stack.reshape(x.shape[1], -1).T)
    np.testing.assert_allclose(probabilities.reshape(-1, 4)[:, :3], ref, atol=1e-6)
    assert np.all(probabilities[..., 3] == 0)
    labels = predict_stack(clf, stack, 4, labels=True)
    np.testing.assert_array_equal(labels.ravel(), np.argmax(ref, axis=1))
