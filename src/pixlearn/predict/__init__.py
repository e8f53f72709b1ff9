"""The prediction room: apply a model to images of any size, tiled, out of core, over folders, on Dask.

It talks to models only through :class:`pixlearn.models.protocol.PixelModel` and to everything
else through a *predict function* ``predict_fn(block) -> outputs`` mapping a float32 block
``(..., C)`` to ``(..., K)``; it imports :mod:`pixlearn.models` (the protocol only),
:mod:`pixlearn.postprocess`, :mod:`pixlearn.data` and :mod:`pixlearn.config`, never torch,
scikit-learn, :mod:`pixlearn.classical` or :mod:`pixlearn.nets`. Images may be lazy (Zarr,
memory-mapped TIFF or ``.npy``): they are read tile by tile, and outputs are written tile by tile,
so memory is bounded by the tile size, not by the image size.

Modules, in the order data flows through them:

============================  =================================================================
:mod:`~.tiling`               tile grids, blend weights, tile shapes from a memory budget
:mod:`~.stream`               read tiles, batch them by shape, call the predict function
:mod:`~.blended`              overlapping tiles averaged with smooth weights, streamed
:mod:`~.engine`               :func:`predict_tiled`: any predict function, exact or blended
:mod:`~.tta`                  :func:`with_tta`: flips and rotations averaged
:mod:`~.stitch`               :func:`label_tiled`: instance labels consistent across tiles
:mod:`~.apply`                :func:`apply_model`: one model on one image, NumPy or Zarr out
:mod:`~.files`                image files opened lazily in the canonical layout
:mod:`~.distributed`          Dask: images and blocks of large images on workers
:mod:`~.batch`                :func:`predict_many`: many files, manifest, skip and resume
============================  =================================================================

The machinery these modules share (tile setup, jobs, outputs, one file in and out atomically)
is in the private :mod:`~._machinery`, so the local and the Dask path run the same code.

Scaling out: :func:`predict_many` with ``dask_address="tcp://scheduler:8786"`` (an existing
cluster, e.g. started with ``dask scheduler`` and ``dask worker tcp://scheduler:8786`` on
each machine, all seeing the same file system) or ``"local:4"`` (a cluster of 4 worker
processes on this machine) sends whole images to workers, and cuts Zarr outputs of large
images into blocks predicted on different workers; the result equals the single-process one.
"""

from __future__ import annotations

from pixlearn.data.axes import CanonicalView, canonical_view
from pixlearn.predict.apply import (
    INCOMPLETE,
    OUTPUT_CHUNKS,
    apply_model,
    check_image_for_model,
)
from pixlearn.predict.batch import MANIFEST, PredictOptions, predict_many, read_manifest
from pixlearn.predict.distributed import DASK_BLOCK_PIXELS, dask_client
from pixlearn.predict.engine import predict_tiled
from pixlearn.predict.stitch import label_tiled
from pixlearn.predict.stream import PredictFn, Region
from pixlearn.predict.tiling import TileConfig
from pixlearn.predict.tta import with_tta

__all__ = [
    "DASK_BLOCK_PIXELS",
    "INCOMPLETE",
    "MANIFEST",
    "OUTPUT_CHUNKS",
    "CanonicalView",
    "PredictFn",
    "Region",
    "TileConfig",
    "apply_model",
    "canonical_view",
    "check_image_for_model",
    "dask_client",
    "label_tiled",
    "PredictOptions",
    "predict_many",
    "predict_tiled",
    "read_manifest",
    "with_tta",
]
