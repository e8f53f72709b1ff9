"""Evaluation metrics as pure functions: semantic, instance and restoration scores.

Semantic segmentation
    :func:`confusion_matrix`, :func:`pixel_accuracy`, :func:`iou`, :func:`dice`, and
    :func:`semantic_scores` / :func:`scores_from_confusion` returning :class:`SemanticScores`.
Instance segmentation
    :func:`matching` (optimal one-to-one matching of objects at an IoU threshold, as in the
    DSB2018 challenge and StarDist), :func:`matching_dataset`, :func:`aggregate_matchings` and
    :func:`average_precision`.
Restoration
    :func:`psnr`, :func:`ssim`, :func:`nrmse`.

Every score is a Python ``int``/``float`` (never a NumPy scalar), so results dump to JSON.
Undefined per-class scores (a class absent from both images) are ``nan`` in arrays and ``None``
in :meth:`SemanticScores.to_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def _nan_to_none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


# --------------------------------------------------------------------------------------------
# semantic segmentation
# --------------------------------------------------------------------------------------------


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
    k = _infer_classes(y_true, y_pred, ignore) if n_classes is None else n_classes
    return iou_from_confusion(confusion_matrix(y_true, y_pred, k, ignore))


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
    k = _infer_classes(y_true, y_pred, ignore) if n_classes is None else n_classes
    return dice_from_confusion(confusion_matrix(y_true, y_pred, k, ignore))


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
    k = _infer_classes(y_true, y_pred, ignore) if n_classes is None else n_classes
    return scores_from_confusion(confusion_matrix(y_true, y_pred, k, ignore))


# --------------------------------------------------------------------------------------------
# instance segmentation
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Matching:
    """Result of matching predicted objects to true objects at one IoU threshold.

    Attributes
    ----------
    thresh : float
        A pair matches when its IoU is ``>= thresh``.
    n_true, n_pred : int
        Objects in truth and prediction.
    tp, fp, fn : int
        Matched pairs, unmatched predictions, unmatched true objects.
    precision, recall, f1 : float
        ``tp/(tp+fp)``, ``tp/(tp+fn)``, ``2tp/(2tp+fp+fn)``.
    accuracy : float
        ``tp/(tp+fp+fn)``: the "average precision" of the DSB2018 challenge and StarDist.
    mean_matched_iou : float
        Mean IoU of the matched pairs (segmentation quality).
    panoptic_quality : float
        ``sum(matched IoU) / (tp + fp/2 + fn/2)`` (Kirillov et al. 2019).

    Notes
    -----
    When truth and prediction are both empty every score is 1 (perfect agreement); otherwise a
    ratio whose denominator is zero is 0 (as in StarDist).
    """

    thresh: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    accuracy: float
    mean_matched_iou: float
    panoptic_quality: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields."""
        return dataclasses.asdict(self)


def _make_matching(
    thresh: float, n_true: int, n_pred: int, tp: int, sum_iou: float
) -> Matching:
    fp, fn = n_pred - tp, n_true - tp
    empty = n_true == 0 and n_pred == 0

    def ratio(num: float, den: float) -> float:
        if empty:
            return 1.0
        return float(num / den) if den > 0 else 0.0

    return Matching(
        thresh=float(thresh),
        n_true=int(n_true),
        n_pred=int(n_pred),
        tp=int(tp),
        fp=int(fp),
        fn=int(fn),
        precision=ratio(tp, tp + fp),
        recall=ratio(tp, tp + fn),
        f1=ratio(2 * tp, 2 * tp + fp + fn),
        accuracy=ratio(tp, tp + fp + fn),
        mean_matched_iou=ratio(sum_iou, tp),
        panoptic_quality=ratio(sum_iou, tp + fp / 2 + fn / 2),
    )


def _check_instances(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype == bool:
        raise ValueError(f"{name} is a boolean mask; label its objects first (label_components)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer object labels, got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"{name} holds negative label {int(labels.min())}")
    return labels


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map object ids to ``1..n`` (0 stays 0); returns the flat int64 ids and ``n``."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= max(4 * flat.size, 1 << 16):
        present = np.bincount(flat, minlength=top + 1) > 0
        present[0] = False
        lut = np.zeros(top + 1, np.int64)
        n = int(present.sum())
        lut[present] = np.arange(1, n + 1)
        return lut[flat], n
    values, inverse = np.unique(flat, return_inverse=True)
    inverse = inverse.astype(np.int64).ravel()
    if values[0] == 0:
        return inverse, len(values) - 1
    return inverse + 1, len(values)


@dataclasses.dataclass(frozen=True)
class _Overlap:
    n_true: int
    n_pred: int
    true_ids: np.ndarray  # 0-based index of the true object of each overlapping pair
    pred_ids: np.ndarray
    iou: np.ndarray


def _overlap(y_true: np.ndarray, y_pred: np.ndarray) -> _Overlap:
    """IoU of every pair of objects that overlap, from a sparse label-pair histogram."""
    y_true = _check_instances(y_true, "y_true")
    y_pred = _check_instances(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    t, n_true = _compact(y_true)
    p, n_pred = _compact(y_pred)
    area_t = np.bincount(t, minlength=n_true + 1)
    area_p = np.bincount(p, minlength=n_pred + 1)
    both = (t > 0) & (p > 0)
    key = t[both] * (n_pred + 1) + p[both]
    if (n_true + 1) * (n_pred + 1) <= max(2 * key.size, 1 << 20):
        counts = np.bincount(key, minlength=(n_true + 1) * (n_pred + 1))
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:
        pairs, inter = np.unique(key, return_counts=True)
    ti, pi = np.divmod(pairs, n_pred + 1)
    inter = inter.astype(np.float64)
    union = area_t[ti] + area_p[pi] - inter
    return _Overlap(n_true, n_pred, ti - 1, pi - 1, inter / union)


def _match(overlap: _Overlap, thresh: float) -> tuple[int, float]:
    """Optimal one-to-one matching among pairs with IoU >= thresh: (tp, sum of matched IoU).

    The candidate pairs form a bipartite graph; each connected component is solved on its own
    with the Hungarian algorithm (maximise the number of matches, then their total IoU, as
    StarDist does). For ``thresh > 0.5`` every component is a single pair.
    """
    keep = overlap.iou >= thresh
    ti, pi, scores = overlap.true_ids[keep], overlap.pred_ids[keep], overlap.iou[keep]
    if ti.size == 0:
        return 0, 0.0
    # objects with exactly one candidate partner on both sides are matched directly
    deg_t = np.bincount(ti, minlength=overlap.n_true)
    deg_p = np.bincount(pi, minlength=overlap.n_pred)
    simple = (deg_t[ti] == 1) & (deg_p[pi] == 1)
    tp = int(simple.sum())
    total = float(scores[simple].sum())
    if simple.all():
        return tp, total
    ti, pi, scores = ti[~simple], pi[~simple], scores[~simple]
    _, t_idx = np.unique(ti, return_inverse=True)
    up, p_idx = np.unique(pi, return_inverse=True)
    t_idx, p_idx = t_idx.ravel(), p_idx.ravel()
    nt, n_p = int(t_idx.max()) + 1, len(up)
    graph = coo_matrix((np.ones(len(ti)), (t_idx, nt + p_idx)), shape=(nt + n_p, nt + n_p))
    n_comp, component = connected_components(graph, directed=False)
    comp_t, comp_p = component[:nt], component[nt:]

    def group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(keys, kind="stable")
        starts = np.searchsorted(keys[order], np.arange(n_comp + 1))
        local = np.empty(len(keys), np.int64)
        local[order] = np.arange(len(keys)) - starts[keys[order]]
        return order, starts, local

    e_order, e_start, _ = group(comp_t[t_idx])
    _, r_start, r_local = group(comp_t)
    _, c_start, c_local = group(comp_p)
    for c in range(n_comp):
        edges = e_order[e_start[c] : e_start[c + 1]]
        n_rows, n_cols = r_start[c + 1] - r_start[c], c_start[c + 1] - c_start[c]
        dense = np.zeros((n_rows, n_cols))
        dense[r_local[t_idx[edges]], c_local[p_idx[edges]]] = scores[edges]
        # every candidate counts 1, and its IoU (<= 1) / (2n) breaks ties without outweighing it
        cost = -((dense >= thresh).astype(np.float64) + dense / (2 * min(n_rows, n_cols)))
        rows, cols = linear_sum_assignment(cost)
        ok = dense[rows, cols] >= thresh
        tp += int(ok.sum())
        total += float(dense[rows, cols][ok].sum())
    return tp, total


def _check_thresh(thresh: float) -> float:
    thresh = float(thresh)
    if not 0.0 < thresh <= 1.0:
        raise ValueError(f"IoU threshold must be in (0, 1], got {thresh}")
    return thresh


def matching(y_true: np.ndarray, y_pred: np.ndarray, thresh: float = 0.5) -> Matching:
    """Match predicted to true objects one-to-one and count hits and misses.

    A true and a predicted object can match when their intersection over union is at least
    `thresh`; among those pairs the matching with the most pairs (then the highest total IoU)
    is chosen with :func:`scipy.optimize.linear_sum_assignment`. IoUs are computed only for
    pairs that overlap, from a sparse histogram of label pairs, so images with many thousands
    of objects are cheap.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
        Instance label images: 0 is background, each object one positive id (ids need not be
        sequential).
    thresh : float
        IoU threshold in (0, 1].

    Returns
    -------
    result : Matching

    Raises
    ------
    ValueError
        Different shapes, non-integer or negative labels, or a threshold outside (0, 1].

    Examples
    --------
    >>> y = np.zeros((8, 8), int); y[1:4, 1:4] = 1; y[5:8, 5:8] = 2
    >>> m = matching(y, y)
    >>> m.tp, m.fp, m.fn, m.accuracy, m.panoptic_quality
    (2, 0, 0, 1.0, 1.0)
    >>> p = np.zeros_like(y); p[1:4, 2:5] = 7      # one object shifted by a column
    >>> m = matching(y, p)
    >>> m.tp, m.fp, m.fn, m.mean_matched_iou
    (1, 0, 1, 0.5)
    """
    thresh = _check_thresh(thresh)
    ov = _overlap(y_true, y_pred)
    tp, total = _match(ov, thresh)
    return _make_matching(thresh, ov.n_true, ov.n_pred, tp, total)


def aggregate_matchings(matchings: Sequence[Matching]) -> Matching:
    """Pool several images' matchings at one threshold by summing their counts.

    Parameters
    ----------
    matchings : sequence of Matching
        All at the same threshold.

    Returns
    -------
    pooled : Matching
        Scores of the summed ``tp``, ``fp``, ``fn`` (and summed matched IoU).

    Raises
    ------
    ValueError
        An empty sequence or different thresholds.
    """
    if not matchings:
        raise ValueError("no matchings to aggregate")
    threshs = {m.thresh for m in matchings}
    if len(threshs) != 1:
        raise ValueError(f"matchings at different thresholds {sorted(threshs)}")
    return _make_matching(
        matchings[0].thresh,
        sum(m.n_true for m in matchings),
        sum(m.n_pred for m in matchings),
        sum(m.tp for m in matchings),
        sum(m.mean_matched_iou * m.tp for m in matchings),
    )


def matching_dataset(
    list_true: Sequence[np.ndarray],
    list_pred: Sequence[np.ndarray],
    thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    *,
    by_image: bool = False,
) -> tuple[Matching, ...]:
    """Match objects in several images at several IoU thresholds.

    The overlaps of each image are computed once and reused for every threshold.

    Parameters
    ----------
    list_true, list_pred : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Instance label images, paired by position (shapes may differ between pairs).
    thresholds : sequence of float
        IoU thresholds in (0, 1]; default 0.5, 0.55, ..., 0.95.
    by_image : bool
        ``False`` (default, as StarDist): sum ``tp``/``fp``/``fn`` over all images, then
        compute the scores. ``True``: average each score over images (as the DSB2018
        leaderboard did); counts are still summed.

    Returns
    -------
    results : tuple of Matching
        One per threshold, in the order given.

    Raises
    ------
    ValueError
        Lists of different lengths, empty lists, or bad labels (see :func:`matching`).

    Examples
    --------
    >>> y = np.zeros((6, 6), int); y[1:5, 1:5] = 1
    >>> [m.tp for m in matching_dataset([y, y], [y, np.zeros_like(y)], (0.5, 0.9))]
    [1, 1]
    """
    if len(list_true) != len(list_pred):
        raise ValueError(f"{len(list_true)} true images but {len(list_pred)} predictions")
    if len(list_true) == 0:
        raise ValueError("no images to match")
    threshs = [_check_thresh(t) for t in thresholds]
    if not threshs:
        raise ValueError("no IoU thresholds given")
    per_image: list[list[Matching]] = [[] for _ in threshs]
    for y_true, y_pred in zip(list_true, list_pred):
        ov = _overlap(y_true, y_pred)
        for k, thresh in enumerate(threshs):
            tp, total = _match(ov, thresh)
            per_image[k].append(_make_matching(thresh, ov.n_true, ov.n_pred, tp, total))
    pooled = tuple(aggregate_matchings(ms) for ms in per_image)
    if not by_image:
        return pooled
    score_fields = (
        "precision", "recall", "f1", "accuracy", "mean_matched_iou", "panoptic_quality"
    )
    averaged = []
    for p, ms in zip(pooled, per_image):
        means: dict[str, Any] = {
            f: float(np.mean([getattr(m, f) for m in ms])) for f in score_fields
        }
        averaged.append(dataclasses.replace(p, **means))
    return tuple(averaged)


def average_precision(matchings: Sequence[Matching]) -> float:
    """Mean of the matching accuracy ``tp/(tp+fp+fn)`` over thresholds (DSB2018 "AP").

    Parameters
    ----------
    matchings : sequence of Matching
        Typically :func:`matching_dataset` at IoU 0.5, 0.55, ..., 0.95.

    Returns
    -------
    ap : float

    Examples
    --------
    >>> y = np.zeros((6, 6), int); y[1:5, 1:5] = 1
    >>> average_precision(matching_dataset([y], [y]))
    1.0
    """
    if not matchings:
        raise ValueError("no matchings to average")
    return float(np.mean([m.accuracy for m in matchings]))


# --------------------------------------------------------------------------------------------
# restoration
# --------------------------------------------------------------------------------------------


def _restore_pair(target: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray(target, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if target.shape != output.shape:
        raise ValueError(f"target has shape {target.shape} but output has shape {output.shape}")
    if target.size == 0:
        raise ValueError("empty images")
    if not (np.isfinite(target).all() and np.isfinite(output).all()):
        raise ValueError("images hold NaN or Inf values")
    return target, output


def _data_range(target: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(target.max() - target.min())
        if data_range == 0:
            raise ValueError("target is constant: pass data_range explicitly")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return float(data_range)


def psnr(target: np.ndarray, output: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB.

    Parameters
    ----------
    target, output : ndarray, same shape
        Any number of axes (``(M, N)``, ``(P, M, N)``, with or without channels).
    data_range : float, optional
        Peak-to-peak range of the signal; default ``target.max() - target.min()``.

    Returns
    -------
    psnr : float
        ``inf`` when the images are identical.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, or a constant target without `data_range`.

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 0.0, 1.0])
    >>> round(psnr(t, t + 0.1), 3)
    20.0
    """
    target, output = _restore_pair(target, output)
    rng = _data_range(target, data_range)
    mse = float(np.mean((target - output) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(
    target: np.ndarray,
    output: np.ndarray,
    data_range: float | None = None,
    *,
    channel_axis: int | None = None,
) -> float:
    """Mean structural similarity index (Wang et al. 2004), 2D or 3D.

    Uses :func:`skimage.metrics.structural_similarity` with a 7-pixel window (shrunk to the
    smallest spatial size, kept odd, for thin stacks).

    Parameters
    ----------
    target, output : ndarray of shape (M, N) or (P, M, N), or with a channel axis
    data_range : float, optional
        Default ``target.max() - target.min()``.
    channel_axis : int, optional
        Axis of channels (``-1`` for the canonical layout); SSIM is averaged over channels.

    Returns
    -------
    ssim : float
        In [-1, 1]; 1 for identical images.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, a constant target without `data_range`, or a
        spatial size below 3.

    Examples
    --------
    >>> t = np.indices((16, 16)).sum(0) % 5 / 4.0
    >>> ssim(t, t)
    1.0
    """
    from skimage.metrics import structural_similarity

    target, output = _restore_pair(target, output)
    rng = _data_range(target, data_range)
    spatial = list(target.shape)
    if channel_axis is not None:
        del spatial[channel_axis % target.ndim]
    win = min(7, min(spatial))
    win -= 1 - win % 2
    if win < 3:
        raise ValueError(f"SSIM needs every spatial size >= 3, got shape {target.shape}")
    value = structural_similarity(
        target, output, data_range=rng, win_size=win, channel_axis=channel_axis
    )
    return float(value)


def nrmse(target: np.ndarray, output: np.ndarray, normalization: str = "euclidean") -> float:
    """Normalised root mean squared error.

    Parameters
    ----------
    target, output : ndarray, same shape
    normalization : {"euclidean", "min-max", "mean"}
        Divide the RMSE by ``sqrt(mean(target**2))`` (so the result is
        ``||target - output|| / ||target||``, scikit-image's default), by the target's range,
        or by its mean.

    Returns
    -------
    nrmse : float
        0 for identical images.

    Raises
    ------
    ValueError
        Different shapes, NaN/Inf values, an unknown normalisation, or a zero denominator.

    Examples
    --------
    >>> round(nrmse(np.array([3.0, 4.0]), np.array([3.0, 4.0]) * 1.1), 6)
    0.1
    """
    target, output = _restore_pair(target, output)
    rmse = float(np.sqrt(np.mean((target - output) ** 2)))
    if normalization == "euclidean":
        denom = float(np.sqrt(np.mean(target**2)))
    elif normalization == "min-max":
        denom = float(target.max() - target.min())
    elif normalization == "mean":
        denom = float(target.mean())
    else:
        raise ValueError(
            f"normalization {normalization!r} is not 'euclidean', 'min-max' or 'mean'"
        )
    if denom == 0:
        raise ValueError(f"NRMSE undefined: the target's {normalization} norm is 0")
    return rmse / denom


__all__ = [
    "DEFAULT_IOU_THRESHOLDS",
    "Matching",
    "SemanticScores",
    "aggregate_matchings",
    "average_precision",
    "confusion_matrix",
    "dice",
    "dice_from_confusion",
    "iou",
    "iou_from_confusion",
    "matching",
    "matching_dataset",
    "nrmse",
    "pixel_accuracy",
    "psnr",
    "scores_from_confusion",
    "semantic_scores",
    "ssim",
]
