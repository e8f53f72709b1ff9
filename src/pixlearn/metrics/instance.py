"""Instance segmentation scores: optimal one-to-one matching of objects at IoU thresholds.

:func:`matching` pairs the objects of a true and a predicted instance label image whose
intersection over union reaches a threshold, choosing the pairs with
:func:`scipy.optimize.linear_sum_assignment` as in the DSB2018 challenge and StarDist, and
returns a frozen :class:`Matching` (counts, precision, recall, F1, accuracy, mean matched IoU,
panoptic quality) of Python ``int``/``float`` values. :func:`matching_dataset` scores several
images at several thresholds (:data:`DEFAULT_IOU_THRESHOLDS`, IoU 0.5 to 0.95),
:func:`aggregate_matchings` pools matchings by summing their counts and
:func:`average_precision` averages the accuracy over thresholds (the DSB2018 "AP");
:func:`matched_pairs` says which true object matched which predicted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


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


def _match_pairs(overlap: _Overlap, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching among pairs with IoU >= thresh: 0-based true and predicted
    indices of the matched pairs, and their IoU.

    The candidate pairs form a bipartite graph; each connected component is solved on its own
    with the Hungarian algorithm (maximise the number of matches, then their total IoU, as
    StarDist does). For ``thresh > 0.5`` every component is a single pair.
    """
    keep = overlap.iou >= thresh
    ti, pi, scores = overlap.true_ids[keep], overlap.pred_ids[keep], overlap.iou[keep]
    if ti.size == 0:
        return ti, pi, scores
    # objects with exactly one candidate partner on both sides are matched directly
    deg_t = np.bincount(ti, minlength=overlap.n_true)
    deg_p = np.bincount(pi, minlength=overlap.n_pred)
    simple = (deg_t[ti] == 1) & (deg_p[pi] == 1)
    found = [(ti[simple], pi[simple], scores[simple])]
    if simple.all():
        return found[0]
    ti, pi, scores = ti[~simple], pi[~simple], scores[~simple]
    ut, t_idx = np.unique(ti, return_inverse=True)
    up, p_idx = np.unique(pi, return_inverse=True)
    t_idx, p_idx = t_idx.ravel(), p_idx.ravel()
    nt, n_p = len(ut), len(up)
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
    r_order, r_start, r_local = group(comp_t)
    c_order, c_start, c_local = group(comp_p)
    for c in range(n_comp):
        edges = e_order[e_start[c] : e_start[c + 1]]
        n_rows, n_cols = r_start[c + 1] - r_start[c], c_start[c + 1] - c_start[c]
        dense = np.zeros((n_rows, n_cols))
        dense[r_local[t_idx[edges]], c_local[p_idx[edges]]] = scores[edges]
        # every candidate counts 1, and its IoU (<= 1) / (2n) breaks ties without outweighing it
        cost = -((dense >= thresh).astype(np.float64) + dense / (2 * min(n_rows, n_cols)))
        rows, cols = linear_sum_assignment(cost)
        ok = dense[rows, cols] >= thresh
        rows, cols = rows[ok], cols[ok]
        found.append((ut[r_order[r_start[c] + rows]], up[c_order[c_start[c] + cols]], dense[rows, cols]))
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def _match(overlap: _Overlap, thresh: float) -> tuple[int, float]:
    """(tp, sum of matched IoU) of the optimal matching at `thresh` (:func:`_match_pairs`)."""
    true_ids, _, scores = _match_pairs(overlap, thresh)
    return int(true_ids.size), float(scores.sum())


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


def matched_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, thresh: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which true object :func:`matching` pairs with which predicted object.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
        Instance label images (0 background).
    thresh : float
        IoU threshold in (0, 1].

    Returns
    -------
    true_labels, pred_labels : ndarray of shape (K,), int64
        The label values of the ``K = matching(y_true, y_pred, thresh).tp`` matched pairs,
        sorted by true label.
    iou : ndarray of shape (K,), float64
        Their intersection over union.

    Examples
    --------
    >>> y = np.zeros((8, 8), int); y[1:4, 1:4] = 3; y[5:8, 5:8] = 9
    >>> p = np.zeros_like(y); p[5:8, 5:8] = 4
    >>> [a.tolist() for a in matched_pairs(y, p)]
    [[9], [4], [1.0]]
    """
    thresh = _check_thresh(thresh)
    ov = _overlap(y_true, y_pred)
    true_idx, pred_idx, iou = _match_pairs(ov, thresh)
    true_values = np.unique(np.asarray(y_true)[np.asarray(y_true) > 0]).astype(np.int64)
    pred_values = np.unique(np.asarray(y_pred)[np.asarray(y_pred) > 0]).astype(np.int64)
    order = np.argsort(true_idx, kind="stable")
    return true_values[true_idx[order]], pred_values[pred_idx[order]], iou[order].astype(np.float64)


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


__all__ = [
    "DEFAULT_IOU_THRESHOLDS",
    "Matching",
    "aggregate_matchings",
    "average_precision",
    "matched_pairs",
    "matching",
    "matching_dataset",
]
