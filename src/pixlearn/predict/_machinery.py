"""The machinery the modules of :mod:`pixlearn.predict` share; private to the room.

Names here have no leading underscore so that the room's modules import them openly; the module
itself is private, and the room's public names are re-exported by :mod:`pixlearn.predict`.

* **Tile setup**: :class:`Setup` (tile, core, halo, overlap, divisor and mode of one image) from a
  :class:`~pixlearn.predict.tiling.TileConfig` (:func:`make_setup`) or a model
  (:func:`model_setup`); :func:`run_setup` runs it over a whole image, :func:`run_region` over
  one region only (a Dask block), with identical values.
* **Jobs**: a :class:`Job` is a model ready for one image (normalisation fixed, predict function
  built); :func:`apply_job` runs it into NumPy arrays or Zarr outputs and labels instances.
* **Files**: :func:`predict_file` predicts one :class:`FileTask` atomically; the local loop of
  :func:`~pixlearn.predict.predict_many` and its Dask workers both call it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.blocks import core_shape_for_budget
from pixlearn.data.memory import format_bytes, resident_memory
from pixlearn.data.normalize import apply_normalization, compute_normalization
from pixlearn.data.writers import create_zarr
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import MODEL_TILE_MODES, PixelModel
from pixlearn.predict.blended import make_blend_plan, run_blended, run_blended_region
from pixlearn.predict.planewise import planewise_for
from pixlearn.predict.stitch import label_tiled
from pixlearn.predict.stream import CoreFn, PredictFn, Region, predict_stream, shape_of
from pixlearn.predict.tiling import TileConfig, available_memory, choose_tile_shape, core_grid, per_axis
from pixlearn.predict.tta import with_tta

logger = logging.getLogger(__name__)

INCOMPLETE = "incomplete"  # attribute of a Zarr output while it is being written
#: Chunk edge of Zarr outputs: in-plane, and along the planes of a stack.
OUTPUT_CHUNKS = (256, 16)
#: Context per side when labelling instances tile by tile, per number of spatial axes.
INSTANCE_MARGIN = {2: 32, 3: 16}

Write = Callable[[Region, np.ndarray], None]


# ------------------------------------------------------------------------------------ tile setup


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything the tiled engine derives from the configuration and the image."""

    mode: str
    tile: tuple[int, ...]
    halo: tuple[int, ...]
    divisor: tuple[int, ...]
    overlap: tuple[int, ...]
    core: tuple[int, ...]
    batch: int = 1


def make_setup(shape: tuple[int, ...], cfg: TileConfig, halo: Any, divisor: Any, chunks: tuple[int, ...] | None,
               bytes_per_pixel: float = 256.0, budget: float | None = None) -> Setup:
    """Tile and core shapes for an image of spatial `shape` (cores in whole output `chunks`).

    Blended tiles chosen from the budget are at least four halos long (where the image is): a tile
    of ``2 * halo + 1`` keeps one pixel per axis and reads the rest again for its neighbours (a 2D
    network of halo 128 applied plane by plane, whose tiles a 3D edge limit of 128 px would cap).
    """
    ndim = len(shape)
    halo_t = per_axis(halo, ndim, "halo")
    div_t = per_axis(divisor, ndim, "divisor")
    mode = "exact" if cfg.mode == "auto" else cfg.mode
    if cfg.tile_shape is None and mode == "exact":  # the largest cores whose tiles fit the budget
        budget = budget if budget is not None else default_budget(cfg)
        cores = core_shape_for_budget(shape, halo_t, budget / cfg.batch_size, bytes_per_pixel, divisor=div_t)
        tile = tuple(n if c >= n else min(n, c + 2 * h) for n, c, h in zip(shape, cores, halo_t))
    elif cfg.tile_shape is None:
        budget = budget if budget is not None else default_budget(cfg)
        tile = choose_tile_shape(shape, budget, bytes_per_pixel, halo=halo_t, divisor=div_t,
                                 batch_size=cfg.batch_size)
        tile = tuple(max(t, min(-(-4 * h // d) * d, -(-n // d) * d)) for t, h, d, n in zip(tile, halo_t, div_t, shape))
    else:
        tile = per_axis(cfg.tile_shape, ndim, "tile_shape")
    overlap = per_axis(cfg.overlap, ndim, "overlap") if cfg.overlap is not None else tuple(2 * h for h in halo_t)
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
    return Setup(mode, tile, halo_t, div_t, overlap, tuple(core), int(cfg.batch_size))


def default_budget(cfg: TileConfig) -> float:
    """Host memory for one batch of tiles: the configured budget, else a quarter of what is free (<= 1 GiB)."""
    if cfg.memory_budget_mib is not None:
        return cfg.memory_budget_mib * 2**20
    return min(available_memory() / 4, 2**30)


#: Least memory left to one batch of tiles when the model and the outputs take all of a budget.
MIN_TILE_BUDGET = 64 * 2**20


def budget_tiles(job: Job, cfg: TileConfig, total: float | None, held: float) -> TileConfig:
    """`cfg` with the memory of one batch of tiles set to what `total` leaves, when it is given and
    the model runs in host memory (no tile shape, no tile budget, no device budget of the model).

    The model is run once on a tiny block first, so that what it builds on its first prediction
    (a compiled forest, kernels) is counted in the memory this process holds; that, and `held`
    bytes of outputs still to be filled, are deducted from `total`.
    """
    model = job.model
    if total is None or cfg.tile_shape is not None or cfg.memory_budget_mib is not None \
            or model.memory_budget_bytes() is not None:
        return cfg
    side = max(1, int(model.size_divisor))
    job.predict_fn()(np.zeros((1,) + (side,) * model.ndim + (model.n_channels,), np.float32))
    left = float(total) - resident_memory() - float(held)
    if left < MIN_TILE_BUDGET:
        logger.warning("the model and the outputs take all of the %s memory budget; tiles get %s more",
                       format_bytes(total), format_bytes(MIN_TILE_BUDGET))
        left = MIN_TILE_BUDGET
    return cfg.replace(memory_budget_mib=left / 2**20)


def model_setup(model: PixelModel, image: Any, cfg: TileConfig, chunks: tuple[int, ...] | None) -> Setup:
    """:func:`make_setup` with the model's tile mode, halo, size divisor and memory needs.

    A model that takes tiles one at a time (``batches_tiles`` false) is budgeted and streamed
    one tile at a time: its tiles get the whole budget.
    """
    mode = model.tile_mode if cfg.mode == "auto" else cfg.mode
    cfg = cfg if model.batches_tiles else cfg.replace(batch_size=1)
    if mode not in MODEL_TILE_MODES:
        raise ValueError(f"the model's tile mode {mode!r} is not one of {MODEL_TILE_MODES}")
    budget = model.memory_budget_bytes() if cfg.tile_shape is None and cfg.memory_budget_mib is None else None
    return make_setup(tuple(int(s) for s in image.shape[:-1]), cfg.replace(mode=mode), model.halo,
                      int(model.size_divisor), chunks, float(model.bytes_per_pixel), budget)


def chunks_of(out: Any) -> tuple[int, ...] | None:
    """Chunk shape of a chunked output (Zarr), ``None`` for NumPy arrays."""
    chunks = getattr(out, "chunks", None)
    if chunks is None or isinstance(out, np.ndarray):
        return None
    return tuple(int(c) for c in chunks)


def run_exact(image: Any, tiles: Sequence[Any], predict_fn: PredictFn, write: Write, batch_size: int,
              batched: bool, progress: Any, core_fn: CoreFn | None = None) -> None:
    """Exact mode: predict each tile's region, write its core (with `core_fn`: the core alone is
    predicted, from the region read around it)."""
    if core_fn is not None:
        for tile, pred in predict_stream(image, tiles, lambda t: t.region, core_fn, batch_size, batched, progress,
                                         inner_of=lambda t: t.inner):
            write(tile.core, pred)
        return
    for tile, pred in predict_stream(image, tiles, lambda t: t.region, predict_fn, batch_size, batched, progress):
        write(tile.core, pred[tile.inner])


def run_setup(image: Any, setup: Setup, cfg: TileConfig, predict_fn: PredictFn, write: Write, batched: bool,
              advance: Any, core_fn: CoreFn | None = None) -> None:
    """Predict the whole image, handing each finished block to `write` as soon as it is done
    (exact tiles through `core_fn` where it is given)."""
    spatial = tuple(int(s) for s in image.shape[:-1])
    if setup.mode == "exact":
        tiles = core_grid(spatial, setup.core, setup.halo, divisor=setup.divisor)
        if advance is not None:
            advance(0, total=len(tiles))
        run_exact(image, tiles, predict_fn, write, setup.batch, batched, advance, core_fn)
    else:
        plan = make_blend_plan(spatial, setup.tile, setup.overlap, setup.halo, setup.divisor, cfg)
        if advance is not None:
            advance(0, total=len(plan.tiles))
        run_blended(image, plan, predict_fn, write, setup.batch, batched, advance)


def run_region(image: Any, setup: Setup, cfg: TileConfig, predict_fn: PredictFn, region: Region,
               batched: bool, core_fn: CoreFn | None = None) -> np.ndarray:
    """Prediction of `region` alone, equal to the same part of the whole-image prediction."""
    spatial = tuple(int(s) for s in image.shape[:-1])
    if setup.mode == "blended":
        plan = make_blend_plan(spatial, setup.tile, setup.overlap, setup.halo, setup.divisor, cfg)
        return run_blended_region(image, plan, predict_fn, region, setup.batch, batched)
    result: np.ndarray | None = None

    def write(core: Region, block: np.ndarray) -> None:
        nonlocal result
        if result is None:
            result = np.zeros(shape_of(region) + block.shape[-1:], np.float32)
        result[tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))] = block

    tiles = core_grid(spatial, setup.core, setup.halo, divisor=setup.divisor, region=region)
    run_exact(image, tiles, predict_fn, write, setup.batch, batched, None, core_fn)
    assert result is not None  # a region holds at least one core
    return result


@contextlib.contextmanager
def progress_bar(enabled: bool, description: str) -> Iterator[Any]:
    """``advance(n, total=None)`` of a transient rich progress bar, or ``None`` when disabled."""
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


# ------------------------------------------------------------------------------------ jobs


#: A 2D model takes a 3D stack plane by plane only when its planes are at least this wide on both
#: axes (a narrow "plane" is a colour or channel axis read as space: refused, not predicted).
MIN_PLANE_PX = 8


def check_image_for_model(model: PixelModel, shape: Sequence[int], path: Any = None) -> None:
    """Raise :class:`PixlearnError` if a canonical image shape does not fit the model.

    Parameters
    ----------
    model : PixelModel
    shape : sequence of int
        Canonical shape ``(M, N, C)`` or ``(P, M, N, C)`` (a 2D model takes a 3D stack plane by
        plane, :mod:`pixlearn.predict.planewise`, when its planes are at least :data:`MIN_PLANE_PX`
        on both axes).
    path : path-like, optional
        Named in the message.
    """
    spatial = len(shape) - 1
    if spatial != model.ndim and not (model.ndim == 2 and spatial == 3 and min(shape[1:3]) >= MIN_PLANE_PX):
        raise PixlearnError(
            f"the model takes {model.ndim}D images but this image is {spatial}D (canonical shape "
            f"{tuple(shape)}); pass axes= if they were inferred wrongly", path)
    if shape[-1] != model.n_channels:
        raise PixlearnError(
            f"the model takes {model.n_channels} channel(s) but this image has {shape[-1]} "
            f"(canonical shape {tuple(shape)})", path)


@dataclasses.dataclass
class Job:
    """A model ready to run on one image: normalisation fixed, predict function built.

    The predict function is always batched (:meth:`PixelModel.predict_batch`).
    """

    model: PixelModel
    low: np.ndarray
    high: np.ndarray
    tta: bool

    def predict_fn(self) -> PredictFn:
        model, low, high = self.model, self.low, self.high

        def predict(blocks: np.ndarray) -> np.ndarray:
            return model.predict_batch(apply_normalization(blocks, low, high))

        return with_tta(predict, model.ndim, batched=True) if self.tta else predict

    def core_fn(self, labels: bool = False) -> CoreFn | None:
        """The model's :meth:`~pixlearn.models.protocol.PixelModel.predict_core` on normalised
        blocks, for exact tiles (with `labels`: their classes); ``None`` with test-time
        augmentation (it flips whole tiles)."""
        if self.tta:
            return None
        model, low, high = self.model, self.low, self.high

        def predict(blocks: np.ndarray, inner: Region) -> np.ndarray:
            return model.predict_core(apply_normalization(blocks, low, high), inner, labels)

        return predict

    def finalize(self) -> Callable[[np.ndarray], np.ndarray]:
        task = self.model.task
        if task == "semantic":
            from pixlearn.postprocess.labels import threshold_probabilities

            return threshold_probabilities
        if task == "restore":
            return functools.partial(denormalize, low=self.low, high=self.high)
        return identity

    def output_spec(self, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
        return output_spec(self.model, spatial)


def output_spec(model: PixelModel, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of the labels (or restored image) `model` makes of an image of `spatial` shape."""
    k = model.n_outputs
    if model.task == "semantic":
        return spatial, np.uint8 if k <= 255 else np.uint16
    if model.task == "restore":
        return spatial + (k,), np.float32
    return spatial, np.uint32


def output_bytes(model: PixelModel, spatial: tuple[int, ...], probabilities: bool) -> int:
    """Bytes of the NumPy outputs :func:`predict_file` allocates for a TIFF output: labels, plus
    the raw outputs when they are written or needed to label instances."""
    shape, dtype = output_spec(model, spatial)
    total = math.prod(shape) * np.dtype(dtype).itemsize
    if probabilities or model.task == "instances":
        total += math.prod(spatial) * int(model.n_outputs) * 4
    return int(total)


def identity(block: np.ndarray) -> np.ndarray:
    return block


def only_channel(block: np.ndarray, dtype: Any) -> np.ndarray:
    """The class map ``(...)``, as `dtype`, of a block of classes ``(..., 1)``."""
    return block[..., 0].astype(dtype)


def denormalize(block: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map a restored block back to the input's intensity range (per channel when K == C)."""
    k = block.shape[-1]
    if len(low) != k:
        low, high = low[:1], high[:1]
    return (block * (high - low) + low).astype(np.float32)


def prepare_job(model: PixelModel, image: Any, tta: bool, path: Any = None) -> Job:
    """Check `image` against the model and fix its normalisation (a 2D model on a 3D stack runs
    plane by plane)."""
    check_image_for_model(model, image.shape, path)
    low, high = compute_normalization(image, model.normalization)
    return Job(planewise_for(model, image.shape), low, high, tta)


def create_output(path: Path, shape: tuple[int, ...], dtype: Any, ndim: int) -> Any:
    """A chunked Zarr output at `path`, marked :data:`INCOMPLETE` until :func:`mark_complete`."""
    spatial = shape[:ndim]
    chunks = [min(s, OUTPUT_CHUNKS[1]) for s in spatial[:-2]] + [min(s, OUTPUT_CHUNKS[0]) for s in spatial[-2:]]
    chunks += list(shape[len(spatial):])
    array = create_zarr(path, shape, dtype, chunks=chunks)
    array.attrs[INCOMPLETE] = True
    return array


def mark_complete(*arrays: Any) -> None:
    for array in arrays:
        if array is not None and hasattr(array, "attrs"):
            array.attrs[INCOMPLETE] = False


@contextlib.contextmanager
def scratch_zarr(folder: Path, shape: tuple[int, ...]) -> Iterator[tuple[Any, Path]]:
    """A temporary float32 Zarr array in `folder`, removed afterwards whatever happens."""
    path = folder / f".outputs-{os.getpid()}-{time.monotonic_ns()}.partial"
    try:
        yield create_output(path, shape, np.float32, len(shape) - 1), path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def apply_job(job: Job, image: Any, cfg: TileConfig, labels_out: Any, probs: Any, *, progress: bool,
              scratch: Path | None) -> None:
    """Run `job` on `image`, writing labels (and raw outputs when `probs` is given).

    Instance models need their raw outputs to label: without `probs` they go to a NumPy array,
    or with a `scratch` folder and a chunked `labels_out` to a scratch Zarr array there.
    """
    model = job.model
    spatial = tuple(int(s) for s in image.shape[:-1])
    setup = model_setup(model, image, cfg, chunks_of(labels_out))
    instances = model.task == "instances"
    # exact tiles of a semantic model whose outputs are not kept: its classes straight from the model
    direct = model.task == "semantic" and probs is None and setup.mode == "exact"
    with contextlib.ExitStack() as stack:
        if instances and probs is None:
            if isinstance(labels_out, np.ndarray) or scratch is None:
                probs = np.zeros(spatial + (model.n_outputs,), np.float32)
            else:
                probs, _ = stack.enter_context(scratch_zarr(scratch, spatial + (model.n_outputs,)))
        core_fn = job.core_fn(labels=direct)
        finalize: Callable[[np.ndarray], np.ndarray] = job.finalize()
        if direct and core_fn is not None:
            finalize = functools.partial(only_channel, dtype=output_spec(model, spatial)[1])

        def write(region: Region, block: np.ndarray) -> None:
            if probs is not None:
                probs[region] = block
            if not instances:
                labels_out[region] = finalize(block)

        with progress_bar(progress, "predicting") as advance:
            run_setup(image, setup, cfg, job.predict_fn(), write, True, advance, core_fn)
        if instances:
            label_instances(job, probs, labels_out, setup)


def label_instances(job: Job, probs: Any, labels_out: Any, setup: Setup) -> None:
    """Instance labels of the raw outputs `probs`, tile by tile with the model's decoding."""
    margin = max(INSTANCE_MARGIN[job.model.ndim], *setup.halo)
    core = tuple(max(64, t - 2 * margin) for t in setup.tile)
    label_tiled(probs, job.model.instances_from_outputs, labels_out, core_shape=core, margin=margin)


# ------------------------------------------------------------------------------------ files
