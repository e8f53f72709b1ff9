"""Plain-text tables of an error analysis, for a terminal or a log (the caller prints them).

:func:`format_error_analysis` renders an :class:`~pixlearn.metrics.dataset_errors.ErrorAnalysis`
as four tables: scores per group (with any pooled groups the caller names, and all images),
errors per group by category with each group's share of all errors, scores by object size, and
the worst images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixlearn.metrics.dataset_errors import ErrorAnalysis, GroupScores

_ERRORS = ("miss", "merge", "split", "poor_localisation", "spurious")
_ERROR_HEADERS = ("miss", "merge", "split", "poor loc", "spurious")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def format_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A titled text table: numbers right-aligned, the first column and text columns left-aligned.

    Parameters
    ----------
    title : str
    headers : sequence of str
    rows : sequence of sequence
        Cells; floats are written with three decimals, ``None`` as ``-``.

    Returns
    -------
    text : str

    Examples
    --------
    >>> print(format_table("t", ["name", "n"], [["a", 1], ["bb", 0.5]]))
    == t
    name      n
    a         1
    bb    0.500
    """
    cells = [list(headers)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    text = [k == 0 or all(isinstance(row[k], str) or row[k] is None for row in rows) for k in range(len(headers))]
    lines = [f"== {title}"]
    for row in cells:
        parts = [c.ljust(w) if left else c.rjust(w) for c, w, left in zip(row, widths, text)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _rows(analysis: ErrorAnalysis, pools: Mapping[str, Sequence[str]]) -> list[tuple[str, GroupScores]]:
    rows = list(analysis.by_group.items())
    rows += [(name, analysis.pooled(groups)) for name, groups in pools.items()]
    return rows + [("all", analysis.overall)]


def format_error_analysis(analysis: ErrorAnalysis, *, pools: Mapping[str, Sequence[str]] | None = None) -> str:
    """The tables of an error analysis as text.

    Parameters
    ----------
    analysis : ErrorAnalysis
    pools : mapping of str to sequence of str, optional
        Extra rows of the group tables, each several groups pooled: e.g.
        ``{"fluorescence": ("grey-small", "grey-large")}``.

    Returns
    -------
    text : str
        Scores per group, errors per group, scores by size, worst images.
    """
    rows = _rows(analysis, pools or {})
    scores = format_table(
        "scores per group (pooled over images; AP = TP/(TP+FP+FN))",
        ("group", "images", "true", "pred", "TP", "FP", "FN", "AP50", "AP75", "AP50/image", "mIoU"),
        [(name, s.images, s.n_true, s.n_pred, s.tp, s.fp, s.fn, s.ap50, s.ap75, s.ap50_per_image,
          s.mean_matched_iou) for name, s in rows])
    errors = format_table(
        "errors at IoU 0.5 by kind (FP + FN; share: of all errors)",
        ("group", "errors", "share", *_ERROR_HEADERS),
        [(name, s.errors.total, s.error_share, *(s.errors.by_category()[k] for k in _ERRORS))
         for name, s in rows])
    sizes = format_table(
        "true objects by equivalent diameter (px)",
        ("diameter", "true", "TP", "recall", "mIoU", *_ERROR_HEADERS[:4]),
        [(b.label, b.n_true, b.tp, b.recall, b.mean_matched_iou, b.miss, b.merge, b.split,
          b.poor_localisation) for b in analysis.by_size])
    worst = format_table(
        f"{len(analysis.worst)} worst images (lowest AP@0.5)",
        ("image", "group", "AP50", "true", "pred", "TP", "FP", "FN", "main error"),
        [(i.name[:16], i.group, i.ap50, i.n_true, i.n_pred, i.tp, i.fp, i.fn, i.summary()["main_error"])
         for i in analysis.worst])
    return "\n\n".join((scores, errors, sizes, worst))


__all__ = ["format_error_analysis", "format_table"]
