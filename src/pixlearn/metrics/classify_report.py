"""Scoring a table of predicted classes against the true classes (a table or a folder per class).

:func:`evaluate_class_predictions` reads a prediction table
(:func:`pixlearn.data.classes.write_class_predictions`: names, predicted classes, one probability
column per class) and the truth: a labels table (``name,class``) or a folder holding one subfolder
per class, matched by file stem. Object predictions work the same way: a folder of the
``<image>.objects.csv`` tables ``pixlearn predict`` writes with an object classifier, scored against
a table of ``image,object_id,class`` (:mod:`pixlearn.data.object_tables`). It returns the :class:`ClassEvaluation` that
:func:`pixlearn.metrics.report.write_classification_report` writes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from pixlearn.data.classes import read_class_folders, read_class_predictions, read_class_table
from pixlearn.data.formats import file_stem
from pixlearn.data.object_tables import OBJECTS_SUFFIX, object_key, read_object_classes, read_object_predictions
from pixlearn.errors import PixlearnError
from pixlearn.metrics.classification import ClassificationScores, classification_scores

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ClassEvaluation:
    """Scores of a prediction table, with the samples they were computed from.

    Attributes
    ----------
    scores : ClassificationScores
    names : tuple of str
        The scored images (objects: ``<image>/<object id>``), in the order of the prediction table.
    y_true : ndarray of shape (n,), int64
    probabilities : ndarray of shape (n, K), float64
    """

    scores: ClassificationScores
    names: tuple[str, ...]
    y_true: np.ndarray
    probabilities: np.ndarray


def read_truth(truth: str | os.PathLike[str]) -> dict[str, str]:
    """True class name per image name (file stem), from a labels table or a folder per class.

    Raises
    ------
    PixlearnError
        What :func:`pixlearn.data.classes.read_class_table` or
        :func:`~pixlearn.data.classes.read_class_folders` refuse, or two images of one stem.
    """
    truth = Path(truth)
    if truth.is_dir():
        found = read_class_folders(truth)
        pairs = [(file_stem(p), found.class_names[k]) for p, k in zip(found.paths, found.labels)]
    else:
        pairs = [(file_stem(name), label) for name, label in read_class_table(truth)]
    table: dict[str, str] = {}
    for name, label in pairs:
        if name in table:
            raise PixlearnError(f"two images are named {name!r}", truth)
        table[name] = label
    return table


def is_object_predictions(pred: str | os.PathLike[str]) -> bool:
    """Whether `pred` is a folder of object tables (``*.objects.csv``) and no ``predictions.csv``."""
    pred = Path(pred)
    return pred.is_dir() and not (pred / "predictions.csv").exists() and any(pred.glob(f"*{OBJECTS_SUFFIX}"))


def read_object_truth(truth: str | os.PathLike[str]) -> dict[str, str]:
    """True class name per object (``<image>/<object id>``) of an ``image,object_id,class`` table."""
    truth = Path(truth)
    if truth.is_dir():
        raise PixlearnError("object predictions are scored against a table (image,object_id,class), not a folder",
                            truth)
    return {object_key(image, i): c for image, objects in read_object_classes(truth).items() for i, c in objects.items()}


def evaluate_class_predictions(pred: str | os.PathLike[str], truth: str | os.PathLike[str], *,
                               n_bins: int = 10) -> ClassEvaluation:
    """Score a prediction table against the true classes.

    Parameters
    ----------
    pred : path-like
        A prediction table (CSV), or a folder holding ``predictions.csv``, or a folder of object
        tables (``*.objects.csv``, see :func:`is_object_predictions`).
    truth : path-like
        A labels table (``name,class``) or a folder with one subfolder per class; for object
        predictions a table ``image,object_id,class``. Images (objects) of the truth without a
        prediction are left out (and counted in the log).
    n_bins : int
        Bins of the expected calibration error.

    Returns
    -------
    evaluation : ClassEvaluation

    Raises
    ------
    PixlearnError
        Unreadable tables, a predicted image missing from the truth, or a true class the
        predictions have no probability column for.
    """
    pred = Path(pred)
    objects = is_object_predictions(pred)
    table = pred if objects else pred / "predictions.csv" if pred.is_dir() else pred
    predictions = read_object_predictions(pred) if objects else read_class_predictions(table)
    classes = read_object_truth(truth) if objects else read_truth(truth)
    what = "object" if objects else "image"
    missing = [n for n in predictions.names if n not in classes]
    if missing:
        raise PixlearnError(f"{len(missing)} predicted {what}(s) have no true class in {truth} "
                            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})", table)
    unknown = sorted({classes[n] for n in predictions.names} - set(predictions.class_names))
    if unknown:
        raise PixlearnError(f"true classes {unknown[:5]} are not among the predicted classes "
                            f"{list(predictions.class_names)[:12]}", table)
    left_out = len(classes) - len(predictions.names)
    if left_out:
        logger.info("%d %s(s) of %s have no prediction: left out", left_out, what, truth)
    index = {name: k for k, name in enumerate(predictions.class_names)}
    y_true = np.array([index[classes[n]] for n in predictions.names], np.int64)
    scores = classification_scores(y_true, predictions.predicted, predictions.probabilities,
                                   class_names=predictions.class_names, n_bins=n_bins)
    return ClassEvaluation(scores, predictions.names, y_true, predictions.probabilities)


__all__ = ["ClassEvaluation", "evaluate_class_predictions", "is_object_predictions", "read_object_truth", "read_truth"]
