"""Matched pairs and touching objects: agreement with matching(), known cases, pooling."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from scipy import ndimage

from pixlearn.metrics import (
    matched_pairs,
    matching,
    touching_pairs,
    touching_separation,
    touching_separation_dataset,
)
from pixlearn.metrics import touching as touching_metrics


def test_doctests() -> None:
    result = doctest.testmod(touching_metrics)
    assert result.attempted >= 3 and result.failed == 0


def _tiling(shape, n, seed, *, holes=0.1):
    """Objects that tile the image (every object touches its neighbours), some pixels removed."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int32)
    seeds.flat[rng.choice(np.prod(shape), n, replace=False)] = np.arange(1, n + 1)
    _, index = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[tuple(index)]
    labels[rng.random(shape) < holes] = 0
    return labels


def _iou(y_true, y_pred, a, b):
    return np.sum((y_true == a) & (y_pred == b)) / np.sum((y_true == a) | (y_pred == b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matched_pairs_are_the_matching_of_matching(seed: int) -> None:
    y_true = _tiling((24, 24), 12, seed) * 7  # label values need not be 1..n
    y_pred = _tiling((24, 24), 15, seed + 50) + 100 * (_tiling((24, 24), 15, seed + 50) > 0)
    for thresh in (0.1, 0.25, 0.5, 0.75):
        true_labels, pred_labels, iou = matched_pairs(y_true, y_pred, thresh)
        m = matching(y_true, y_pred, thresh)
        assert len(true_labels) == len(pred_labels) == len(iou) == m.tp
        assert len(set(true_labels.tolist())) == m.tp and len(set(pred_labels.tolist())) == m.tp  # one-to-one
        assert np.all(np.diff(true_labels) > 0)
        assert set(true_labels.tolist()) <= set(np.unique(y_true).tolist()) - {0}
        assert set(pred_labels.tolist()) <= set(np.unique(y_pred).tolist()) - {0}
        np.testing.assert_allclose(iou, [_iou(y_true, y_pred, a, b) for a, b in zip(true_labels, pred_labels)],
                                   rtol=1e-12)
        assert np.all(iou >= thresh)
        np.testing.assert_allclose(iou.sum(), m.mean_matched_iou * m.tp, rtol=1e-9, atol=1e-12)


def test_matched_pairs_of_nothing_are_empty() -> None:
    y = np.zeros((5, 5), int)
    true_labels, pred_labels, iou = matched_pairs(y, y)
    assert true_labels.shape == pred_labels.shape == iou.shape == (0,)


def test_touching_pairs_use_faces_in_2d_and_3d() -> None:
    y = np.zeros((6, 6), int)
    y[0:2, 0:2], y[2:4, 2:4] = 1, 2  # diagonal contact only: not touching
    y[2:4, 4:6] = 5                    # shares a column edge with 2
    assert touching_pairs(y).tolist() == [[2, 5]]
    stack = np.zeros((3, 4, 4), int)
    stack[0, 1:3, 1:3], stack[1, 1:3, 1:3], stack[2, 0, 0] = 4, 3, 9  # 3 and 4 touch across planes
    assert touching_pairs(stack).tolist() == [[3, 4]]
    assert touching_pairs(np.zeros((4, 4), np.uint16)).shape == (0, 2)


def test_touching_pairs_of_a_tiling_are_its_neighbours() -> None:
    y = _tiling((20, 20), 8, 3, holes=0.0)
    pairs = {tuple(p) for p in touching_pairs(y).tolist()}
    expected = set()
    for a in range(1, 9):
        grown = ndimage.binary_dilation(y == a)  # cross-shaped: face neighbours
        expected |= {(a, int(b)) for b in np.unique(y[grown]) if b > a}
    assert pairs == expected and len(pairs) >= 7


def test_touching_pairs_refuse_bad_labels() -> None:
    with pytest.raises(ValueError, match="integer"):
        touching_pairs(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="integer"):
        touching_pairs(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="negative"):
        touching_pairs(-np.ones((4, 4), int))
    with pytest.raises(ValueError, match="shape"):
        touching_pairs(np.zeros(4, int))


def test_separation_counts_merges_and_splits() -> None:
    y = np.zeros((8, 24), int)
    y[:, 0:6], y[:, 6:12] = 1, 2     # a touching pair
    y[:, 14:18], y[:, 18:24] = 3, 4  # another
    merged = (y > 0).astype(int)     # connected components of the foreground: 2 objects
    merged[:, 14:] = 0
    merged[:, 14:18], merged[:, 18:24] = 7, 8
    result = touching_separation(y, merged)
    assert (result.n_touching, result.n_separated, result.fraction) == (2, 1, 0.5)
    assert touching_separation(y, y).fraction == 1.0
    assert touching_separation(y, np.zeros_like(y)).n_separated == 0
    shrunk = y.copy()
    shrunk[:, 3:6] = 0               # object 1 loses half its pixels: IoU 0.5 still matches at 0.5
    assert touching_separation(y, shrunk, 0.5).n_separated == 2
    assert touching_separation(y, shrunk, 0.6).n_separated == 1
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_separation_without_touching_objects_is_vacuously_complete() -> None:
    y = np.zeros((6, 6), int)
    y[0, 0], y[4, 4] = 1, 2
    result = touching_separation(y, np.zeros_like(y))
    assert (result.n_touching, result.n_separated, result.fraction) == (0, 0, 1.0)


def test_separation_dataset_sums_counts() -> None:
    y = np.zeros((4, 8), int)
    y[:, :4], y[:, 4:] = 1, 2
    pooled = touching_separation_dataset([y, y, y], [y, (y > 0).astype(int), y], 0.5)
    assert (pooled.n_touching, pooled.n_separated) == (3, 2)
    np.testing.assert_allclose(pooled.fraction, 2 / 3)
    with pytest.raises(ValueError, match="predictions"):
        touching_separation_dataset([y], [])
    with pytest.raises(ValueError, match="no images"):
        touching_separation_dataset([], [])
