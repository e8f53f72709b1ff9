"""Simulated user annotations: sparse scribbles and class masks made from exact labels.

:func:`simulate_scribbles` and :func:`dense_to_scribbles` thin exact masks (instance labels or
dense class indices) to sparse, gently curving brush strokes that stay inside their class, as a
user paints them (in 3D each stroke lies in one plane), and return them in the ``"scribbles"``
convention of :mod:`pixlearn.data.labels` (``0`` unlabelled, class ``k`` as ``k + 1``);
:func:`instances_to_semantic` turns instance labels into a background/object (optionally
boundary) class mask. Randomness comes only from the ``numpy.random.Generator`` passed in, so
the same generator state gives the same strokes; inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def instances_to_semantic(labels: np.ndarray, *, boundary: bool = False) -> np.ndarray:
    """Turn instance labels into a class mask: 0 background, 1 object, optionally 2 boundary.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer dtype
        ``0`` background, positive values objects.
    boundary : bool
        Mark object pixels that touch another label or the background (face connectivity) as
        class 2, so touching objects are separated by a boundary class. The edge of the array
        is not a boundary.

    Returns
    -------
    mask : ndarray of the same shape, uint8

    Examples
    --------
    >>> instances_to_semantic(np.array([[0, 1, 1, 2, 2, 2]]), boundary=True).tolist()
    [[0, 2, 2, 2, 1, 1]]
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"instance labels must be integers, got dtype {labels.dtype}")
    mask = (labels > 0).astype(np.uint8)
    if boundary:
        edge = np.zeros(labels.shape, bool)
        for axis in range(labels.ndim):
            lo = [slice(None)] * labels.ndim
            hi = [slice(None)] * labels.ndim
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            differ = labels[tuple(lo)] != labels[tuple(hi)]
            edge[tuple(lo)] |= differ
            edge[tuple(hi)] |= differ
        mask[edge & (labels > 0)] = 2
    return mask


def simulate_scribbles(
    labels: np.ndarray,
    rng: np.random.Generator,
    fraction: float = 0.02,
    *,
    width_px: int = 3,
    length_px: tuple[int, int] = (8, 40),
) -> np.ndarray:
    """Sparse brush strokes on an instance image, as a user would paint them.

    Strokes inside objects get class 2, strokes in the background class 1, everything else 0
    (unlabelled) -- the ``"scribbles"`` convention of :mod:`pixlearn.data.labels`. Same as
    ``dense_to_scribbles((labels > 0), ...)``.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer dtype
        Instance labels, ``0`` background.
    rng : numpy.random.Generator
    fraction : float
        Wanted fraction of labelled pixels, shared equally between the two classes.
    width_px : int
        Brush diameter, pixels.
    length_px : (int, int)
        Range of stroke lengths, pixels (a stroke also stops where its class ends).

    Returns
    -------
    scribbles : ndarray of the same shape, uint8

    Examples
    --------
    >>> labels = np.zeros((40, 40), np.uint16); labels[10:30, 10:30] = 1
    >>> s = simulate_scribbles(labels, np.random.default_rng(0), fraction=0.05)
    >>> sorted(np.unique(s).tolist()), bool(np.all(labels[s == 2] > 0))
    ([0, 1, 2], True)
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"instance labels must be integers, got dtype {labels.dtype}")
    return dense_to_scribbles(
        (labels > 0).astype(np.uint8), rng, fraction, width_px=width_px, length_px=length_px
    )


def dense_to_scribbles(
    class_mask: np.ndarray,
    rng: np.random.Generator,
    fraction: float = 0.02,
    *,
    width_px: int = 3,
    length_px: tuple[int, int] = (8, 40),
) -> np.ndarray:
    """Thin a dense class mask to sparse brush strokes (``0`` unlabelled, class ``k`` -> ``k+1``).

    Each class present in the mask gets strokes: short, gently curving lines of width `width_px`
    started inside the class (where the whole brush fits, when possible) and stopped where the
    class ends, so a stroke never labels a pixel of another class. In 3D each stroke lies in one
    plane, as when painting on a slice. Strokes are added until each class holds about
    ``fraction * size / n_classes`` labelled pixels (at most half of that class' pixels).

    Parameters
    ----------
    class_mask : ndarray of shape (M, N) or (P, M, N), integer dtype
        Dense class indices ``0..K-1`` (every pixel labelled).
    rng : numpy.random.Generator
    fraction : float
        Wanted fraction of labelled pixels, in ``(0, 1]``.
    width_px : int
        Brush diameter, pixels (``>= 1``).
    length_px : (int, int)
        Range of stroke lengths, pixels.

    Returns
    -------
    scribbles : ndarray of the same shape, uint8 (uint16 when K >= 255)
        ``0`` unlabelled, ``k + 1`` for class ``k``.

    Raises
    ------
    ValueError
        Non-integer or negative classes, a dimensionality other than 2 or 3, or bad parameters.

    Examples
    --------
    >>> mask = np.zeros((30, 30), np.uint8); mask[:, 10:20] = 1; mask[:, 20:] = 2
    >>> s = dense_to_scribbles(mask, np.random.default_rng(1), fraction=0.1)
    >>> sorted(np.unique(s).tolist()), bool(np.all(s[s > 0] == mask[s > 0] + 1))
    ([0, 1, 2, 3], True)
    """
    mask = np.asarray(class_mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"class mask must be 2D or 3D, got shape {mask.shape}")
    if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool):
        raise ValueError(f"class mask must hold integers, got dtype {mask.dtype}")
    if mask.size and int(mask.min()) < 0:
        raise ValueError(f"class mask has negative value {int(mask.min())}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if width_px < 1:
        raise ValueError(f"width_px must be >= 1, got {width_px}")
    if len(length_px) != 2 or not 1 <= length_px[0] <= length_px[1]:
        raise ValueError(f"length_px must be (low, high) with 1 <= low <= high, got {length_px}")
    classes = np.unique(mask)
    dtype = np.uint8 if classes.size == 0 or int(classes.max()) < 255 else np.uint16
    scribbles = np.zeros(mask.shape, dtype)
    if mask.size == 0:
        return scribbles
    plane_mask = mask if mask.ndim == 3 else mask[np.newaxis]
    plane_out = scribbles if mask.ndim == 3 else scribbles[np.newaxis]
    half = width_px // 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    brush = (yy**2 + xx**2) <= (width_px / 2.0) ** 2 + 1e-6
    per_class = fraction * mask.size / len(classes)
    for k in classes:
        region = plane_mask == k
        target = max(1.0, min(per_class, 0.5 * np.count_nonzero(region)))
        interior = ndi.minimum_filter(region.view(np.uint8), footprint=brush[np.newaxis])
        starts = np.flatnonzero(interior)
        if starts.size == 0:
            starts = np.flatnonzero(region)
        painted = 0
        for _stroke in range(100_000):
            if painted >= target:
                break
            start = np.unravel_index(starts[rng.integers(starts.size)], region.shape)
            painted += _paint_stroke(
                plane_out, region, start, int(k) + 1, brush, length_px, rng, int(target - painted)
            )
    return scribbles


def _paint_stroke(
    out: np.ndarray,
    region: np.ndarray,
    start: tuple[int, ...],
    value: int,
    brush: np.ndarray,
    length_px: tuple[int, int],
    rng: np.random.Generator,
    budget: int,
) -> int:
    """Paint one in-plane stroke of `value` into `out` (P, M, N) within `region`; pixels added."""
    plane, y0, x0 = (int(v) for v in start)
    rows, cols = region.shape[1:]
    half = brush.shape[0] // 2
    length = int(rng.integers(length_px[0], length_px[1] + 1))
    angles = rng.uniform(0.0, 2.0 * np.pi) + np.cumsum(rng.normal(0.0, 0.25, length))
    ys = y0 + np.concatenate([[0.0], np.cumsum(np.sin(angles[:-1]))])
    xs = x0 + np.concatenate([[0.0], np.cumsum(np.cos(angles[:-1]))])
    painted = 0
    last = None
    region_plane, out_plane = region[plane], out[plane]
    for y, x in zip(np.rint(ys).astype(int), np.rint(xs).astype(int)):
        if not (0 <= y < rows and 0 <= x < cols) or not region_plane[y, x]:
            break
        if (y, x) == last:
            continue
        last = (y, x)
        r0, r1 = max(0, y - half), min(rows, y + half + 1)
        c0, c1 = max(0, x - half), min(cols, x + half + 1)
        tip = brush[r0 - y + half:r1 - y + half, c0 - x + half:c1 - x + half]
        new = tip & region_plane[r0:r1, c0:c1] & (out_plane[r0:r1, c0:c1] == 0)
        out_plane[r0:r1, c0:c1][new] = value
        painted += int(np.count_nonzero(new))
        if painted >= budget:
            break
    return painted


__all__ = ["dense_to_scribbles", "instances_to_semantic", "simulate_scribbles"]
