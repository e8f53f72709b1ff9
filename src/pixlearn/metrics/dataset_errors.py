"""Error analysis of a data set: per-group tables, error shares, scores by object size, worst images.

:func:`error_analysis` classifies the objects of every image with
:func:`~pixlearn.metrics.errors.image_errors` (the categories are defined there) and pools the
counts, as StarDist pools its matching: one :class:`GroupScores` for all images and one per
group (any labels the caller gives, e.g. imaging modalities), :class:`SizeBinScores` by the
equivalent diameter of the true objects, and the images with the lowest AP@0.5. The
:class:`ErrorAnalysis` it returns dumps to JSON with :meth:`ErrorAnalysis.to_dict` and prints
with :func:`~pixlearn.metrics.error_report.format_error_analysis`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixlearn.metrics.errors import ERROR_CATEGORIES, MATCHED, ErrorConfig, ErrorCounts, ImageErrors, image_errors


@dataclasses.dataclass(frozen=True)
class GroupScores:
    """Pooled scores of some images (counts summed over the images first, as StarDist does).

    Attributes
    ----------
    images, n_true, n_pred, tp, fp, fn : int
        Counts at IoU 0.5.
    tp75 : int
        Pairs matched at IoU 0.75.
    ap50, ap75 : float
        Pooled matching accuracy ``tp/(tp+fp+fn)`` at IoU 0.5 and 0.75 (1 with no objects at all).
    ap50_per_image : float
        Mean of the images' AP@0.5 (DSB2018's convention).
    mean_matched_iou : float
        Mean IoU of the pairs matched at 0.5 (0 when none).
    error_share : float
        ``fp + fn`` of these images over that of all images analysed (0 when there is no error).
    errors : ErrorCounts
        The categories of the errors; ``errors.total == fp + fn``.
    """

    images: int
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    tp75: int
    ap50: float
    ap75: float
    ap50_per_image: float
    mean_matched_iou: float
    error_share: float
    errors: ErrorCounts

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**fields, "errors": self.errors.to_dict()}


@dataclasses.dataclass(frozen=True)
class SizeBinScores:
    """Scores of the true objects whose equivalent diameter lies in ``[low_px, high_px)``.

    Attributes
    ----------
    label : str
        ``"<8"``, ``"8-12"``, ..., ``">=40"``.
    low_px, high_px : float or None
        Bounds; ``None`` for the open ends.
    n_true, tp : int
        True objects in the bin, and those matched at IoU 0.5.
    recall : float
        ``tp / n_true`` (0 for an empty bin).
    mean_matched_iou : float
        Mean IoU of the matched ones (0 when none).
    miss, merge, split, poor_localisation : int
        The unmatched true objects of the bin by category.
    """

    label: str
    low_px: float | None
    high_px: float | None
    n_true: int
    tp: int
    recall: float
    mean_matched_iou: float
    miss: int
    merge: int
    split: int
    poor_localisation: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields."""
        return dataclasses.asdict(self)


def _accuracy(tp: int, fp: int, fn: int) -> float:
    return float(tp / (tp + fp + fn)) if tp + fp + fn else 1.0


def _pool(images: Sequence[ImageErrors], all_errors: int) -> GroupScores:
    tp, tp75 = sum(i.tp for i in images), sum(i.tp75 for i in images)
    n_true, n_pred = sum(i.n_true for i in images), sum(i.n_pred for i in images)
    fp, fn = n_pred - tp, n_true - tp
    return GroupScores(
        images=len(images), n_true=n_true, n_pred=n_pred, tp=tp, fp=fp, fn=fn, tp75=tp75,
        ap50=_accuracy(tp, fp, fn), ap75=_accuracy(tp75, n_pred - tp75, n_true - tp75),
        ap50_per_image=float(np.mean([i.ap50 for i in images])) if images else 0.0,
        mean_matched_iou=float(sum(i.sum_matched_iou for i in images) / tp) if tp else 0.0,
        error_share=float((fp + fn) / all_errors) if all_errors else 0.0,
        errors=sum((i.errors for i in images), ErrorCounts()),
    )


def _bin_labels(edges: Sequence[float]) -> list[tuple[str, float | None, float | None]]:
    bounds: list[float | None] = [None, *edges, None]
    out = []
    for low, high in zip(bounds, bounds[1:]):
        label = f"<{high:g}" if low is None else f">={low:g}" if high is None else f"{low:g}-{high:g}"
        out.append((label, low, high))
    return out


def _size_bins(images: Sequence[ImageErrors], edges: Sequence[float]) -> tuple[SizeBinScores, ...]:
    empty = np.zeros(0)
    diameter = np.concatenate([empty, *(i.true_diameter_px for i in images)])
    iou = np.concatenate([empty, *(i.true_matched_iou for i in images)])
    category = np.concatenate([empty.astype(np.int8), *(i.true_category for i in images)]).astype(np.int64)
    which = np.digitize(diameter, edges)
    out = []
    for k, (label, low, high) in enumerate(_bin_labels(edges)):
        picked = which == k
        counts = np.bincount(category[picked], minlength=len(ERROR_CATEGORIES))
        n, tp = int(picked.sum()), int(counts[MATCHED])
        matched_iou = iou[picked & (category == MATCHED)]
        out.append(SizeBinScores(
            label=label, low_px=low, high_px=high, n_true=n, tp=tp, recall=float(tp / n) if n else 0.0,
            mean_matched_iou=float(matched_iou.mean()) if tp else 0.0,
            **{name: int(counts[ERROR_CATEGORIES.index(name)]) for name in ("miss", "merge", "split", "poor_localisation")},
        ))
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class ErrorAnalysis:
    """Result of :func:`error_analysis`.

    Attributes
    ----------
    config : ErrorConfig
    images : tuple of ImageErrors
        Every image, in the order given, with its name and group.
    overall : GroupScores
        All images pooled (``error_share`` 1, or 0 without errors).
    by_group : mapping of str to GroupScores
        One entry per group, in the order of `group_order` or of first appearance.
    by_size : tuple of SizeBinScores
        The true objects of all images by equivalent diameter (``config.size_edges_px``).
    worst : tuple of ImageErrors
        The ``config.n_worst`` images of lowest AP@0.5 (most errors first among equals).
    """

    config: ErrorConfig
    images: tuple[ImageErrors, ...]
    overall: GroupScores
    by_group: Mapping[str, GroupScores]
    by_size: tuple[SizeBinScores, ...]
    worst: tuple[ImageErrors, ...]

    def pooled(self, groups: Sequence[str]) -> GroupScores:
        """Scores of the images of several groups together (e.g. all fluorescence groups).

        Raises
        ------
        ValueError
            A group that no image belongs to.
        """
        unknown = sorted(set(groups) - set(self.by_group))
        if unknown:
            raise ValueError(f"no image in groups {unknown}; groups: {list(self.by_group)}")
        return _pool([i for i in self.images if i.group in set(groups)], self.overall.errors.total)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``config``, ``overall``, ``by_group``, ``by_size`` and ``worst_images``."""
        return {"config": self.config.to_dict(), "overall": self.overall.to_dict(),
                "by_group": {g: s.to_dict() for g, s in self.by_group.items()},
                "by_size": [b.to_dict() for b in self.by_size],
                "worst_images": [i.summary() for i in self.worst]}


def _group_names(groups: Sequence[str], order: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(groups))
    if order is None:
        return present
    missing = sorted(set(present) - set(order))
    if missing:
        raise ValueError(f"groups {missing} are not in group_order {list(order)}")
    return [g for g in order if g in present]


def error_analysis(
    list_true: Sequence[np.ndarray],
    list_pred: Sequence[np.ndarray],
    groups: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    *,
    config: ErrorConfig | None = None,
    group_order: Sequence[str] | None = None,
) -> ErrorAnalysis:
    """Classify the errors of every image and pool them by group, by object size and overall.

    Parameters
    ----------
    list_true, list_pred : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Instance label images, paired by position (shapes may differ between pairs).
    groups : sequence of str, optional
        The group of each image; ``None``: no per-group tables.
    names : sequence of str, optional
        The name of each image (for the worst images); default its position.
    config : ErrorConfig, optional
        Category thresholds, size bins and how many worst images; default ``ErrorConfig()``.
    group_order : sequence of str, optional
        The order of the groups in ``by_group`` (groups without images are left out); default
        the order of first appearance.

    Returns
    -------
    analysis : ErrorAnalysis

    Raises
    ------
    ValueError
        No images, lists of different lengths, a group not in `group_order`, or bad labels.

    Examples
    --------
    >>> y = np.zeros((6, 12), int); y[1:5, 1:5] = 1; y[1:5, 7:11] = 2
    >>> a = error_analysis([y, y], [y, np.zeros_like(y)], groups=["good", "empty"])
    >>> a.overall.ap50, a.by_group["empty"].errors.miss, a.by_group["empty"].error_share
    (0.5, 2, 1.0)
    """
    config = ErrorConfig() if config is None else config
    n = len(list_true)
    groups = [""] * n if groups is None else list(groups)
    names = [str(i) for i in range(n)] if names is None else list(names)
    if n == 0:
        raise ValueError("no images to analyse")
    if not len(list_pred) == len(groups) == len(names) == n:
        raise ValueError(f"{n} true images but {len(list_pred)} predictions, {len(groups)} groups, "
                         f"{len(names)} names")
    images = tuple(dataclasses.replace(image_errors(t, p, config), name=str(name), group=str(group))
                   for t, p, name, group in zip(list_true, list_pred, names, groups))
    total = sum(i.fp + i.fn for i in images)
    by_group = {} if all(g == "" for g in groups) else {
        g: _pool([i for i in images if i.group == g], total) for g in _group_names(groups, group_order)}
    worst = sorted(images, key=lambda i: (i.ap50, -(i.fp + i.fn), i.name))[: config.n_worst]
    return ErrorAnalysis(config=config, images=images, overall=_pool(images, total), by_group=by_group,
                         by_size=_size_bins(images, config.size_edges_px), worst=tuple(worst))


__all__ = ["ErrorAnalysis", "GroupScores", "SizeBinScores", "error_analysis"]
