"""One image file in, one output file out, atomically: what batch and Dask runs share.

A TIFF output is written to a temporary name and renamed when complete; a Zarr output is
written tile by tile into a temporary folder marked ``incomplete`` and renamed when complete.
A full disk or an unwritable folder becomes a :class:`~pixlearn.errors.PixlearnError` and the
partial output is removed.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..axes import canonical_view
from ..errors import PixlearnError
from ..io import atomic_path, open_image, write_image
from ..model import PixelModel
from ..tiling import TileConfig
from .apply import _apply, _create_output, _Job, _mark_complete, _prepare


def _canonical_input(path: Path, axes: str | None) -> Any:
    array, found = open_image(path, axes=axes)
    try:
        return canonical_view(array, found)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None


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
