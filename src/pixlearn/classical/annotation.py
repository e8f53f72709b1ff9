"""Pure functions of interactive annotation: margin uncertainty, suggested regions, scribble targets.

NumPy only, no state: :class:`pixlearn.classical.interactive.InteractiveSession` calls them on its
predictions and strokes, and so may any other front end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from pixlearn.data.blocks import block_grid

Region = tuple[slice, ...]


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """One minus the margin between the two most probable classes, per pixel.

    Parameters
    ----------
    probabilities : ndarray of shape (..., K)
        Class probabilities, ``K >= 2``.

    Returns
    -------
    uncertainty : ndarray of shape (...), float32
        ``1 - (p_first - p_second)``: 0 where one class is certain, 1 where the top two tie.

    Examples
    --------
    >>> [round(float(u), 3) for u in margin_uncertainty(np.array([[1.0, 0.0], [0.5, 0.5], [0.6, 0.4]]))]
    [0.0, 1.0, 0.8]
    """
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim < 1 or probabilities.shape[-1] < 2:
        raise ValueError(f"need probabilities of at least 2 classes on the last axis, got shape {probabilities.shape}")
    top2 = np.partition(probabilities, probabilities.shape[-1] - 2, axis=-1)[..., -2:]
    return (np.float32(1.0) - (top2[..., 1] - top2[..., 0])).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A region where new strokes would help most.

    Attributes
    ----------
    region : tuple of slice
        In image coordinates (3D: one plane, ``slice(p, p + 1)`` first).
    score : float
        Mean uncertainty in the region, in [0, 1].
    """

    region: Region
    score: float

    @property
    def corners(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(start, stop)`` corners of :attr:`region`."""
        return tuple(s.start for s in self.region), tuple(s.stop for s in self.region)


def suggest_regions(
    uncertainty: np.ndarray,
    annotated: np.ndarray,
    tile_shape: Sequence[int],
    n: int = 3,
    *,
    origin: Sequence[int] | None = None,
) -> list[Suggestion]:
    """The `n` tiles with the highest mean uncertainty that hold no annotation yet.

    Parameters
    ----------
    uncertainty : ndarray of shape (M, N) or (P, M, N)
        E.g. :func:`margin_uncertainty` of a prediction.
    annotated : ndarray of bool, same shape
        Pixels already labelled; a tile with any is skipped.
    tile_shape : sequence of int
        In-plane tile ``(M, N)``; in 3D tiles are one plane thick.
    n : int
        Most suggestions returned.
    origin : sequence of int, optional
        Image coordinates of ``uncertainty[0, 0]`` when it is a crop; added to the regions.

    Returns
    -------
    suggestions : list of Suggestion
        Best first; tiles cut by the border count when at least half a tile.

    Examples
    --------
    >>> u = np.zeros((4, 4), np.float32); u[2:, 2:] = 1.0
    >>> s = suggest_regions(u, np.zeros((4, 4), bool), (2, 2), n=1)
    >>> s[0].corners, s[0].score
    (((2, 2), (4, 4)), 1.0)
    """
    uncertainty = np.asarray(uncertainty)
    annotated = np.asarray(annotated, bool)
    if uncertainty.shape != annotated.shape or uncertainty.ndim not in (2, 3):
        raise ValueError(f"uncertainty {uncertainty.shape} and annotated {annotated.shape} must be one 2D/3D shape")
    if len(tile_shape) != 2 or any(int(t) < 1 for t in tile_shape):
        raise ValueError(f"tile_shape needs 2 positive sizes, got {tuple(tile_shape)}")
    offset = tuple(origin) if origin is not None else (0,) * uncertainty.ndim
    tile = ((1,) if uncertainty.ndim == 3 else ()) + tuple(int(t) for t in tile_shape)
    full = int(np.prod(tile))
    candidates = []
    for core in (block.core for block in block_grid(uncertainty.shape, tile)):
        size = int(np.prod([s.stop - s.start for s in core]))
        if size * 2 < full and size < uncertainty.size or annotated[core].any():
            continue
        score = float(uncertainty[core].mean())
        region = tuple(slice(s.start + o, s.stop + o) for s, o in zip(core, offset))
        candidates.append(Suggestion(region, score))
    candidates.sort(key=lambda s: -s.score)
    return candidates[: max(0, int(n))]


def scribbles_to_targets(scribbles: np.ndarray) -> np.ndarray:
    """Scribbles (``0`` unlabelled, class ``k`` painted as ``k + 1``) to int64 class targets.

    Examples
    --------
    >>> scribbles_to_targets(np.array([0, 1, 2])).tolist()
    [-1, 0, 1]
    """
    scribbles = np.asarray(scribbles)
    if scribbles.size and scribbles.min() < 0:
        raise ValueError("scribbles must be >= 0 (0 unlabelled, k + 1 for class k)")
    return scribbles.astype(np.int64) - 1


def check_region(region: Sequence[slice] | None, shape: tuple[int, ...]) -> Region:
    """A spatial region resolved against `shape`: bounded, non-empty, unit steps.

    Parameters
    ----------
    region : sequence of slice, optional
        One slice per spatial axis (negative or open ends allowed); ``None``: the whole image.
    shape : tuple of int
        Spatial shape of the image.

    Returns
    -------
    region : tuple of slice
        With explicit ``start < stop`` inside `shape`.

    Raises
    ------
    ValueError
        Wrong number of axes, an empty region, or a step other than 1.

    Examples
    --------
    >>> check_region((slice(None), slice(-2, None)), (4, 5))
    (slice(0, 4, None), slice(3, 5, None))
    """
    if region is None:
        return tuple(slice(0, n) for n in shape)
    if len(region) != len(shape):
        raise ValueError(f"region of {len(region)} axes for an image of spatial shape {shape}")
    out = []
    for s, n in zip(region, shape):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(f"region {tuple(region)} is empty or strided for spatial shape {shape}")
        out.append(slice(start, stop))
    return tuple(out)
