"""The random forest of a classical model as ONNX reproduces pixlearn's probabilities on feature stacks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skl2onnx", reason="needs the exchange extra: pip install -e '.[exchange]'")
pytest.importorskip("onnxruntime", reason="needs the exchange extra: pip install -e '.[exchange]'")

from pixlearn.classical.config import ClassifierConfig, ForestConfig, SVMConfig  # noqa: E402
from pixlearn.classical.features import FeatureConfig, compute_features_block  # noqa: E402
from pixlearn.classical.fit import fit_pixel_classifier  # noqa: E402
from pixlearn.classical.predict import predict_stack  # noqa: E402
from pixlearn.data.normalize import apply_normalization, compute_normalization  # noqa: E402
from pixlearn.errors import PixlearnError  # noqa: E402
from pixlearn.models.onnx_classical import export_onnx_classical, onnx_probabilities  # noqa: E402

FEATURES = FeatureConfig(sigmas=(0.7, 1.6, 3.5))


def _fit(blobs, clf_cfg):
    image, labels = blobs
    targets = np.full(labels.shape, -1, np.int64)
    targets[::3, ::3] = (labels[::3, ::3] > 0).astype(np.int64)
    return image[..., None], fit_pixel_classifier([image[..., None]], [targets], FEATURES, clf_cfg)


def test_forest_onnx_probabilities_match_pixlearn_within_1e5(tmp_path, blobs_2d):
    image, model = _fit(blobs_2d, ClassifierConfig(rf=ForestConfig(n_estimators=25), seed=3, n_jobs=1))
    path = export_onnx_classical(model, tmp_path / "forest.onnx")
    normalised = apply_normalization(image, *compute_normalization(image, model.normalization))
    stack = compute_features_block(normalised, tuple(slice(0, n) for n in image.shape[:-1]), FEATURES, feature_axis="first")
    expected = predict_stack(model.estimator, stack, model.n_outputs, n_jobs=1)
    table = stack.reshape(stack.shape[0], -1).T
    got = onnx_probabilities(path, table).reshape(expected.shape)
    error = float(np.abs(got - expected).max())
    print(f"max |ONNX - pixlearn| = {error:.3g}")
    assert error <= 1e-5, f"max |ONNX - pixlearn| = {error:.3g}"
    np.testing.assert_allclose(got, model.predict_raw(normalised), atol=1e-5)


def test_other_estimators_are_refused(tmp_path, blobs_2d):
    _, model = _fit(blobs_2d, ClassifierConfig(method="svm", svm=SVMConfig(kernel="linear"), seed=1, n_jobs=1))
    with pytest.raises(PixlearnError, match="random forests only"):
        export_onnx_classical(model, tmp_path / "svm.onnx")
