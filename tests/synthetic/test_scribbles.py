"""Simulated scribbles and label conversions: classes respected, amount, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from pixlearn.synthetic.nuclei import SyntheticConfig, make_nuclei
from pixlearn.synthetic.scribbles import (
    dense_to_scribbles,
    instances_to_semantic,
    simulate_scribbles,
)

CFG_2D = SyntheticConfig(shape=(96, 96))
CFG_3D = SyntheticConfig(shape=(12, 48, 48), radius_px=(5.0, 9.0))


def test_instances_to_semantic_boundary():
    labels = np.zeros((10, 12), np.uint16)
    labels[2:8, 1:6] = 1
    labels[2:8, 6:11] = 2  # touches object 1
    plain = instances_to_semantic(labels)
    np.testing.assert_array_equal(plain, (labels > 0).astype(np.uint8))
    marked = instances_to_semantic(labels, boundary=True)
    assert set(np.unique(marked).tolist()) == {0, 1, 2}
    assert marked[4, 5] == 2 and marked[4, 6] == 2  # the shared border, both sides
    assert marked[4, 3] == 1 and marked[0, 0] == 0
    with pytest.raises(ValueError, match="integers"):
        instances_to_semantic(labels.astype(float))


@pytest.mark.parametrize("cfg", [CFG_2D.replace(shape=(128, 128)), CFG_3D], ids=["2d", "3d"])
def test_simulated_scribbles(cfg):
    _, labels = make_nuclei(cfg, np.random.default_rng(2))
    scribbles = simulate_scribbles(labels, np.random.default_rng(0), fraction=0.03)
    assert scribbles.shape == labels.shape and scribbles.dtype == np.uint8
    assert set(np.unique(scribbles).tolist()) == {0, 1, 2}
    assert np.all(labels[scribbles == 2] > 0)
    assert np.all(labels[scribbles == 1] == 0)
    assert 0.02 < np.mean(scribbles > 0) < 0.04
    again = simulate_scribbles(labels, np.random.default_rng(0), fraction=0.03)
    np.testing.assert_array_equal(scribbles, again)
    if labels.ndim == 3:  # strokes lie in planes: no labelled voxel without in-plane company
        lone = (scribbles > 0) & (ndi.convolve((scribbles > 0).astype(int), np.ones((1, 3, 3))) < 2)
        assert not lone.any()


def test_dense_to_scribbles_every_class_and_fraction():
    rng = np.random.default_rng(0)
    mask = np.zeros((80, 80), np.uint8)
    mask[:, 20:40] = 1
    mask[:, 40:75] = 2
    mask[:, 75:] = 3  # a thin class: still gets strokes, clipped to the class
    scribbles = dense_to_scribbles(mask, rng, fraction=0.05, width_px=3)
    assert set(np.unique(scribbles).tolist()) == {0, 1, 2, 3, 4}
    labelled = scribbles > 0
    np.testing.assert_array_equal(scribbles[labelled], mask[labelled] + 1)
    assert 0.035 < labelled.mean() < 0.065
    for k in range(4):
        assert (scribbles == k + 1).sum() >= 20


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_mask": np.zeros((4, 4), float)}, "integers"),
        ({"class_mask": -np.ones((4, 4), int)}, "negative"),
        ({"class_mask": np.zeros(16, int)}, "2D or 3D"),
        ({"fraction": 0.0}, "fraction"),
        ({"width_px": 0}, "width_px"),
    ],
)
def test_dense_to_scribbles_rejects_bad_input(kwargs, match):
    args = {"class_mask": np.zeros((8, 8), np.uint8), "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dense_to_scribbles(**args)
