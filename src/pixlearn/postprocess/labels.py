"""From probability maps to class maps and object labels: thresholds, components, clean-up.

Thin wrappers over SciPy, each adding what the bare call lacks: input checks, the canonical
``(..., K)`` layout, per-label (not per-component) size filtering, hole filling that never
overwrites a neighbouring object, and sequential relabelling that copes with huge ids.
Inputs are never modified; every function returns a new array.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LABEL_DTYPE = np.uint32


def threshold_probabilities(
    probabilities: np.ndarray, thresh: float | None = None
) -> np.ndarray:
    """Turn per-class probabilities into a class map.

    Parameters
    ----------
    probabilities : ndarray of shape (M, N, K) or (P, M, N, K), float
        Class probabilities, channel last. With ``K == 1`` the channel is the probability of
        the foreground (class 1).
    thresh : float, optional
        ``None`` (default, only for ``K >= 2``): the most probable class, ``argmax``.
        A number in [0, 1]: a pixel gets the most probable *foreground* class ``1..K-1`` when
        that probability exceeds `thresh`, otherwise background 0. With ``K == 1`` the default
        is 0.5.

    Returns
    -------
    classes : ndarray of shape (M, N) or (P, M, N), uint8 (uint16 when K > 255)

    Raises
    ------
    ValueError
        No channel axis, or `thresh` outside [0, 1].

    Examples
    --------
    >>> p = np.array([[[0.7, 0.3], [0.4, 0.6]]])     # (1, 2, 2): two pixels, K = 2
    >>> threshold_probabilities(p).tolist()
    [[0, 1]]
    >>> threshold_probabilities(p, thresh=0.65).tolist()
    [[0, 0]]
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim < 2:
        raise ValueError(f"need (..., K) probabilities, got shape {probabilities.shape}")
    k = probabilities.shape[-1]
    dtype = np.uint8 if k <= 255 else np.uint16
    if k == 1 and thresh is None:
        thresh = 0.5
    if thresh is None:
        return np.argmax(probabilities, axis=-1).astype(dtype)
    thresh = float(thresh)
    if not 0.0 <= thresh <= 1.0:
        raise ValueError(f"probability threshold must be in [0, 1], got {thresh}")
    if k == 1:
        return (probabilities[..., 0] > thresh).astype(dtype)
    foreground = probabilities[..., 1:]
    best = np.argmax(foreground, axis=-1)
    best_p = np.take_along_axis(foreground, best[..., None], axis=-1)[..., 0]
    return np.where(best_p > thresh, best + 1, 0).astype(dtype)


def _structure(ndim: int, connectivity: int | None) -> np.ndarray:
    connectivity = 1 if connectivity is None else int(connectivity)
    if not 1 <= connectivity <= ndim:
        raise ValueError(f"connectivity must be in 1..{ndim}, got {connectivity}")
    return ndimage.generate_binary_structure(ndim, connectivity)


def label_components(
    mask: np.ndarray,
    thresh: float | None = None,
    *,
    connectivity: int | None = None,
    min_size: int = 0,
) -> np.ndarray:
    """Label the connected components of a mask or a thresholded probability map.

    The classical path from a semantic prediction to instances: every connected foreground
    region becomes one object (touching objects are *not* separated; see
    :func:`pixlearn.postprocess.instances.instances_from_outputs` for that).

    Parameters
    ----------
    mask : ndarray of shape (M, N) or (P, M, N)
        Boolean or integer (non-zero is foreground), or float probabilities.
    thresh : float, optional
        For float input: foreground is ``mask > thresh`` (default 0.5). Must be ``None`` for
        boolean or integer input.
    connectivity : int, optional
        Neighbours that connect: 1 (default) = sharing a face, ``ndim`` = also diagonal ones.
    min_size : int
        Components with fewer pixels are removed.

    Returns
    -------
    labels : ndarray, same shape, uint32
        0 background, objects ``1..n`` in raster order.

    Raises
    ------
    ValueError
        A threshold with non-float input, a bad connectivity, or a negative `min_size`.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]])
    >>> label_components(m).tolist()
    [[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0]]
    >>> label_components(m, min_size=2).tolist()
    [[1, 1, 0, 2], [0, 0, 0, 2], [0, 0, 0, 0]]
    """
    mask = np.asarray(mask)
    if np.issubdtype(mask.dtype, np.floating):
        fg = mask > (0.5 if thresh is None else float(thresh))
    else:
        if thresh is not None:
            raise ValueError("thresh applies to float probabilities only")
        fg = mask != 0
    labels = np.zeros(fg.shape, LABEL_DTYPE)
    ndimage.label(fg, structure=_structure(fg.ndim, connectivity), output=labels)
    if min_size:
        labels = relabel_sequential(remove_small_objects(labels, min_size))
    return labels


def label_foreground(probabilities: np.ndarray) -> np.ndarray:
    """Objects of a probability map: the connected components of the non-background pixels.

    A pixel is foreground when its most probable class (:func:`threshold_probabilities`) is
    not class 0; touching objects are not separated.

    Parameters
    ----------
    probabilities : ndarray of shape (M, N, K) or (P, M, N, K), float

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), uint32

    Examples
    --------
    >>> p = np.zeros((1, 5, 2)); p[..., 0] = 1; p[0, [0, 1, 3], :] = [0, 1]
    >>> label_foreground(p).tolist()
    [[1, 1, 0, 2, 0]]
    """
    return label_components(threshold_probabilities(probabilities) > 0)


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects with fewer than `min_size` pixels to background.

    Size is counted per label value (an object split into pieces counts all its pieces), so
    unlike :func:`skimage.morphology.remove_small_objects` no relabelling happens and ids are
    kept. A boolean mask is labelled by face-connected components first.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer or bool
    min_size : int
        Smallest size, in pixels, that is kept.

    Returns
    -------
    cleaned : ndarray, same shape and dtype

    Raises
    ------
    ValueError
        Negative `min_size`, negative labels or a non-integer input.

    Examples
    --------
    >>> remove_small_objects(np.array([[1, 1, 0, 2], [3, 1, 0, 2]]), 2).tolist()
    [[1, 1, 0, 2], [0, 1, 0, 2]]
    """
    labels = np.asarray(labels)
    min_size = int(min_size)
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    if labels.dtype == bool:
        return remove_small_objects(label_components(labels), min_size) > 0
    _check_labels(labels)
    if min_size <= 1 or labels.size == 0:
        return labels.copy()
    _, inverse = compact_ids(labels)
    sizes = np.bincount(inverse)
    small = sizes < min_size
    small[0] = False
    return np.where(small[inverse].reshape(labels.shape), 0, labels).astype(labels.dtype)


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill the holes of each object: background pixels it encloses completely.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance or class labels; 0 is background.

    Returns
    -------
    filled : ndarray, same shape and dtype
        Only background pixels change; a hole is enclosed (face connectivity) by one label.

    Examples
    --------
    >>> y = np.zeros((5, 5), int); y[:3, :3] = 2; y[1, 1] = 0
    >>> int(fill_holes(y)[1, 1])
    2
    """
    labels = np.asarray(labels)
    _check_labels(labels)
    out = labels.copy()
    compact, inverse = compact_ids(labels)
    inverse = inverse.reshape(labels.shape)
    for idx, box in enumerate(ndimage.find_objects(inverse), start=1):
        if box is None:
            continue
        obj = inverse[box] == idx
        filled = ndimage.binary_fill_holes(obj)
        holes = filled & ~obj & (labels[box] == 0)
        if holes.any():
            out[box][holes] = compact[idx]
    return out


def relabel_sequential(labels: np.ndarray, offset: int = 1) -> np.ndarray:
    """Renumber objects ``offset, offset+1, ...`` in order of their old ids; 0 stays 0.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
    offset : int
        First new id (>= 1).

    Returns
    -------
    relabelled : ndarray, same shape, uint32

    Raises
    ------
    ValueError
        Negative labels, `offset` < 1, or more ids than uint32 holds.

    Examples
    --------
    >>> relabel_sequential(np.array([[0, 7, 7], [30, 0, 5]])).tolist()
    [[0, 2, 2], [3, 0, 1]]
    """
    labels = np.asarray(labels)
    _check_labels(labels)
    offset = int(offset)
    if offset < 1:
        raise ValueError(f"offset must be >= 1, got {offset}")
    compact, inverse = compact_ids(labels)
    if offset + len(compact) - 2 > np.iinfo(LABEL_DTYPE).max:
        raise ValueError(f"{len(compact) - 1} objects from {offset} do not fit in uint32")
    new = np.arange(offset - 1, offset - 1 + len(compact), dtype=np.int64)
    new[0] = 0
    return new[inverse].astype(LABEL_DTYPE).reshape(labels.shape)


def _check_labels(labels: np.ndarray) -> None:
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"labels hold negative value {int(labels.min())}")


def compact_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids with 0 first (always), and each pixel's index into them (flat).

    Parameters
    ----------
    labels : ndarray, non-negative integer

    Returns
    -------
    ids : ndarray of shape (n,), integer
        ``ids[0] == 0`` whether or not background occurs.
    inverse : ndarray of shape (labels.size,), int64
        ``ids[inverse]`` is ``labels.ravel()``.

    Examples
    --------
    >>> ids, inverse = compact_ids(np.array([[7, 3], [3, 3]]))
    >>> ids.tolist(), inverse.tolist()
    ([0, 3, 7], [2, 1, 1, 1])
    """
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= max(4 * flat.size, 1 << 16):
        present = np.bincount(flat, minlength=top + 1) > 0
        present[0] = True
        ids = np.flatnonzero(present)
        lut = np.zeros(top + 1, np.int64)
        lut[ids] = np.arange(len(ids))
        return ids, lut[flat]
    ids, inverse = np.unique(flat, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])
        inverse += 1
    return ids, inverse


__all__ = [
    "LABEL_DTYPE",
    "compact_ids",
    "fill_holes",
    "label_components",
    "label_foreground",
    "relabel_sequential",
    "remove_small_objects",
    "threshold_probabilities",
]
