"""Instance labels of large output maps, labelled tile by tile and stitched across tile borders.

:func:`label_tiled` labels each core with some context and merges the labels it finds there
with those of the cores labelled before (:func:`pixlearn.postprocess.stitching.merge_tile_labels`, union-find
over label equivalences), so that objects on tile borders come out as one label. What
labels a block is a callable (for a model: :meth:`PixelModel.instances_from_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pixlearn.predict.stream import shape_of
from pixlearn.predict.tiling import core_grid, per_axis


def label_tiled(
    outputs: Any,
    instance_fn: Callable[[np.ndarray], np.ndarray],
    out: Any = None,
    *,
    core_shape: int | Sequence[int] = 512,
    margin: int | Sequence[int] = 32,
    iou_thresh: float = 0.5,
) -> Any:
    """Instance labels of a large output map, computed tile by tile and stitched.

    Each core is labelled with `margin` pixels of context. Where that context covers cores
    labelled before it, its objects take the ids of the objects there that they overlap with
    IoU >= `iou_thresh` (:func:`pixlearn.postprocess.stitching.merge_tile_labels`), so objects on tile
    borders come out as one label, neither cut nor duplicated. A final pass over the cores
    renumbers the labels ``1..n``. Memory: one tile plus one integer per object.

    Parameters
    ----------
    outputs : array-like of shape (M, N, K) or (P, M, N, K)
        Model outputs (probabilities, ...); may be lazy.
    instance_fn : callable
        Maps an outputs block to integer labels of its spatial shape (0 is background).
    out : array-like, optional
        Integer output of the spatial shape (default: a new uint32 array).
    core_shape, margin : int or sequence of int
        Core size and context per side.
    iou_thresh : float
        See :func:`pixlearn.postprocess.stitching.merge_tile_labels`.

    Returns
    -------
    labels : array-like, uint32

    Examples
    --------
    >>> outputs = np.zeros((6, 20, 1), np.float32); outputs[2:4, 3:17] = 1
    >>> labels = label_tiled(outputs, lambda o: (o[..., 0] > 0.5).astype(int), core_shape=5, margin=2)
    >>> np.unique(labels).tolist()
    [0, 1]
    """
    from pixlearn.postprocess.stitching import (
        apply_label_mapping,
        merge_tile_labels,
        resolve_equivalences,
    )

    spatial = tuple(int(s) for s in outputs.shape[:-1])
    ndim = len(spatial)
    if out is None:
        out = np.zeros(spatial, np.uint32)
    core_t = per_axis(core_shape, ndim, "core_shape")
    tiles = core_grid(spatial, core_t, margin)
    counts = [len(range(0, s, c)) for s, c in zip(spatial, core_t)]
    next_id = 1
    equivalences: list[tuple[int, int]] = []
    for tile in tiles:
        local = np.asarray(instance_fn(np.asarray(outputs[tile.region + (slice(None),)], np.float32)))
        index = tuple(c.start // k for c, k in zip(tile.core, core_t))
        earlier = _earlier_mask(tile, core_t, index, counts)
        written = np.where(earlier, np.asarray(out[tile.region]), 0) if earlier.any() else np.zeros(local.shape, np.uint32)
        merged = merge_tile_labels(written, local, earlier, next_id=next_id, iou_thresh=iou_thresh)
        next_id = merged.next_id
        equivalences.extend(merged.equivalences)
        out[tile.core] = merged.labels[tile.inner]
    lut = np.arange(next_id, dtype=np.int64)
    if equivalences:
        mapping = resolve_equivalences(equivalences)
        lut = apply_label_mapping(lut, mapping).astype(np.int64)
    present = np.zeros(next_id, bool)
    for tile in tiles:
        present[lut[np.unique(np.asarray(out[tile.core]))]] = True
    present[0] = False
    final = np.zeros(next_id, np.uint32)
    final[present] = np.arange(1, int(present.sum()) + 1, dtype=np.uint32)
    relabel = final[lut]
    for tile in tiles:
        out[tile.core] = relabel[np.asarray(out[tile.core]).astype(np.int64)]
    return out


def _earlier_mask(tile: Any, core_t: tuple[int, ...], index: tuple[int, ...], counts: list[int]) -> np.ndarray:
    """Pixels of the tile's region that belong to cores labelled before it (C order)."""
    grids = []
    for region, c, n in zip(tile.region, core_t, counts):
        grids.append(np.minimum(np.arange(region.start, region.stop) // c, n - 1))
    earlier = np.zeros(shape_of(tile.region), bool)
    equal = np.ones(shape_of(tile.region), bool)
    for d, (g, i) in enumerate(zip(grids, index)):
        shape = [1] * len(grids)
        shape[d] = len(g)
        g = g.reshape(shape)
        earlier |= equal & (g < i)
        equal &= g == i
    return earlier
