"""Tile-wise cache of the filter-bank features of one image, computed on first use.

The interactive session reads features of painted pixels and of the region on screen through
:class:`FeatureCache`, so that each tile's features are computed once (least recently used tiles
are dropped past a size bound).
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.classical.annotation import Region
from pixlearn.classical.features import FeatureConfig, compute_features_block, n_features
from pixlearn.data.normalize import apply_normalization


class NormalizedView:
    """A canonical image normalised with fixed bounds on whatever region is read.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Raw canonical image (may be lazy); never read whole.
    low, high : ndarray of shape (C,)
        Normalisation bounds (:func:`pixlearn.data.normalize.compute_normalization`).

    Examples
    --------
    >>> view = NormalizedView(np.array([[[0.0], [10.0]]]), np.array([0.0]), np.array([10.0]))
    >>> view.shape, view[0, 1].tolist()
    ((1, 2, 1), [1.0])
    """

    def __init__(self, image: Any, low: np.ndarray, high: np.ndarray) -> None:
        self.image, self.low, self.high = image, low, high
        self.shape = tuple(image.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, region: Any) -> np.ndarray:
        return apply_normalization(np.asarray(self.image[region]), self.low, self.high)


class FeatureCache:
    """Feature stacks of one normalised image, one per tile, computed on first use.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Normalised canonical image (may be lazy).
    cfg : FeatureConfig
    tile_shape : sequence of int
        Spatial tile size.
    max_bytes : int, optional
        Least-recently-used tiles are dropped past this size; ``None``: keep all.
    """

    def __init__(self, image: Any, cfg: FeatureConfig, tile_shape: Sequence[int], *,
                 max_bytes: int | None = None) -> None:
        self.image, self.cfg = image, cfg
        self.spatial = tuple(int(s) for s in image.shape[:-1])
        if len(tile_shape) != len(self.spatial):
            raise ValueError(f"tile_shape {tuple(tile_shape)} does not fit the image's spatial shape {self.spatial}")
        self.tile_shape = tuple(int(t) for t in tile_shape)
        self.n_features = n_features(cfg, int(image.shape[-1]), len(self.spatial))
        self.max_bytes = max_bytes
        self.grid = tuple(-(-n // t) for n, t in zip(self.spatial, self.tile_shape))
        self._tiles: collections.OrderedDict[tuple[int, ...], np.ndarray] = collections.OrderedDict()
        self.seconds = 0.0  # spent computing features

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached stacks."""
        return sum(t.nbytes for t in self._tiles.values())

    def tile_region(self, index: tuple[int, ...]) -> Region:
        """Image region of tile `index`."""
        return tuple(slice(i * t, min((i + 1) * t, n)) for i, t, n in zip(index, self.tile_shape, self.spatial))

    def tiles_of(self, region: Region) -> list[tuple[int, ...]]:
        """Indices of the tiles that `region` overlaps."""
        ranges = [range(s.start // t, -(-s.stop // t)) for s, t in zip(region, self.tile_shape)]
        return list(itertools.product(*ranges))

    def tile(self, index: tuple[int, ...]) -> np.ndarray:
        """Feature-major stack ``(F, ...)`` of tile `index` (computed and cached on first use)."""
        stack = self._tiles.get(index)
        if stack is not None:
            self._tiles.move_to_end(index)
            return stack
        start = time.perf_counter()
        stack = compute_features_block(self.image, self.tile_region(index), self.cfg, feature_axis="first")
        self.seconds += time.perf_counter() - start
        self._tiles[index] = stack
        if self.max_bytes is not None:
            while len(self._tiles) > 1 and self.nbytes > self.max_bytes:
                self._tiles.popitem(last=False)
        return stack

    def gather(self, coords: tuple[np.ndarray, ...]) -> np.ndarray:
        """Features of the pixels at `coords` (one index array per spatial axis), ``(n, F)``."""
        n = len(coords[0]) if coords else 0
        rows = np.empty((n, self.n_features), np.float32)
        if n == 0:
            return rows
        tile_of = tuple(c // t for c, t in zip(coords, self.tile_shape))
        flat = np.ravel_multi_index(tile_of, self.grid)
        order = np.argsort(flat, kind="stable")
        ids, starts = np.unique(flat[order], return_index=True)
        for tid, lo, hi in zip(ids, starts, list(starts[1:]) + [n]):
            index = tuple(int(i) for i in np.unravel_index(tid, self.grid))
            stack = self.tile(index)
            members = order[lo:hi]
            local = tuple(c[members] - i * t for c, i, t in zip(coords, index, self.tile_shape))
            rows[members] = stack[(slice(None),) + local].T
        return rows

    def region(self, region: Region) -> np.ndarray:
        """Feature-major stack ``(F, ...)`` of any region (tiles stitched; a copy)."""
        shape = tuple(s.stop - s.start for s in region)
        out = np.empty((self.n_features,) + shape, np.float32)
        for index in self.tiles_of(region):
            tile = self.tile_region(index)
            inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(region, tile))
            if any(s.stop <= s.start for s in inter):
                continue
            src = tuple(slice(s.start - t.start, s.stop - t.start) for s, t in zip(inter, tile))
            dst = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(inter, region))
            out[(slice(None),) + dst] = self.tile(index)[(slice(None),) + src]
        return out
