"""Bounding boxes of the objects of a label image, found tile by tile.

:func:`find_object_boxes` reads a label image (a NumPy array, or any lazy array such as Zarr that
reads a region when sliced) one tile at a time, finds each object's box in the tile with
:func:`scipy.ndimage.find_objects` and merges the boxes of an object that several tiles hold, so
that an object crossing any tile border gets one box around all of it. Memory: one tile (and its
compacted copy) plus two coordinates per object and axis; the label image is never held whole.
:func:`padded_window` grows a box by a margin, clipped to the image: the crop an object is
measured on (:func:`pixlearn.classical.objects.object_features`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.data.blocks import block_grid

__all__ = ["DEFAULT_TILE_PIXELS", "ObjectBoxes", "default_tile_shape", "find_object_boxes", "padded_window"]

#: Pixels of one tile of the box search when no tile shape is given (2048 x 2048 in 2D, 161^3 in 3D).
DEFAULT_TILE_PIXELS = 1 << 22


@dataclasses.dataclass(frozen=True)
class ObjectBoxes:
    """The objects of a label image and their bounding boxes.

    Attributes
    ----------
    ids : ndarray of shape (n_objects,), int64
        Label values, increasing.
    starts, stops : ndarray of shape (n_objects, ndim), int64
        Box of each object: ``labels[starts[i, 0]:stops[i, 0], ...]`` holds all of it.
    """

    ids: np.ndarray
    starts: np.ndarray
    stops: np.ndarray

    def box(self, index: int) -> tuple[slice, ...]:
        """The box of the `index`-th object as slices."""
        return tuple(slice(int(a), int(b)) for a, b in zip(self.starts[index], self.stops[index], strict=True))


def default_tile_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Tiles of about :data:`DEFAULT_TILE_PIXELS` pixels (equal sides), at most the image.

    Examples
    --------
    >>> default_tile_shape((10000, 300)), default_tile_shape((40, 500, 500))
    ((2048, 300), (40, 161, 161))
    """
    side = int(round(DEFAULT_TILE_PIXELS ** (1.0 / len(shape))))
    return tuple(min(int(n), side) for n in shape)


def _tile_boxes(tile: np.ndarray, offset: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, box starts and stops (image coordinates) of the objects of one tile."""
    values, compact = np.unique(tile, return_inverse=True)
    keep = values > 0
    if not keep.any():
        empty = np.zeros((0, tile.ndim), np.int64)
        return np.zeros(0, np.int64), empty, empty
    # compact labels 1..len(values): find_objects lists as many boxes as there are objects here
    slices = ndimage.find_objects(compact.reshape(tile.shape) + 1)
    starts = np.array([[s.start for s in box] for box in slices], np.int64) + np.asarray(offset, np.int64)
    stops = np.array([[s.stop for s in box] for box in slices], np.int64) + np.asarray(offset, np.int64)
    return values[keep].astype(np.int64), starts[keep], stops[keep]


def find_object_boxes(labels: Any, tile_shape: Sequence[int] | None = None) -> ObjectBoxes:
    """Find every object of `labels` and its bounding box, reading one tile at a time.

    Parameters
    ----------
    labels : array-like of shape (M, N) or (P, M, N), integer
        0 is background; a lazy array (Zarr, memory map) is read tile by tile.
    tile_shape : sequence of int, optional
        Default :func:`default_tile_shape`.

    Returns
    -------
    boxes : ObjectBoxes
        The same for every tile shape: an object in several tiles has one box around all of it.

    Examples
    --------
    >>> labels = np.zeros((6, 6), int); labels[1:5, 2:4] = 7; labels[5, 5] = 2
    >>> found = find_object_boxes(labels, tile_shape=(3, 3))
    >>> found.ids.tolist(), found.box(1)
    ([2, 7], (slice(1, 5, None), slice(2, 4, None)))
    """
    shape = tuple(int(s) for s in labels.shape)
    tiles = block_grid(shape, tile_shape or default_tile_shape(shape))
    found_ids, found_starts, found_stops = [], [], []
    for tile in tiles:
        ids, starts, stops = _tile_boxes(np.asarray(labels[tile.core]), [s.start for s in tile.core])
        found_ids.append(ids)
        found_starts.append(starts)
        found_stops.append(stops)
    ids = np.concatenate(found_ids)
    starts, stops = np.concatenate(found_starts), np.concatenate(found_stops)
    unique, first = np.unique(ids, return_inverse=True)
    merged_starts = np.full((unique.size, len(shape)), np.iinfo(np.int64).max, np.int64)
    merged_stops = np.zeros((unique.size, len(shape)), np.int64)
    np.minimum.at(merged_starts, first, starts)  # one box around the parts of each object
    np.maximum.at(merged_stops, first, stops)
    return ObjectBoxes(unique.astype(np.int64), merged_starts, merged_stops)


def padded_window(box: Sequence[slice], shape: Sequence[int], pad: int) -> tuple[slice, ...]:
    """`box` grown by `pad` pixels on every side, clipped to an image of `shape`.

    Examples
    --------
    >>> padded_window((slice(0, 2), slice(3, 5)), (4, 6), 2)
    (slice(0, 4, None), slice(1, 6, None))
    """
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, int(n))) for s, n in zip(box, shape, strict=True))

