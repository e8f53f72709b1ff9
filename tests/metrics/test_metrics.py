"""Metrics: known values, perfect self-agreement, empty cases, and a brute-force cross-check."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pixlearn.metrics import (
    DEFAULT_IOU_THRESHOLDS,
    aggregate_matchings,
    average_precision,
    confusion_matrix,
    dice,
    iou,
    matching,
    matching_dataset,
    nrmse,
    pixel_accuracy,
    psnr,
    semantic_scores,
    ssim,
)
from pixlearn.metrics import instance as instance_metrics
from pixlearn.metrics import restoration as restoration_metrics
from pixlearn.metrics import semantic as semantic_metrics


def test_doctests() -> None:
    # doctest only collects objects defined in the module it is given, so the package's
    # re-exports are tested where they are defined, and the counts are pooled
    parts = [
        doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        for module in (semantic_metrics, instance_metrics, restoration_metrics)
    ]
    result = doctest.TestResults(sum(r.failed for r in parts), sum(r.attempted for r in parts))
    assert result.attempted > 10 and result.failed == 0


# ---------------------------------------------------------------- semantic


def test_confusion_matrix_counts_and_ignore() -> None:
    y_true = np.array([[0, 0, 1], [1, 2, -1]])
    y_pred = np.array([[0, 1, 1], [2, 2, 0]])
    m = confusion_matrix(y_true, y_pred, 3, ignore=-1)
    assert m.dtype == np.int64
    assert m.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m.sum() == 5


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        (np.array([0, 3]), np.array([0, 1]), "y_true holds value 3"),
        (np.array([0, 1]), np.array([0, -2]), "y_pred holds value -2"),
        (np.zeros((2, 2), int), np.zeros((2, 3), int), "shape"),
        (np.zeros(3), np.zeros(3, int), "integers"),
    ],
)
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, match) -> None:
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, 3)


def test_iou_dice_known_values() -> None:
    y_true = np.array([[0, 0, 1, 1]])
    y_pred = np.array([[0, 1, 1, 1]])
    np.testing.assert_allclose(iou(y_true, y_pred), [1 / 2, 2 / 3])
    np.testing.assert_allclose(dice(y_true, y_pred), [2 / 3, 4 / 5])
    assert pixel_accuracy(y_true, y_pred) == 0.75


def test_absent_class_is_nan_and_none_in_dict() -> None:
    y = np.array([[0, 0], [2, 2]])
    scores = semantic_scores(y, y, n_classes=4)
    assert np.isnan(scores.iou[1]) and np.isnan(scores.iou[3])
    assert scores.mean_iou == 1.0 and scores.mean_dice == 1.0 and scores.pixel_accuracy == 1.0
    d = scores.to_dict()
    assert d["iou"] == [1.0, None, 1.0, None]
    assert d["confusion"] == [[2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    json.dumps(d, allow_nan=False)


def test_by_class_names_the_scores_and_refuses_wrong_names() -> None:
    # a thin band of class 1 predicted one pixel too wide on one side: IoU 2/3, Dice 4/5
    truth = np.zeros((6, 6), np.int64)
    truth[:, 2:4] = 1
    pred = np.zeros_like(truth)
    pred[:, 2:5] = 1
    scores = semantic_scores(truth, pred, n_classes=3)
    named = scores.by_class(["cell", "membrane", "synapse"])
    assert named["membrane"]["iou"] == pytest.approx(2 / 3) and named["membrane"]["dice"] == pytest.approx(0.8)
    assert named["cell"]["iou"] == pytest.approx(18 / 24)
    assert named["synapse"] == {"iou": None, "dice": None}  # absent from both: undefined, JSON-safe
    json.dumps(named, allow_nan=False)
    with pytest.raises(ValueError, match="3 classes"):
        scores.by_class(["cell", "membrane"])
    with pytest.raises(ValueError, match="distinct"):
        scores.by_class(["cell", "cell", "synapse"])


def test_semantic_self_is_perfect_3d() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=(4, 9, 7))
    s = semantic_scores(y, y)
    assert s.n_classes == 3 and s.n_pixels == y.size
    assert s.iou == (1.0, 1.0, 1.0) and s.dice == (1.0, 1.0, 1.0)


# ---------------------------------------------------------------- instances


def _discs(shape: tuple[int, int], centres, radius: float) -> np.ndarray:
    rr, cc = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for i, (r, c) in enumerate(centres, start=1):
        labels[(rr - r) ** 2 + (cc - c) ** 2 <= radius**2] = i
    return labels


def test_matching_shifted_discs_known_iou() -> None:
    """StarDist's test idea: shift well-separated discs by np.roll and compare to the IoU of
    one disc with its shifted copy computed directly from the masks."""
    y = _discs((64, 64), [(12, 12), (12, 44), (44, 20), (46, 50)], radius=7)
    for shift in (1, 2, 4, 6, 9):
        y_pred = np.roll(y, shift, axis=1)
        disc = y == 1
        moved = np.roll(disc, shift, axis=1)
        expected = (disc & moved).sum() / (disc | moved).sum()
        below = matching(y, y_pred, expected - 1e-6)
        above = matching(y, y_pred, min(1.0, expected + 1e-6))
        assert (below.tp, below.fp, below.fn) == (4, 0, 0)
        np.testing.assert_allclose(below.mean_matched_iou, expected, rtol=1e-12)
        np.testing.assert_allclose(below.panoptic_quality, expected, rtol=1e-12)
        assert (above.tp, above.fp, above.fn) == (0, 4, 4)
        assert above.accuracy == 0.0 and above.panoptic_quality == 0.0


def test_matching_self_is_perfect_2d_and_3d() -> None:
    rng = np.random.default_rng(3)
    y2 = _discs((40, 40), rng.integers(5, 35, size=(6, 2)), 4)
    y3 = np.stack([y2, y2, np.roll(y2, 1, 0)])
    for y in (y2, y3):
        for thresh in (0.5, 0.95, 1.0):
            m = matching(y, y, thresh)
            assert m.fp == 0 and m.fn == 0 and m.tp == len(np.unique(y)) - 1
            assert m.precision == m.recall == m.f1 == m.accuracy == m.panoptic_quality == 1.0


def test_matching_ignores_id_values_and_handles_huge_ids() -> None:
    y = _discs((30, 30), [(8, 8), (20, 20)], 4)
    relabelled = np.where(y == 1, 2**40, np.where(y == 2, 7, 0)).astype(np.uint64)
    m = matching(y, relabelled, 0.9)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)


def test_matching_empty_cases() -> None:
    empty = np.zeros((10, 10), np.uint16)
    y = _discs((10, 10), [(3, 3), (7, 7)], 1.5)
    both = matching(empty, empty)
    assert (both.tp, both.fp, both.fn) == (0, 0, 0)
    assert both.accuracy == both.f1 == both.precision == both.recall == 1.0
    no_pred = matching(y, empty)
    assert (no_pred.tp, no_pred.fp, no_pred.fn) == (0, 0, 2)
    assert no_pred.recall == 0.0 and no_pred.accuracy == 0.0 and no_pred.precision == 0.0
    no_true = matching(empty, y)
    assert (no_true.fp, no_true.n_pred) == (2, 2) and no_true.f1 == 0.0


def test_matching_result_is_json_safe() -> None:
    y = _discs((20, 20), [(6, 6), (14, 14)], 3)
    d = matching(y, np.roll(y, 1, 0)).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert all(type(v) in (int, float) for v in json.loads(text).values())


def test_matching_partial_detection_counts() -> None:
    y = _discs((40, 40), [(8, 8), (8, 30), (30, 8), (30, 30)], 5)
    y_pred = np.where(y == 4, 0, y)  # one object missed
    y_pred[0:3, 15:20] = 9  # one spurious object
    m = matching(y, y_pred)
    assert (m.tp, m.fp, m.fn) == (3, 1, 1)
    assert m.precision == 0.75 and m.recall == 0.75 and m.accuracy == 3 / 5
    np.testing.assert_allclose(m.panoptic_quality, 3 / (3 + 1))


def _voronoi_labels(shape, n, seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int32)
    seeds.flat[rng.choice(np.prod(shape), n, replace=False)] = np.arange(1, n + 1)
    _, (ir, ic) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[ir, ic]
    labels[rng.random(shape) < 0.1] = 0
    return labels


def _dense_optimum(y_true, y_pred, thresh):
    t_ids, p_ids = np.unique(y_true)[1:], np.unique(y_pred)[1:]
    m = np.zeros((len(t_ids), len(p_ids)))
    for i, a in enumerate(t_ids):
        for j, b in enumerate(p_ids):
            inter = np.sum((y_true == a) & (y_pred == b))
            m[i, j] = inter / np.sum((y_true == a) | (y_pred == b))
    m[m < thresh] = 0
    n = min(m.shape)
    rows, cols = linear_sum_assignment(-((m >= thresh) + m / (2 * n)))
    ok = m[rows, cols] >= thresh
    return int(ok.sum()), float(m[rows, cols][ok].sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matching_equals_dense_hungarian_at_low_thresholds(seed: int) -> None:
    y_true = _voronoi_labels((24, 24), 12, seed)
    y_pred = _voronoi_labels((24, 24), 15, seed + 50)
    for thresh in (0.1, 0.25, 0.5):
        m = matching(y_true, y_pred, thresh)
        tp, total = _dense_optimum(y_true, y_pred, thresh)
        assert m.tp == tp
        np.testing.assert_allclose(m.mean_matched_iou * m.tp, total, rtol=1e-9, atol=1e-12)


def test_matching_rejects_bad_input() -> None:
    y = np.zeros((4, 4), int)
    with pytest.raises(ValueError, match="threshold"):
        matching(y, y, 0.0)
    with pytest.raises(ValueError, match="shape"):
        matching(y, np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="boolean"):
        matching(y > 0, y)
    with pytest.raises(ValueError, match="negative"):
        matching(y - 1, y)


def test_matching_dataset_sums_counts_over_images() -> None:
    y1 = _discs((30, 30), [(8, 8), (20, 20)], 4)
    y2 = _discs((20, 25), [(10, 12)], 5)
    p1 = y1.copy()
    p2 = np.zeros_like(y2)
    results = matching_dataset([y1, y2], [p1, p2])
    assert [r.thresh for r in results] == list(DEFAULT_IOU_THRESHOLDS)
    for r in results:
        assert (r.tp, r.fp, r.fn, r.n_true) == (2, 0, 1, 3)
        assert r.accuracy == 2 / 3
    assert average_precision(results) == pytest.approx(2 / 3)
    per_image = matching_dataset([y1, y2], [p1, p2], (0.5,), by_image=True)[0]
    assert per_image.tp == 2 and per_image.accuracy == pytest.approx((1.0 + 0.0) / 2)
    single = [matching(a, b) for a, b in ((y1, p1), (y2, p2))]
    assert aggregate_matchings(single) == results[0]
    with pytest.raises(ValueError, match="different thresholds"):
        aggregate_matchings([matching(y1, p1, 0.5), matching(y1, p1, 0.7)])


def test_matching_many_objects_is_fast_enough() -> None:
    y = _voronoi_labels((300, 300), 2000, 7)
    m = matching(y, np.roll(y, 1, axis=0), 0.3)
    assert m.n_true == 2000 and m.tp > 1500


# ---------------------------------------------------------------- restoration


def test_psnr_known_value_and_identity() -> None:
    target = np.tile([0.0, 1.0], 8).reshape(4, 4)
    assert psnr(target, target + 0.1) == pytest.approx(20.0)
    assert psnr(target, target + 0.1, data_range=2.0) == pytest.approx(20 + 20 * np.log10(2))
    assert psnr(target, target) == float("inf")
    with pytest.raises(ValueError, match="constant"):
        psnr(np.ones((4, 4)), np.zeros((4, 4)))


@pytest.mark.parametrize("shape", [(24, 20), (5, 16, 18), (16, 16, 3)])
def test_ssim_identity_and_noise(shape) -> None:
    rng = np.random.default_rng(1)
    target = rng.random(shape).astype(np.float32)
    channel_axis = -1 if shape[-1] == 3 else None
    assert ssim(target, target, channel_axis=channel_axis) == pytest.approx(1.0)
    noisy = target + rng.normal(0, 0.3, shape)
    value = ssim(target, noisy, channel_axis=channel_axis)
    assert isinstance(value, float) and -1 < value < 0.9


def test_ssim_rejects_tiny_images() -> None:
    with pytest.raises(ValueError, match="spatial size"):
        ssim(np.arange(8.0).reshape(2, 4), np.arange(8.0).reshape(2, 4))


def test_nrmse_definitions() -> None:
    target = np.array([1.0, 2.0, 3.0, 4.0])
    output = target + 0.5
    rmse = 0.5
    assert nrmse(target, target) == 0.0
    assert nrmse(target, output) == pytest.approx(rmse / np.sqrt(np.mean(target**2)))
    assert nrmse(target, output, "min-max") == pytest.approx(rmse / 3)
    assert nrmse(target, output, "mean") == pytest.approx(rmse / 2.5)
    with pytest.raises(ValueError, match="normalization"):
        nrmse(target, output, "max")
