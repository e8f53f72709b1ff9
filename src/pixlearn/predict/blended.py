"""Blended tiling: overlapping tiles averaged with smooth weights, streamed block by block.

Overlapping tiles are averaged with Gaussian/cosine/constant weights
(:func:`pixlearn.predict.tiling.blend_weights`), as MONAI's ``sliding_window_inference``; inner tile
margins of `halo` pixels get weight 0, so with ``overlap >= 2 * halo`` the result equals
whole-image prediction. Sums live per *cell* (the boxes between consecutive tile edges) only
while a covering tile is still pending: a band of accumulators as thick as the overlap stays in
memory, and each finished block is written at once.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from pixlearn.predict.stream import PredictFn, Region, predict_stream, shape_of
from pixlearn.predict.tiling import TileConfig, blend_weights, tile_grid

_CACHED_WEIGHTS = 8


@dataclasses.dataclass
class BlendPlan:
    """The blended grid and, per axis, the cells between tile edges (for the streaming sums)."""

    shape: tuple[int, ...]
    intervals: list[list[tuple[int, int]]]
    margins: tuple[int, ...]
    blend: str
    sigma_scale: float

    def __post_init__(self) -> None:
        self.bounds: list[list[int]] = []
        self.tile_cells: list[list[range]] = []
        self.finish: list[list[range]] = []
        for ivs in self.intervals:
            bounds = sorted({a for a, _ in ivs} | {b for _, b in ivs})
            index = {b: i for i, b in enumerate(bounds)}
            self.bounds.append(bounds)
            self.tile_cells.append([range(index[a], index[b]) for a, b in ivs])
            starts = [a for a, _ in ivs] + [bounds[-1]]
            self.finish.append([range(index[starts[i]], index[starts[i + 1]]) for i in range(len(ivs))])
        # per axis and cell, the tiles that cover it
        self.cover: list[list[list[int]]] = [
            [[i for i, cells in enumerate(per_tile) if j in cells] for j in range(len(bounds) - 1)]
            for per_tile, bounds in zip(self.tile_cells, self.bounds)
        ]
        self._weights: collections.OrderedDict[Any, np.ndarray] = collections.OrderedDict()

    @functools.cached_property
    def tiles(self) -> list[tuple[int, ...]]:
        """Tile indices in lexicographic order, outermost the axis with the largest ratio of
        length to overlap: the band of unfinished sums (overlap x cross-section) is then smallest."""
        overlaps = [max(1, ivs[0][1] - ivs[1][0]) if len(ivs) > 1 else 1 for ivs in self.intervals]
        order = sorted(range(len(self.shape)), key=lambda d: -self.shape[d] / overlaps[d])
        tiles = []
        for combo in itertools.product(*(range(len(self.intervals[d])) for d in order)):
            idx = [0] * len(order)
            for d, i in zip(order, combo):
                idx[d] = i
            tiles.append(tuple(idx))
        return tiles

    @functools.cached_property
    def position(self) -> dict[tuple[int, ...], int]:
        """Each tile's place in :attr:`tiles`."""
        return {idx: n for n, idx in enumerate(self.tiles)}

    def region(self, idx: tuple[int, ...]) -> Region:
        return tuple(slice(*self.intervals[d][i]) for d, i in enumerate(idx))

    def weights(self, idx: tuple[int, ...]) -> np.ndarray:
        shape = shape_of(self.region(idx))
        margins = tuple(
            (m if i > 0 else 0, m if i < len(self.intervals[d]) - 1 else 0)
            for d, (i, m) in enumerate(zip(idx, self.margins))
        )
        key = (shape, margins)
        if key in self._weights:
            self._weights.move_to_end(key)
        else:  # a few recent ones are kept: 3D grids have dozens of (shape, margins) kinds
            weights = blend_weights(shape, self.blend, self.sigma_scale, margins=margins)
            weights.flags.writeable = False  # shared by every tile of this kind
            self._weights[key] = weights
            if len(self._weights) > _CACHED_WEIGHTS:
                self._weights.popitem(last=False)
        return self._weights[key]

    def weight_sum(self, cell: tuple[int, ...]) -> np.ndarray:
        """Sum of the weights of the tiles covering `cell`, added in tile order."""
        region = self.cell_region(cell)
        total = np.zeros(shape_of(region), np.float32)
        for idx in sorted(itertools.product(*(self.cover[d][j] for d, j in enumerate(cell))), key=self.position.__getitem__):
            total += self.weights(idx)[self.in_tile(idx, cell)]
        return total

    def in_tile(self, idx: tuple[int, ...], cell: tuple[int, ...]) -> Region:
        """Slices of `cell` within tile `idx`'s arrays."""
        return tuple(slice(c.start - t.start, c.stop - t.start) for c, t in zip(self.cell_region(cell), self.region(idx)))

    def cell_region(self, cell: tuple[int, ...]) -> Region:
        return tuple(slice(self.bounds[d][j], self.bounds[d][j + 1]) for d, j in enumerate(cell))


def make_blend_plan(shape: tuple[int, ...], tile: tuple[int, ...], overlap: tuple[int, ...],
                    halo: tuple[int, ...], divisor: tuple[int, ...], cfg: TileConfig) -> BlendPlan:
    """The blended grid of an image of spatial `shape` (weight 0 in `halo` margins at inner edges)."""
    overlap = tuple(min(o, t - 1) for o, t in zip(overlap, tile))
    margins = tuple(min(h, o // 2) for h, o in zip(halo, overlap))
    if margins != halo and any(s > t for s, t in zip(shape, tile)):
        warnings.warn(
            f"overlap {overlap} is less than twice the halo {halo}: tiled prediction will differ "
            "from whole-image prediction near tile borders", stacklevel=3,
        )
    intervals = []
    for region in zip(*[r for r in tile_grid(shape, tile, overlap, divisor=divisor)]):
        intervals.append(sorted({(s.start, s.stop) for s in region}))
    return BlendPlan(shape, intervals, margins, cfg.blend, cfg.sigma_scale)


def _finish_block(block: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return block / weights[..., np.newaxis]


def run_blended(image: Any, plan: BlendPlan, predict_fn: PredictFn, write: Callable[[Region, np.ndarray], None],
                 batch_size: int, batched: bool, progress: Any) -> None:
    """Stream over the tiles; a block is written as soon as no later tile touches it.

    Per axis, the cells between consecutive tile edges that tile ``i`` is the last to cover
    form the interval ``[start_i, start_{i+1})``; over all axes that makes one block per tile,
    finished right after it. Sums live per cell, only while some covering tile is pending.
    """
    live: dict[tuple[int, ...], np.ndarray] = {}
    for idx, pred in predict_stream(image, plan.tiles, plan.region, predict_fn, batch_size, batched, progress):
        weighted = pred * plan.weights(idx)[..., np.newaxis]
        for cell in itertools.product(*(plan.tile_cells[d][i] for d, i in enumerate(idx))):
            local = plan.in_tile(idx, cell)
            entry = live.get(cell)
            if entry is None:
                live[cell] = weighted[local].copy()
            else:
                entry += weighted[local]
        finish = [plan.finish[d][i] for d, i in enumerate(idx)]
        region = tuple(slice(plan.bounds[d][f.start], plan.bounds[d][f.stop]) for d, f in enumerate(finish))
        block = np.empty(shape_of(region) + (pred.shape[-1],), np.float32)
        for cell in itertools.product(*finish):
            acc = live.pop(cell)
            local = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(plan.cell_region(cell), region))
            block[local] = _finish_block(acc, plan.weight_sum(cell))
        write(region, block)
    if live:  # pragma: no cover - the grid covers every cell
        raise RuntimeError(f"{len(live)} blended cells were never finished")


def run_blended_region(image: Any, plan: BlendPlan, predict_fn: PredictFn, region: Region,
                        batch_size: int, batched: bool) -> np.ndarray:
    """Blended prediction of one `region` only, from the tiles of the whole-image grid that touch it.

    Same arithmetic, in the same tile order, as :func:`run_blended`: the values are identical.
    """
    tiles = [
        idx for idx in plan.tiles
        if all(r.start < s.stop and s.start < r.stop for r, s in zip(region, plan.region(idx)))
    ]
    acc: np.ndarray | None = None
    wsum = np.zeros(shape_of(region), np.float32)
    for idx, pred in predict_stream(image, tiles, plan.region, predict_fn, batch_size, batched):
        weights = plan.weights(idx)
        weighted = pred * weights[..., np.newaxis]
        tile = plan.region(idx)
        both = tuple(slice(max(r.start, t.start), min(r.stop, t.stop)) for r, t in zip(region, tile))
        in_tile = tuple(slice(b.start - t.start, b.stop - t.start) for b, t in zip(both, tile))
        in_region = tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(both, region))
        if acc is None:
            acc = np.zeros(shape_of(region) + (pred.shape[-1],), np.float32)
        acc[in_region] += weighted[in_tile]
        wsum[in_region] += weights[in_tile]
    assert acc is not None
    return _finish_block(acc, wsum)
