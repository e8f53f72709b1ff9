"""Semantic segmentation scores: confusion matrix, pixel accuracy, IoU and Dice per class.

:func:`confusion_matrix` counts pixels per (true class, predicted class); :func:`pixel_accuracy`,
:func:`iou` and :func:`dice` score one prediction from class-index images, and
:func:`iou_from_confusion` / :func:`dice_from_confusion` from a (possibly summed) confusion
matrix. :func:`semantic_scores` and :func:`scores_from_confusion` gather all of them in a frozen
:class:`SemanticScores` whose values are Python ``int``/``float``; a per-class score that is
undefined (a class absent from both images) is ``nan`` in arrays and ``None`` in
:meth:`SemanticScores.to_dict`, so results dump to JSON.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _nan_to_none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    ignore: int | None = None,
) -> np.ndarray:
    """Count pixels per (true class, predicted class).

    Parameters
    ----------
    y_true : ndarray of shape (M, N) or (P, M, N), integer
        True class indices ``0..n_classes-1`` (and possibly `ignore`).
    y_pred : ndarray, same shape as `y_true`, integer
        Predicted class indices ``0..n_classes-1``.
    n_classes : int
        Number of classes ``K``.
    ignore : int, optional
        Pixels where `y_true` equals this value are not counted (e.g. ``-1`` for unlabelled).

    Returns
    -------
    matrix : ndarray of shape (K, K), int64
        ``matrix[i, j]`` is the number of pixels of true class ``i`` predicted as ``j``.

    Raises
    ------
    ValueError
        Different shapes, non-integer inputs, or values outside ``0..K-1``.

    Examples
    --------
    >>> confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2).tolist()
    [[1, 1], [0, 2]]
    >>> confusion_matrix(np.array([0, -1, 1]), np.array([0, 0, 0]), 2, ignore=-1).tolist()
    [[1, 0], [1, 0]]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    if int(n_classes) < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    k = int(n_classes)
    t = y_true.ravel()
    p = y_pred.ravel()
    if ignore is not None:
        keep = t != ignore
        t, p = t[keep], p[keep]
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= k):
            bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
            raise ValueError(f"{name} holds value {bad} outside the {k} classes 0..{k - 1}")
    flat = t.astype(np.int64) * k + p.astype(np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def _check_confusion(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {matrix.shape}")
    return matrix.astype(np.float64)


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class intersection over union (Jaccard index) from a confusion matrix.

    Parameters
    ----------
    matrix : ndarray of shape (K, K)
        As returned by :func:`confusion_matrix`.

    Returns
    -------
    iou : ndarray of shape (K,), float64
        ``nan`` for a class absent from both truth and prediction.

    Examples
    --------
    >>> iou_from_confusion(np.array([[1, 1], [0, 2]])).round(3).tolist()
    [0.5, 0.667]
    """
    m = _check_confusion(matrix)
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def dice_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class Dice coefficient (F1) from a confusion matrix.

    Parameters
    ----------
    matrix : ndarray of shape (K, K)

    Returns
    -------
    dice : ndarray of shape (K,), float64
        ``nan`` for a class absent from both truth and prediction.

    Examples
    --------
    >>> dice_from_confusion(np.array([[1, 1], [0, 2]])).round(3).tolist()
    [0.667, 0.8]
    """
    m = _check_confusion(matrix)
    tp = np.diag(m)
    total = m.sum(0) + m.sum(1)
    return np.where(total > 0, 2 * tp / np.where(total > 0, total, 1), np.nan)


def _infer_classes(y_true: np.ndarray, y_pred: np.ndarray, ignore: int | None) -> int:
    t = np.asarray(y_true)
    if ignore is not None:
        t = t[t != ignore]
    top = max(int(t.max()) if t.size else 0, int(np.max(y_pred)) if np.size(y_pred) else 0)
    return top + 1


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None, ignore: int | None) -> np.ndarray:
    """Confusion matrix over `n_classes`, or over the classes seen when ``None``."""
    k = _infer_classes(y_true, y_pred, ignore) if n_classes is None else n_classes
    return confusion_matrix(y_true, y_pred, k, ignore)


def pixel_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, *, ignore: int | None = None
) -> float:
    """Fraction of (non-ignored) pixels whose predicted class equals the true class.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
    ignore : int, optional
        True value of pixels to leave out.

    Returns
    -------
    accuracy : float
        ``nan`` when no pixel is counted.

    Examples
    --------
    >>> pixel_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    0.75
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    keep = np.ones(y_true.shape, bool) if ignore is None else y_true != ignore
    n = int(np.count_nonzero(keep))
    return float(np.count_nonzero((y_true == y_pred) & keep) / n) if n else float("nan")


def iou(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int | None = None,
    *,
    ignore: int | None = None,
) -> np.ndarray:
    """Per-class intersection over union.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
        Class indices; a boolean mask is classes 0 and 1.
    n_classes : int, optional
        Default: the largest value seen plus one.
    ignore : int, optional
        True value of pixels to leave out.

    Returns
    -------
    iou : ndarray of shape (K,), float64
        ``nan`` for a class absent from both.

    Examples
    --------
    >>> iou(np.array([[0, 1], [1, 1]]), np.array([[0, 0], [1, 1]])).round(3).tolist()
    [0.5, 0.667]
    """
    return iou_from_confusion(_confusion(y_true, y_pred, n_classes, ignore))


def dice(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int | None = None,
    *,
    ignore: int | None = None,
) -> np.ndarray:
    """Per-class Dice coefficient ``2|A∩B| / (|A| + |B|)``.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
    n_classes : int, optional
        Default: the largest value seen plus one.
    ignore : int, optional
        True value of pixels to leave out.

    Returns
    -------
    dice : ndarray of shape (K,), float64
        ``nan`` for a class absent from both.

    Examples
    --------
    >>> dice(np.array([[0, 1], [1, 1]]), np.array([[0, 0], [1, 1]])).round(3).tolist()
    [0.667, 0.8]
    """
    return dice_from_confusion(_confusion(y_true, y_pred, n_classes, ignore))


@dataclasses.dataclass(frozen=True)
class SemanticScores:
    """Semantic segmentation scores derived from one confusion matrix.

    Attributes
    ----------
    confusion : tuple of tuple of int
        ``K x K`` pixel counts, rows = true class, columns = predicted class.
    pixel_accuracy : float
    iou, dice : tuple of float
        Per class; ``nan`` for a class absent from truth and prediction.
    mean_iou, mean_dice : float
        Mean over the classes where the score is defined (``nan`` when none is).
    n_pixels : int
        Pixels counted.
    """

    confusion: tuple[tuple[int, ...], ...]
    pixel_accuracy: float
    iou: tuple[float, ...]
    dice: tuple[float, ...]
    mean_iou: float
    mean_dice: float
    n_pixels: int

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.confusion)

    def by_class(self, class_names: Sequence[str]) -> dict[str, dict[str, float | None]]:
        """The per-class scores keyed by class name, JSON-safe (``None`` where undefined).

        Parameters
        ----------
        class_names : sequence of str
            One name per class, in class-index order.

        Returns
        -------
        scores : dict of str to dict
            ``{name: {"iou": ..., "dice": ...}}``; the Dice of a class is its F1 against all others.

        Raises
        ------
        ValueError
            When `class_names` does not name every class once.

        Examples
        --------
        >>> scores_from_confusion(np.array([[1, 1], [0, 2]])).by_class(["cell", "membrane"])["membrane"]
        {'iou': 0.6666666666666666, 'dice': 0.8}
        """
        names = list(class_names)
        if len(names) != self.n_classes or len(set(names)) != len(names):
            raise ValueError(f"{len(names)} class names {names} for {self.n_classes} classes (one distinct name each)")
        return {name: {"iou": _nan_to_none(i), "dice": _nan_to_none(d)}
                for name, i, d in zip(names, self.iou, self.dice)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: lists for tuples, ``None`` for undefined (``nan``) scores."""
        return {
            "n_classes": self.n_classes,
            "n_pixels": self.n_pixels,
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "mean_iou": _nan_to_none(self.mean_iou),
            "mean_dice": _nan_to_none(self.mean_dice),
            "iou": [_nan_to_none(v) for v in self.iou],
            "dice": [_nan_to_none(v) for v in self.dice],
            "confusion": [list(row) for row in self.confusion],
        }


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def scores_from_confusion(matrix: np.ndarray) -> SemanticScores:
    """Pixel accuracy, per-class IoU and Dice and their means from a confusion matrix.

    Sum the confusion matrices of several images first to get data-set (pixel-pooled) scores.

    Parameters
    ----------
    matrix : ndarray of shape (K, K), integer

    Returns
    -------
    scores : SemanticScores

    Examples
    --------
    >>> s = scores_from_confusion(np.array([[1, 1], [0, 2]]))
    >>> s.pixel_accuracy, round(s.mean_iou, 4)
    (0.75, 0.5833)
    """
    m = np.asarray(matrix)
    _check_confusion(m)
    if not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"confusion matrix must hold integer counts, got dtype {m.dtype}")
    total = int(m.sum())
    per_iou = iou_from_confusion(m)
    per_dice = dice_from_confusion(m)
    return SemanticScores(
        confusion=tuple(tuple(int(v) for v in row) for row in m),
        pixel_accuracy=float(np.trace(m) / total) if total else float("nan"),
        iou=tuple(float(v) for v in per_iou),
        dice=tuple(float(v) for v in per_dice),
        mean_iou=_nanmean(per_iou),
        mean_dice=_nanmean(per_dice),
        n_pixels=total,
    )


def semantic_scores(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int | None = None,
    *,
    ignore: int | None = None,
) -> SemanticScores:
    """All semantic scores of one prediction.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
    n_classes : int, optional
        Default: the largest value seen plus one.
    ignore : int, optional
        True value of pixels to leave out.

    Returns
    -------
    scores : SemanticScores

    Examples
    --------
    >>> y = np.array([[0, 1], [2, 2]])
    >>> s = semantic_scores(y, y)
    >>> s.pixel_accuracy, s.mean_iou, s.to_dict()["iou"]
    (1.0, 1.0, [1.0, 1.0, 1.0])
    """
    return scores_from_confusion(_confusion(y_true, y_pred, n_classes, ignore))


__all__ = [
    "SemanticScores",
    "confusion_matrix",
    "dice",
    "dice_from_confusion",
    "iou",
    "iou_from_confusion",
    "pixel_accuracy",
    "scores_from_confusion",
    "semantic_scores",
]
