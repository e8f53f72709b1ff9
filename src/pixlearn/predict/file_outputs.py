"""One image file in, its output files out, atomically: what the local batch and Dask runs share.

:func:`predict_file` opens an input lazily, predicts it through the tile machinery of
:mod:`pixlearn.predict._machinery` and writes its outputs (TIFF, Zarr, OME-Zarr, OME-TIFF, object
tables) under temporary names renamed when complete; :class:`RunOptions` and :class:`FileTask`
describe a run and one file of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.ome import create_ome_zarr, finish_ome_zarr, physical_sizes, write_ome_tiff
from pixlearn.data.writers import write_csv, write_geojson, write_image
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict._machinery import (
    INCOMPLETE,
    apply_job,
    budget_tiles,
    create_output,
    mark_complete,
    output_bytes,
    prepare_job,
)
from pixlearn.predict.files import canonical_input
from pixlearn.predict.planewise import planewise_for
from pixlearn.predict.rescale import scale_for
from pixlearn.predict.tiling import TileConfig


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How every image of a run is predicted: tiles, input axes, test-time augmentation, the memory
    each process may hold (bytes; ``None``: tiles from ``tile_cfg`` alone), and the object diameter
    to rescale to (:func:`pixlearn.predict.rescale.scale_for`)."""

    tile_cfg: TileConfig
    axes: str | None = None
    tta: bool = False
    memory_budget: float | None = None
    diameter: float | str | None = None


@dataclasses.dataclass(frozen=True)
class FileTask:
    """One input image file and the output file(s) it is predicted into."""

    source: Path
    target: Path
    prob_target: Path | None = None
    #: Object files of an instance model (``.geojson`` and / or ``.csv``).
    objects: tuple[Path, ...] = ()


def is_ome(target: Path) -> bool:
    """Whether an output path is an OME-Zarr or OME-TIFF output (``.ome.zarr`` / ``.ome.tif``)."""
    return target.name.lower().endswith((".ome.zarr", ".ome.tif", ".ome.tiff"))


#: Label images of OME-Zarr outputs by task, under ``labels/<name>``.
OME_LABEL_NAMES = {"semantic": "classes", "instances": "instances"}


@contextlib.contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """Turn a full disk or an unwritable output into a :class:`PixlearnError` naming `path`."""
    try:
        yield
    except PixlearnError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PixlearnError("disk full while writing the output; the partial output was removed", path) from exc
        raise PixlearnError(f"cannot write output ({exc.strerror or exc})", path) from exc


def create_tiled_output(path: Path, shape: tuple[int, ...], dtype: Any, ndim: int, ome: bool) -> Any:
    """A Zarr output (:func:`create_output`) or the level 0 of an OME-Zarr output, marked
    :data:`INCOMPLETE`; both take canonical blocks at spatial regions."""
    if not ome:
        return create_output(path, shape, dtype, ndim)
    array = create_ome_zarr(path, shape, dtype, ndim)
    array.attrs[INCOMPLETE] = True
    return array


def predict_file(model: PixelModel, task: FileTask, options: RunOptions, *, progress: bool = False) -> float:
    """Predict one file into its target (and probabilities target), atomically; returns seconds taken.

    A TIFF output is written to a temporary name and renamed when complete; a Zarr output is
    written tile by tile into a temporary folder marked :data:`INCOMPLETE` and renamed when
    complete. OME outputs (``.ome.zarr``: NGFF 0.4 with a pyramid and, for labels, a label image;
    ``.ome.tif``) carry the physical pixel sizes of the input. Object files (``task.objects``)
    are measured on the finished label image. A full disk or an unwritable folder becomes a
    :class:`PixlearnError` and the partial output is removed.
    """
    start = time.perf_counter()
    image = canonical_input(task.source, options.axes, model.n_channels)
    model = planewise_for(scale_for(model, image, options.diameter, task.source), image.shape)
    job = prepare_job(model, image, options.tta, task.source)
    spatial = tuple(int(s) for s in image.shape[:-1])
    shape, dtype = job.output_spec(spatial)
    probs_shape = spatial + (model.n_outputs,)
    ome = is_ome(task.target)
    sizes, unit = physical_sizes(task.source) if ome else ({}, None)
    in_memory = 0 if task.target.suffix == ".zarr" else output_bytes(model, spatial, task.prob_target is not None)
    tile_cfg = budget_tiles(job, options.tile_cfg, options.memory_budget, in_memory)
    with write_errors(task.target), contextlib.ExitStack() as stack:
        if task.target.suffix == ".zarr":
            labels_tmp = stack.enter_context(atomic_path(task.target))
            labels_out = create_tiled_output(labels_tmp, shape, dtype, model.ndim, ome)
            probs, prob_tmp = None, None
            if task.prob_target is not None:
                prob_tmp = stack.enter_context(atomic_path(task.prob_target))
                probs = create_tiled_output(prob_tmp, probs_shape, np.float32, model.ndim, ome)
            apply_job(job, image, tile_cfg, labels_out, probs, progress=progress, scratch=task.target.parent)
            mark_complete(labels_out, probs)
            if ome:
                finish_ome_zarr(labels_tmp, model.ndim, sizes, unit, labels=OME_LABEL_NAMES.get(model.task),
                                name=task.source.name)
                if prob_tmp is not None:
                    finish_ome_zarr(prob_tmp, model.ndim, sizes, unit, name=task.source.name)
            if task.objects:
                write_objects(task.objects, np.asarray(labels_out[...]), image)
        else:
            labels_out = np.zeros(shape, dtype)
            probs = np.zeros(probs_shape, np.float32) if task.prob_target is not None else None
            apply_job(job, image, tile_cfg, labels_out, probs, progress=progress, scratch=None)
            spatial_axes = "ZYX" if model.ndim == 3 else "YX"
            if ome:
                for target, array in ((task.prob_target, probs), (task.target, labels_out)):
                    if target is not None and array is not None:
                        with atomic_path(target) as tmp:
                            write_ome_tiff(tmp, array, model.ndim, sizes, unit)
            else:
                if task.prob_target is not None and probs is not None:
                    write_image(task.prob_target, probs, axes=spatial_axes + "C")
                write_image(task.target, labels_out,
                            axes=spatial_axes + ("C" if labels_out.ndim > model.ndim else ""))
            if task.objects:
                write_objects(task.objects, labels_out, image)
    return time.perf_counter() - start


def write_objects(targets: Sequence[Path], labels: np.ndarray, image: Any) -> None:
    """Measure the objects of a finished label image (against the input's intensities) and write
    them as GeoJSON (QuPath detections) and / or CSV, by suffix."""
    from pixlearn.postprocess.objects import geojson_collection, object_measurements

    table = object_measurements(labels, np.asarray(image[...], dtype=np.float32))
    for target in targets:
        if target.suffix == ".geojson":
            write_geojson(target, geojson_collection(labels, table))
        else:
            write_csv(target, table)
