"""The napari plugin's logic without Qt: object classes from clicks, and which models it applies."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pixlearn.app.napari.model_choice import builtin_choices, refusal
from pixlearn.app.napari.object_classes import (
    classify_label_objects,
    clicked_objects,
    counts_text,
    points_in_image,
    train_object_classes,
)
from pixlearn.classical.config import ClassifierConfig
from pixlearn.errors import PixlearnError

ONE_JOB = ClassifierConfig(n_jobs=1)


def centres(labels: np.ndarray, ids) -> np.ndarray:
    """A click at the centroid of each object of `ids` (float, as napari gives points)."""
    from scipy import ndimage as ndi

    return np.array(ndi.center_of_mass(labels > 0, labels, list(ids)), float).reshape(-1, labels.ndim)


def first_of_each(classes: dict[int, int], n: int) -> list[list[int]]:
    """The first `n` object ids of each class (0, 1)."""
    return [[k for k, c in sorted(classes.items()) if c == wanted][:n] for wanted in (0, 1)]


def test_points_outside_the_image_and_on_the_background_are_ignored():
    labels = np.array([[0, 1, 1], [2, 2, 0]])
    assert points_in_image(np.empty((0, 2)), labels.shape).shape == (0, 2)
    points = [np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[0.6, 1.4], [-0.7, 2.0]])]
    assert clicked_objects(labels, points) == {2: 1}  # (0.6, 1.4) rounds to (1, 1), object 2
    assert clicked_objects(labels, [np.array([[0.0, 1.0]]), np.array([[0.0, 2.0]])]) == {1: 1}  # last wins
    with pytest.raises(ValueError, match="do not fit a 2D image"):
        points_in_image(np.zeros((1, 3)), labels.shape)
    stack = np.stack([labels, labels + 10 * (labels > 0)])  # 3D: (plane, row, column) clicks
    assert clicked_objects(stack, [np.array([[1.0, 1.0, 0.0]]), np.array([[0.0, 0.0, 2.0]])]) == {12: 0, 1: 1}


def test_clicked_bright_and_dim_objects_classify_the_others(bright_dim_objects):
    image, labels, truth = bright_dim_objects
    chosen = first_of_each(truth, 5)
    clicked = clicked_objects(labels, [centres(labels, ids) for ids in chosen])
    assert clicked == {k: c for c, ids in enumerate(chosen) for k in ids}
    training = train_object_classes(image, labels, clicked, ("dim", "bright"), clf_cfg=ONE_JOB)
    predictions = training.predictions
    held_out = np.array([k not in clicked for k in predictions.ids])
    expected = np.array([truth[k] for k in predictions.ids])
    assert held_out.sum() == 26 and np.mean(predictions.classes[held_out] == expected[held_out]) >= 0.9
    # the class image: class + 1 on every object, 0 on the background
    assert training.class_image.dtype == np.uint16 and not training.class_image[labels == 0].any()
    for k, c in zip(predictions.ids, predictions.classes, strict=True):
        assert set(np.unique(training.class_image[labels == k])) == {c + 1}
    counts = predictions.counts()
    assert sum(counts.values()) == 36 and training.n_clicked == 10
    assert counts_text(counts, training.n_clicked).endswith("(36 objects, 10 clicked)")


def test_a_saved_object_model_classifies_the_same_after_loading(bright_dim_objects, tmp_path):
    from pixlearn.models.model_file import load_model, save_model

    image, labels, truth = bright_dim_objects
    clicked = clicked_objects(labels, [centres(labels, ids) for ids in first_of_each(truth, 5)])
    training = train_object_classes(image, labels, clicked, ("dim", "bright"), clf_cfg=ONE_JOB)
    loaded = load_model(save_model(training.model, tmp_path / "objects.zip"))
    assert loaded.kind == "object-classifier" and loaded.class_names == ("dim", "bright")
    applied = classify_label_objects(loaded, image, labels.astype(np.float64))  # float labels are taken too
    np.testing.assert_array_equal(applied.class_image, training.class_image)
    np.testing.assert_allclose(applied.predictions.probabilities, training.predictions.probabilities)
    assert applied.n_clicked is None
    assert counts_text(applied.predictions.counts(), applied.n_clicked).endswith("(36 objects)")
    with pytest.raises(PixlearnError, match="takes 2D labels"):
        classify_label_objects(loaded, image[None], labels[None])


def test_one_class_of_clicks_is_refused(bright_dim_objects):
    image, labels, truth = bright_dim_objects
    clicked = clicked_objects(labels, [centres(labels, first_of_each(truth, 3)[0]), np.empty((0, 2))])
    with pytest.raises(PixlearnError, match="at least two classes"):
        train_object_classes(image, labels, clicked, ("dim", "bright"), clf_cfg=ONE_JOB)


def test_the_builtin_nuclei_is_offered_and_image_classifiers_are_refused():
    assert "nuclei" in [choice.name for choice in builtin_choices()]
    assert all(choice.task in ("semantic", "instances", "restore") for choice in builtin_choices())
    assert refusal(SimpleNamespace(kind="network", task="instances")) is None
    message = refusal(SimpleNamespace(kind="image-classifier", task="classify"), "rbc.zip")
    assert message.startswith("rbc.zip is an image classifier") and "\n" not in message
    assert "task 'table'" in refusal(SimpleNamespace(kind="other", task="table"))


def test_the_examples_in_the_logic_modules_hold():
    import doctest

    from pixlearn.app.napari import model_choice, object_classes

    results = [doctest.testmod(module) for module in (object_classes, model_choice)]
    assert all(r.failed == 0 for r in results) and sum(r.attempted for r in results) >= 5
