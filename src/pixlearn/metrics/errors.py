"""Error analysis of instance segmentation: what kind of mistake each unmatched object is.

True and predicted objects are matched one-to-one at IoU 0.5 as in :func:`~pixlearn.metrics.matching`
(most pairs, then the highest total IoU). Every object left unmatched is one error (a false
negative or a false positive) and gets exactly one category, so that, per image and in any pool
of images, ``miss + merge + split + poor_localisation + spurious == fp + fn``. With the
intersection :math:`|t \\cap p|`, the *cover* of a true object ``t`` by a prediction ``p`` is
:math:`|t \\cap p| / |t|` and the share of ``p`` inside ``t`` is :math:`|t \\cap p| / |p|`:

merge
    A prediction is a *merger* when it covers at least ``cover`` (0.5) of each of two or more
    true objects. An unmatched true object covered that much by a merger, and an unmatched
    merger itself, are merge errors (two nuclei in one unmatched prediction: three errors).
split
    A true object is *split* when two or more predictions each lie at least ``cover`` inside
    it. An unmatched split true object, and an unmatched prediction lying that much inside a
    split true object, are split errors.
poor_localisation
    Any other unmatched object whose best IoU with an object of the other side is at least
    ``overlap_iou`` (0.3): found, but outlined too badly to match. An IoU above 0.5 is always
    matched, so this is best IoU in ``[0.3, 0.5]`` (0.5 only for an exact tie lost).
miss
    Any other unmatched true object (best IoU with any prediction below 0.3).
spurious
    Any other unmatched prediction (best IoU with any true object below 0.3).

The precedence is the order above: merge, then split, then poor localisation, then miss or
spurious. :func:`image_errors` classifies the objects of one image and returns an
:class:`ImageErrors` (counts, and each object's category, size and matched IoU);
:class:`ErrorCounts` holds the category counts of one image or of a pool of images.
:func:`~pixlearn.metrics.dataset_errors.error_analysis` pools many images into per-group tables,
scores by object size and the worst images.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pixlearn.config import Config

# the category of an object: matched, or one of the five errors; codes are indices into this tuple
ERROR_CATEGORIES: tuple[str, ...] = ("matched", "miss", "merge", "split", "poor_localisation", "spurious")
MATCHED, MISS, MERGE, SPLIT, POOR, SPURIOUS = range(len(ERROR_CATEGORIES))
MATCH_IOU = 0.5
STRICT_IOU = 0.75


@dataclasses.dataclass(frozen=True)
class ErrorConfig(Config):
    """How unmatched objects are classified and how the analysis is tabulated.

    Parameters
    ----------
    overlap_iou : float
        Best IoU, in ``(0, 0.5)``, from which an unmatched object counts as found but poorly
        localised rather than missed or spurious.
    cover : float
        Fraction, in ``(0, 1]``, of a true object a merger covers, and of a prediction that lies
        inside a split true object.
    size_edges_px : tuple of float
        Increasing edges of the size bins, equivalent diameter of the true object in pixels:
        ``(8, 12, 20, 40)`` gives ``<8``, ``8-12``, ``12-20``, ``20-40`` and ``>=40``.
    n_worst : int
        How many of the worst images (lowest AP@0.5) the analysis keeps.

    Examples
    --------
    >>> ErrorConfig(size_edges_px=(10, 20)).size_edges_px
    (10.0, 20.0)
    """

    overlap_iou: float = 0.3
    cover: float = 0.5
    size_edges_px: tuple[float, ...] = (8.0, 12.0, 20.0, 40.0)
    n_worst: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_edges_px", tuple(float(e) for e in self.size_edges_px))
        if not 0.0 < self.overlap_iou < MATCH_IOU:
            raise ValueError(f"overlap_iou must be in (0, {MATCH_IOU}), got {self.overlap_iou}")
        if not 0.0 < self.cover <= 1.0:
            raise ValueError(f"cover must be in (0, 1], got {self.cover}")
        edges = self.size_edges_px
        if any(e <= 0 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"size_edges_px must be positive and increasing, got {edges}")
        if self.n_worst < 0:
            raise ValueError(f"n_worst must be >= 0, got {self.n_worst}")


@dataclasses.dataclass(frozen=True)
class ErrorCounts:
    """Unmatched objects by category: ``*_fn`` are true objects, ``*_fp`` predictions.

    ``miss`` are all false negatives and ``spurious`` all false positives of their kind.
    """

    miss: int = 0
    merge_fn: int = 0
    merge_fp: int = 0
    split_fn: int = 0
    split_fp: int = 0
    poor_fn: int = 0
    poor_fp: int = 0
    spurious: int = 0

    @classmethod
    def from_categories(cls, true_category: np.ndarray, pred_category: np.ndarray) -> ErrorCounts:
        """Count the category codes (indices into :data:`ERROR_CATEGORIES`) of both sides."""
        t = np.bincount(np.asarray(true_category, np.int64), minlength=len(ERROR_CATEGORIES))
        p = np.bincount(np.asarray(pred_category, np.int64), minlength=len(ERROR_CATEGORIES))
        return cls(int(t[MISS]), int(t[MERGE]), int(p[MERGE]), int(t[SPLIT]), int(p[SPLIT]),
                   int(t[POOR]), int(p[POOR]), int(p[SPURIOUS]))

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)))

    @property
    def fn(self) -> int:
        """Unmatched true objects."""
        return self.miss + self.merge_fn + self.split_fn + self.poor_fn

    @property
    def fp(self) -> int:
        """Unmatched predictions."""
        return self.merge_fp + self.split_fp + self.poor_fp + self.spurious

    @property
    def total(self) -> int:
        """All errors, ``fp + fn``."""
        return self.fn + self.fp

    def by_category(self) -> dict[str, int]:
        """Errors of each category, both sides together (sums to :attr:`total`)."""
        return {"miss": self.miss, "merge": self.merge_fn + self.merge_fp, "split": self.split_fn + self.split_fp,
                "poor_localisation": self.poor_fn + self.poor_fp, "spurious": self.spurious}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the categories, ``total``, and each side's categories under ``fn``/``fp``."""
        return {**self.by_category(), "total": self.total,
                "fn": {"miss": self.miss, "merge": self.merge_fn, "split": self.split_fn,
                       "poor_localisation": self.poor_fn},
                "fp": {"merge": self.merge_fp, "split": self.split_fp, "poor_localisation": self.poor_fp,
                       "spurious": self.spurious}}


def _accuracy(tp: int, fp: int, fn: int) -> float:
    """``tp/(tp+fp+fn)``: 1 when there is nothing on either side (as :func:`matching`)."""
    return float(tp / (tp + fp + fn)) if tp + fp + fn else 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class ImageErrors:
    """Matching and error categories of one image (see the module docstring).

    Attributes
    ----------
    n_true, n_pred : int
    tp, tp75 : int
        Matched pairs at IoU 0.5 and at IoU 0.75.
    sum_matched_iou : float
        Total IoU of the pairs matched at 0.5.
    true_labels, pred_labels : ndarray of int64
        The object ids, ascending; the arrays below follow this order.
    true_diameter_px : ndarray of float
        Equivalent diameter of each true object (of a disc, or a ball in 3D, of its area).
    true_matched_iou : ndarray of float
        IoU of each true object with its match at 0.5, 0 when unmatched.
    true_category, pred_category : ndarray of int8
        Index into :data:`ERROR_CATEGORIES` of each object (0, ``"matched"``, when matched).
    name, group : str
        Set by :func:`error_analysis`.
    """

    n_true: int
    n_pred: int
    tp: int
    tp75: int
    sum_matched_iou: float
    true_labels: np.ndarray
    pred_labels: np.ndarray
    true_diameter_px: np.ndarray
    true_matched_iou: np.ndarray
    true_category: np.ndarray
    pred_category: np.ndarray
    name: str = ""
    group: str = ""

    @property
    def fp(self) -> int:
        """Predictions left unmatched at IoU 0.5."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """True objects left unmatched at IoU 0.5."""
        return self.n_true - self.tp

    @property
    def ap50(self) -> float:
        """Matching accuracy ``tp/(tp+fp+fn)`` at IoU 0.5."""
        return _accuracy(self.tp, self.fp, self.fn)

    @property
    def errors(self) -> ErrorCounts:
        """The category counts of this image (``errors.total == fp + fn``)."""
        return ErrorCounts.from_categories(self.true_category, self.pred_category)

    def summary(self) -> dict[str, Any]:
        """JSON-safe row: name, group, AP@0.5, counts, the most frequent error and all errors."""
        by_category = self.errors.by_category()
        main = max(by_category, key=lambda k: by_category[k]) if self.fp + self.fn else None
        return {"name": self.name, "group": self.group, "ap50": self.ap50, "n_true": self.n_true,
                "n_pred": self.n_pred, "tp": self.tp, "fp": self.fp, "fn": self.fn, "main_error": main,
                "errors": by_category}


@dataclasses.dataclass(frozen=True)
class _Table:
    """The overlapping pairs of one image: 0-based object indices, intersections, IoUs."""

    true_labels: np.ndarray
    pred_labels: np.ndarray
    true_area: np.ndarray
    pred_area: np.ndarray
    ti: np.ndarray
    pi: np.ndarray
    inter: np.ndarray
    iou: np.ndarray


def _check(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
        raise ValueError(f"{name} must hold integer object labels, got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"{name} holds negative label {int(labels.min())}")
    return labels


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object ids and each pixel's object number ``1..n`` (0: background)."""
    values, inverse = np.unique(labels.ravel().astype(np.int64), return_inverse=True)
    inverse = inverse.ravel()
    if values.size and values[0] == 0:
        return values[1:], inverse
    return values, inverse + 1


def _table(y_true: np.ndarray, y_pred: np.ndarray) -> _Table:
    y_true, y_pred = _check(y_true, "y_true"), _check(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    true_labels, t = _compact(y_true)
    pred_labels, p = _compact(y_pred)
    n_pred = len(pred_labels)
    true_area = np.bincount(t, minlength=len(true_labels) + 1)[1:]
    pred_area = np.bincount(p, minlength=n_pred + 1)[1:]
    both = (t > 0) & (p > 0)
    pairs, inter = np.unique((t[both] - 1) * n_pred + (p[both] - 1), return_counts=True)
    ti, pi = np.divmod(pairs, max(n_pred, 1))
    inter = inter.astype(np.float64)
    iou = inter / (true_area[ti] + pred_area[pi] - inter)
    return _Table(true_labels, pred_labels, true_area, pred_area, ti, pi, inter, iou)


def _assign(table: _Table, thresh: float) -> np.ndarray:
    """Indices of the matched pairs at IoU >= `thresh` (>= 0.5): most pairs, then highest total IoU.

    Above 0.5 a pair is the only candidate of both its objects; only exact ties at 0.5 leave
    objects with several candidates, and those few are solved by the Hungarian algorithm.
    """
    cand = np.flatnonzero(table.iou >= thresh)
    deg_t = np.bincount(table.ti[cand], minlength=len(table.true_labels))
    deg_p = np.bincount(table.pi[cand], minlength=len(table.pred_labels))
    simple = (deg_t[table.ti[cand]] == 1) & (deg_p[table.pi[cand]] == 1)
    rest = cand[~simple]
    if rest.size == 0:
        return cand
    rows, r = np.unique(table.ti[rest], return_inverse=True)
    cols, c = np.unique(table.pi[rest], return_inverse=True)
    dense = np.zeros((len(rows), len(cols)))
    dense[r, c] = table.iou[rest]
    index = np.full(dense.shape, -1, np.int64)
    index[r, c] = rest
    # a match counts 1; its IoU / (2n) only breaks ties between matchings with as many pairs
    cost = -((dense >= thresh) + dense / (2 * min(dense.shape)))
    rr, cc = linear_sum_assignment(cost)
    ok = dense[rr, cc] >= thresh
    return np.sort(np.concatenate([cand[simple], index[rr[ok], cc[ok]]]))


def _equivalent_diameter(area: np.ndarray, ndim: int) -> np.ndarray:
    area = np.asarray(area, np.float64)
    if ndim == 3:
        return np.cbrt(6.0 * area / np.pi)
    return 2.0 * np.sqrt(area / np.pi)


def _categories(table: _Table, matched: np.ndarray, config: ErrorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Category codes of the true and the predicted objects (precedence: module docstring)."""
    n_true, n_pred = len(table.true_labels), len(table.pred_labels)
    ti, pi = table.ti, table.pi
    covers = table.inter / table.true_area[ti] >= config.cover
    inside = table.inter / table.pred_area[pi] >= config.cover
    merger = np.bincount(pi[covers], minlength=n_pred) >= 2
    split = np.bincount(ti[inside], minlength=n_true) >= 2
    best_t, best_p = np.zeros(n_true), np.zeros(n_pred)
    np.maximum.at(best_t, ti, table.iou)
    np.maximum.at(best_p, pi, table.iou)

    true_category = np.where(best_t >= config.overlap_iou, POOR, MISS).astype(np.int8)
    true_category[split] = SPLIT
    true_category[ti[covers & merger[pi]]] = MERGE
    true_category[ti[matched]] = MATCHED
    pred_category = np.where(best_p >= config.overlap_iou, POOR, SPURIOUS).astype(np.int8)
    pred_category[pi[inside & split[ti]]] = SPLIT
    pred_category[merger] = MERGE
    pred_category[pi[matched]] = MATCHED
    return true_category, pred_category


def image_errors(y_true: np.ndarray, y_pred: np.ndarray, config: ErrorConfig | None = None) -> ImageErrors:
    """Match the objects of one image at IoU 0.5 and classify every unmatched one.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
        Instance label images: 0 is background, each object one positive id.
    config : ErrorConfig, optional
        Thresholds of the categories; default ``ErrorConfig()``.

    Returns
    -------
    errors : ImageErrors
        ``errors.errors`` counts the categories; they sum to ``fp + fn``.

    Raises
    ------
    ValueError
        Different shapes, or labels that are not non-negative integers.

    Examples
    --------
    >>> y = np.zeros((6, 12), int); y[1:5, 1:5] = 1; y[1:5, 7:11] = 2
    >>> p = np.zeros_like(y); p[1:5, 1:11] = 9                # one prediction over both
    >>> e = image_errors(y, p)
    >>> e.tp, e.fp, e.fn, e.errors.by_category()["merge"]
    (0, 1, 2, 3)
    """
    config = ErrorConfig() if config is None else config
    table = _table(y_true, y_pred)
    matched = _assign(table, MATCH_IOU)
    true_category, pred_category = _categories(table, matched, config)
    true_iou = np.zeros(len(table.true_labels))
    true_iou[table.ti[matched]] = table.iou[matched]
    return ImageErrors(
        n_true=len(table.true_labels), n_pred=len(table.pred_labels), tp=int(matched.size),
        tp75=int(_assign(table, STRICT_IOU).size), sum_matched_iou=float(table.iou[matched].sum()),
        true_labels=table.true_labels, pred_labels=table.pred_labels,
        true_diameter_px=_equivalent_diameter(table.true_area, np.ndim(y_true)),
        true_matched_iou=true_iou, true_category=true_category, pred_category=pred_category,
    )


__all__ = ["ERROR_CATEGORIES", "ErrorConfig", "ErrorCounts", "ImageErrors", "image_errors"]
