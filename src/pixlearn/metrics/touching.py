"""Touching objects: which true objects share a boundary, and whether a prediction separates them.

Touching nuclei are where pixel classifiers fail as instance segmenters: the connected
components of a foreground mask merge every touching pair into one object. The matching scores
of :mod:`pixlearn.metrics.instance` show that only indirectly (a merge costs two false
negatives and a false positive); :func:`touching_separation` counts it directly. A *touching
pair* is two true objects with a shared boundary: a pixel of one is next to a pixel of the
other along a row, column or plane axis (face connectivity, diagonal contact is not enough). A
pair is *separated* when both objects are matched, at the IoU threshold, to predicted objects
by the one-to-one matching of :func:`pixlearn.metrics.instance.matching`, which puts them in
two different predicted objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.metrics.instance import matched_pairs


@dataclasses.dataclass(frozen=True)
class TouchingSeparation:
    """How many touching pairs of true objects a prediction separates.

    Attributes
    ----------
    thresh : float
        IoU threshold of the matching.
    n_touching : int
        Touching pairs in the truth.
    n_separated : int
        Those whose two objects are both matched (so to two different predicted objects).
    fraction : float
        ``n_separated / n_touching``; 1.0 when nothing touches (nothing to separate).
    """

    thresh: float
    n_touching: int
    n_separated: int
    fraction: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all fields."""
        return dataclasses.asdict(self)


def _separation(thresh: float, n_touching: int, n_separated: int) -> TouchingSeparation:
    fraction = n_separated / n_touching if n_touching else 1.0
    return TouchingSeparation(float(thresh), int(n_touching), int(n_separated), float(fraction))


def touching_pairs(labels: np.ndarray) -> np.ndarray:
    """The pairs of objects that share a boundary (face connectivity).

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels, 0 background.

    Returns
    -------
    pairs : ndarray of shape (K, 2), int64
        Label values ``(a, b)`` with ``a < b``, each pair once, sorted.

    Raises
    ------
    ValueError
        Labels that are not integers, negative, or not 2D or 3D.

    Examples
    --------
    >>> y = np.array([[1, 1, 2, 0], [0, 0, 2, 0], [3, 0, 0, 4]])
    >>> touching_pairs(y).tolist()
    [[1, 2]]
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or not np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
        raise ValueError(f"labels must be an integer image of shape (M, N) or (P, M, N), got {labels.dtype} "
                         f"of shape {labels.shape}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"labels hold negative label {int(labels.min())}")
    found = [np.empty((0, 2), np.int64)]
    for axis in range(labels.ndim):
        first = np.take(labels, np.arange(labels.shape[axis] - 1), axis=axis).ravel()
        second = np.take(labels, np.arange(1, labels.shape[axis]), axis=axis).ravel()
        contact = (first != second) & (first > 0) & (second > 0)
        a, b = first[contact].astype(np.int64), second[contact].astype(np.int64)
        found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    return np.unique(np.concatenate(found), axis=0)


def touching_separation(y_true: np.ndarray, y_pred: np.ndarray, thresh: float = 0.5) -> TouchingSeparation:
    """Count the touching pairs of true objects and how many of them `y_pred` separates.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (M, N) or (P, M, N), integer
        True and predicted instance labels (0 background).
    thresh : float
        IoU a matched pair needs, in (0, 1].

    Returns
    -------
    result : TouchingSeparation

    Raises
    ------
    ValueError
        Different shapes, bad labels, or a threshold outside (0, 1].

    Examples
    --------
    >>> y = np.zeros((4, 8), int); y[:, :4] = 1; y[:, 4:] = 2       # two touching objects
    >>> touching_separation(y, y).n_separated
    1
    >>> touching_separation(y, (y > 0).astype(int)).n_separated     # merged into one
    0
    """
    pairs = touching_pairs(y_true)
    matched, _, _ = matched_pairs(y_true, y_pred, thresh)
    separated = np.isin(pairs[:, 0], matched) & np.isin(pairs[:, 1], matched)
    return _separation(thresh, len(pairs), int(separated.sum()))


def touching_separation_dataset(
    list_true: Sequence[np.ndarray], list_pred: Sequence[np.ndarray], thresh: float = 0.5
) -> TouchingSeparation:
    """:func:`touching_separation` of several images, counts summed.

    Parameters
    ----------
    list_true, list_pred : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Instance label images, paired by position.
    thresh : float

    Returns
    -------
    pooled : TouchingSeparation

    Raises
    ------
    ValueError
        Lists of different lengths, empty lists, or bad labels.
    """
    if len(list_true) != len(list_pred):
        raise ValueError(f"{len(list_true)} true images but {len(list_pred)} predictions")
    if len(list_true) == 0:
        raise ValueError("no images to score")
    results = [touching_separation(t, p, thresh) for t, p in zip(list_true, list_pred)]
    return _separation(thresh, sum(r.n_touching for r in results), sum(r.n_separated for r in results))


__all__ = ["TouchingSeparation", "touching_pairs", "touching_separation", "touching_separation_dataset"]
