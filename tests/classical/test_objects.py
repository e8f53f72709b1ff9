"""Object measurements and the object classifier on tiny synthetic images with known answers."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from pixlearn.classical import (
    ClassifierConfig,
    ForestConfig,
    ObjectClassifier,
    ObjectFeatureConfig,
    class_label_image,
    fit_object_classifier,
    object_feature_names,
    object_features,
    object_ids,
    object_model,
    objects,
    objects_at_points,
)
from pixlearn.errors import PixlearnError

# three kinds of objects: small bright, large bright, small dim (size alone or intensity alone
# cannot tell all three apart)
KINDS = ((3, 0.9), (6, 0.9), (3, 0.45))


def _scene(seed: int, ndim: int = 2, cell: int = 16, n_side: int = 4):
    """Discs (or balls) on a grid, kind chosen at random; returns image, labels, {id: kind}."""
    rng = np.random.default_rng(seed)
    shape = (cell,) * (ndim - 2) + (cell * n_side, cell * n_side)
    grid = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    image = np.full(shape, 0.1)
    kinds: dict[int, int] = {}
    for index in range(n_side * n_side):
        kind = int(rng.integers(len(KINDS))) if index >= len(KINDS) else index  # every kind once
        radius, value = KINDS[kind]
        radius = radius - 1 if ndim == 3 else radius
        centre = [cell / 2] * (ndim - 2) + [
            cell * (index // n_side) + cell / 2 + rng.uniform(-1, 1),
            cell * (index % n_side) + cell / 2 + rng.uniform(-1, 1),
        ]
        disc = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2
        labels[disc] = index + 1
        image[disc] = value
        kinds[index + 1] = kind
    image = image + rng.normal(0, 0.03, shape)
    return image, labels, kinds


def test_doctests() -> None:
    for module in (objects, object_model):
        result = doctest.testmod(module)
        assert result.attempted >= 3 and result.failed == 0, module.__name__


@pytest.mark.parametrize(("ndim", "n_channels"), [(2, 1), (2, 3), (3, 1), (3, 2)])
def test_names_match_columns_in_2d_and_3d(ndim: int, n_channels: int) -> None:
    image, labels, _ = _scene(1, ndim=ndim, n_side=2)
    if n_channels > 1:
        image = np.stack([image * (c + 1) for c in range(n_channels)], axis=-1)
    names, table = object_features(image, labels)
    assert names == object_feature_names(ndim, n_channels)
    assert len(set(names)) == len(names)
    assert table.shape == (4, len(names)) and np.isfinite(table).all()
    assert ("perimeter" in names) == (ndim == 2) and ("lbp_0" in names) == (ndim == 2)
    assert f"intensity_mean_c{n_channels - 1}" in names


def test_known_values_of_two_squares() -> None:
    labels = np.zeros((30, 30), np.int32)
    labels[5:11, 5:11] = 1  # 6 x 6, centroid (7.5, 7.5)
    labels[5:11, 11:15] = 2  # touches square 1; centroid (7.5, 12.5)
    image = np.full((30, 30), 0.2)
    image[labels == 1] = 1.0
    image[labels == 2] = 0.6
    before = image.copy()
    names, table = object_features(image, labels, ObjectFeatureConfig(ring_px=2, neighbour_radius_px=5.5))
    np.testing.assert_array_equal(image, before)  # input untouched
    col = {n: table[:, i] for i, n in enumerate(names)}
    assert col["area"].tolist() == [36.0, 24.0]
    assert col["solidity"].tolist() == [1.0, 1.0] and col["extent"].tolist() == [1.0, 1.0]
    assert col["euler_number"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(col["equivalent_diameter_area"], np.sqrt(4 * np.array([36, 24]) / np.pi))
    np.testing.assert_allclose(col["intensity_mean_c0"], [1.0, 0.6])
    np.testing.assert_allclose(col["intensity_std_c0"], [0.0, 0.0], atol=1e-12)
    # the ring is background only: square 2's pixels are not in square 1's ring
    np.testing.assert_allclose(col["ring_mean_c0"], [0.2, 0.2])
    np.testing.assert_allclose(col["neighbour_distance_px"], [5.0, 5.0])
    assert col["neighbours_within_5.5px"].tolist() == [1.0, 1.0]


def test_lone_object_empty_image_and_no_ring() -> None:
    labels = np.zeros((10, 10), np.int32)
    labels[:, :] = 1  # fills the image: no background ring
    names, table = object_features(np.ones((10, 10)), labels)
    row = dict(zip(names, table[0], strict=True))
    assert np.isnan(row["neighbour_distance_px"]) and row["neighbours_within_50px"] == 0
    assert np.isnan(row["ring_mean_c0"])
    names, table = object_features(np.ones((10, 10)), np.zeros((10, 10), np.int32))
    assert table.shape == (0, len(names))
    assert object_ids(np.zeros((3, 3), int)).size == 0
    labels = np.zeros((10, 10), np.int32)
    labels[5, 5] = 1  # one pixel: no co-occurring pair, texture undefined
    names, table = object_features(np.ones((10, 10)), labels)
    assert np.isnan(table[0, names.index("glcm_contrast_d1")]) and table[0, names.index("area")] == 1


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="does not match"):
        object_features(np.ones((5, 6)), np.ones((5, 5), int))
    with pytest.raises(ValueError, match="integer"):
        object_features(np.ones((5, 5)), np.ones((5, 5)))
    with pytest.raises(ValueError, match="2D or 3D"):
        object_features(np.ones(5), np.ones(5, int))
    with pytest.raises(ValueError, match="ring_px"):
        ObjectFeatureConfig(ring_px=-1)
    cfg = ObjectFeatureConfig(percentiles=(5.0, 95.0), texture=False)
    assert ObjectFeatureConfig.from_dict(cfg.to_dict()) == cfg


def test_objects_at_points() -> None:
    labels = np.zeros((2, 4, 4), int)
    labels[1, 1:3, 1:3] = 7
    assert objects_at_points(labels, [(1, 1, 1, 2), (0, 0, 0, 1)]) == {7: 2}
    with pytest.raises(ValueError, match="outside"):
        objects_at_points(labels, [(2, 0, 0, 1)])
    with pytest.raises(ValueError, match="coordinates"):
        objects_at_points(labels, [(1, 1, 0)])


def _forest() -> ClassifierConfig:
    return ClassifierConfig(rf=ForestConfig(n_estimators=30), n_jobs=1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_classifier_tells_size_and_intensity_apart(ndim: int) -> None:
    train = [_scene(seed, ndim=ndim) for seed in (10, 11)]
    model = fit_object_classifier(
        [t[0] for t in train], [t[1] for t in train], [t[2] for t in train],
        class_names=["small", "large", "dim"], clf_cfg=_forest(),
    )
    image, labels, kinds = _scene(12, ndim=ndim)
    classes, probabilities = model.predict(image, labels)
    truth = np.array([kinds[i] for i in object_ids(labels)])
    np.testing.assert_array_equal(classes, truth)
    assert probabilities.shape == (len(truth), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_training_from_clicked_points_and_metadata_round_trip() -> None:
    image, labels, kinds = _scene(20)
    # one click at the centre of mass of every object, as a user would
    points = []
    for label_value, kind in kinds.items():
        rows, cols = np.nonzero(labels == label_value)
        points.append((int(np.median(rows)), int(np.median(cols)), kind))
    clicked = objects_at_points(labels, points)
    assert clicked == kinds
    model = fit_object_classifier([image], [labels], [clicked], class_names=["s", "l", "d"], clf_cfg=_forest())
    test_image, test_labels, test_kinds = _scene(21)
    classes, probabilities = model.predict(test_image, test_labels)
    assert classes.tolist() == [test_kinds[i] for i in object_ids(test_labels)]

    meta = json.loads(json.dumps(model.to_metadata()))
    again = ObjectClassifier.from_metadata(meta, model.estimator)
    assert again.feature_names == model.feature_names and again.class_names == ("s", "l", "d")
    classes_again, probabilities_again = again.predict(test_image, test_labels)
    np.testing.assert_array_equal(classes_again, classes)
    np.testing.assert_allclose(probabilities_again, probabilities)
    predictions = model.predict_objects(test_image, test_labels)
    np.testing.assert_array_equal(predictions.classes, classes)
    rows = predictions.rows()
    assert [r["object_id"] for r in rows] == object_ids(test_labels).tolist()
    assert rows[0]["class"] in ("s", "l", "d") and set(rows[0]) >= {"area", "p_s", "p_l", "p_d"}
    json.dumps(rows)
    counts = predictions.counts()
    assert list(counts) == ["s", "l", "d"] and sum(counts.values()) == len(test_kinds)
    assert counts["l"] == sum(k == 1 for k in test_kinds.values())
    painted = class_label_image(test_labels, object_ids(test_labels), classes)
    assert painted.max() <= 3 and (painted[test_labels == 0] == 0).all()


def test_classifier_errors() -> None:
    image, labels, kinds = _scene(30, n_side=2)
    with pytest.raises(PixlearnError, match="two classes"):
        fit_object_classifier([image], [labels], [{1: 0, 2: 0}], clf_cfg=_forest())
    with pytest.raises(PixlearnError, match="not in its label image"):
        fit_object_classifier([image], [labels], [{99: 0, 1: 1}], clf_cfg=_forest())
    with pytest.raises(PixlearnError, match="0..1"):
        fit_object_classifier([image], [labels], [{1: 0, 2: 5}], class_names=["a", "b"], clf_cfg=_forest())
    with pytest.raises(PixlearnError, match="one of each"):
        fit_object_classifier([image], [], [kinds], clf_cfg=_forest())
    model = fit_object_classifier([image], [labels], [kinds], clf_cfg=_forest())
    with pytest.raises(PixlearnError, match="measurements"):
        model.predict(np.stack([image, image], axis=-1), labels)
    with pytest.raises(PixlearnError, match="not an object classifier"):
        ObjectClassifier.from_metadata({"kind": "classical"}, model.estimator)
    # a class never annotated still gets a (zero) probability column
    sparse = fit_object_classifier([image], [labels], [{1: 0, 2: 2}], class_names=["a", "b", "c"], clf_cfg=_forest())
    _, probabilities = sparse.predict(image, labels)
    assert probabilities.shape == (4, 3) and (probabilities[:, 1] == 0).all()


@pytest.mark.parametrize("method", ["rf", "hgb"])
def test_fitted_estimator_goes_through_plain_arrays(method: str) -> None:
    # what a model file needs: metadata (JSON) + the estimator as plain arrays, no pickle
    from pixlearn.classical.estimator_arrays import estimator_from_arrays, estimator_to_arrays

    image, labels, kinds = _scene(40)
    cfg = ClassifierConfig(method=method, rf=ForestConfig(n_estimators=10), n_jobs=1)
    model = fit_object_classifier([image], [labels], [kinds], clf_cfg=cfg)
    meta, arrays = estimator_to_arrays(model.estimator)
    estimator = estimator_from_arrays(json.loads(json.dumps(meta)), arrays)
    again = ObjectClassifier.from_metadata(json.loads(json.dumps(model.to_metadata())), estimator)
    test_image, test_labels, _ = _scene(41)
    np.testing.assert_array_equal(again.predict(test_image, test_labels)[1], model.predict(test_image, test_labels)[1])
