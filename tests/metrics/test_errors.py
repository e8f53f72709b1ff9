"""Error analysis: each hand-made mistake gets its category, and the categories always sum to FP + FN."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from pixlearn.metrics import (
    ERROR_CATEGORIES,
    ErrorConfig,
    ErrorCounts,
    dataset_errors,
    error_analysis,
    error_report,
    errors,
    format_error_analysis,
    image_errors,
    matching,
    matching_dataset,
)


def test_doctests() -> None:
    parts = [doctest.testmod(m) for m in (errors, dataset_errors, error_report)]
    assert sum(r.attempted for r in parts) >= 5 and all(r.failed == 0 for r in parts)


def _category(result, side: str, label: int) -> str:
    labels = result.true_labels if side == "true" else result.pred_labels
    codes = result.true_category if side == "true" else result.pred_category
    return ERROR_CATEGORIES[int(codes[np.flatnonzero(labels == label)[0]])]


def _check_identity(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """The categories sum to FP + FN, and the matching is :func:`matching`'s."""
    result = image_errors(y_true, y_pred)
    at50, at75 = matching(y_true, y_pred, 0.5), matching(y_true, y_pred, 0.75)
    assert (result.tp, result.fp, result.fn) == (at50.tp, at50.fp, at50.fn)
    assert result.tp75 == at75.tp
    counts = result.errors
    assert counts.total == sum(counts.by_category().values()) == at50.fp + at50.fn
    assert (counts.fn, counts.fp) == (at50.fn, at50.fp)
    np.testing.assert_allclose(result.sum_matched_iou, at50.mean_matched_iou * at50.tp, rtol=1e-12, atol=1e-12)
    assert ((result.true_category == 0).sum(), (result.pred_category == 0).sum()) == (at50.tp, at50.tp)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """One image with each kind of mistake, far apart; true ids 1-10, predicted ids 101-111."""
    y, p = np.zeros((40, 80), np.int32), np.zeros((40, 80), np.int32)
    y[2:8, 2:8] = 1
    p[2:8, 2:8] = 101                       # 1: matched exactly
    y[2:6, 12:16], y[2:6, 18:22] = 2, 3
    p[2:6, 12:22] = 102                     # 2, 3: merged into 102 (IoU 0.4 each)
    y[12:16, 2:11] = 4
    p[12:16, 2:5], p[12:16, 5:8], p[12:16, 8:11] = 103, 104, 105   # 4: split in three (IoU 1/3 each)
    y[12:18, 20:26] = 5
    p[12:18, 23:29] = 106                   # 5: shifted by half its width (IoU 1/3)
    y[24:30, 2:8] = 6                       # 6: missed
    p[24:30, 20:26] = 107                   # 107: spurious
    y[24:30, 40:50], y[24:27, 52:55] = 7, 8
    p[24:30, 40:50], p[24:27, 52:55] = 108, 108   # 7 matched (IoU 60/69), 8 merged into it
    y[33:37, 40:49] = 9
    p[33:37, 40:46], p[33:37, 46:49] = 109, 110   # 9 matched to 109 (IoU 2/3), 110 a split piece
    y[33:39, 60:66] = 10
    p[33:34, 60:62] = 111                   # 10: barely touched (IoU 1/18): a miss; 111 spurious
    return y, p


def test_each_hand_made_mistake_gets_its_category() -> None:
    y, p = _scene()
    result = image_errors(y, p)
    expected_true = {1: "matched", 2: "merge", 3: "merge", 4: "split", 5: "poor_localisation", 6: "miss",
                     7: "matched", 8: "merge", 9: "matched", 10: "miss"}
    expected_pred = {101: "matched", 102: "merge", 103: "split", 104: "split", 105: "split",
                     106: "poor_localisation", 107: "spurious", 108: "matched", 109: "matched", 110: "split",
                     111: "spurious"}
    assert {k: _category(result, "true", k) for k in expected_true} == expected_true
    assert {k: _category(result, "pred", k) for k in expected_pred} == expected_pred
    assert result.errors == ErrorCounts(miss=2, merge_fn=3, merge_fp=1, split_fn=1, split_fp=4, poor_fn=1,
                                        poor_fp=1, spurious=2)
    assert result.errors.by_category() == {"miss": 2, "merge": 4, "split": 5, "poor_localisation": 2,
                                           "spurious": 2}
    _check_identity(y, p)


@pytest.mark.parametrize("shift", [1, 2, 3, 4, 5, 6])
def test_a_shifted_object_is_matched_poorly_localised_or_missed(shift: int) -> None:
    y = np.zeros((12, 24), np.uint16)
    y[3:9, 3:9] = 5
    p = np.roll(y, shift, axis=1)
    iou = (6 - shift) / (6 + shift)
    result = image_errors(y, p)
    expected = "matched" if iou >= 0.5 else "poor_localisation" if iou >= 0.3 else "miss"
    assert _category(result, "true", 5) == expected
    assert _category(result, "pred", 5) == {"miss": "spurious"}.get(expected, expected)
    _check_identity(y, p)


def test_a_tie_at_iou_half_is_matched_once_and_the_other_half_is_a_split() -> None:
    y = np.zeros((6, 10), np.int32)
    y[1:5, 1:9] = 1
    p = np.zeros_like(y)
    p[1:5, 1:5], p[1:5, 5:9] = 1, 2            # both halves have IoU exactly 0.5
    result = image_errors(y, p)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)
    assert result.errors == ErrorCounts(split_fp=1)
    _check_identity(y, p)


def test_empty_images_and_large_ids() -> None:
    empty = np.zeros((5, 5), np.int64)
    result = image_errors(empty, empty)
    assert (result.n_true, result.n_pred, result.ap50, result.errors.total) == (0, 0, 1.0, 0)
    y = empty.copy()
    y[1:3, 1:3] = 2**40
    assert image_errors(y, empty).errors == ErrorCounts(miss=1)
    assert image_errors(empty, y).errors == ErrorCounts(spurious=1)


def _random_truth(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for k in range(1, n + 1):
        start = [int(rng.integers(0, s - 3)) for s in shape]
        size = [int(rng.integers(2, max(3, s // 3))) for s in shape]
        labels[tuple(slice(a, a + b) for a, b in zip(start, size))] = k
    return labels


def _random_prediction(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Each object kept, shifted, dropped, merged with the previous one or cut in two; spurious boxes."""
    pred = np.zeros_like(labels)
    next_id = 1
    for k in np.unique(labels)[1:]:
        mask = labels == k
        action = rng.integers(0, 5)
        if action == 1:
            mask = np.roll(mask, int(rng.integers(-3, 4)), axis=int(rng.integers(0, labels.ndim)))
        if action == 2:
            continue
        target = max(next_id - 1, 1) if action == 3 else next_id
        pred[mask] = target
        if action == 4:
            cut = np.nonzero(mask)[-1]
            pred[mask & (np.indices(labels.shape)[-1] > np.median(cut))] = target + 1
            next_id += 1
        next_id += 1
    spurious = _random_truth(rng, labels.shape, int(rng.integers(0, 3)))
    pred[(spurious > 0) & (pred == 0)] = spurious[(spurious > 0) & (pred == 0)] + 1000
    return pred


@pytest.mark.parametrize("seed", range(40))
def test_categories_sum_to_fp_plus_fn_on_random_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 28) if seed % 4 else (6, 16, 18)
    y = _random_truth(rng, shape, int(rng.integers(0, 9)))
    p = _random_prediction(rng, y) if seed % 5 else _random_truth(rng, shape, int(rng.integers(0, 9)))
    y_copy, p_copy = y.copy(), p.copy()
    _check_identity(y, p)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(p, p_copy)


def test_analysis_pools_like_matching_dataset() -> None:
    rng = np.random.default_rng(7)
    truth = [_random_truth(rng, (30, 30), int(rng.integers(1, 9))) for _ in range(12)]
    preds = [_random_prediction(rng, y) for y in truth]
    groups = ["a", "b", "c"] * 4
    analysis = error_analysis(truth, preds, groups, config=ErrorConfig(n_worst=4))
    pooled = matching_dataset(truth, preds, (0.5, 0.75))
    by_image = matching_dataset(truth, preds, (0.5,), by_image=True)[0]
    overall = analysis.overall
    assert (overall.tp, overall.fp, overall.fn, overall.tp75) == (pooled[0].tp, pooled[0].fp, pooled[0].fn,
                                                                  pooled[1].tp)
    np.testing.assert_allclose([overall.ap50, overall.ap75, overall.ap50_per_image, overall.mean_matched_iou],
                               [pooled[0].accuracy, pooled[1].accuracy, by_image.accuracy,
                                pooled[0].mean_matched_iou], rtol=1e-12)
    assert overall.errors.total == overall.fp + overall.fn
    assert list(analysis.by_group) == ["a", "b", "c"]
    np.testing.assert_allclose(sum(s.error_share for s in analysis.by_group.values()), 1.0, rtol=1e-12)
    assert sum((s.errors for s in analysis.by_group.values()), ErrorCounts()) == overall.errors
    ab = analysis.pooled(["a", "b"])
    picked = [i for i, g in enumerate(groups) if g in ("a", "b")]
    assert ab.ap50 == matching_dataset([truth[i] for i in picked], [preds[i] for i in picked], (0.5,))[0].accuracy
    assert ab.error_share == pytest.approx(analysis.by_group["a"].error_share + analysis.by_group["b"].error_share)
    ap = [i.ap50 for i in analysis.images]
    assert [i.ap50 for i in analysis.worst] == sorted(ap)[:4]
    json.dumps(analysis.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="no image in groups"):
        analysis.pooled(["z"])


def test_size_bins_count_every_true_object_once() -> None:
    y = np.zeros((60, 60), np.int32)
    y[1:6, 1:6] = 1                 # 25 px: diameter 5.6
    y[10:20, 1:11] = 2              # 100 px: 11.3
    y[25:41, 1:17] = 3              # 256 px: 18.1
    y[1:31, 25:55] = 4              # 900 px: 33.9
    p = np.zeros_like(y)
    p[1:6, 1:6] = 1
    p[25:41, 1:9] = 3               # half of object 3: IoU 0.5, matched
    analysis = error_analysis([y], [p])
    bins = {b.label: b for b in analysis.by_size}
    assert list(bins) == ["<8", "8-12", "12-20", "20-40", ">=40"]
    assert [b.n_true for b in bins.values()] == [1, 1, 1, 1, 0]
    assert [b.tp for b in bins.values()] == [1, 0, 1, 0, 0]
    assert bins["12-20"].mean_matched_iou == 0.5 and bins["<8"].recall == 1.0
    assert bins["8-12"].miss == 1 and bins["20-40"].miss == 1
    assert analysis.by_group == {}
    edges = error_analysis([y], [p], config=ErrorConfig(size_edges_px=(10.0,))).by_size
    assert [(b.label, b.low_px, b.high_px, b.n_true) for b in edges] == [("<10", None, 10.0, 1), (">=10", 10.0, None, 3)]


def test_group_order_and_report_text() -> None:
    y, p = _scene()
    analysis = error_analysis([y, y, y], [p, y, np.zeros_like(y)], ["fluo", "bright", "fluo"],
                              ["scene", "perfect", "empty"], group_order=["bright", "fluo", "colour"])
    assert list(analysis.by_group) == ["bright", "fluo"]
    assert analysis.worst[0].name == "empty" and analysis.worst[-1].name == "perfect"
    text = format_error_analysis(analysis, pools={"both": ("bright", "fluo")})
    for word in ("scores per group", "errors at IoU 0.5", "diameter", "worst images", "both", "poor loc", "empty"):
        assert word in text
    with pytest.raises(ValueError, match="not in group_order"):
        error_analysis([y], [p], ["fluo"], group_order=["bright"])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        (np.zeros((3, 3), int), np.zeros((3, 4), int), "shape"),
        (np.zeros((3, 3), bool), np.zeros((3, 3), int), "integer"),
        (np.zeros((3, 3)), np.zeros((3, 3), int), "integer"),
        (np.zeros((3, 3), int), -np.ones((3, 3), int), "negative"),
    ],
)
def test_bad_labels_are_refused(y_true, y_pred, match) -> None:
    with pytest.raises(ValueError, match=match):
        image_errors(y_true, y_pred)


def test_config_is_validated_and_round_trips() -> None:
    config = ErrorConfig(overlap_iou=0.25, size_edges_px=(5, 10), n_worst=3)
    assert ErrorConfig.from_dict(config.to_dict()) == config
    for bad in ({"overlap_iou": 0.5}, {"cover": 0.0}, {"size_edges_px": (10.0, 5.0)}, {"n_worst": -1}):
        with pytest.raises(ValueError):
            ErrorConfig(**bad)
    y = np.zeros((4, 4), int)
    with pytest.raises(ValueError, match="no images"):
        error_analysis([], [])
    with pytest.raises(ValueError, match="1 true images but 2 predictions"):
        error_analysis([y], [y, y])
