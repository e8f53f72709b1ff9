"""Merging instance labels across tile borders: equivalences and relabelling.

:func:`merge_tile_labels` gives one tile's objects global ids; :func:`resolve_equivalences` and
:func:`apply_label_mapping` merge ids found to be one object. A tiler runs the loop
(:func:`pixlearn.predict.label_tiled` does, in memory or into a Zarr array).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

from pixlearn.postprocess.labels import LABEL_DTYPE, compact_ids


@dataclasses.dataclass(frozen=True)
class TileMerge:
    """What :func:`merge_tile_labels` returns.

    Attributes
    ----------
    labels : ndarray, uint32
        The tile in global ids: equal to the global labels where the overlap mask is set, the
        tile's own objects (matched or new ids) elsewhere.
    next_id : int
        First id not used yet; pass it to the next call.
    equivalences : tuple of (int, int)
        Pairs of global ids found to be one object (only possible with ``iou_thresh <= 0.5``);
        resolve them at the end with :func:`resolve_equivalences`.
    """

    labels: np.ndarray
    next_id: int
    equivalences: tuple[tuple[int, int], ...]


def merge_tile_labels(
    global_region: np.ndarray,
    tile_labels: np.ndarray,
    overlap_mask: np.ndarray,
    *,
    next_id: int,
    iou_thresh: float = 0.5,
) -> TileMerge:
    """Give a tile's objects global ids, reusing the id of an object already written.

    Protocol for a tiler that assembles one label image from overlapping tiles, processed one
    after the other (any order):

    1. Keep a global label image (zeros, uint32), a record of which pixels have been written,
       and ``next_id = 1``.
    2. For each tile with box ``box`` (a tuple of slices): segment it into ``tile_labels``
       (tile-local ids, e.g. from :func:`instances_from_outputs`), then call
       ``merge_tile_labels(global[box], tile_labels, written[box], next_id=next_id)``.
    3. Write ``result.labels`` into ``global[box]`` (only where ``written[box]`` is False, or
       the whole box: both are the same, since ``result.labels`` equals ``global[box]``
       where already written); mark the written pixels; ``next_id = result.next_id``.
       A tiler may instead write only the tile's *core* (a partition of the image into
       disjoint regions, one per tile, each inside its tile), which keeps every pixel from the
       tile that saw it with most context; it then marks only the core as written.
    4. At the end, if any ``result.equivalences`` were returned, relabel with
       :func:`resolve_equivalences` and :func:`apply_label_mapping`.

    A tile object matches a written object when their IoU *within the already-written part of
    the tile* is at least `iou_thresh`; it then takes that object's id, so an object crossing
    the border comes out as one label, neither cut nor duplicated. An unmatched object that has
    pixels outside the written part gets a new id; one lying wholly inside the written part is
    dropped (that area has its final labels already). The overlap between tiles must be wider
    than the boundary effects of the segmentation, and objects should not be larger than a tile.
    Ids are unique but not sequential: call :func:`pixlearn.postprocess.labels.relabel_sequential`
    afterwards if needed.

    Parameters
    ----------
    global_region : ndarray of shape (M, N) or (P, M, N), integer
        Current global labels inside the tile's box.
    tile_labels : ndarray, same shape, integer
        The tile's own segmentation (any ids; 0 background).
    overlap_mask : ndarray, same shape, bool
        True where the global labels have already been written.
    next_id : int
        First unused global id (>= 1).
    iou_thresh : float
        Smallest IoU, in (0, 1], for a tile object to take an existing id.

    Returns
    -------
    result : TileMerge

    Raises
    ------
    ValueError
        Different shapes, bad labels, or bad `next_id` / `iou_thresh`.

    Examples
    --------
    >>> glob = np.array([[0, 5, 5, 0, 0, 0]])      # columns 0..2 written by an earlier tile
    >>> written = np.array([[1, 1, 1, 0, 0, 0]], bool)
    >>> tile = np.array([[0, 1, 1, 1, 0, 2]])      # object 1 continues object 5
    >>> r = merge_tile_labels(glob, tile, written, next_id=6)
    >>> r.labels.tolist(), r.next_id
    ([[0, 5, 5, 5, 0, 6]], 7)
    """
    region, tile, written = _check_merge_inputs(global_region, tile_labels, overlap_mask)
    next_id = int(next_id)
    if next_id < 1:
        raise ValueError(f"next_id must be >= 1, got {next_id}")
    iou_thresh = float(iou_thresh)
    if not 0.0 < iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in (0, 1], got {iou_thresh}")
    tile_ids, tile_inv = compact_ids(tile)  # tile_ids[0] == 0
    new_id, equivalences = _match_written(region, written, tile_inv, len(tile_ids), iou_thresh)
    n_fresh = _number_fresh(new_id, tile_inv, written, next_id)
    labels = new_id[tile_inv].reshape(tile.shape).astype(LABEL_DTYPE)
    labels[written] = region[written]
    return TileMerge(labels, next_id + n_fresh, tuple(equivalences))


def _check_merge_inputs(global_region: np.ndarray, tile_labels: np.ndarray,
                        overlap_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays of :func:`merge_tile_labels`, checked: one shape, non-negative integer labels."""
    region = np.asarray(global_region)
    tile = np.asarray(tile_labels)
    written = np.asarray(overlap_mask, dtype=bool)
    if not (region.shape == tile.shape == written.shape):
        raise ValueError(
            f"global region {region.shape}, tile labels {tile.shape} and overlap mask "
            f"{written.shape} must have the same shape"
        )
    for name, arr in (("global region", region), ("tile labels", tile)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
        if arr.size and int(arr.min()) < 0:
            raise ValueError(f"{name} holds negative label {int(arr.min())}")
    return region, tile, written


def _match_written(region: np.ndarray, written: np.ndarray, tile_inv: np.ndarray, n_tile: int,
                   iou_thresh: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Global id per compact tile id (0: unmatched) from the IoU within the written part.

    A tile object takes the id of its best match; its other matches are equivalences.
    """
    new_id = np.zeros(n_tile, np.int64)
    equivalences: list[tuple[int, int]] = []
    t_in = tile_inv[written.ravel()]
    if not t_in.size:
        return new_id, equivalences
    g_ids, g_in = compact_ids(region[written])
    both = (t_in > 0) & (g_in > 0)
    key = t_in[both] * len(g_ids) + g_in[both]
    pairs, inter = np.unique(key, return_counts=True)
    ti, gi = np.divmod(pairs, len(g_ids))
    area_t = np.bincount(t_in, minlength=n_tile)
    area_g = np.bincount(g_in, minlength=len(g_ids))
    iou = inter / (area_t[ti] + area_g[gi] - inter)
    ok = iou >= iou_thresh
    ti, gi, iou = ti[ok], gi[ok], iou[ok]
    order = np.lexsort((-iou, ti))  # best match first
    ti, gi = ti[order], gi[order]
    first = np.ones(len(ti), bool)
    first[1:] = ti[1:] != ti[:-1]
    new_id[ti[first]] = g_ids[gi[first]]
    for t, g in zip(ti[~first], gi[~first]):
        equivalences.append((int(new_id[t]), int(g_ids[g])))
    return new_id, equivalences


def _number_fresh(new_id: np.ndarray, tile_inv: np.ndarray, written: np.ndarray, next_id: int) -> int:
    """Give new ids from `next_id` (in tile-id order, in place) to the unmatched objects with
    pixels outside the written part; returns how many."""
    outside = np.bincount(tile_inv[~written.ravel()], minlength=len(new_id)) > 0
    fresh = (new_id == 0) & outside
    fresh[0] = False
    n_fresh = int(fresh.sum())
    if next_id + n_fresh - 1 > np.iinfo(LABEL_DTYPE).max:
        raise ValueError("global ids overflow uint32")
    new_id[fresh] = np.arange(next_id, next_id + n_fresh)
    return n_fresh


def resolve_equivalences(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Union-find over id pairs: map every id in `pairs` to its group's smallest id.

    Parameters
    ----------
    pairs : iterable of (int, int)
        Ids that belong to one object.

    Returns
    -------
    mapping : dict of int to int
        Every id seen, including representatives (which map to themselves).

    Examples
    --------
    >>> resolve_equivalences([(5, 9), (9, 2), (7, 8)])
    {2: 2, 5: 2, 7: 7, 8: 7, 9: 2}
    """
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        parent.setdefault(a, a)
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {a: find(a) for a in sorted(parent)}


def apply_label_mapping(labels: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Replace ids by ``mapping[id]``; ids not in `mapping` are kept.

    Parameters
    ----------
    labels : ndarray, integer
    mapping : mapping of int to int

    Returns
    -------
    relabelled : ndarray, same shape and dtype

    Examples
    --------
    >>> apply_label_mapping(np.array([0, 5, 9, 3]), {5: 2, 9: 2}).tolist()
    [0, 2, 2, 3]
    """
    labels = np.asarray(labels)
    if not mapping:
        return labels.copy()
    keys = np.array(sorted(mapping), dtype=np.int64)
    values = np.array([mapping[k] for k in sorted(mapping)], dtype=np.int64)
    flat = labels.ravel().astype(np.int64)
    pos = np.clip(np.searchsorted(keys, flat), 0, len(keys) - 1)
    hit = keys[pos] == flat
    out = np.where(hit, values[pos], flat)
    return out.reshape(labels.shape).astype(labels.dtype)
