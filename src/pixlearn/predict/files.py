"""One image file in, one output file out, atomically: what batch and Dask runs share.

A TIFF output is written to a temporary name and renamed when complete; a Zarr output is
written tile by tile into a temporary folder marked ``incomplete`` and renamed when complete.
A full disk or an unwritable folder becomes a :class:`~pixlearn.errors.PixlearnError` and the
partial output is removed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.axes import canonical_view, grey_view
from pixlearn.data.images import open_image, write_image
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel
from pixlearn.predict.apply import (
    _apply,
    _create_output,
    _Job,
    _mark_complete,
    _prepare,
)
from pixlearn.predict.tiling import TileConfig

logger = logging.getLogger(__name__)


def _canonical_input(path: Path, axes: str | None, n_channels: int | None = None) -> Any:
    """Open `path` lazily in the canonical layout; a colour image for a grey model (as models
    trained on a grey/colour mix such as DSB2018 are) is read as the mean of its colours."""
    array, found = open_image(path, axes=axes)
    try:
        view = canonical_view(array, found)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    if n_channels == 1 and view.shape[-1] in (3, 4) and view.ndim == 3:
        logger.info("%s: colour image for a grey model; using the mean of its colours", path)
        return grey_view(view)
    return view


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
    image = _canonical_input(path, axes, model.n_channels)
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
