"""Instance targets, watershed post-processing, threshold tuning, and stitching across tiles."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from scipy import ndimage

import pixlearn.nets.targets
import pixlearn.postprocess.instances
import pixlearn.postprocess.stitching
from pixlearn.metrics import matching
from pixlearn.nets.targets import instance_targets
from pixlearn.postprocess.instances import InstanceThresholds, instances_from_outputs
from pixlearn.postprocess.labels import label_components
from pixlearn.postprocess.stitching import (
    apply_label_mapping,
    merge_tile_labels,
    resolve_equivalences,
)
from pixlearn.postprocess.tuning import tune_instance_thresholds
from pixlearn.predict import label_tiled  # the tiler that runs the merge protocol


def test_doctests() -> None:
    modules = (pixlearn.postprocess.instances, pixlearn.postprocess.stitching, pixlearn.nets.targets)
    results = [doctest.testmod(module) for module in modules]
    assert sum(r.attempted for r in results) >= 8 and all(r.failed == 0 for r in results)


def touching_nuclei(shape: tuple[int, ...], n: int, radius: float, seed: int) -> np.ndarray:
    """Discs/balls whose overlaps go to the nearest centre (Voronoi cells cut to the disc):
    touching, convex objects."""
    rng = np.random.default_rng(seed)
    centres = np.stack([rng.integers(0, s, n) for s in shape], axis=1)
    markers = np.zeros(shape, np.int32)
    markers[tuple(centres.T)] = np.arange(1, n + 1)
    dist, nearest = ndimage.distance_transform_edt(markers == 0, return_indices=True)
    labels = np.where(dist <= radius, markers[tuple(nearest)], 0)
    # keep the largest face-connected piece of each object (discretisation can split thin cells)
    out = np.zeros(shape, np.int32)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        pieces, k = ndimage.label(labels[box] == i)
        biggest = np.bincount(pieces.ravel())[1:].argmax() + 1
        out[box][pieces == biggest] = i
    return out


def _brute_distance(labels: np.ndarray, spacing=None) -> np.ndarray:
    """Normalised distance by definition: to the nearest pixel (of the image padded by one)
    that is not in the object."""
    spacing = np.ones(labels.ndim) if spacing is None else np.asarray(spacing, float)
    padded = np.pad(labels, 1)
    coords = np.indices(padded.shape).reshape(labels.ndim, -1).T * spacing
    flat = padded.ravel()
    out = np.zeros(padded.shape)
    for i in np.unique(labels)[1:]:
        inside, outside = coords[flat == i], coords[flat != i]
        d = np.sqrt(((inside[:, None, :] - outside[None, :, :]) ** 2).sum(-1)).min(1)
        out.ravel()[np.flatnonzero(flat == i)] = d / d.max()
    return out[(slice(1, -1),) * labels.ndim]


# ---------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("shape", "spacing"), [((14, 13), None), ((5, 9, 8), None), ((5, 9, 8), (2.5, 1.0, 0.7))]
)
def test_instance_targets_match_definition(shape, spacing) -> None:
    labels = touching_nuclei(shape, 4, 3.5, seed=5)
    labels[labels == 2] = 40  # ids need not be sequential
    targets = instance_targets(labels, spacing=spacing)
    assert targets.shape == shape + (2,) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 0], labels > 0)
    np.testing.assert_allclose(targets[..., 1], _brute_distance(labels, spacing), atol=1e-6)


def test_instance_targets_separate_touching_objects() -> None:
    labels = touching_nuclei((40, 40), 6, 7.0, seed=1)
    assert label_components(labels).max() < len(np.unique(labels)) - 1  # some really touch
    dist = instance_targets(labels)[..., 1]
    for i in np.unique(labels)[1:]:
        assert dist[labels == i].max() == pytest.approx(1.0)
    assert np.all(dist[labels == 0] == 0)
    # pixels next to another object are at the 1-pixel level, their object's lowest value
    below = np.pad(labels, 1, mode="edge")[2:, 1:-1]
    border = (labels > 0) & (below > 0) & (below != labels)
    assert border.any()
    np.testing.assert_allclose(dist[border], ndimage.minimum(dist, labels, labels[border]))
    assert np.all(dist[border] < 0.5)


def test_instance_targets_many_objects() -> None:
    labels = touching_nuclei((400, 400), 1200, 5.0, seed=2)
    targets = instance_targets(labels)
    n = len(np.unique(labels)) - 1
    assert n > 1000
    per_object_max = ndimage.maximum(targets[..., 1], labels, np.unique(labels)[1:])
    np.testing.assert_allclose(per_object_max, 1.0)


def test_instance_targets_empty_and_bad_input() -> None:
    assert not instance_targets(np.zeros((6, 6), np.uint8)).any()
    with pytest.raises(ValueError, match="integers"):
        instance_targets(np.zeros((6, 6), np.float32))
    with pytest.raises(ValueError, match="shape"):
        instance_targets(np.zeros((2, 3, 4, 5), int))
    with pytest.raises(ValueError, match="spacing"):
        instance_targets(np.zeros((6, 6), int), spacing=(1.0,))


# ---------------------------------------------------------------- post-processing


@pytest.mark.parametrize(("shape", "n", "radius"), [((64, 64), 12, 7.0), ((16, 48, 48), 12, 6.5)])
def test_round_trip_separates_touching_objects(shape, n, radius) -> None:
    labels = touching_nuclei(shape, n, radius, seed=3)
    n_objects = len(np.unique(labels)) - 1
    assert label_components(labels).max() < n_objects  # connected components would merge
    out = instances_from_outputs(instance_targets(labels))
    assert out.dtype == np.uint32 and out.shape == labels.shape
    m = matching(labels, out, 0.7)
    assert (m.tp, m.fp, m.fn) == (n_objects, 0, 0)
    # watershed lines may sit one pixel off where objects of different sizes touch
    assert m.mean_matched_iou > 0.95


def test_noisy_outputs_still_segment() -> None:
    rng = np.random.default_rng(4)
    labels = touching_nuclei((64, 64), 12, 7.0, seed=3)
    targets = instance_targets(labels)
    noisy = ndimage.gaussian_filter(targets, sigma=(1, 1, 0)) + rng.normal(0, 0.05, targets.shape)
    out = instances_from_outputs(noisy.astype(np.float32), InstanceThresholds(min_size=10))
    assert matching(labels, out, 0.5).accuracy >= 0.9


def test_unseeded_regions_are_kept_and_min_size() -> None:
    outputs = np.zeros((12, 12, 2), np.float32)
    outputs[1:5, 1:5, 0] = 0.9  # no distance at all: no seed, still an object
    outputs[8:10, 8:9, 0] = 0.9  # 2 pixels
    labels = instances_from_outputs(outputs)
    assert labels.max() == 2 and np.count_nonzero(labels == 1) == 16
    small_removed = instances_from_outputs(outputs, InstanceThresholds(min_size=3))
    assert small_removed.max() == 1 and np.count_nonzero(small_removed) == 16
    assert not instances_from_outputs(np.zeros((5, 5, 2), np.float32)).any()


def test_h_maxima_seeds() -> None:
    labels = touching_nuclei((16, 48, 48), 10, 6.0, seed=3)
    out = instances_from_outputs(
        instance_targets(labels), InstanceThresholds(seed_method="h_maxima", h=0.3)
    )
    assert matching(labels, out, 0.8).accuracy == 1.0


def test_thresholds_config_round_trip_and_validation() -> None:
    t = InstanceThresholds(prob_thresh=0.4, seed_thresh=0.7, min_size=5)
    assert InstanceThresholds.from_dict(t.to_dict()) == t
    for bad in ({"prob_thresh": 1.5}, {"min_size": -1}, {"seed_method": "peaks"}, {"h": 0.0}):
        with pytest.raises(ValueError):
            InstanceThresholds(**bad)
    with pytest.raises(ValueError, match="unknown"):
        InstanceThresholds.from_dict({"nms": 0.3})
    with pytest.raises(ValueError, match=r"\(M, N, 2\)"):
        instances_from_outputs(np.zeros((5, 5, 3), np.float32))


def test_tune_thresholds_finds_separating_seed_threshold() -> None:
    labels = [touching_nuclei((48, 48), 9, 6.5, seed=s) for s in (7, 8)]
    outputs = [instance_targets(y) for y in labels]
    # seeds at 0.1 flood touching objects together; 0.6 separates them
    grid = {"prob_thresh": (0.5,), "seed_thresh": (0.1, 0.6)}
    best, score = tune_instance_thresholds(outputs, labels, grid)
    assert best.seed_thresh == 0.6 and score == 1.0
    _, low = tune_instance_thresholds(outputs, labels, {"seed_thresh": (0.1,)})
    assert low < score
    with pytest.raises(ValueError, match="unknown threshold fields"):
        tune_instance_thresholds(outputs, labels, {"nms_thresh": (0.3,)})
    with pytest.raises(ValueError, match="label images"):
        tune_instance_thresholds(outputs, labels[:1])


def _with_slivers(labels: np.ndarray) -> np.ndarray:
    """Exact outputs plus foreground specks whose distance stays low (as a watershed's slivers)."""
    outputs = instance_targets(labels)
    background = np.argwhere(ndimage.binary_dilation(labels > 0, iterations=3) == 0)
    for y, x in background[:: max(1, len(background) // 12)][:12]:
        outputs[y, x] = (0.9, 0.2)
    return outputs


def test_min_peak_removes_low_distance_slivers_only() -> None:
    labels = touching_nuclei((64, 64), 8, 6.5, seed=5)
    outputs = _with_slivers(labels)
    kept = instances_from_outputs(outputs)
    cleaned = instances_from_outputs(outputs, InstanceThresholds(min_peak=0.5))
    assert kept.max() == labels.max() + 12
    assert matching(labels, cleaned, 0.9).accuracy == 1.0
    with pytest.raises(ValueError, match="min_peak"):
        InstanceThresholds(min_peak=1.5)


def test_default_tuning_grid_chooses_min_peak_against_slivers() -> None:
    labels = [touching_nuclei((64, 64), 8, 6.5, seed=s) for s in (5, 6)]
    outputs = [_with_slivers(y) for y in labels]
    best, score = tune_instance_thresholds(outputs, labels)
    assert best.min_peak > 0.2 and score == 1.0
    # a sequence of grids is searched grid by grid; the first best setting wins
    best2, _ = tune_instance_thresholds(outputs, labels, [{"seed_thresh": (0.6,)}, {"min_peak": (0.3, 0.5)}])
    assert best2.min_peak == 0.3


# ---------------------------------------------------------------- stitching


def _grid_boxes(shape, tile, overlap):
    """Overlapping tile boxes and a partition of the image into cores (halfway in overlaps)."""
    axes = []
    for size in shape:
        starts = list(range(0, max(size - tile, 0) + 1, tile - overlap))
        if starts[-1] + tile < size:
            starts.append(size - tile)
        boxes = [(s, min(s + tile, size)) for s in starts]
        cores = []
        for k, (s, e) in enumerate(boxes):
            lo = 0 if k == 0 else (s + boxes[k - 1][1]) // 2
            hi = size if k == len(boxes) - 1 else (boxes[k + 1][0] + e) // 2
            cores.append((lo, hi))
        axes.append(list(zip(boxes, cores)))
    for combo in itertools.product(*axes):
        box = tuple(slice(b[0], b[1]) for b, _ in combo)
        core = tuple(slice(c[0], c[1]) for _, c in combo)
        yield box, core


def _border_objects() -> np.ndarray:
    """Discs on the borders of 40-pixel tiles with 12 of overlap, at a 4-tile corner, and a
    long bar crossing three tiles."""
    labels = np.zeros((96, 100), np.int32)
    rr, cc = np.indices(labels.shape)
    centres = [(10, 28), (10, 34), (33, 33), (60, 56), (86, 62), (28, 62), (50, 8), (60, 90)]
    for i, (r, c) in enumerate(centres, start=1):
        labels[((rr - r) ** 2 + (cc - c) ** 2 <= 25) & (labels == 0)] = i
    labels[74:78, 4:90] = 20  # elongated, crosses several tile borders
    return labels


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def _shuffled_ids(seed: int):
    """An instance function that returns the ids of a label channel, shuffled anew per tile, as
    independent segmentations of the tiles would number them."""
    rng = np.random.default_rng(seed)

    def label(outputs: np.ndarray) -> np.ndarray:
        perm = np.concatenate([[0], rng.permutation(np.arange(1, 200)) + 1000])
        return perm[outputs[..., 0].astype(np.int64)]

    return label


def test_stitch_exact_tiles_gives_one_label_per_object() -> None:
    truth = _border_objects()
    out = label_tiled(truth[..., None].astype(np.float32), _shuffled_ids(0), core_shape=28, margin=6)
    assert out.dtype == np.uint32
    assert _same_partition(truth, out)
    assert len(np.unique(out)) == len(np.unique(truth))


def test_stitch_segmented_tiles_matches_whole_image_3d() -> None:
    truth = touching_nuclei((12, 60, 60), 20, 6.0, seed=9)
    targets = instance_targets(truth)
    whole = instances_from_outputs(targets)
    assert matching(truth, whole, 0.5).accuracy == 1.0
    out = label_tiled(targets, instances_from_outputs, core_shape=16, margin=6)
    m = matching(whole, out, 0.8)
    assert (m.tp, m.fp, m.fn) == (20, 0, 0)
    assert matching(truth, out, 0.5).accuracy == 1.0


def test_stitch_naive_tiling_would_cut_objects() -> None:
    """Control: pasting tile-local labels side by side cuts objects on the borders."""
    truth = _border_objects()
    boxes = list(_grid_boxes(truth.shape, 40, 12))
    naive = np.zeros_like(truth)
    for k, (box, core) in enumerate(boxes):
        inner = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(core, box))
        local = truth[box][inner]
        naive[core] = np.where(local > 0, local + 1000 * k, 0)
    assert matching(truth, naive, 0.9).accuracy < 0.6
    stitched = label_tiled(truth[..., None].astype(np.float32), lambda o: o[..., 0].astype(np.int64) * 7,
                           core_shape=28, margin=6)
    assert matching(truth, stitched, 0.9).accuracy == 1.0


def test_merge_tile_labels_drops_unmatched_objects_inside_written_part() -> None:
    region = np.array([[0, 4, 4, 0, 0, 0, 0]], np.uint32)
    written = np.array([[1, 1, 1, 1, 0, 0, 0]], bool)
    tile = np.array([[7, 3, 3, 3, 3, 0, 5]])  # 7: inside written part and unmatched
    result = merge_tile_labels(region, tile, written, next_id=10)
    # within the written part, 3 has 3 pixels, 4 has 2, both share 2 -> IoU 2/3 -> id 4
    assert result.labels.tolist() == [[0, 4, 4, 0, 4, 0, 10]]
    assert result.next_id == 11 and result.equivalences == ()
    strict = merge_tile_labels(region, tile, written, next_id=10, iou_thresh=0.9)
    assert strict.labels.tolist() == [[0, 4, 4, 0, 10, 0, 11]]
    with pytest.raises(ValueError, match="same shape"):
        merge_tile_labels(region, tile[:, :3], written, next_id=1)


def test_merge_equivalences_and_union_find() -> None:
    # an earlier pass gave one object two ids (2 and 6); a tile object covering both
    # halves matches both at a low threshold and reports them as one object
    region = np.array([[2, 2, 6, 6, 0, 0]], np.uint32)
    written = np.array([[1, 1, 1, 1, 0, 0]], bool)
    tile = np.array([[1, 1, 1, 1, 1, 0]])
    result = merge_tile_labels(region, tile, written, next_id=7, iou_thresh=0.3)
    assert {tuple(sorted(e)) for e in result.equivalences} == {(2, 6)}
    mapping = resolve_equivalences(result.equivalences)
    merged = apply_label_mapping(result.labels, mapping)
    assert len(np.unique(merged[merged > 0])) == 1
    assert resolve_equivalences([(3, 1), (4, 3), (9, 9)]) == {1: 1, 3: 1, 4: 1, 9: 9}


def test_stitch_into_zarr(tmp_path) -> None:
    from pixlearn.data.images import create_zarr

    truth = _border_objects()
    out = create_zarr(tmp_path / "labels.zarr", truth.shape, np.uint32, chunks=(32, 32))
    result = label_tiled(truth[..., None].astype(np.float32), _shuffled_ids(1), out, core_shape=28, margin=6)
    assert result is out and _same_partition(truth, np.asarray(out[...]))
