"""Instance segmentation: training targets, post-processing to labels, and stitching tiles.

The representation a network learns for the *instances* task has two channels, channel last:

0. foreground: 1 inside objects, 0 on background (trained as a probability);
1. distance: Euclidean distance from each object pixel to the nearest pixel outside that
   object, divided by the object's largest distance (so every object peaks at 1 whatever its
   size; touching objects dip to the 1-pixel level at their shared border).

:func:`instances_from_outputs` turns such outputs back into labels with a seeded watershed,
which separates touching objects; :func:`tune_instance_thresholds` picks its thresholds on
validation images. For images processed tile by tile, :func:`merge_tile_labels` gives each
tile's objects their global ids so that objects crossing tile borders come out as one label;
:func:`stitch_labels` is the whole loop, in memory or into a Zarr array.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from .config import Config
from .metrics import average_precision, matching_dataset
from .postprocess import LABEL_DTYPE, _compact_ids, relabel_sequential, remove_small_objects

logger = logging.getLogger(__name__)

N_OUTPUTS = 2


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def _check_label_image(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must have shape (M, N) or (P, M, N), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"instance labels must be integers, got dtype {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"instance labels hold negative value {int(labels.min())}")
    return labels


def _check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or min(spacing) <= 0:
        raise ValueError(f"spacing must be {ndim} positive numbers, got {spacing}")
    return spacing


def instance_targets(
    labels: np.ndarray, *, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """Training targets (foreground, normalised boundary distance) from instance labels.

    The distance of an object pixel is its Euclidean distance to the nearest pixel that is not
    in the same object (background, another object, or outside the image), divided by the
    largest such distance in that object. It is computed per object on its bounding box
    (:func:`scipy.ndimage.find_objects`), so the cost grows with the objects' total area, and
    thousands of objects take well under a second.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels: 0 background, one positive id per object (not necessarily sequential).
    spacing : sequence of float, optional
        Pixel size along each axis, e.g. ``(2.0, 0.5, 0.5)`` for planes four times farther
        apart than pixels within a plane. Default isotropic.

    Returns
    -------
    targets : ndarray of shape (M, N, 2) or (P, M, N, 2), float32
        Channel 0: foreground 0/1. Channel 1: distance in (0, 1] inside objects, 0 outside.

    Raises
    ------
    ValueError
        Wrong dimensionality, non-integer or negative labels, or bad spacing.

    Examples
    --------
    >>> y = np.zeros((5, 7), int); y[:, :3] = 1; y[:, 3:6] = 2      # two touching objects
    >>> t = instance_targets(y)
    >>> t.shape, t.dtype
    ((5, 7, 2), dtype('float32'))
    >>> t[2, :, 1].round(2).tolist()
    [0.5, 1.0, 0.5, 0.5, 1.0, 0.5, 0.0]
    """
    labels = _check_label_image(labels)
    spacing = _check_spacing(spacing, labels.ndim)
    targets = np.zeros(labels.shape + (N_OUTPUTS,), np.float32)
    targets[..., 0] = labels > 0
    if not targets[..., 0].any():
        return targets
    compact = relabel_sequential(labels)
    distance = targets[..., 1]
    for idx, box in enumerate(ndimage.find_objects(compact), start=1):
        if box is None:
            continue
        obj = compact[box] == idx
        # the bounding box plus a 1-pixel frame of "not this object" holds the nearest outside
        # pixel of every object pixel; the frame also makes the image border a boundary
        dist = ndimage.distance_transform_edt(np.pad(obj, 1), sampling=spacing)
        dist = dist[(slice(1, -1),) * labels.ndim][obj]
        distance[box][obj] = dist / dist.max()
    return targets


# --------------------------------------------------------------------------------------------
# outputs -> labels
# --------------------------------------------------------------------------------------------

SEED_METHODS: tuple[str, ...] = ("threshold", "h_maxima")


@dataclasses.dataclass(frozen=True)
class InstanceThresholds(Config):
    """Post-processing parameters of :func:`instances_from_outputs`, stored with the model.

    Parameters
    ----------
    prob_thresh : float
        Foreground is ``outputs[..., 0] > prob_thresh``.
    seed_thresh : float
        With ``seed_method="threshold"``: seeds are the connected regions of
        ``outputs[..., 1] > seed_thresh`` inside the foreground.
    min_size : int
        Objects with fewer pixels are removed.
    seed_method : {"threshold", "h_maxima"}
        ``"h_maxima"``: seeds are the regional maxima of the distance that rise at least `h`
        above their surroundings (:func:`skimage.morphology.h_maxima`); good for objects whose
        predicted distance peaks at different heights.
    h : float
        Height of the maxima for ``"h_maxima"``.
    min_peak : float
        Objects whose predicted distance never exceeds this are removed. A real object's
        normalised distance rises to about 1 at its centre; the slivers a watershed leaves at
        object borders and specks of noisy foreground peak low. A property of each object alone,
        so tiled prediction keeps or drops an object as whole-image prediction does.
    """

    prob_thresh: float = 0.5
    seed_thresh: float = 0.5
    min_size: int = 0
    seed_method: str = "threshold"
    h: float = 0.1
    min_peak: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prob_thresh", "seed_thresh", "min_peak"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if int(self.min_size) != self.min_size or self.min_size < 0:
            raise ValueError(f"min_size must be a non-negative integer, got {self.min_size}")
        if self.seed_method not in SEED_METHODS:
            raise ValueError(f"seed_method {self.seed_method!r} is not one of {SEED_METHODS}")
        if not self.h > 0:
            raise ValueError(f"h must be positive, got {self.h}")


def _check_outputs(outputs: np.ndarray) -> np.ndarray:
    outputs = np.asarray(outputs)
    if outputs.ndim not in (3, 4) or outputs.shape[-1] != N_OUTPUTS:
        raise ValueError(
            f"instance outputs must have shape (M, N, 2) or (P, M, N, 2), got {outputs.shape}"
        )
    if not np.issubdtype(outputs.dtype, np.floating):
        raise ValueError(f"instance outputs must be floats, got dtype {outputs.dtype}")
    return outputs


def instances_from_outputs(
    outputs: np.ndarray, thresholds: InstanceThresholds | None = None
) -> np.ndarray:
    """Instance labels from (foreground probability, distance) outputs by seeded watershed.

    Steps: foreground mask ``prob > prob_thresh``; seeds from the distance (see
    :class:`InstanceThresholds`), and each foreground region without a seed becomes a seed
    itself (so no object is lost); watershed on ``-distance`` from the seeds, restricted to
    the mask, which splits touching objects along the distance valleys between them; objects
    below ``min_size`` or whose distance peaks below ``min_peak`` removed; ids made
    sequential. Seeds are connected through corners (full connectivity), foreground regions
    and the watershed through faces only.

    Parameters
    ----------
    outputs : ndarray of shape (M, N, 2) or (P, M, N, 2), float
        As :func:`instance_targets` makes them (or a network predicts them).
    thresholds : InstanceThresholds, optional
        Default ``InstanceThresholds()``.

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), uint32
        0 background, objects ``1..n``.

    Raises
    ------
    ValueError
        Wrong shape or dtype.

    Examples
    --------
    >>> y = np.zeros((5, 7), int); y[:, :3] = 1; y[:, 3:6] = 2
    >>> instances_from_outputs(instance_targets(y))[2].tolist()
    [1, 1, 1, 2, 2, 2, 0]
    """
    outputs = _check_outputs(outputs)
    thresholds = InstanceThresholds() if thresholds is None else thresholds
    labels = _watershed(outputs, thresholds)
    return _filter_objects(labels, outputs[..., 1], thresholds)


def _watershed(outputs: np.ndarray, thresholds: InstanceThresholds) -> np.ndarray:
    """Seeded watershed of :func:`instances_from_outputs`, before any object is removed."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    probability, distance = outputs[..., 0], outputs[..., 1]
    mask = probability > thresholds.prob_thresh
    if not mask.any():
        return np.zeros(mask.shape, LABEL_DTYPE)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    # seeds connect through corners too: a convex object's discrete distance plateau can
    # touch only diagonally, and seeds of two objects are always apart by their low borders
    full = ndimage.generate_binary_structure(mask.ndim, mask.ndim)
    inside = np.where(mask, distance, 0).astype(np.float64)
    if thresholds.seed_method == "threshold":
        seed_mask = mask & (distance > thresholds.seed_thresh)
    else:
        seed_mask = mask & (h_maxima(inside, thresholds.h, footprint=structure) > 0)
    seeds, n_seeds = ndimage.label(seed_mask, structure=full)
    regions, n_regions = ndimage.label(mask, structure=structure)
    seeded = np.zeros(n_regions + 1, bool)
    seeded[regions[seeds > 0]] = True
    seeded[0] = True
    unseeded = ~seeded[regions]
    if unseeded.any():
        # a region without a seed is one object: give it ids after the seeds'
        seeds = np.where(unseeded, regions + n_seeds, seeds)
    return watershed(-inside, markers=seeds, mask=mask, connectivity=1)


def _filter_objects(labels: np.ndarray, distance: np.ndarray, thresholds: InstanceThresholds) -> np.ndarray:
    """Remove the objects below ``min_size`` or ``min_peak``; sequential uint32 ids."""
    if thresholds.min_size > 1:
        labels = remove_small_objects(labels, thresholds.min_size)
    if thresholds.min_peak > 0 and labels.any():
        high = np.zeros(int(labels.max()) + 1, bool)
        high[labels[distance >= thresholds.min_peak]] = True
        labels = np.where(high[labels], labels, 0)
    return relabel_sequential(labels)


DEFAULT_TUNING_GRID: tuple[dict[str, tuple[Any, ...]], ...] = (
    {"prob_thresh": (0.5, 0.6), "seed_method": ("threshold",), "seed_thresh": (0.5, 0.6, 0.7),
     "min_peak": (0.0, 0.3, 0.5, 0.6)},
    {"prob_thresh": (0.5, 0.6), "seed_method": ("h_maxima",), "h": (0.1, 0.15, 0.2),
     "min_peak": (0.0, 0.3, 0.5, 0.6)},
)
"""The settings :func:`tune_instance_thresholds` tries by default: both seed methods, each with
its own parameter, times the foreground and peak thresholds (48 settings, 12 watersheds)."""

_FILTER_FIELDS = ("min_size", "min_peak")


def tune_instance_thresholds(
    outputs_list: Sequence[np.ndarray],
    labels_list: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]] | None = None,
    *,
    base: InstanceThresholds | None = None,
    iou_thresholds: Sequence[float] = (0.5,),
) -> tuple[InstanceThresholds, float]:
    """Grid-search the post-processing thresholds that best segment validation images.

    The score of a setting is the matching accuracy ``tp/(tp+fp+fn)`` with counts summed over
    all images (:func:`pixlearn.metrics.matching_dataset`), averaged over `iou_thresholds`;
    by default that is the accuracy at IoU 0.5 alone (the DSB2018/StarDist "AP50"). Pass
    ``pixlearn.metrics.DEFAULT_IOU_THRESHOLDS`` to average over IoU 0.5..0.95 instead.

    Parameters
    ----------
    outputs_list : sequence of ndarray of shape (M, N, 2) or (P, M, N, 2), float
        Network outputs on the validation images.
    labels_list : sequence of ndarray of shape (M, N) or (P, M, N), integer
        Their true instance labels.
    grid : mapping of str to sequence, or a sequence of such mappings, optional
        Values to try per field of :class:`InstanceThresholds`; every combination is tried
        (of each mapping in turn, for a sequence). Default :data:`DEFAULT_TUNING_GRID`. The
        watershed runs once per setting of the other fields; ``min_size`` and ``min_peak``
        only filter its objects.
    base : InstanceThresholds, optional
        Values of the fields not in `grid`. Default ``InstanceThresholds()``.
    iou_thresholds : sequence of float
        IoU thresholds the score averages over.

    Returns
    -------
    best : InstanceThresholds
        The first best setting in grid order.
    score : float
        Its score.

    Raises
    ------
    ValueError
        Empty or unequal lists, unknown fields in `grid`, or an empty grid axis.

    Examples
    --------
    >>> y = np.zeros((8, 12), int); y[2:6, 1:6] = 1; y[2:6, 6:11] = 2
    >>> best, score = tune_instance_thresholds([instance_targets(y)], [y],
    ...                                         {"seed_thresh": (0.2, 0.6)})
    >>> best.seed_thresh, score
    (0.6, 1.0)
    """
    if len(outputs_list) != len(labels_list):
        raise ValueError(f"{len(outputs_list)} outputs but {len(labels_list)} label images")
    if not outputs_list:
        raise ValueError("no validation images to tune on")
    grids = [dict(g) for g in (DEFAULT_TUNING_GRID if grid is None else [grid] if isinstance(grid, Mapping) else grid)]
    base = InstanceThresholds() if base is None else base
    known = {f.name for f in dataclasses.fields(InstanceThresholds)}
    unknown = sorted(set().union(*grids) - known)
    if unknown:
        raise ValueError(f"unknown threshold fields {unknown}; known: {sorted(known)}")
    if not grids or any(len(values) == 0 for g in grids for values in g.values()):
        raise ValueError("every grid field needs at least one value")
    outputs_list = [_check_outputs(o) for o in outputs_list]
    best: tuple[float, InstanceThresholds] | None = None
    for g in grids:
        segment = [n for n in g if n not in _FILTER_FIELDS]
        filters = [n for n in g if n in _FILTER_FIELDS]
        for values in itertools.product(*(g[n] for n in segment)):
            setting = base.replace(**dict(zip(segment, values)))
            raw = [_watershed(o, setting) for o in outputs_list]
            for filter_values in itertools.product(*(g[n] for n in filters)):
                candidate = setting.replace(**dict(zip(filters, filter_values)))
                predictions = [_filter_objects(r, o[..., 1], candidate) for r, o in zip(raw, outputs_list)]
                score = average_precision(matching_dataset(labels_list, predictions, iou_thresholds))
                logger.debug("thresholds %s: score %.4f", candidate.to_dict(), score)
                if best is None or score > best[0]:
                    best = (score, candidate)
    assert best is not None  # the grid is never empty here
    return best[1], float(best[0])


# --------------------------------------------------------------------------------------------
# stitching tiles
# --------------------------------------------------------------------------------------------


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
    Ids are unique but not sequential: call :func:`pixlearn.postprocess.relabel_sequential`
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
    next_id = int(next_id)
    if next_id < 1:
        raise ValueError(f"next_id must be >= 1, got {next_id}")
    iou_thresh = float(iou_thresh)
    if not 0.0 < iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in (0, 1], got {iou_thresh}")

    tile_ids, tile_inv = _compact_ids(tile)  # tile_ids[0] == 0
    n_tile = len(tile_ids)
    new_id = np.zeros(n_tile, np.int64)
    equivalences: list[tuple[int, int]] = []

    t_in = tile_inv[written.ravel()]
    if t_in.size:
        g_ids, g_in = _compact_ids(region[written])
        both = (t_in > 0) & (g_in > 0)
        key = t_in[both] * len(g_ids) + g_in[both]
        pairs, inter = np.unique(key, return_counts=True)
        ti, gi = np.divmod(pairs, len(g_ids))
        area_t = np.bincount(t_in, minlength=n_tile)
        area_g = np.bincount(g_in, minlength=len(g_ids))
        iou = inter / (area_t[ti] + area_g[gi] - inter)
        ok = iou >= iou_thresh
        ti, gi, iou = ti[ok], gi[ok], iou[ok]
        # best match first; other matches of the same tile object are equivalences
        order = np.lexsort((-iou, ti))
        ti, gi = ti[order], gi[order]
        first = np.ones(len(ti), bool)
        first[1:] = ti[1:] != ti[:-1]
        new_id[ti[first]] = g_ids[gi[first]]
        for t, g in zip(ti[~first], gi[~first]):
            equivalences.append((int(new_id[t]), int(g_ids[g])))

    # unmatched objects with pixels outside the written part get new ids, in tile-id order
    outside = np.bincount(tile_inv[~written.ravel()], minlength=n_tile) > 0
    fresh = (new_id == 0) & outside
    fresh[0] = False
    n_fresh = int(fresh.sum())
    new_id[fresh] = np.arange(next_id, next_id + n_fresh)
    if next_id + n_fresh - 1 > np.iinfo(LABEL_DTYPE).max:
        raise ValueError("global ids overflow uint32")
    labels = new_id[tile_inv].reshape(tile.shape).astype(LABEL_DTYPE)
    labels[written] = region[written]
    return TileMerge(labels, next_id + n_fresh, tuple(equivalences))


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


class _BoxList:
    """Boxes written so far, as growing arrays, for vectorised overlap look-ups."""

    def __init__(self, ndim: int) -> None:
        self.lo = np.zeros((64, ndim), np.int64)
        self.hi = np.zeros((64, ndim), np.int64)
        self.n = 0

    def add(self, box: tuple[slice, ...]) -> None:
        if self.n == len(self.lo):
            self.lo = np.concatenate([self.lo, np.zeros_like(self.lo)])
            self.hi = np.concatenate([self.hi, np.zeros_like(self.hi)])
        self.lo[self.n] = [s.start for s in box]
        self.hi[self.n] = [s.stop for s in box]
        self.n += 1

    def boxes(self) -> list[tuple[slice, ...]]:
        return [tuple(slice(a, b) for a, b in zip(lo, hi)) for lo, hi in
                zip(self.lo[: self.n].tolist(), self.hi[: self.n].tolist())]

    def mask(self, box: tuple[slice, ...]) -> np.ndarray:
        """Mask, in the frame of `box`, of the parts covered by the boxes so far."""
        b_lo = np.array([s.start for s in box])
        b_hi = np.array([s.stop for s in box])
        lo = np.maximum(self.lo[: self.n], b_lo) - b_lo
        hi = np.minimum(self.hi[: self.n], b_hi) - b_lo
        hit = np.flatnonzero(np.all(hi > lo, axis=1))
        mask = np.zeros(tuple(b_hi - b_lo), bool)
        for i in hit:
            mask[tuple(slice(a, b) for a, b in zip(lo[i], hi[i]))] = True
        return mask


def _norm_box(box: Sequence[slice], shape: Sequence[int]) -> tuple[slice, ...]:
    if len(box) != len(shape):
        raise ValueError(f"box {box} does not have {len(shape)} axes")
    out = []
    for s, n in zip(box, shape):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(f"box {box} must be non-empty slices with step 1")
        out.append(slice(start, stop))
    return tuple(out)


def stitch_labels(
    tiles: Iterable[tuple[Any, ...]],
    shape: Sequence[int],
    *,
    iou_thresh: float = 0.5,
    out: Any = None,
) -> Any:
    """Assemble one instance label image from overlapping, separately segmented tiles.

    Runs the protocol of :func:`merge_tile_labels`. Memory beyond `out` is one tile: written
    regions are tracked as a list of boxes, not as a full-size mask, so `out` may be an
    on-disk Zarr array.

    Parameters
    ----------
    tiles : iterable of (box, labels) or (box, labels, core)
        ``box``: tuple of slices, the tile's place in the image; ``labels``: its segmentation,
        shape of the box, tile-local ids. ``core`` (optional): tuple of slices inside ``box``,
        in image coordinates, the only part written (cores should partition the image);
        default the whole box.
    shape : sequence of int
        Shape of the image, (M, N) or (P, M, N).
    iou_thresh : float
        See :func:`merge_tile_labels`.
    out : array-like, optional
        Where to write (any array supporting slicing, e.g. a ``zarr.Array`` of uint32 zeros).
        Default a new in-memory uint32 array.

    Returns
    -------
    labels : array-like of shape `shape`
        `out`, filled: unique ids per object, not necessarily sequential.

    Raises
    ------
    ValueError
        A box that does not fit `shape`, labels of the wrong shape, or a core outside its box.

    Examples
    --------
    >>> truth = np.zeros((4, 10), int); truth[1:3, 3:7] = 1   # crosses the tile border
    >>> tiles = [((slice(0, 4), slice(0, 6)), truth[:, :6] * 3),
    ...          ((slice(0, 4), slice(4, 10)), truth[:, 4:] * 8)]
    >>> stitch_labels(tiles, truth.shape)[1].tolist()
    [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    """
    shape = tuple(int(s) for s in shape)
    if out is None:
        out = np.zeros(shape, LABEL_DTYPE)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    written = _BoxList(len(shape))
    equivalences: list[tuple[int, int]] = []
    next_id = 1
    for item in tiles:
        if len(item) not in (2, 3):
            raise ValueError("each tile must be (box, labels) or (box, labels, core)")
        box = _norm_box(item[0], shape)
        tile = np.asarray(item[1])
        box_shape = tuple(s.stop - s.start for s in box)
        if tile.shape != box_shape:
            raise ValueError(f"tile labels have shape {tile.shape} but box {box} is {box_shape}")
        core = box if len(item) == 2 or item[2] is None else _norm_box(item[2], shape)
        if any(c.start < b.start or c.stop > b.stop for c, b in zip(core, box)):
            raise ValueError(f"core {core} lies outside its box {box}")
        overlap = written.mask(box)
        region = np.asarray(out[box])
        result = merge_tile_labels(
            region, tile, overlap, next_id=next_id, iou_thresh=iou_thresh
        )
        next_id = result.next_id
        equivalences.extend(result.equivalences)
        local = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(core, box))
        out[core] = result.labels[local]
        written.add(core)
    if equivalences:
        mapping = resolve_equivalences(equivalences)
        logger.debug("merging %d equivalent ids across tiles", len(mapping))
        for core in written.boxes():
            out[core] = apply_label_mapping(np.asarray(out[core]), mapping)
    return out


__all__ = [
    "DEFAULT_TUNING_GRID",
    "InstanceThresholds",
    "TileMerge",
    "apply_label_mapping",
    "instance_targets",
    "instances_from_outputs",
    "merge_tile_labels",
    "resolve_equivalences",
    "stitch_labels",
    "tune_instance_thresholds",
]
