"""Classification scores: one class per sample (an object, a crop, an image).

Pure functions on 1-D arrays of class indices ``0..K-1`` and, for the ranking and calibration
scores, an ``(n_samples, K)`` array of class probabilities. :func:`classification_scores` gathers
them into a frozen :class:`ClassificationScores` of Python ``int``/``float`` values (``None``
where a score is undefined), so results dump to JSON.

Conventions (those of scikit-learn, cross-checked in the tests):

* per-class precision ``tp/(tp+fp)``, recall ``tp/(tp+fn)`` and F1 ``2tp/(2tp+fp+fn)`` are 0
  when their denominator is 0 but the class occurs in the truth or the prediction;
  the macro averages run over the classes that occur in either (scikit-learn's default labels);
* balanced accuracy is the mean recall over the classes that occur in the truth;
* one-vs-rest ROC AUC of a class is undefined (``None``) when the truth holds no sample of it
  or only samples of it; the macro AUC averages the defined ones;
* expected calibration error (Guo et al. 2017) bins the top-class confidence into equal-width
  bins and sums ``|accuracy - mean confidence|`` weighted by the share of samples in each bin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from pixlearn.metrics.semantic import confusion_matrix

__all__ = [
    "ClassificationScores",
    "accuracy",
    "balanced_accuracy",
    "classification_scores",
    "expected_calibration_error",
    "precision_recall_f1",
    "reliability_bins",
    "roc_auc_ovr",
]


@dataclasses.dataclass(frozen=True)
class ClassificationScores:
    """Scores of one set of predicted classes against the true ones.

    Attributes
    ----------
    class_names : tuple of str
        One name per class index.
    n_samples : int
    accuracy, balanced_accuracy : float
    macro_precision, macro_recall, macro_f1 : float
        Means over the classes present in truth or prediction.
    precision, recall, f1 : tuple of (float or None)
        Per class; ``None`` for a class absent from both truth and prediction.
    support : tuple of int
        True samples per class.
    confusion : tuple of tuple of int
        ``confusion[i][j]``: samples of true class ``i`` predicted as ``j``.
    roc_auc : tuple of (float or None), optional
        One-vs-rest AUC per class (``None`` if no probabilities were given or undefined).
    macro_roc_auc : float, optional
        Mean of the defined per-class AUCs.
    expected_calibration_error : float, optional
        With probabilities only.
    """

    class_names: tuple[str, ...]
    n_samples: int
    accuracy: float
    balanced_accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    precision: tuple[float | None, ...]
    recall: tuple[float | None, ...]
    f1: tuple[float | None, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]
    roc_auc: tuple[float | None, ...] | None = None
    macro_roc_auc: float | None = None
    expected_calibration_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields (tuples become lists)."""
        return _json_safe(dataclasses.asdict(self))

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class: name, support, precision, recall, F1 and AUC (for a CSV)."""
        auc = self.roc_auc or (None,) * len(self.class_names)
        return [
            {"class": name, "support": s, "precision": p, "recall": r, "f1": f, "roc_auc": a}
            for name, s, p, r, f, a in zip(
                self.class_names, self.support, self.precision, self.recall, self.f1, auc, strict=True
            )
        ]


def _json_safe(value: Any) -> Any:
    """`value` with tuples as lists and NumPy scalars as Python numbers (recursively)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray | None, n_classes: int) -> None:
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y_true.shape}")
    if y_pred is not None and y_pred.shape != y_true.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("no samples to score")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")


def _n_classes(n_classes: int | None, *arrays: np.ndarray) -> int:
    if n_classes is not None:
        return int(n_classes)
    return int(max(int(a.max()) for a in arrays if a.size)) + 1


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of samples whose predicted class is the true one.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,), integer

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    0.75
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_labels(y_true, y_pred, 1)
    return float(np.mean(y_true == y_pred))


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix.

    Parameters
    ----------
    confusion : ndarray of shape (K, K)
        ``confusion[i, j]``: samples of true class ``i`` predicted as ``j``.

    Returns
    -------
    precision, recall, f1 : ndarray of shape (K,), float64
        0 where a denominator is 0 and the class occurs in truth or prediction; ``nan`` for a
        class absent from both.

    Examples
    --------
    >>> p, r, f = precision_recall_f1(np.array([[1, 1], [0, 2]]))
    >>> p.tolist(), r.tolist(), np.round(f, 3).tolist()
    ([1.0, 0.6666666666666666], [0.5, 1.0], [0.667, 0.8])
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be square, got shape {confusion.shape}")
    tp = np.diag(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
    absent = (predicted + actual) == 0
    for values in (precision, recall, f1):
        values[absent] = np.nan
    return precision, recall, f1


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Mean recall over the classes that occur in `y_true`.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,), integer
    n_classes : int, optional
        Default: one more than the largest index seen.

    Returns
    -------
    balanced_accuracy : float

    Examples
    --------
    >>> balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]))
    0.5
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = _n_classes(n_classes, y_true, y_pred)
    _check_labels(y_true, y_pred, k)
    confusion = confusion_matrix(y_true, y_pred, k)
    actual = confusion.sum(axis=1)
    present = actual > 0
    return float(np.mean(np.diag(confusion)[present] / actual[present]))


def roc_auc_ovr(y_true: np.ndarray, probabilities: np.ndarray) -> list[float | None]:
    """One-vs-rest area under the ROC curve of each class.

    The AUC of class ``k`` is the probability that a random sample of class ``k`` gets a higher
    ``probabilities[:, k]`` than a random sample of another class, ties counting one half
    (the Mann-Whitney statistic).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,), integer
    probabilities : ndarray of shape (n_samples, K)
        Scores per class (need not sum to 1).

    Returns
    -------
    auc : list of (float or None), length K
        ``None`` for a class with no positive or no negative sample.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.6, 0.4]])
    >>> roc_auc_ovr(np.array([0, 0, 1, 1]), p)
    [0.875, 0.875]
    """
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(f"probabilities must have shape ({y_true.shape[0]}, K), got {probabilities.shape}")
    _check_labels(y_true, None, probabilities.shape[1])
    result: list[float | None] = []
    for k in range(probabilities.shape[1]):
        positive = y_true == k
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            result.append(None)
            continue
        ranks = rankdata(probabilities[:, k])
        u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
        result.append(u / (n_pos * n_neg))
    return result


def reliability_bins(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-class confidence against accuracy in equal-width bins (a reliability diagram).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,), integer
    probabilities : ndarray of shape (n_samples, K)
    n_bins : int
        Bins of ``[0, 1]``; a confidence on a bin's upper edge belongs to that bin.

    Returns
    -------
    counts : ndarray of shape (n_bins,), int64
    confidence : ndarray of shape (n_bins,), float64
        Mean top-class probability per bin (``nan`` where empty).
    accuracy : ndarray of shape (n_bins,), float64
        Share of correct top-class predictions per bin (``nan`` where empty).
    """
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(f"probabilities must have shape ({y_true.shape[0]}, K), got {probabilities.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    _check_labels(y_true, None, probabilities.shape[1])
    top = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    # bin b holds (b/n, (b+1)/n]; a confidence of 0 goes to the first bin
    index = np.clip(np.ceil(top * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        confidence = np.bincount(index, weights=top, minlength=n_bins) / counts
        hits = np.bincount(index, weights=correct, minlength=n_bins) / counts
    return counts.astype(np.int64), confidence, hits


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of the top-class probability (Guo et al. 2017).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,), integer
    probabilities : ndarray of shape (n_samples, K)
    n_bins : int
        Equal-width confidence bins.

    Returns
    -------
    ece : float
        ``sum_b n_b / n * |accuracy_b - confidence_b|``, in ``[0, 1]``.

    Examples
    --------
    >>> p = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.8, 0.2]])
    >>> round(expected_calibration_error(np.array([0, 0, 0, 0, 1]), p), 6)  # 80 % sure, 80 % right
    0.0
    """
    counts, confidence, hits = reliability_bins(y_true, probabilities, n_bins)
    filled = counts > 0
    weights = counts[filled] / counts.sum()
    return float(np.sum(weights * np.abs(hits[filled] - confidence[filled])))


def _optional(values: np.ndarray) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def classification_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    n_bins: int = 10,
) -> ClassificationScores:
    """Every classification score of predicted classes (and probabilities) against the truth.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples,), integer
        True class indices ``0..K-1``.
    y_pred : ndarray of shape (n_samples,), integer, optional
        Predicted class indices; default: the argmax of `probabilities`.
    probabilities : ndarray of shape (n_samples, K), optional
        Class probabilities; with them ROC AUC and calibration are scored too.
    class_names : sequence of str, optional
        ``K`` names; default ``"0"``, ``"1"``, ...
    n_bins : int
        Bins of the expected calibration error.

    Returns
    -------
    scores : ClassificationScores

    Raises
    ------
    ValueError
        Neither `y_pred` nor `probabilities`, mismatched shapes, or indices outside ``0..K-1``.

    Examples
    --------
    >>> s = classification_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), class_names=["a", "b"])
    >>> s.accuracy, s.balanced_accuracy, s.confusion
    (0.75, 0.75, ((1, 1), (0, 2)))
    """
    y_true = np.asarray(y_true)
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2:
            raise ValueError(f"probabilities must have shape (n_samples, K), got {probabilities.shape}")
    if y_pred is None:
        if probabilities is None:
            raise ValueError("give y_pred or probabilities")
        y_pred = probabilities.argmax(axis=1)
    y_pred = np.asarray(y_pred)
    if class_names is not None:
        k = len(class_names)
    elif probabilities is not None:
        k = probabilities.shape[1]
    else:
        k = _n_classes(None, y_true, y_pred)
    _check_labels(y_true, y_pred, k)
    if probabilities is not None and probabilities.shape != (y_true.shape[0], k):
        raise ValueError(f"probabilities must have shape ({y_true.shape[0]}, {k}), got {probabilities.shape}")
    names = tuple(str(n) for n in class_names) if class_names is not None else tuple(str(i) for i in range(k))
    confusion = confusion_matrix(y_true, y_pred, k)
    precision, recall, f1 = precision_recall_f1(confusion)
    auc = macro_auc = ece = None
    if probabilities is not None:
        auc_list = roc_auc_ovr(y_true, probabilities)
        auc = tuple(auc_list)
        defined = [a for a in auc_list if a is not None]
        macro_auc = float(np.mean(defined)) if defined else None
        ece = expected_calibration_error(y_true, probabilities, n_bins)
    return ClassificationScores(
        class_names=names,
        n_samples=int(y_true.shape[0]),
        accuracy=float(np.mean(y_true == y_pred)),
        balanced_accuracy=balanced_accuracy(y_true, y_pred, k),
        macro_precision=float(np.nanmean(precision)),
        macro_recall=float(np.nanmean(recall)),
        macro_f1=float(np.nanmean(f1)),
        precision=_optional(precision),
        recall=_optional(recall),
        f1=_optional(f1),
        support=tuple(int(v) for v in confusion.sum(axis=1)),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        roc_auc=auc,
        macro_roc_auc=macro_auc,
        expected_calibration_error=ece,
    )
