"""Apply one model to one canonical image: :func:`apply_model`.

A :class:`~pixlearn.predict._machinery.Job` fixes the image's normalisation and builds the
predict function (the model's :meth:`~pixlearn.models.protocol.PixelModel.predict_batch`,
optionally with test-time augmentation); :func:`~pixlearn.predict._machinery.apply_job` runs it
through the tiled engine into NumPy arrays or Zarr outputs, and labels instances across tiles.
Zarr outputs carry an ``incomplete`` attribute until they are finished.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.formats import file_stem
from pixlearn.models.protocol import PixelModel
from pixlearn.predict._machinery import (
    INCOMPLETE,
    OUTPUT_CHUNKS,
    apply_job,
    check_image_for_model,
    create_output,
    mark_complete,
    prepare_job,
)
from pixlearn.predict.tiling import TileConfig

__all__ = ["INCOMPLETE", "OUTPUT_CHUNKS", "apply_model", "check_image_for_model"]


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
    per tile. The model runs in its :attr:`~pixlearn.models.protocol.PixelModel.tile_mode`
    (classical models exact, networks blended; ``tile_cfg.mode`` overrides); the overlap
    defaults to twice the model's halo, so that the tiled result equals whole-image prediction.

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
    job = prepare_job(model, image, tta)
    spatial = tuple(int(s) for s in image.shape[:-1])
    if not _is_path(output):
        labels_out = output
        if labels_out is None:
            shape, dtype = job.output_spec(spatial)
            labels_out = np.zeros(shape, dtype)
        probs = np.zeros(spatial + (model.n_outputs,), np.float32) if return_probabilities else None
        apply_job(job, image, cfg, labels_out, probs, progress=progress, scratch=None)
        return (labels_out, probs) if return_probabilities else labels_out
    path = Path(output)
    prob_path = path.with_name(file_stem(path) + "_probabilities.zarr")
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        labels_out = create_output(tmp, *job.output_spec(spatial), model.ndim)
        probs = None
        if return_probabilities:
            probs = create_output(stack.enter_context(atomic_path(prob_path)), spatial + (model.n_outputs,),
                                   np.float32, model.ndim)
        apply_job(job, image, cfg, labels_out, probs, progress=progress, scratch=path.parent)
        mark_complete(labels_out, probs)
    import zarr

    labels = zarr.open_array(str(path), mode="r")
    return (labels, zarr.open_array(str(prob_path), mode="r")) if return_probabilities else labels
