"""Post-processing: thresholds, components, per-label size filter, holes, relabelling."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import pixlearn.postprocess.labels
from pixlearn.postprocess.labels import (
    fill_holes,
    label_components,
    relabel_sequential,
    remove_small_objects,
    threshold_probabilities,
)


def test_doctests() -> None:
    result = doctest.testmod(pixlearn.postprocess.labels)
    assert result.attempted >= 5 and result.failed == 0


def test_threshold_single_channel_is_foreground_probability() -> None:
    p = np.array([[[0.2], [0.5], [0.9]]], np.float32)
    assert threshold_probabilities(p).tolist() == [[0, 0, 1]]
    assert threshold_probabilities(p, 0.1).tolist() == [[1, 1, 1]]


def test_threshold_multiclass_argmax_and_foreground_threshold() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=(5, 6, 4)).astype(np.float32)  # (5, 6, 4, 3): 3D
    classes = threshold_probabilities(p)
    assert classes.shape == (5, 6, 4) and classes.dtype == np.uint8
    np.testing.assert_array_equal(classes, p.argmax(-1))
    strict = threshold_probabilities(p, 0.6)
    best_fg = p[..., 1:].max(-1)
    np.testing.assert_array_equal(strict > 0, best_fg > 0.6)
    np.testing.assert_array_equal(strict[strict > 0], 1 + p[..., 1:].argmax(-1)[strict > 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_probabilities(p, 1.5)


def test_label_components_connectivity_and_float_input() -> None:
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    assert label_components(mask).max() == 2
    assert label_components(mask, connectivity=2).max() == 1
    prob = np.where(mask, 0.8, 0.1).astype(np.float32)
    np.testing.assert_array_equal(label_components(prob), label_components(mask))
    assert label_components(prob, 0.9).max() == 0
    assert label_components(mask).dtype == np.uint32
    with pytest.raises(ValueError, match="float"):
        label_components(mask, 0.5)
    with pytest.raises(ValueError, match="connectivity"):
        label_components(mask, connectivity=3)


def test_label_components_3d_min_size_is_sequential() -> None:
    mask = np.zeros((4, 6, 6), bool)
    mask[0, 0, 0] = True
    mask[1:3, 2:5, 2:5] = True
    mask[3, 0, 4:6] = True
    labels = label_components(mask, min_size=2)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    assert labels[0, 0, 0] == 0 and np.count_nonzero(labels == 1) == 18


def test_remove_small_objects_counts_per_label_and_keeps_ids() -> None:
    labels = np.array([[5, 0, 5, 0, 9, 9, 9], [0, 0, 0, 0, 0, 0, 3]], np.uint16)
    before = labels.copy()
    out = remove_small_objects(labels, 2)
    # label 5 has two separate pixels: 2 in total, so it stays
    assert out.tolist() == [[5, 0, 5, 0, 9, 9, 9], [0, 0, 0, 0, 0, 0, 0]]
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(labels, before)
    mask = labels > 0  # as a mask, 9 and 3 form one component; the two 5s are single pixels
    np.testing.assert_array_equal(remove_small_objects(mask, 2), mask & (labels != 5))
    with pytest.raises(ValueError, match="min_size"):
        remove_small_objects(labels, -1)


def test_fill_holes_only_fills_enclosed_background() -> None:
    labels = np.zeros((7, 9), np.int32)
    labels[1:6, 1:6] = 1
    labels[2:4, 2:4] = 0  # a hole in object 1
    labels[3, 3] = 2  # object 2 sits in the hole: must stay
    labels[1:4, 6:9] = 3
    labels[2, 7] = 0  # hole in object 3
    labels[5, 7] = 0
    out = fill_holes(labels)
    assert out[2, 2] == 1 and out[3, 3] == 2 and out[2, 7] == 3
    assert out[0, 0] == 0 and out[6, 8] == 0
    np.testing.assert_array_equal(out[labels != 0], labels[labels != 0])


def test_relabel_sequential_huge_ids_and_offset() -> None:
    labels = np.array([[0, 2**40, 2**40], [17, 0, 3]], np.uint64)
    assert relabel_sequential(labels).tolist() == [[0, 3, 3], [2, 0, 1]]
    assert relabel_sequential(labels, offset=10).tolist() == [[0, 12, 12], [11, 0, 10]]
    assert relabel_sequential(labels).dtype == np.uint32
    assert relabel_sequential(np.zeros((3, 3), np.uint8)).max() == 0
    with pytest.raises(ValueError, match="negative"):
        relabel_sequential(np.array([[-1, 0]]))
