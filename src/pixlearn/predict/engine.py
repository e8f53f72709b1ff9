"""The tiled engine: :func:`predict_tiled` and the setup shared by every caller.

Two modes (see :mod:`pixlearn.predict.tiling`):

``"exact"``
    Disjoint cores read with `halo` context. Equals whole-image prediction for any model whose
    output depends only on the input within `halo` pixels (classical filter banks; networks
    with their receptive field as halo).
``"blended"``
    Overlapping tiles averaged with smooth weights (:mod:`pixlearn.predict.blended`).

:func:`_setup` turns a :class:`~pixlearn.predict.tiling.TileConfig`, the halo and the size divisor into
the tile and core shapes; :func:`_run_setup` runs it over the whole image, :func:`_run_region`
over one region only (a Dask block), with identical values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pixlearn.predict.blended import _make_plan, _run_blended, _run_blended_region
from pixlearn.predict.stream import PredictFn, Region, _predict_stream, _shape_of
from pixlearn.predict.tiling import (
    TileConfig,
    available_memory,
    choose_tile_shape,
    core_grid,
)


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
