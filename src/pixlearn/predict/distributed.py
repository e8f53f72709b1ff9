"""Scale out over a Dask distributed cluster.

:func:`pixlearn.predict.predict_many` with ``dask_address="tcp://scheduler:8786"`` (an existing
cluster, e.g. started with ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on each
machine, all seeing the same file system) or ``"local:4"`` (a cluster of 4 worker processes on
this machine) sends whole images to workers as tasks, and cuts the Zarr outputs of large images
into blocks of whole chunks predicted on different workers (:func:`_predict_blocks_dask`); the
result equals the single-process one.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.models.protocol import PixelModel
from pixlearn.predict.apply import (
    _create_output,
    _Job,
    _label_instances,
    _mark_complete,
    _prepare,
    _scratch_zarr,
    _setup_for,
)
from pixlearn.predict.engine import _chunks_of, _progress_bar, _run_region, _Setup
from pixlearn.predict.files import _canonical_input, _predict_file, _write_errors
from pixlearn.predict.stream import Region
from pixlearn.predict.tiling import TileConfig

#: Pixels per block when :func:`predict_many` splits one large image over Dask workers.
DASK_BLOCK_PIXELS = {2: 2048 * 2048, 3: 64 * 1024 * 1024}


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

    image = _canonical_input(Path(path), axes, job.model.n_channels)
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
        model_future = client.scatter(model, broadcast=True, hash=False)
        large = []
        for path, target, prob_target in todo:
            image = _canonical_input(path, axes, model.n_channels)
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
    image = _canonical_input(path, axes, model.n_channels)
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
        # hash=False: a fresh key per scatter. With content-hashed keys, the same job scattered for
        # the next image can race the release of the previous future and lose its data.
        job_future = client.scatter(job, broadcast=True, hash=False)
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
