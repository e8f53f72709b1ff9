"""Object classes from clicks, as pure functions (no Qt, no napari): what the objects part runs.

The user clicks objects of an instance label image, one set of points per class (a napari
Points layer each, in the labels' data coordinates). :func:`clicked_objects` maps the clicks to
the objects under them, :func:`train_object_classes` fits
:func:`pixlearn.classical.object_model.fit_object_classifier` on those objects and classifies
every object of the image (:class:`ObjectTraining`: the model, the predictions and the class
image, ``class index + 1`` on each object), :func:`classify_label_objects` does the same with a
model trained before (e.g. loaded from an ``object-classifier`` model file), and
:func:`counts_text` is the summary the panel shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.object_model import (
    ObjectClassifier,
    ObjectPredictions,
    class_label_image,
    fit_object_classifier,
    objects_at_points,
)
from pixlearn.classical.objects import ObjectFeatureConfig
from pixlearn.errors import PixlearnError

__all__ = [
    "ObjectTraining",
    "classify_label_objects",
    "clicked_objects",
    "counts_text",
    "points_in_image",
    "train_object_classes",
]


def points_in_image(points: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Clicked points as pixel indices, those outside the image left out.

    Parameters
    ----------
    points : ndarray of shape (n_points, ndim), float
        Data coordinates (a napari Points layer's ``data``), ``ndim = len(shape)``.
    shape : sequence of int
        Spatial shape ``(M, N)`` or ``(P, M, N)`` of the label image.

    Returns
    -------
    indices : ndarray of shape (n_inside, ndim), int64
        Rounded to the nearest pixel.

    Raises
    ------
    ValueError
        Points of another dimensionality than `shape`.

    Examples
    --------
    >>> points_in_image(np.array([[0.4, 1.6], [-1.0, 1.0], [1.0, 3.0]]), (2, 3)).tolist()
    [[0, 2]]
    """
    points = np.asarray(points, float)
    if points.size == 0:
        points = points.reshape(0, len(shape))
    if points.ndim != 2 or points.shape[1] != len(shape):
        raise ValueError(f"points of shape {points.shape} do not fit a {len(shape)}D image")
    indices = np.round(points).astype(np.int64)
    inside = np.all((indices >= 0) & (indices < np.asarray(shape)), axis=1)
    return indices[inside]


def clicked_objects(labels: np.ndarray, points_per_class: Sequence[np.ndarray]) -> dict[int, int]:
    """The objects under the clicks, with their class.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels, 0 is background.
    points_per_class : sequence of ndarray of shape (n_points, labels.ndim)
        Entry ``k`` holds the clicks of class ``k`` (data coordinates).

    Returns
    -------
    classes : dict of int to int
        Object id to class index. Clicks on the background or outside the image are ignored;
        an object clicked for several classes takes the last class.

    Examples
    --------
    >>> labels = np.array([[0, 1, 1], [2, 2, 0]])
    >>> clicked_objects(labels, [np.array([[0.0, 1.0]]), np.array([[1.0, 0.2], [1.0, 2.0]])])
    {1: 0, 2: 1}
    """
    labels = np.asarray(labels)
    rows = [(*map(int, index), k) for k, points in enumerate(points_per_class)
            for index in points_in_image(points, labels.shape)]
    return objects_at_points(labels, rows)


@dataclasses.dataclass(frozen=True)
class ObjectTraining:
    """An object classifier fitted on clicked objects and its classes for every object.

    Attributes
    ----------
    model : ObjectClassifier
    predictions : ObjectPredictions
        Every object of the label image (ids, measurements, classes, probabilities).
    class_image : ndarray, shape of the labels, uint16
        ``class index + 1`` on each object, 0 on the background.
    n_clicked : int or None
        Objects the model was fitted on; ``None`` for a model trained before
        (:func:`classify_label_objects`).
    """

    model: ObjectClassifier
    predictions: ObjectPredictions
    class_image: np.ndarray
    n_clicked: int | None


def train_object_classes(
    image: np.ndarray,
    labels: np.ndarray,
    clicked: dict[int, int],
    class_names: Sequence[str],
    *,
    feature_cfg: ObjectFeatureConfig | None = None,
    clf_cfg: ClassifierConfig | None = None,
) -> ObjectTraining:
    """Fit an object classifier on the clicked objects and classify every object.

    Parameters
    ----------
    image : ndarray of shape (M, N[, C]) or (P, M, N[, C])
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels of `image`.
    clicked : dict of int to int
        Object id to class index (:func:`clicked_objects`).
    class_names : sequence of str
    feature_cfg : ObjectFeatureConfig, optional
    clf_cfg : ClassifierConfig, optional
        Default: a class-balanced random forest.

    Returns
    -------
    training : ObjectTraining

    Raises
    ------
    PixlearnError
        Fewer than two classes among the clicked objects.
    """
    labels = _integer_labels(labels)
    if len(set(clicked.values())) < 2:
        raise PixlearnError(f"click objects of at least two classes ({len(clicked)} objects clicked so far)")
    model = fit_object_classifier([image], [labels], [clicked], class_names=tuple(class_names),
                                  feature_cfg=feature_cfg, clf_cfg=clf_cfg)
    predictions = model.predict_objects(image, labels)
    class_image = class_label_image(labels, predictions.ids, predictions.classes)
    return ObjectTraining(model, predictions, class_image, len(clicked))


def classify_label_objects(model: ObjectClassifier, image: np.ndarray, labels: np.ndarray) -> ObjectTraining:
    """Classify every object of `labels` with a model trained before (saved, then loaded).

    Parameters
    ----------
    model : ObjectClassifier
        E.g. from :func:`pixlearn.models.model_file.load_model` on an ``object-classifier`` file.
    image : ndarray of shape (M, N[, C]) or (P, M, N[, C])
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels of `image`.

    Returns
    -------
    classes : ObjectTraining
        With ``n_clicked=None`` (nothing was fitted here).

    Raises
    ------
    PixlearnError
        Labels of another dimensionality than the model's, or an image giving other
        measurements (another number of channels).
    """
    labels = _integer_labels(labels)
    predictions = model.predict_objects(image, labels)
    class_image = class_label_image(labels, predictions.ids, predictions.classes)
    return ObjectTraining(model, predictions, class_image, None)


def _integer_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    return labels if np.issubdtype(labels.dtype, np.integer) else labels.astype(np.int64)


def counts_text(counts: dict[str, int], n_clicked: int | None) -> str:
    """One line for the panel: objects per class, the total and how many were clicked.

    Examples
    --------
    >>> counts_text({"dim": 3, "bright": 5}, 4)
    'dim: 3, bright: 5 (8 objects, 4 clicked)'
    >>> counts_text({"dim": 3, "bright": 5}, None)  # a model trained before
    'dim: 3, bright: 5 (8 objects)'
    """
    per_class = ", ".join(f"{name}: {count}" for name, count in counts.items())
    clicked = "" if n_clicked is None else f", {n_clicked} clicked"
    return f"{per_class} ({sum(counts.values())} objects{clicked})"
