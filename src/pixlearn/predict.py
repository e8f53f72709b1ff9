"""Apply a model to images of any size: tiled, out of core, over folders, on a Dask cluster.

The engine takes a *predict function* ``predict_fn(block) -> outputs`` that maps a float32
block ``(..., C)`` to ``(..., K)``; it knows nothing of scikit-learn or torch
(:mod:`pixlearn.tiling` computes the grids and weights). Images may be lazy (Zarr, memory-mapped
TIFF or ``.npy``): they are read tile by tile, and outputs are written tile by tile, so memory
is bounded by the tile size, not by the image size.

Two modes (see :mod:`pixlearn.tiling`):

``"exact"``
    Disjoint cores read with `halo` context. Equals whole-image prediction for any model whose
    output depends only on the input within `halo` pixels (classical filter banks; networks
    with their receptive field as halo).
``"blended"``
    Overlapping tiles averaged with Gaussian/cosine/constant weights, as MONAI's
    ``sliding_window_inference``; inner tile margins of `halo` pixels get weight 0, so with
    ``overlap >= 2 * halo`` the result equals whole-image prediction too. Only a band of
    accumulators as thick as the overlap stays in memory; finished blocks are written at once.

Scaling out: :func:`predict_many` with ``dask_address="tcp://scheduler:8786"`` (an existing
cluster, e.g. started with ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on
each machine, all seeing the same file system) or ``"local:4"`` (a cluster of 4 worker
processes on this machine) sends whole images to workers, and cuts Zarr outputs of large
images into blocks predicted on different workers; the result equals the single-process one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import errno
import functools
import itertools
import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .axes import normalize_axes, to_canonical
from .errors import PixlearnError
from .io import atomic_path, create_zarr, file_stem, open_image, write_image
from .model import PixelModel
from .normalize import apply_normalization, compute_normalization
from .tiling import TileConfig, available_memory, blend_weights, choose_tile_shape, core_grid, tile_grid

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]
Region = tuple[slice, ...]

MANIFEST = "manifest.jsonl"
INCOMPLETE = "incomplete"  # attribute of a Zarr output while it is being written
_INSTANCE_MARGIN = {2: 32, 3: 16}
#: Chunk edge of Zarr outputs: in-plane, and along the planes of a stack.
OUTPUT_CHUNKS = (256, 16)
#: Pixels per block when :func:`predict_many` splits one large image over Dask workers.
DASK_BLOCK_PIXELS = {2: 2048 * 2048, 3: 64 * 1024 * 1024}


# --------------------------------------------------------------------------------------------
# lazy canonical view


class CanonicalView:
    """A lazy array in the canonical layout ``(..., C)`` over any stored layout.

    Slicing reads only the requested part of the underlying array (Zarr, memory map, TIFF
    store) and returns a NumPy array. ``T``/``Q`` axes of length 1 are dropped, a missing
    channel axis is added.

    Parameters
    ----------
    array : array-like
        Supports ``shape``, ``dtype`` and basic slicing.
    axes : str
        Axes of `array`, e.g. ``"CZYX"``.

    Examples
    --------
    >>> view = CanonicalView(np.arange(24).reshape(2, 3, 4), "CYX")
    >>> view.shape, view[1:2, :2].tolist()
    ((3, 4, 2), [[[4, 16], [5, 17]]])
    """

    def __init__(self, array: Any, axes: str) -> None:
        axes = normalize_axes(axes, len(array.shape))
        for extra in "TQ":
            if extra in axes and array.shape[axes.index(extra)] != 1:
                raise ValueError(f"axis {extra} has length {array.shape[axes.index(extra)]}: one time point per file")
        self._array = array
        self._axes = axes
        self._kept = [a for a in axes if a not in "TQ"]
        self._target = ("ZYX" if "Z" in axes else "YX") + "C"
        sizes = dict(zip(axes, array.shape))
        self.shape = tuple(int(sizes.get(a, 1)) for a in self._target)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if not all(isinstance(k, slice) for k in key):
            raise TypeError("CanonicalView supports slices only")
        by_axis = dict(zip(self._target, key))
        source_key = tuple(0 if a in "TQ" else by_axis[a] for a in self._axes)
        block = np.asarray(self._array[source_key])
        if "C" not in self._kept:
            block = block[..., np.newaxis]
            kept = self._kept + ["C"]
            block = block[..., by_axis["C"]]
        else:
            kept = self._kept
        return np.transpose(block, [kept.index(a) for a in self._target])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        block = self[...]
        return block if dtype is None else block.astype(dtype, copy=False)


def canonical_view(array: Any, axes: str) -> Any:
    """The canonical ``(..., C)`` layout of `array`: a NumPy view, or a lazy :class:`CanonicalView`."""
    if isinstance(array, np.ndarray):
        return to_canonical(array, axes)
    return CanonicalView(array, axes)


# --------------------------------------------------------------------------------------------
# the tiled engine


def _read(image: Any, region: Region) -> np.ndarray:
    return np.asarray(image[region + (slice(None),)], dtype=np.float32)


def _shape_of(region: Region) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in region)


def _batches(regions: Iterable[Any], batch_size: int, key: Callable[[Any], Any]) -> Iterator[list[Any]]:
    """Consecutive groups of at most `batch_size` items with equal `key` (tile shape)."""
    batch: list[Any] = []
    for item in regions:
        if batch and (len(batch) == batch_size or key(item) != key(batch[0])):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _predict_stream(
    image: Any,
    items: Sequence[Any],
    region_of: Callable[[Any], Region],
    predict_fn: PredictFn,
    batch_size: int,
    batched: bool,
    progress: Any = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """Yield ``(item, prediction)`` in order; the next batch is read while this one runs."""
    groups = list(_batches(items, batch_size if batched else 1, lambda t: _shape_of(region_of(t))))

    def load(group: list[Any]) -> list[np.ndarray]:
        return [_read(image, region_of(t)) for t in group]

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, groups[0]) if groups else None
        for i, group in enumerate(groups):
            blocks = pending.result()
            pending = pool.submit(load, groups[i + 1]) if i + 1 < len(groups) else None
            if batched:
                outputs = np.asarray(predict_fn(np.stack(blocks)))
                preds = list(outputs)
            else:
                preds = [np.asarray(predict_fn(blocks[0]))]
            for item, block, pred in zip(group, blocks, preds):
                if pred.shape[:-1] != block.shape[:-1] or pred.ndim != block.ndim:
                    raise ValueError(
                        f"predict_fn returned shape {pred.shape} for a block of shape {block.shape}; "
                        "expected the same spatial shape and a channel axis"
                    )
                yield item, pred.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(group))


@dataclasses.dataclass
class _BlendPlan:
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
        self._weights: dict[Any, np.ndarray] = {}

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

    def region(self, idx: tuple[int, ...]) -> Region:
        return tuple(slice(*self.intervals[d][i]) for d, i in enumerate(idx))

    def weights(self, idx: tuple[int, ...]) -> np.ndarray:
        shape = _shape_of(self.region(idx))
        margins = tuple(
            (m if i > 0 else 0, m if i < len(self.intervals[d]) - 1 else 0)
            for d, (i, m) in enumerate(zip(idx, self.margins))
        )
        key = (shape, margins)
        if key not in self._weights:
            self._weights[key] = blend_weights(shape, self.blend, self.sigma_scale, margins=margins)
        return self._weights[key]

    def cell_region(self, cell: tuple[int, ...]) -> Region:
        return tuple(slice(self.bounds[d][j], self.bounds[d][j + 1]) for d, j in enumerate(cell))


def _make_plan(shape: tuple[int, ...], tile: tuple[int, ...], overlap: tuple[int, ...],
               halo: tuple[int, ...], divisor: tuple[int, ...], cfg: TileConfig) -> _BlendPlan:
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
    return _BlendPlan(shape, intervals, margins, cfg.blend, cfg.sigma_scale)


def _finish_block(block: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return block / weights[..., np.newaxis]


def _run_blended(image: Any, plan: _BlendPlan, predict_fn: PredictFn, write: Callable[[Region, np.ndarray], None],
                 batch_size: int, batched: bool, progress: Any) -> None:
    """Stream over the tiles; a block is written as soon as no later tile touches it.

    Per axis, the cells between consecutive tile edges that tile ``i`` is the last to cover
    form the interval ``[start_i, start_{i+1})``; over all axes that makes one block per tile,
    finished right after it. Sums live per cell, only while some covering tile is pending.
    """
    live: dict[tuple[int, ...], list[np.ndarray]] = {}
    for idx, pred in _predict_stream(image, plan.tiles, plan.region, predict_fn, batch_size, batched, progress):
        weights = plan.weights(idx)
        weighted = pred * weights[..., np.newaxis]
        origin = [plan.intervals[d][i][0] for d, i in enumerate(idx)]
        for cell in itertools.product(*(plan.tile_cells[d][i] for d, i in enumerate(idx))):
            local = tuple(slice(s.start - o, s.stop - o) for s, o in zip(plan.cell_region(cell), origin))
            entry = live.get(cell)
            if entry is None:
                live[cell] = [weighted[local].copy(), weights[local].copy()]
            else:
                entry[0] += weighted[local]
                entry[1] += weights[local]
        finish = [plan.finish[d][i] for d, i in enumerate(idx)]
        region = tuple(slice(plan.bounds[d][f.start], plan.bounds[d][f.stop]) for d, f in enumerate(finish))
        block = np.empty(_shape_of(region) + (pred.shape[-1],), np.float32)
        for cell in itertools.product(*finish):
            acc, wsum = live.pop(cell)
            local = tuple(slice(s.start - r.start, s.stop - r.start) for s, r in zip(plan.cell_region(cell), region))
            block[local] = _finish_block(acc, wsum)
        write(region, block)
    if live:  # pragma: no cover - the grid covers every cell
        raise RuntimeError(f"{len(live)} blended cells were never finished")


def _run_blended_region(image: Any, plan: _BlendPlan, predict_fn: PredictFn, region: Region,
                        batch_size: int, batched: bool) -> np.ndarray:
    """Blended prediction of one `region` only, from the tiles of the whole-image grid that touch it.

    Same arithmetic, in the same tile order, as :func:`_run_blended`: the values are identical.
    """
    tiles = [
        idx for idx in plan.tiles
        if all(r.start < s.stop and s.start < r.stop for r, s in zip(region, plan.region(idx)))
    ]
    acc: np.ndarray | None = None
    wsum = np.zeros(_shape_of(region), np.float32)
    for idx, pred in _predict_stream(image, tiles, plan.region, predict_fn, batch_size, batched):
        weights = plan.weights(idx)
        weighted = pred * weights[..., np.newaxis]
        tile = plan.region(idx)
        both = tuple(slice(max(r.start, t.start), min(r.stop, t.stop)) for r, t in zip(region, tile))
        in_tile = tuple(slice(b.start - t.start, b.stop - t.start) for b, t in zip(both, tile))
        in_region = tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(both, region))
        if acc is None:
            acc = np.zeros(_shape_of(region) + (pred.shape[-1],), np.float32)
        acc[in_region] += weighted[in_tile]
        wsum[in_region] += weights[in_tile]
    assert acc is not None
    return _finish_block(acc, wsum)


def _run_exact(image: Any, tiles: Sequence[Any], predict_fn: PredictFn, write: Callable[[Region, np.ndarray], None],
               batch_size: int, batched: bool, progress: Any) -> None:
    for tile, pred in _predict_stream(image, tiles, lambda t: t.region, predict_fn, batch_size, batched, progress):
        write(tile.core, pred[tile.inner])


@dataclasses.dataclass(frozen=True)
class _Setup:
    """Everything the tiled engine derives from the configuration and the image."""

    mode: str
    tile: tuple[int, ...]
    halo: tuple[int, ...]
    divisor: tuple[int, ...]
    overlap: tuple[int, ...]
    core: tuple[int, ...]


def _per_axis(value: Any, ndim: int, name: str) -> tuple[int, ...]:
    values = (int(value),) if np.isscalar(value) else tuple(int(v) for v in value)
    values = values * ndim if len(values) == 1 else values
    if len(values) != ndim:
        raise ValueError(f"{name} {values} does not match the {ndim} spatial axes of the image")
    return values


def _setup(shape: tuple[int, ...], cfg: TileConfig, halo: Any, divisor: Any, chunks: tuple[int, ...] | None,
           bytes_per_pixel: float = 256.0, budget: float | None = None) -> _Setup:
    ndim = len(shape)
    halo_t = _per_axis(halo, ndim, "halo")
    div_t = _per_axis(divisor, ndim, "divisor")
    mode = "exact" if cfg.mode == "auto" else cfg.mode
    if cfg.tile_shape is None:
        budget = budget if budget is not None else _default_budget(cfg)
        tile = choose_tile_shape(shape, budget, bytes_per_pixel, halo=halo_t, divisor=div_t,
                                 batch_size=cfg.batch_size)
    else:
        tile = _per_axis(cfg.tile_shape, ndim, "tile_shape")
    overlap = _per_axis(cfg.overlap, ndim, "overlap") if cfg.overlap is not None else tuple(2 * h for h in halo_t)
    core = []
    for t, h, d, s, c in zip(tile, halo_t, div_t, shape, chunks or (None,) * ndim):
        width = t - 2 * h if t < s else s
        if width < 1:
            raise ValueError(f"tile_shape {tile} leaves no core inside the halo {halo_t}: use larger tiles")
        if c and width >= c:  # whole output chunks per core: fewer partial writes
            width = width // math.lcm(c, d) * math.lcm(c, d) or width
        core.append(width)
    if mode == "blended":
        for t, d in zip(tile, div_t):
            if t % d:
                raise ValueError(f"tile_shape {tile} is not a multiple of the size divisor {div_t}")
    return _Setup(mode, tile, halo_t, div_t, overlap, tuple(core))


def _default_budget(cfg: TileConfig) -> float:
    if cfg.memory_budget_mib is not None:
        return cfg.memory_budget_mib * 2**20
    return min(available_memory() / 4, 2**30)


def _chunks_of(out: Any) -> tuple[int, ...] | None:
    chunks = getattr(out, "chunks", None)
    if chunks is None or isinstance(out, np.ndarray):
        return None
    return tuple(int(c) for c in chunks)


def predict_tiled(
    image: Any,
    predict_fn: PredictFn,
    tile_cfg: TileConfig | None = None,
    *,
    halo: int | Sequence[int] = 0,
    divisor: int | Sequence[int] = 1,
    out: Any = None,
    finalize: Callable[[np.ndarray], np.ndarray] | None = None,
    batched: bool = False,
    progress: bool = False,
) -> Any:
    """Predict an image of any size tile by tile.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Canonical layout; may be lazy (Zarr, memory map, :class:`CanonicalView`): only tiles
        are read.
    predict_fn : callable
        ``predict_fn(block)`` maps a float32 block ``(..., C)`` to float32 ``(..., K)`` of the
        same spatial shape (with ``batched=True``: ``(B, ..., C)`` to ``(B, ..., K)``).
    tile_cfg : TileConfig, optional
        Tile shape (default: from the memory available), overlap, blending and mode
        (``"auto"`` means ``"exact"`` here).
    halo : int or sequence of int
        Context `predict_fn` needs per side and axis for its output to equal whole-image
        prediction (filter support, receptive-field margin).
    divisor : int or sequence of int
        Tiles start at multiples of it (U-Nets: ``2 ** depth``); blended tiles are multiples of it.
    out : array-like, optional
        Preallocated output (NumPy, Zarr, ...) of shape ``(..., K)`` or, with `finalize`, of
        the shape `finalize` returns for the whole image. Default: a new NumPy array.
    finalize : callable, optional
        Applied to each finished output block ``(..., K)`` before it is written, e.g. an argmax.
    batched : bool
        Stack up to ``tile_cfg.batch_size`` tiles of equal shape into one call.
    progress : bool
        Show a progress bar.

    Returns
    -------
    out : array-like
        `out`, or the new array.

    Raises
    ------
    ValueError
        A tile that leaves no room inside the halo, or `predict_fn` returning a wrong shape.

    Examples
    --------
    >>> image = np.arange(2 * 15 * 7, dtype=np.float32).reshape(15, 7, 2)
    >>> result = predict_tiled(image, lambda t: t + 1, TileConfig(tile_shape=(4, 4)))
    >>> bool(np.array_equal(result, image + 1))
    True
    """
    cfg = tile_cfg or TileConfig()
    spatial = tuple(int(s) for s in image.shape[:-1])
    setup = _setup(spatial, cfg, halo, divisor, _chunks_of(out))
    holder: dict[str, Any] = {"out": out}

    def write(region: Region, block: np.ndarray) -> None:
        result = finalize(block) if finalize is not None else block
        if holder["out"] is None:
            holder["out"] = np.zeros(spatial + result.shape[len(spatial):], result.dtype)
        holder["out"][region] = result

    with _progress_bar(progress, "predicting") as advance:
        _run_setup(image, setup, cfg, predict_fn, write, batched, advance)
    return holder["out"]


def _run_setup(image: Any, setup: _Setup, cfg: TileConfig, predict_fn: PredictFn,
               write: Callable[[Region, np.ndarray], None], batched: bool, advance: Any) -> None:
    spatial = tuple(int(s) for s in image.shape[:-1])
    if setup.mode == "exact":
        tiles = core_grid(spatial, setup.core, setup.halo, divisor=setup.divisor)
        if advance is not None:
            advance(0, total=len(tiles))
        _run_exact(image, tiles, predict_fn, write, cfg.batch_size, batched, advance)
    else:
        plan = _make_plan(spatial, setup.tile, setup.overlap, setup.halo, setup.divisor, cfg)
        if advance is not None:
            advance(0, total=len(plan.tiles))
        _run_blended(image, plan, predict_fn, write, cfg.batch_size, batched, advance)


def _run_region(image: Any, setup: _Setup, cfg: TileConfig, predict_fn: PredictFn, region: Region,
                batched: bool) -> np.ndarray:
    """Prediction of `region` alone, equal to the same part of the whole-image prediction."""
    spatial = tuple(int(s) for s in image.shape[:-1])
    if setup.mode == "blended":
        plan = _make_plan(spatial, setup.tile, setup.overlap, setup.halo, setup.divisor, cfg)
        return _run_blended_region(image, plan, predict_fn, region, cfg.batch_size, batched)
    result: np.ndarray | None = None

    def write(core: Region, block: np.ndarray) -> None:
        nonlocal result
        if result is None:
            result = np.zeros(_shape_of(region) + block.shape[-1:], np.float32)
        result[tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))] = block

    tiles = core_grid(spatial, setup.core, setup.halo, divisor=setup.divisor, region=region)
    _run_exact(image, tiles, predict_fn, write, cfg.batch_size, batched, None)
    assert result is not None
    return result


@contextlib.contextmanager
def _progress_bar(enabled: bool, description: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(n: int, total: int | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, n)

        yield advance


# --------------------------------------------------------------------------------------------
# test-time augmentation


def _dihedral(ndim: int) -> list[tuple[Callable[[np.ndarray, int], np.ndarray], Callable[[np.ndarray, int], np.ndarray]]]:
    """(forward, inverse) pairs of flips and in-plane 90-degree rotations; arg 2 = first spatial axis."""
    pairs = []
    if ndim == 2:
        for k, flip in itertools.product(range(4), (False, True)):
            def fwd(x: np.ndarray, a: int, k: int = k, flip: bool = flip) -> np.ndarray:
                x = np.flip(x, a) if flip else x
                return np.rot90(x, k, axes=(a, a + 1))

            def inv(y: np.ndarray, a: int, k: int = k, flip: bool = flip) -> np.ndarray:
                y = np.rot90(y, -k, axes=(a, a + 1))
                return np.flip(y, a) if flip else y

            pairs.append((fwd, inv))
    else:
        for flips in itertools.product((False, True), repeat=ndim):
            axes = [i for i, f in enumerate(flips) if f]

            def flip(x: np.ndarray, a: int, axes: list[int] = axes) -> np.ndarray:
                return np.flip(x, [a + i for i in axes]) if axes else x

            pairs.append((flip, flip))
    return pairs


def with_tta(predict_fn: PredictFn, ndim: int, *, batched: bool = False) -> PredictFn:
    """Wrap a predict function with test-time augmentation.

    The prediction is the mean over the 8 flips and 90-degree rotations of the plane (2D) or
    the 8 flips of the axes (3D), each mapped back.

    Parameters
    ----------
    predict_fn : callable
        As for :func:`predict_tiled`.
    ndim : int
        Spatial axes (2 or 3).
    batched : bool
        `predict_fn` takes a stack ``(B, ..., C)``.

    Returns
    -------
    predict_fn : callable
    """
    pairs = _dihedral(ndim)
    first = 1 if batched else 0

    def predict(block: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        for fwd, inv in pairs:
            pred = inv(np.asarray(predict_fn(np.ascontiguousarray(fwd(block, first)))), first)
            total = pred.astype(np.float32) if total is None else total + pred
        assert total is not None
        return total / np.float32(len(pairs))

    return predict


# --------------------------------------------------------------------------------------------
# instances across tiles


def label_tiled(
    outputs: Any,
    instance_fn: Callable[[np.ndarray], np.ndarray],
    out: Any = None,
    *,
    core_shape: int | Sequence[int] = 512,
    margin: int | Sequence[int] = 32,
    iou_thresh: float = 0.5,
) -> Any:
    """Instance labels of a large output map, computed tile by tile and stitched.

    Each core is labelled with `margin` pixels of context. Where that context covers cores
    labelled before it, its objects take the ids of the objects there that they overlap with
    IoU >= `iou_thresh` (:func:`pixlearn.instances.merge_tile_labels`), so objects on tile
    borders come out as one label, neither cut nor duplicated. A final pass over the cores
    renumbers the labels ``1..n``. Memory: one tile plus one integer per object.

    Parameters
    ----------
    outputs : array-like of shape (M, N, K) or (P, M, N, K)
        Model outputs (probabilities, ...); may be lazy.
    instance_fn : callable
        Maps an outputs block to integer labels of its spatial shape (0 is background).
    out : array-like, optional
        Integer output of the spatial shape (default: a new uint32 array).
    core_shape, margin : int or sequence of int
        Core size and context per side.
    iou_thresh : float
        See :func:`pixlearn.instances.merge_tile_labels`.

    Returns
    -------
    labels : array-like, uint32

    Examples
    --------
    >>> outputs = np.zeros((6, 20, 1), np.float32); outputs[2:4, 3:17] = 1
    >>> labels = label_tiled(outputs, lambda o: (o[..., 0] > 0.5).astype(int), core_shape=5, margin=2)
    >>> np.unique(labels).tolist()
    [0, 1]
    """
    from .instances import apply_label_mapping, merge_tile_labels, resolve_equivalences

    spatial = tuple(int(s) for s in outputs.shape[:-1])
    ndim = len(spatial)
    if out is None:
        out = np.zeros(spatial, np.uint32)
    core_t = _per_axis(core_shape, ndim, "core_shape")
    tiles = core_grid(spatial, core_t, margin)
    counts = [len(range(0, s, c)) for s, c in zip(spatial, core_t)]
    next_id = 1
    equivalences: list[tuple[int, int]] = []
    for tile in tiles:
        local = np.asarray(instance_fn(np.asarray(outputs[tile.region + (slice(None),)], np.float32)))
        index = tuple(c.start // k for c, k in zip(tile.core, core_t))
        earlier = _earlier_mask(tile, core_t, index, counts)
        written = np.where(earlier, np.asarray(out[tile.region]), 0) if earlier.any() else np.zeros(local.shape, np.uint32)
        merged = merge_tile_labels(written, local, earlier, next_id=next_id, iou_thresh=iou_thresh)
        next_id = merged.next_id
        equivalences.extend(merged.equivalences)
        out[tile.core] = merged.labels[tile.inner]
    lut = np.arange(next_id, dtype=np.int64)
    if equivalences:
        mapping = resolve_equivalences(equivalences)
        lut = apply_label_mapping(lut, mapping).astype(np.int64)
    present = np.zeros(next_id, bool)
    for tile in tiles:
        present[lut[np.unique(np.asarray(out[tile.core]))]] = True
    present[0] = False
    final = np.zeros(next_id, np.uint32)
    final[present] = np.arange(1, int(present.sum()) + 1, dtype=np.uint32)
    lut = final[lut]
    for tile in tiles:
        out[tile.core] = lut[np.asarray(out[tile.core]).astype(np.int64)]
    return out


def _earlier_mask(tile: Any, core_t: tuple[int, ...], index: tuple[int, ...], counts: list[int]) -> np.ndarray:
    """Pixels of the tile's region that belong to cores labelled before it (C order)."""
    grids = []
    for region, c, n in zip(tile.region, core_t, counts):
        grids.append(np.minimum(np.arange(region.start, region.stop) // c, n - 1))
    earlier = np.zeros(_shape_of(tile.region), bool)
    equal = np.ones(_shape_of(tile.region), bool)
    for d, (g, i) in enumerate(zip(grids, index)):
        shape = [1] * len(grids)
        shape[d] = len(g)
        g = g.reshape(shape)
        earlier |= equal & (g < i)
        equal &= g == i
    return earlier


def _default_instance_fn(outputs: np.ndarray) -> np.ndarray:
    from .postprocess import label_components, threshold_probabilities

    return label_components(threshold_probabilities(outputs) > 0)


def _instance_fn(model: PixelModel) -> Callable[[np.ndarray], np.ndarray]:
    """The model's instance post-processing: its own hook, the seeded watershed of
    :func:`pixlearn.instances.instances_from_outputs` for (foreground, distance) outputs of
    networks, else the connected components of the foreground."""
    fn = getattr(model, "instances_from_outputs", None)
    if callable(fn):
        return fn
    from . import instances

    if model.kind == "network" and model.n_outputs == instances.N_OUTPUTS:
        stored = model.to_metadata().get("thresholds")
        try:
            thresholds = instances.InstanceThresholds.from_dict(stored) if isinstance(stored, dict) else None
        except ValueError:
            logger.warning("ignoring unusable instance thresholds %s", stored)
            thresholds = None
        return functools.partial(instances.instances_from_outputs, thresholds=thresholds)
    return _default_instance_fn


# --------------------------------------------------------------------------------------------
# applying a model


def check_image_for_model(model: PixelModel, shape: Sequence[int], path: Any = None) -> None:
    """Raise :class:`PixlearnError` if a canonical image shape does not fit the model.

    Parameters
    ----------
    model : PixelModel
    shape : sequence of int
        Canonical shape ``(M, N, C)`` or ``(P, M, N, C)``.
    path : path-like, optional
        Named in the message.
    """
    spatial = len(shape) - 1
    if spatial != model.ndim:
        raise PixlearnError(
            f"the model takes {model.ndim}D images but this image is {spatial}D (canonical shape "
            f"{tuple(shape)}); pass axes= if they were inferred wrongly", path)
    if shape[-1] != model.n_channels:
        raise PixlearnError(
            f"the model takes {model.n_channels} channel(s) but this image has {shape[-1]} "
            f"(canonical shape {tuple(shape)})", path)


@dataclasses.dataclass
class _Job:
    """A model ready to run on one image: normalisation fixed, predict function built."""

    model: PixelModel
    low: np.ndarray
    high: np.ndarray
    tta: bool

    @property
    def batched(self) -> bool:
        return callable(getattr(self.model, "predict_batch", None))

    def predict_fn(self) -> PredictFn:
        model, low, high = self.model, self.low, self.high
        raw = model.predict_batch if self.batched else model.predict_raw  # type: ignore[attr-defined]

        def predict(block: np.ndarray) -> np.ndarray:
            return raw(apply_normalization(block, low, high))

        return with_tta(predict, model.ndim, batched=self.batched) if self.tta else predict

    def finalize(self) -> Callable[[np.ndarray], np.ndarray]:
        task = self.model.task
        if task == "semantic":
            from .postprocess import threshold_probabilities

            return threshold_probabilities
        if task == "restore":
            return functools.partial(_denormalize, low=self.low, high=self.high)
        return _identity

    def output_spec(self, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        k = self.model.n_outputs
        if self.model.task == "semantic":
            return spatial, np.uint8 if k <= 255 else np.uint16
        if self.model.task == "restore":
            return spatial + (k,), np.float32
        return spatial, np.uint32


def _identity(block: np.ndarray) -> np.ndarray:
    return block


def _denormalize(block: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map a restored block back to the input's intensity range (per channel when K == C)."""
    k = block.shape[-1]
    if len(low) != k:
        low, high = low[:1], high[:1]
    return (block * (high - low) + low).astype(np.float32)


def _setup_for(model: PixelModel, image: Any, cfg: TileConfig, chunks: tuple[int, ...] | None) -> _Setup:
    mode = cfg.mode if cfg.mode != "auto" else ("exact" if model.kind == "classical" else "blended")
    divisor = int(getattr(model, "size_divisor", 1) or 1)
    bytes_per_pixel = float(getattr(model, "bytes_per_pixel", 0) or 0) or (
        4.0 * (48 * model.n_channels + model.n_outputs) if model.kind == "classical" else 2048.0
    )
    budget = None
    device = str(getattr(model, "device", "cpu"))
    if cfg.tile_shape is None and cfg.memory_budget_mib is None and device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        budget = free / 2
    return _setup(tuple(int(s) for s in image.shape[:-1]), cfg.replace(mode=mode), model.halo, divisor,
                  chunks, bytes_per_pixel, budget)


def _prepare(model: PixelModel, image: Any, tta: bool, path: Any = None) -> _Job:
    check_image_for_model(model, image.shape, path)
    low, high = compute_normalization(image, model.normalization)
    return _Job(model, low, high, tta)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def apply_model(
    model: PixelModel,
    image: Any,
    *,
    tile_cfg: TileConfig | None = None,
    output: Any = None,
    return_probabilities: bool = False,
    tta: bool = False,
    progress: bool = False,
) -> Any:
    """Apply a trained model to a canonical image of any size.

    Normalisation is computed once for the image (on a subsample when it is large) and applied
    per tile. Classical models run in exact mode, networks in blended mode (``tile_cfg.mode``
    overrides); the overlap defaults to twice the model's halo, so that the tiled result equals
    whole-image prediction.

    Parameters
    ----------
    model : PixelModel
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Canonical layout, any dtype; may be lazy (see :func:`canonical_view`).
    tile_cfg : TileConfig, optional
    output : path-like or array-like, optional
        ``None``: NumPy arrays. A path: a Zarr array written there tile by tile (atomically:
        it appears only when complete). An array: written into (zeros for instance labels).
    return_probabilities : bool
        Also return the raw outputs ``(..., K)`` (written beside a path `output` as
        ``<name>_probabilities.zarr``).
    tta : bool
        Test-time augmentation (:func:`with_tta`).
    progress : bool

    Returns
    -------
    result : array-like
        ``"semantic"``: class map (uint8, uint16 above 255 classes); ``"instances"``: labels
        (uint32) consistent across tiles; ``"restore"``: the restored image ``(..., K)`` in the
        input's intensity range (float32).
    probabilities : array-like
        Only with `return_probabilities`.

    Raises
    ------
    PixlearnError
        An image whose dimensionality or channel count the model does not take.
    """
    cfg = tile_cfg or TileConfig()
    job = _prepare(model, image, tta)
    spatial = tuple(int(s) for s in image.shape[:-1])
    if not _is_path(output):
        labels_out = output
        if labels_out is None:
            shape, dtype = job.output_spec(spatial)
            labels_out = np.zeros(shape, dtype)
        probs = np.zeros(spatial + (model.n_outputs,), np.float32) if return_probabilities else None
        _apply(job, image, cfg, labels_out, probs, progress=progress, scratch=None)
        return (labels_out, probs) if return_probabilities else labels_out
    path = Path(output)
    prob_path = path.with_name(file_stem(path) + "_probabilities.zarr")
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        labels_out = _create_output(tmp, *job.output_spec(spatial), model.ndim)
        probs = None
        if return_probabilities:
            probs = _create_output(stack.enter_context(atomic_path(prob_path)), spatial + (model.n_outputs,),
                                   np.float32, model.ndim)
        _apply(job, image, cfg, labels_out, probs, progress=progress, scratch=path.parent)
        _mark_complete(labels_out, probs)
    import zarr

    labels = zarr.open_array(str(path), mode="r")
    return (labels, zarr.open_array(str(prob_path), mode="r")) if return_probabilities else labels


def _create_output(path: Path, shape: tuple[int, ...], dtype: Any, ndim: int) -> Any:
    spatial = shape[:ndim]
    chunks = [min(s, OUTPUT_CHUNKS[1]) for s in spatial[:-2]] + [min(s, OUTPUT_CHUNKS[0]) for s in spatial[-2:]]
    chunks += list(shape[len(spatial):])
    array = create_zarr(path, shape, dtype, chunks=chunks)
    array.attrs[INCOMPLETE] = True
    return array


def _mark_complete(*arrays: Any) -> None:
    for array in arrays:
        if array is not None and hasattr(array, "attrs"):
            array.attrs[INCOMPLETE] = False


def _apply(job: _Job, image: Any, cfg: TileConfig, labels_out: Any, probs: Any, *, progress: bool,
           scratch: Path | None) -> None:
    """Run `job` on `image`, writing labels (and raw outputs when `probs` is given)."""
    model = job.model
    spatial = tuple(int(s) for s in image.shape[:-1])
    setup = _setup_for(model, image, cfg, _chunks_of(labels_out))
    instances = model.task == "instances"
    with contextlib.ExitStack() as stack:
        if instances and probs is None:
            if isinstance(labels_out, np.ndarray) or scratch is None:
                probs = np.zeros(spatial + (model.n_outputs,), np.float32)
            else:
                probs, _ = stack.enter_context(_scratch_zarr(scratch, spatial + (model.n_outputs,)))
        finalize = job.finalize()

        def write(region: Region, block: np.ndarray) -> None:
            if probs is not None:
                probs[region] = block
            if not instances:
                labels_out[region] = finalize(block)

        with _progress_bar(progress, "predicting") as advance:
            _run_setup(image, setup, cfg, job.predict_fn(), write, job.batched, advance)
        if instances:
            _label_instances(job, probs, labels_out, setup)


@contextlib.contextmanager
def _scratch_zarr(folder: Path, shape: tuple[int, ...]) -> Iterator[tuple[Any, Path]]:
    """A temporary float32 Zarr array in `folder`, removed afterwards whatever happens."""
    path = folder / f".outputs-{os.getpid()}-{time.monotonic_ns()}.partial"
    try:
        yield _create_output(path, shape, np.float32, len(shape) - 1), path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _label_instances(job: _Job, probs: Any, labels_out: Any, setup: _Setup) -> None:
    ndim = job.model.ndim
    margin = max(_INSTANCE_MARGIN[ndim], *setup.halo)
    core = tuple(max(64, t - 2 * margin) for t in setup.tile)
    label_tiled(probs, _instance_fn(job.model), labels_out, core_shape=core, margin=margin)


# --------------------------------------------------------------------------------------------
# many images


def _canonical_input(path: Path, axes: str | None) -> Any:
    array, found = open_image(path, axes=axes)
    try:
        return canonical_view(array, found)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None


def _targets(path: Path, out_dir: Path, fmt: str, probabilities: bool) -> tuple[Path, Path | None]:
    stem = file_stem(path)
    target = out_dir / f"{stem}.{fmt}"
    return target, (out_dir / "probabilities" / f"{stem}.{fmt}" if probabilities else None)


def _finished(target: Path, prob_target: Path | None) -> bool:
    for p in (target, prob_target):
        if p is None:
            continue
        if not p.exists():
            return False
        if p.suffix == ".zarr":
            try:
                import zarr

                if zarr.open_array(str(p), mode="r").attrs.get(INCOMPLETE, False):
                    return False
            except Exception:
                return False
    return True


def _remove_stale(out_dir: Path) -> None:
    """Remove temporary outputs left by an interrupted run (``.name.xxxx.partial``)."""
    for p in itertools.chain(out_dir.glob(".*.partial"), out_dir.glob("probabilities/.*.partial")):
        logger.info("removing unfinished output %s", p)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except PixlearnError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PixlearnError("disk full while writing the output; the partial output was removed", path) from exc
        raise PixlearnError(f"cannot write output ({exc.strerror or exc})", path) from exc


def _predict_file(model: PixelModel, path: Path, target: Path, prob_target: Path | None, cfg: TileConfig,
                  axes: str | None, tta: bool, progress: bool, job: _Job | None = None) -> float:
    """Predict one file into `target` (and `prob_target`), atomically; returns seconds taken."""
    start = time.perf_counter()
    image = _canonical_input(path, axes)
    job = job or _prepare(model, image, tta, path)
    spatial = tuple(int(s) for s in image.shape[:-1])
    shape, dtype = job.output_spec(spatial)
    with _write_errors(target), contextlib.ExitStack() as stack:
        if target.suffix == ".zarr":
            labels_out = _create_output(stack.enter_context(atomic_path(target)), shape, dtype, model.ndim)
            probs = None
            if prob_target is not None:
                probs = _create_output(stack.enter_context(atomic_path(prob_target)),
                                       spatial + (model.n_outputs,), np.float32, model.ndim)
            _apply(job, image, cfg, labels_out, probs, progress=progress, scratch=target.parent)
            _mark_complete(labels_out, probs)
        else:
            labels_out = np.zeros(shape, dtype)
            probs = np.zeros(spatial + (model.n_outputs,), np.float32) if prob_target is not None else None
            _apply(job, image, cfg, labels_out, probs, progress=progress, scratch=None)
            out_axes = ("ZYX" if model.ndim == 3 else "YX") + ("C" if labels_out.ndim > model.ndim else "")
            if prob_target is not None:
                write_image(prob_target, probs, axes=("ZYX" if model.ndim == 3 else "YX") + "C")
            write_image(target, labels_out, axes=out_axes)
    return time.perf_counter() - start


def predict_many(
    model: PixelModel,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    tile_cfg: TileConfig | None = None,
    axes: str | None = None,
    output_format: str = "tif",
    return_probabilities: bool = False,
    tta: bool = False,
    dask_address: str | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    progress: bool = False,
) -> Path:
    """Apply a model to many images, skipping finished outputs, with a manifest.

    Every input is opened and checked before any prediction runs. Outputs are written
    atomically (TIFF: to a temporary name, renamed when complete; Zarr: tile by tile into a
    temporary folder marked ``incomplete``, renamed when complete), so a finished output is
    one whose name exists; a rerun skips those and removes leftovers of an interrupted run.
    Each finished image appends a line to ``out_dir/manifest.jsonl``: input, output, model,
    seconds.

    Parameters
    ----------
    model : PixelModel
    inputs : sequence of path-like
        Image files (see :func:`pixlearn.io.list_images` to expand folders and patterns).
    out_dir : path-like
        Created when missing. Output ``<stem>.<output_format>``.
    tile_cfg : TileConfig, optional
    axes : str, optional
        Axes of the inputs (default: from metadata or inferred).
    output_format : {"tif", "zarr"}
        ``"zarr"`` writes tile by tile: memory stays bounded for any image size.
    return_probabilities : bool
        Also write ``probabilities/<stem>.<output_format>`` (raw outputs ``(..., K)``), in a
        sub-folder so that the label images alone can be evaluated against a truth folder.
    tta : bool
        Test-time augmentation.
    dask_address : str, optional
        ``"tcp://host:port"`` of a running Dask scheduler, or ``"local:N"`` for N local
        worker processes. Images go to workers; Zarr outputs of large images are split into
        blocks across workers.
    overwrite : bool
        Redo finished outputs.
    model_name : str, optional
        Written to the manifest (default: the model's class name).
    progress : bool
        Show a progress bar over images.

    Returns
    -------
    manifest : Path

    Raises
    ------
    PixlearnError
        An unreadable input, an image the model does not take, an output folder that cannot be
        written, a full disk.
    """
    if output_format not in ("tif", "zarr"):
        raise PixlearnError(f"output format {output_format!r}: use tif or zarr")
    cfg = tile_cfg or TileConfig()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PixlearnError(f"cannot write to the output folder ({exc.strerror or exc})", out_dir) from exc
    _remove_stale(out_dir)
    paths = [Path(p) for p in inputs]
    todo = []
    for path in paths:  # check every input before predicting anything
        image = _canonical_input(path, axes)
        check_image_for_model(model, image.shape, path)
        target, prob_target = _targets(path, out_dir, output_format, return_probabilities)
        if target in {t for _, t, _ in todo}:
            raise PixlearnError(f"two inputs would write the same output {target.name}", path)
        if not overwrite and _finished(target, prob_target):
            logger.info("skipping %s: %s is finished", path, target)
            continue
        todo.append((path, target, prob_target))
    manifest = out_dir / MANIFEST
    name = model_name or type(model).__name__
    if dask_address:
        records = _predict_many_dask(model, todo, cfg, axes, tta, dask_address, progress)
    else:
        records = _predict_many_local(model, todo, cfg, axes, tta, progress)
    for (path, target, _), seconds in zip(todo, records):
        _append_manifest(manifest, {"input": str(path), "output": str(target), "model": name,
                                    "seconds": round(float(seconds), 3)})
    return manifest


def _predict_many_local(model: PixelModel, todo: list[tuple[Path, Path, Path | None]], cfg: TileConfig,
                        axes: str | None, tta: bool, progress: bool) -> Iterator[float]:
    with _progress_bar(progress, "images") as advance:
        if advance is not None:
            advance(0, total=len(todo))
        for path, target, prob_target in todo:
            yield _predict_file(model, path, target, prob_target, cfg, axes, tta, False)
            if advance is not None:
                advance(1)


def _append_manifest(manifest: Path, record: dict[str, Any]) -> None:
    with _write_errors(manifest), open(manifest, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``out_dir/manifest.jsonl`` (empty when there is none)."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Dask


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``"tcp://..."`` or a new ``LocalCluster`` for ``"local:N"``."""
    from distributed import Client, LocalCluster

    if address.startswith("local"):
        n = int(address.partition(":")[2] or os.cpu_count() or 1)
        with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            yield client
    else:
        with Client(address) as client:
            yield client


def _block_regions(spatial: tuple[int, ...], chunks: tuple[int, ...], block_pixels: int) -> list[Region]:
    """Blocks made of whole output chunks, about `block_pixels` large, in C order."""
    ndim = len(spatial)
    factor = max(1, int((block_pixels / math.prod(chunks)) ** (1.0 / ndim)))
    block = [c * factor for c in chunks]
    return [
        tuple(slice(s, min(s + b, n)) for s, b, n in zip(starts, block, spatial))
        for starts in itertools.product(*(range(0, n, b) for n, b in zip(spatial, block)))
    ]


def _predict_block(job: _Job, path: str, axes: str | None, setup: _Setup, cfg: TileConfig, region: Region,
                   labels_path: str, prob_path: str | None) -> int:
    """Worker task: one block of a large image into the shared Zarr outputs."""
    import zarr

    image = _canonical_input(Path(path), axes)
    block = _run_region(image, setup, cfg, job.predict_fn(), region, job.batched)
    if prob_path is not None:
        zarr.open_array(prob_path, mode="r+")[region] = block
    if job.model.task != "instances":
        zarr.open_array(labels_path, mode="r+")[region] = job.finalize()(block)
    return int(block.size)


def _predict_file_task(model: PixelModel, path: str, target: str, prob_target: str | None, cfg: TileConfig,
                       axes: str | None, tta: bool) -> float:
    return _predict_file(model, Path(path), Path(target), None if prob_target is None else Path(prob_target),
                         cfg, axes, tta, False)


def _predict_many_dask(model: PixelModel, todo: list[tuple[Path, Path, Path | None]], cfg: TileConfig,
                       axes: str | None, tta: bool, address: str, progress: bool,
                       block_pixels: int | None = None) -> list[float]:
    """Whole images as tasks; Zarr outputs of images larger than a few blocks as block tasks."""
    if block_pixels is None:
        block_pixels = DASK_BLOCK_PIXELS[model.ndim]
    seconds: dict[Path, Any] = {}
    with dask_client(address) as client:
        model_future = client.scatter(model, broadcast=True)
        large = []
        for path, target, prob_target in todo:
            image = _canonical_input(path, axes)
            if target.suffix == ".zarr" and math.prod(image.shape[:-1]) > 2 * block_pixels:
                large.append((path, target, prob_target))
            else:
                seconds[target] = client.submit(
                    _predict_file_task, model_future, str(path), str(target),
                    None if prob_target is None else str(prob_target), cfg, axes, tta, pure=False)
        for path, target, prob_target in large:
            seconds[target] = _predict_blocks_dask(client, model, path, target, prob_target, cfg, axes, tta,
                                                   block_pixels)
        with _progress_bar(progress, "images") as advance:
            if advance is not None:
                advance(0, total=len(todo))
            for target, value in seconds.items():
                if not isinstance(value, float):
                    with _write_errors(target):
                        seconds[target] = value.result()
                if advance is not None:
                    advance(1)
    return [seconds[t] for _, t, _ in todo]


def _predict_blocks_dask(client: Any, model: PixelModel, path: Path, target: Path, prob_target: Path | None,
                         cfg: TileConfig, axes: str | None, tta: bool, block_pixels: int) -> float:
    """One large image cut into blocks of whole output chunks, one task per block."""
    start = time.perf_counter()
    image = _canonical_input(path, axes)
    job = _prepare(model, image, tta, path)
    spatial = tuple(int(s) for s in image.shape[:-1])
    shape, dtype = job.output_spec(spatial)
    with _write_errors(target), contextlib.ExitStack() as stack:
        labels_tmp = stack.enter_context(atomic_path(target))
        labels_out = _create_output(labels_tmp, shape, dtype, model.ndim)
        probs, prob_tmp = None, None
        if prob_target is not None:
            prob_tmp = stack.enter_context(atomic_path(prob_target))
            probs = _create_output(prob_tmp, spatial + (model.n_outputs,), np.float32, model.ndim)
        elif model.task == "instances":
            probs, prob_tmp = stack.enter_context(_scratch_zarr(target.parent, spatial + (model.n_outputs,)))
        setup = _setup_for(model, image, cfg, _chunks_of(labels_out))
        chunks = _chunks_of(labels_out)
        assert chunks is not None
        regions = _block_regions(spatial, chunks[: len(spatial)], block_pixels)
        job_future = client.scatter(job, broadcast=True)
        futures = [
            client.submit(_predict_block, job_future, str(path), axes, setup, cfg, region, str(labels_tmp),
                          None if prob_tmp is None else str(prob_tmp), pure=False)
            for region in regions
        ]
        for future in futures:
            future.result()
        if model.task == "instances":
            _label_instances(job, probs, labels_out, setup)
        _mark_complete(labels_out, probs)
    return time.perf_counter() - start
