"""Apply one model to one canonical image: :func:`apply_model`.

A :class:`_Job` fixes the image's normalisation and builds the predict function (batched for
models with ``predict_batch``, optionally with test-time augmentation); :func:`_apply` runs it
through the tiled engine into NumPy arrays or Zarr outputs, and labels instances across tiles.
Zarr outputs carry an ``incomplete`` attribute until they are finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.images import create_zarr, file_stem
from pixlearn.data.normalize import apply_normalization, compute_normalization
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict.engine import (
    _chunks_of,
    _progress_bar,
    _run_setup,
    _Setup,
    _setup,
)
from pixlearn.predict.stitch import _instance_fn, label_tiled
from pixlearn.predict.stream import PredictFn, Region
from pixlearn.predict.tiling import TileConfig
from pixlearn.predict.tta import with_tta

INCOMPLETE = "incomplete"  # attribute of a Zarr output while it is being written
_INSTANCE_MARGIN = {2: 32, 3: 16}
#: Chunk edge of Zarr outputs: in-plane, and along the planes of a stack.
OUTPUT_CHUNKS = (256, 16)


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
            from pixlearn.postprocess.labels import threshold_probabilities

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
