"""The tiled engine: :func:`predict_tiled`, any predict function over an image of any size.

Two modes (see :mod:`pixlearn.predict.tiling`):

``"exact"``
    Disjoint cores read with `halo` context. Equals whole-image prediction for any model whose
    output depends only on the input within `halo` pixels (classical filter banks; networks
    with their receptive field as halo).
``"blended"``
    Overlapping tiles averaged with smooth weights (:mod:`pixlearn.predict.blended`).

The tile setup and the loops over it live in :mod:`pixlearn.predict._machinery`, shared with
:func:`~pixlearn.predict.apply_model` and the Dask path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pixlearn.predict._machinery import chunks_of, make_setup, progress_bar, run_setup
from pixlearn.predict.stream import PredictFn, Region
from pixlearn.predict.tiling import TileConfig


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
    setup = make_setup(spatial, cfg, halo, divisor, chunks_of(out))
    holder: dict[str, Any] = {"out": out}

    def write(region: Region, block: np.ndarray) -> None:
        result = finalize(block) if finalize is not None else block
        if holder["out"] is None:
            holder["out"] = np.zeros(spatial + result.shape[len(spatial):], result.dtype)
        holder["out"][region] = result

    with progress_bar(progress, "predicting") as advance:
        run_setup(image, setup, cfg, predict_fn, write, batched, advance)
    return holder["out"]
