"""Object classification: a scikit-learn classifier on the measurements of segmented objects.

:func:`fit_object_classifier` measures the labelled objects of some images
(:func:`~pixlearn.classical.objects.object_features`) and fits the estimator a
:class:`~pixlearn.classical.config.ClassifierConfig` describes (a class-balanced random forest by
default); :class:`ObjectClassifier` holds the settings, the fitted estimator and the feature
names, and classifies every object of a new label image (:meth:`ObjectClassifier.predict_objects`
returns :class:`ObjectPredictions`: the table with classes and probabilities, and counts per class). :func:`objects_at_points` turns clicked
points ``(row, column, class)`` into the ``{object id: class}`` annotations training takes, and
:func:`class_label_image` paints each object with its class for display.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.estimators import make_estimator
from pixlearn.classical.objects import ObjectFeatureConfig, object_features, object_ids
from pixlearn.errors import PixlearnError

__all__ = ["ObjectClassifier", "ObjectPredictions", "class_label_image", "fit_object_classifier", "objects_at_points"]

SCHEMA_VERSION = 1


def objects_at_points(labels: np.ndarray, points: Sequence[Sequence[int]]) -> dict[int, int]:
    """Object annotations from clicked points.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels, 0 is background.
    points : sequence of (row, column, class) or (plane, row, column, class)
        Pixel coordinates (as ints) and a class index each.

    Returns
    -------
    classes : dict of int to int
        Object id to class. Points on the background are ignored; the last point on an
        object wins.

    Raises
    ------
    ValueError
        A point of the wrong length or outside the image.

    Examples
    --------
    >>> labels = np.array([[0, 1, 1], [2, 2, 0]])
    >>> objects_at_points(labels, [(0, 1, 3), (1, 0, 0), (1, 2, 1)])
    {1: 3, 2: 0}
    """
    labels = np.asarray(labels)
    result: dict[int, int] = {}
    for point in points:
        if len(point) != labels.ndim + 1:
            raise ValueError(f"a point on a {labels.ndim}D label image is {labels.ndim} coordinates and a class, got {point}")
        coords = tuple(int(c) for c in point[:-1])
        if any(not 0 <= c < n for c, n in zip(coords, labels.shape, strict=True)):
            raise ValueError(f"point {coords} lies outside the label image of shape {labels.shape}")
        label_value = int(labels[coords])
        if label_value > 0:
            result[label_value] = int(point[-1])
    return result


def class_label_image(labels: np.ndarray, ids: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Paint each object with its class: ``class + 1`` on the object, 0 on the background.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
    ids : ndarray of shape (n_objects,)
        Object ids, as :func:`~pixlearn.classical.objects.object_ids`.
    classes : ndarray of shape (n_objects,), integer
        Class index per object.

    Returns
    -------
    class_image : ndarray, shape of `labels`, uint16

    Examples
    --------
    >>> class_label_image(np.array([[0, 1], [2, 2]]), np.array([1, 2]), np.array([4, 0])).tolist()
    [[0, 5], [1, 1]]
    """
    labels = np.asarray(labels)
    lut = np.zeros(int(max(labels.max(initial=0), np.max(ids, initial=0))) + 1, np.uint16)
    lut[np.asarray(ids, np.int64)] = np.asarray(classes, np.int64) + 1
    return lut[labels]


@dataclasses.dataclass(frozen=True)
class ObjectPredictions:
    """Measurements and predicted classes of the objects of one image.

    Attributes
    ----------
    ids : ndarray of shape (n_objects,), int64
        Object ids (label values), increasing.
    feature_names : tuple of str
    table : ndarray of shape (n_objects, n_features), float64
        Measurements (``nan`` where undefined).
    classes : ndarray of shape (n_objects,), int64
    probabilities : ndarray of shape (n_objects, n_classes), float64
    class_names : tuple of str
    """

    ids: np.ndarray
    feature_names: tuple[str, ...]
    table: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per object: ``object_id``, the measurements, ``class`` and one
        ``p_<class name>`` per class (for a CSV); undefined measurements are ``None``."""
        result = []
        for i, object_id in enumerate(self.ids):
            row: dict[str, Any] = {"object_id": int(object_id)}
            row.update({n: (None if np.isnan(v) else float(v)) for n, v in zip(self.feature_names, self.table[i], strict=True)})
            row["class"] = self.class_names[int(self.classes[i])]
            row.update({f"p_{n}": float(p) for n, p in zip(self.class_names, self.probabilities[i], strict=True)})
            result.append(row)
        return result

    def counts(self) -> dict[str, int]:
        """Objects per class name (every class, zeros included): the per-image summary."""
        per_class = np.bincount(self.classes, minlength=len(self.class_names))
        return {n: int(c) for n, c in zip(self.class_names, per_class, strict=True)}


def _finite(table: np.ndarray) -> np.ndarray:
    """Undefined measurements (``nan``) as 0, which the estimators accept."""
    return np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0)


@dataclasses.dataclass
class ObjectClassifier:
    """A fitted object classifier: settings, estimator and the names of its features.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
        From :func:`~pixlearn.classical.estimators.make_estimator`.
    feature_cfg : ObjectFeatureConfig
    clf_cfg : ClassifierConfig
    class_names : tuple of str
    feature_names : tuple of str
        Columns the estimator was fitted on.
    ndim, n_channels : int
        The images it takes.
    """

    estimator: Any
    feature_cfg: ObjectFeatureConfig
    clf_cfg: ClassifierConfig
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    ndim: int
    n_channels: int

    kind = "object-classifier"
    task = "objects"

    def predict_table(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes and probabilities of rows of measurements.

        Parameters
        ----------
        table : ndarray of shape (n_objects, n_features)
            Columns in the order of :attr:`feature_names`.

        Returns
        -------
        classes : ndarray of shape (n_objects,), int64
        probabilities : ndarray of shape (n_objects, n_classes), float64
        """
        if table.ndim != 2 or table.shape[1] != len(self.feature_names):
            raise PixlearnError(f"a table of {len(self.feature_names)} columns is needed, got shape {table.shape}")
        n_classes = len(self.class_names)
        probabilities = np.zeros((table.shape[0], n_classes))
        if table.shape[0]:
            # the estimator knows only the classes it saw; place its columns among all classes
            seen = np.asarray(self.estimator.classes_, np.int64)
            probabilities[:, seen] = self.estimator.predict_proba(_finite(table))
        return probabilities.argmax(axis=1).astype(np.int64), probabilities

    def predict(self, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify every object of `labels`.

        Parameters
        ----------
        image : ndarray of shape (M, N[, C]) or (P, M, N[, C])
        labels : ndarray of shape (M, N) or (P, M, N), integer

        Returns
        -------
        classes : ndarray of shape (n_objects,), int64
            Class index per object, in the order of
            :func:`~pixlearn.classical.objects.object_ids`.
        probabilities : ndarray of shape (n_objects, n_classes), float64
        """
        predictions = self.predict_objects(image, labels)
        return predictions.classes, predictions.probabilities

    def predict_objects(self, image: np.ndarray, labels: np.ndarray) -> ObjectPredictions:
        """Measure and classify every object of `labels`, keeping the measurements.

        Parameters
        ----------
        image : ndarray of shape (M, N[, C]) or (P, M, N[, C])
        labels : ndarray of shape (M, N) or (P, M, N), integer

        Returns
        -------
        predictions : ObjectPredictions
        """
        labels = np.asarray(labels)
        if labels.ndim != self.ndim:
            raise PixlearnError(f"this object classifier takes {self.ndim}D labels, got shape {labels.shape}")
        names, table = object_features(image, labels, self.feature_cfg)
        if tuple(names) != self.feature_names:
            raise PixlearnError(f"the image gives {len(names)} measurements, the classifier was fitted on "
                                f"{len(self.feature_names)} (another number of channels?)")
        classes, probabilities = self.predict_table(table)
        return ObjectPredictions(object_ids(labels), self.feature_names, table, classes, probabilities, self.class_names)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description of everything but the estimator (read by :meth:`from_metadata`)."""
        return {
            "kind": self.kind,
            "schema_version": SCHEMA_VERSION,
            "ndim": self.ndim,
            "n_channels": self.n_channels,
            "class_names": list(self.class_names),
            "feature_names": list(self.feature_names),
            "n_measurements": len(self.feature_names),
            "object_features": self.feature_cfg.to_dict(),
            "classifier": self.clf_cfg.to_dict(),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], estimator: Any) -> ObjectClassifier:
        """Rebuild from :meth:`to_metadata` output and the fitted estimator.

        Raises
        ------
        PixlearnError
            Another model kind, missing keys, or an estimator fitted on other features.
        """
        if meta.get("kind") != cls.kind:
            raise PixlearnError(f"metadata describes a {meta.get('kind')!r} model, not an object classifier")
        try:
            model = cls(
                estimator=estimator,
                feature_cfg=ObjectFeatureConfig.from_dict(meta["object_features"]),
                clf_cfg=ClassifierConfig.from_dict(meta["classifier"]),
                class_names=tuple(str(c) for c in meta["class_names"]),
                feature_names=tuple(str(n) for n in meta["feature_names"]),
                ndim=int(meta["ndim"]),
                n_channels=int(meta["n_channels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PixlearnError(f"object classifier metadata is invalid: {exc}") from exc
        n_in = getattr(estimator, "n_features_in_", len(model.feature_names))
        if n_in != len(model.feature_names):
            raise PixlearnError(f"the estimator takes {n_in} features, the metadata names {len(model.feature_names)}")
        return model


def fit_object_classifier(
    images: Sequence[np.ndarray],
    label_images: Sequence[np.ndarray],
    object_classes: Sequence[Mapping[int, int]],
    *,
    class_names: Sequence[str] | None = None,
    feature_cfg: ObjectFeatureConfig | None = None,
    clf_cfg: ClassifierConfig | None = None,
) -> ObjectClassifier:
    """Fit an object classifier on the annotated objects of some images.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N[, C]) or (P, M, N[, C])
    label_images : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Instance labels of each image.
    object_classes : sequence of mapping of int to int
        Per image, object id to class index (e.g. from :func:`objects_at_points`); objects
        left out are not used.
    class_names : sequence of str, optional
        Default: ``"0"`` .. ``str(max class)``.
    feature_cfg : ObjectFeatureConfig, optional
    clf_cfg : ClassifierConfig, optional
        Default: a random forest with balanced class weights (``class_weight="balanced"``).

    Returns
    -------
    model : ObjectClassifier

    Raises
    ------
    PixlearnError
        Sequences of different lengths, an id not in its label image, a class outside
        `class_names`, fewer than two classes, or images of different dimensionality or channels.
    """
    feature_cfg = feature_cfg or ObjectFeatureConfig()
    clf_cfg = clf_cfg or ClassifierConfig()
    if not len(images) == len(label_images) == len(object_classes):
        raise PixlearnError(f"{len(images)} images, {len(label_images)} label images and "
                            f"{len(object_classes)} annotations: one of each per image is needed")
    tables, targets = [], []
    names: list[str] | None = None
    for index, (image, labels, annotated) in enumerate(zip(images, label_images, object_classes, strict=True)):
        if not annotated:
            continue
        labels = np.asarray(labels)
        these, table = object_features(image, labels, feature_cfg)
        if names is not None and these != names:
            raise PixlearnError(f"image {index} gives other measurements than the first (dimensionality or channels differ)")
        names = these
        ids = object_ids(labels)
        rows = np.searchsorted(ids, list(annotated))
        missing = [i for i, r in zip(annotated, rows, strict=True) if r >= ids.size or ids[r] != i]
        if missing:
            raise PixlearnError(f"image {index}: object ids {missing[:5]} are not in its label image")
        tables.append(table[rows])
        targets.append(np.fromiter(annotated.values(), np.int64, len(annotated)))
    if names is None:
        raise PixlearnError("no annotated object to train on")
    table, target = np.concatenate(tables), np.concatenate(targets)
    n_classes = len(class_names) if class_names is not None else int(target.max()) + 1
    if target.min() < 0 or target.max() >= n_classes:
        raise PixlearnError(f"object classes must be 0..{n_classes - 1}, got {target.min()}..{target.max()}")
    if np.unique(target).size < 2:
        raise PixlearnError("annotate objects of at least two classes")
    estimator = make_estimator(clf_cfg).fit(_finite(table), target)
    first = np.asarray(label_images[0])
    image0 = np.asarray(images[0])
    return ObjectClassifier(
        estimator=estimator,
        feature_cfg=feature_cfg,
        clf_cfg=clf_cfg,
        class_names=tuple(class_names) if class_names is not None else tuple(str(i) for i in range(n_classes)),
        feature_names=tuple(names),
        ndim=first.ndim,
        n_channels=1 if image0.shape == first.shape else int(image0.shape[-1]),
    )
