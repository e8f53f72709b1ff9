"""Scale out over a Dask distributed cluster.

:func:`pixlearn.predict.predict_many` with ``dask_address="tcp://scheduler:8786"`` (an existing
cluster, e.g. started with ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on each
machine, all seeing the same file system) or ``"local:4"`` (a cluster of 4 worker processes on
this machine) sends whole images to workers as tasks, and cuts the Zarr outputs of large images
into blocks of whole chunks predicted on different workers (:func:`predict_tasks_dask`); the
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
from pixlearn.data.ome import ChannelFirst, finish_ome_zarr, physical_sizes
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict._machinery import (
    Job,
    Setup,
    chunks_of,
    label_instances,
    mark_complete,
    model_setup,
    prepare_job,
    progress_bar,
    run_region,
    scratch_zarr,
)
from pixlearn.predict.file_outputs import (
    OME_LABEL_NAMES,
    FileTask,
    RunOptions,
    create_tiled_output,
    is_ome,
    predict_file,
    write_errors,
    write_objects,
)
from pixlearn.predict.files import canonical_input
from pixlearn.predict.planewise import planewise_for
from pixlearn.predict.rescale import scale_for
from pixlearn.predict.stream import Region

#: Pixels per block when :func:`predict_many` splits one large image over Dask workers.
DASK_BLOCK_PIXELS = {2: 2048 * 2048, 3: 64 * 1024 * 1024}


@contextlib.contextmanager
def dask_client(address: str, *, connect_timeout_s: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client`` for ``"tcp://..."`` or a new ``LocalCluster`` for ``"local:N"``.

    Raises
    ------
    PixlearnError
        ``local:N`` with N not a positive integer, or a scheduler that does not answer within
        `connect_timeout_s` (named as the ``--dask`` option).
    """
    from distributed import Client, LocalCluster

    if address.startswith("local"):
        count = address.partition(":")[2]
        if count and (not count.isdigit() or int(count) < 1):
            raise PixlearnError(f"--dask {address!r}: local:N needs a positive number of workers")
        n = int(count or os.cpu_count() or 1)
        with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=connect_timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PixlearnError(f"--dask {address!r}: cannot reach the Dask scheduler ({type(exc).__name__}: {exc})") from None
    with client:
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


def _open_block_target(path: str, ndim: int) -> Any:
    """A shared output opened by a worker: a Zarr array, or an OME-Zarr level 0 stored channels first."""
    import zarr

    array = zarr.open_array(path, mode="r+")
    return ChannelFirst(array) if array.ndim > ndim and Path(path).name == "0" else array


def _predict_block(job: Job, source: str, options: RunOptions, setup: Setup, region: Region, labels_path: str,
                   prob_path: str | None) -> int:
    """Worker task: one block of a large image into the shared Zarr outputs."""
    image = canonical_input(Path(source), options.axes, job.model.n_channels)
    block = run_region(image, setup, options.tile_cfg, job.predict_fn(), region, True, job.core_fn())
    if prob_path is not None:
        _open_block_target(prob_path, job.model.ndim)[region] = block
    if job.model.task != "instances":
        _open_block_target(labels_path, job.model.ndim)[region] = job.finalize()(block)
    return int(block.size)


def predict_tasks_dask(model: PixelModel, tasks: list[FileTask], options: RunOptions, address: str, *,
                       progress: bool = False, block_pixels: int | None = None) -> list[float]:
    """Predict files on a Dask cluster; returns the seconds each took, in the order of `tasks`.

    Whole images are tasks (:func:`~pixlearn.predict.file_outputs.predict_file` on a worker); the
    Zarr outputs of images larger than two blocks of `block_pixels` (default
    :data:`DASK_BLOCK_PIXELS`) are split into block tasks (OME-Zarr too: the pyramid and label
    image are made from level 0 afterwards, in this process).
    """
    if block_pixels is None:
        block_pixels = DASK_BLOCK_PIXELS[model.ndim]
    seconds: dict[Path, Any] = {}
    with dask_client(address) as client:
        model_future = client.scatter(model, broadcast=True, hash=False)
        large = []
        for task in tasks:
            image = canonical_input(task.source, options.axes, model.n_channels)
            if task.target.suffix == ".zarr" and math.prod(image.shape[:-1]) > 2 * block_pixels:
                large.append(task)
            else:
                seconds[task.target] = client.submit(predict_file, model_future, task, options, pure=False)
        for task in large:
            seconds[task.target] = _predict_blocks_dask(client, model, task, options, block_pixels)
        with progress_bar(progress, "images") as advance:
            if advance is not None:
                advance(0, total=len(tasks))
            for target, value in seconds.items():
                if not isinstance(value, float):
                    with write_errors(target):
                        seconds[target] = value.result()
                if advance is not None:
                    advance(1)
    return [seconds[task.target] for task in tasks]


def _predict_blocks_dask(client: Any, model: PixelModel, task: FileTask, options: RunOptions,
                         block_pixels: int) -> float:
    """One large image cut into blocks of whole output chunks, one task per block."""
    start = time.perf_counter()
    image = canonical_input(task.source, options.axes, model.n_channels)
    model = planewise_for(scale_for(model, image, options.diameter, task.source), image.shape)
    job = prepare_job(model, image, options.tta, task.source)
    spatial = tuple(int(s) for s in image.shape[:-1])
    shape, dtype = job.output_spec(spatial)
    ome = is_ome(task.target)
    with write_errors(task.target), contextlib.ExitStack() as stack:
        labels_tmp = stack.enter_context(atomic_path(task.target))
        labels_out = create_tiled_output(labels_tmp, shape, dtype, model.ndim, ome)
        probs, prob_tmp = None, None
        if task.prob_target is not None:
            prob_tmp = stack.enter_context(atomic_path(task.prob_target))
            probs = create_tiled_output(prob_tmp, spatial + (model.n_outputs,), np.float32, model.ndim, ome)
        elif model.task == "instances":
            probs, prob_tmp = stack.enter_context(scratch_zarr(task.target.parent, spatial + (model.n_outputs,)))
        chunks = chunks_of(labels_out)
        assert chunks is not None  # a Zarr output
        setup = model_setup(model, image, options.tile_cfg, chunks)
        # blocks of whole chunks of every output the workers write: no two workers share a chunk
        block_chunks = tuple(chunks[: len(spatial)])
        prob_chunks = chunks_of(probs)
        if prob_chunks is not None:
            block_chunks = tuple(math.lcm(a, b) for a, b in zip(block_chunks, prob_chunks))
        regions = _block_regions(spatial, block_chunks, block_pixels)
        # hash=False: a fresh key per scatter. With content-hashed keys, the same job scattered for
        # the next image can race the release of the previous future and lose its data.
        job_future = client.scatter(job, broadcast=True, hash=False)
        level0 = "0" if ome else ""  # an OME-Zarr output is a group: workers write its level 0
        prob_block_path = None if prob_tmp is None else str(prob_tmp / level0) if task.prob_target else str(prob_tmp)
        futures = [
            client.submit(_predict_block, job_future, str(task.source), options, setup, region,
                          str(labels_tmp / level0), prob_block_path, pure=False)
            for region in regions
        ]
        for future in futures:
            future.result()
        if model.task == "instances":
            label_instances(job, probs, labels_out, setup)
        mark_complete(labels_out, probs)
        if ome:
            sizes, unit = physical_sizes(task.source)
            finish_ome_zarr(labels_tmp, model.ndim, sizes, unit, labels=OME_LABEL_NAMES.get(model.task),
                            name=task.source.name)
            if task.prob_target is not None and prob_tmp is not None:
                finish_ome_zarr(prob_tmp, model.ndim, sizes, unit, name=task.source.name)
        if task.objects:
            write_objects(task.objects, np.asarray(labels_out[...]), image)
    return time.perf_counter() - start
