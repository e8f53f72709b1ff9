"""What a memory budget allows in training, anisotropic features and the sigma warning (tiny synthetic stacks)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from pixlearn.classical.budget import (
    FILTER_BYTES_PER_PIXEL,
    forest_bytes_per_sample,
    sample_bytes,
    training_plan,
)
from pixlearn.classical.config import ClassifierConfig, ForestConfig
from pixlearn.classical.features import FeatureConfig, compute_features, compute_features_at, feature_halo
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.classical.scales import sigma_warnings

CFG = ClassifierConfig(rf=ForestConfig(n_estimators=20, min_samples_leaf=5, max_depth=None))
GiB = 2**30


def _stack(shape=(4, 40, 40), seed=0):
    """An anisotropic stack of a few sections: tubes along the planes, bright on dark."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    inside = ((yy % 16) - 8) ** 2 + ((xx % 16) - 8) ** 2 < 20
    image = np.broadcast_to(inside, shape).astype(np.float32) + 0.2 * rng.standard_normal(shape, dtype=np.float32)
    return image[..., None], np.broadcast_to(inside, shape).astype(np.int64)


@pytest.mark.parametrize("budget", [0.5 * GiB, 1 * GiB, 2 * GiB, 8 * GiB])
def test_plan_fits_the_budget_whatever_the_image(budget):
    held, halo, n_feat = 300 * 2**20, (5, 46, 46), 61
    small = training_plan(budget, held, [(5, 64, 64)], halo, n_feat, 5, CFG, 2)
    big = training_plan(budget, held, [(15, 1024, 1024)] * 3, halo, n_feat, 5, CFG, 2)
    assert small.max_samples == big.max_samples  # bounded by the budget, not by the images
    room = budget - held
    per_sample = sample_bytes(n_feat, 2) + forest_bytes_per_sample(CFG, 5)
    assert big.max_samples * per_sample <= 0.75 * room
    for core in big.block_shapes:
        block = [n if c >= n else min(n, c + 2 * h) for n, c, h in zip((15, 1024, 1024), core, halo)]
        assert math.prod(block) * FILTER_BYTES_PER_PIXEL <= 0.25 * room


def test_plan_grows_with_the_budget_and_shrinks_with_the_forest():
    plans = [training_plan(b * GiB, 0.3 * GiB, [(15, 1024, 1024)], (5, 46, 46), 61, 5, CFG, 2) for b in (1, 2, 4)]
    assert plans[0].max_samples < plans[1].max_samples < plans[2].max_samples
    bigger = CFG.with_overrides({"rf": {"n_estimators": 100, "min_samples_leaf": 1}})
    assert training_plan(2 * GiB, 0.3 * GiB, [(5, 64, 64)], (1, 3, 3), 61, 5, bigger, 2).max_samples \
        < plans[1].max_samples
    deep_capped = CFG.with_overrides({"rf": {"max_depth": 6}})  # small trees whatever the samples
    assert training_plan(2 * GiB, 0.3 * GiB, [(5, 64, 64)], (1, 3, 3), 61, 5, deep_capped, 2).max_samples \
        > plans[1].max_samples
    nothing_left = training_plan(GiB, 2 * GiB, [(5, 64, 64)], (1, 3, 3), 61, 5, CFG, 2)
    assert nothing_left.max_samples == 10 and nothing_left.block_shapes == ((1, 1, 1),)


def test_a_small_budget_takes_fewer_pixels_and_says_so(caplog):
    image, labels = _stack()
    cfg = CFG.replace(max_samples_per_class=None)
    features = FeatureConfig(sigmas=(1.0,), spacing=(4.0, 1.0, 1.0))
    full = fit_pixel_classifier([image], [labels], features, cfg, memory_budget=8 * GiB)
    assert full.training["n_pixels"] == labels.size
    assert full.training["block_shapes"] == [list(labels.shape)]  # one block: the budget allows it
    with caplog.at_level(logging.WARNING, logger="pixlearn.classical.fit"):
        tiny = fit_pixel_classifier([image], [labels], features, cfg, memory_budget=1)
    assert "memory budget" in caplog.text
    assert tiny.training["n_pixels"] == 4  # two per class: nothing is left of a budget of 1 byte
    assert tiny.training["memory_budget_bytes"] == 1


def test_dense_masks_are_sampled_in_chunks_exactly_per_class():
    from pixlearn.classical.fit import _class_quotas, _select_pixels

    rng = np.random.default_rng(0)
    targets = [rng.integers(-1, 3, (7, 30, 30)), rng.integers(-1, 3, (5, 31, 29))]
    counts = sum(np.bincount(t[t >= 0].ravel(), minlength=3) for t in targets)
    quotas = _class_quotas(counts, 500, 1000)
    assert quotas.tolist() == [333, 333, 333]
    chosen = _select_pixels(targets, quotas, rng, chunk=1000)
    got = sum(np.bincount(t.reshape(-1)[c], minlength=3) for t, c in zip(targets, chosen))
    assert got.tolist() == quotas.tolist()
    assert all(np.array_equal(c, np.unique(c)) for c in chosen)  # sorted, no pixel twice
    assert _class_quotas(np.array([10, 5000]), None, 1000).tolist() == [10, 990]


def test_anisotropic_features_at_points_equal_the_whole_stack():
    image, _ = _stack((5, 24, 24))
    cfg = FeatureConfig(sigmas=(0.7, 2.0), spacing=(5.0, 1.0, 1.0))
    assert feature_halo(cfg, 3)[0] < feature_halo(cfg, 3)[1]
    whole = compute_features(image, cfg)
    core = (slice(0, 5), slice(6, 18), slice(0, 12))
    points = (np.array([0, 4, 2]), np.array([0, 11, 5]), np.array([3, 0, 11]))
    got = compute_features_at(image, core, points, cfg)
    np.testing.assert_array_equal(got, whole[core][points].T)


def test_sigmas_larger_than_the_stack_are_warned_about(caplog):
    assert len(sigma_warnings(FeatureConfig(sigmas=(1.0, 6.0, 10.0)), (5, 64, 64))) == 1
    assert "sigmas 6, 10 are 6-10 voxels along the planes" in sigma_warnings(FeatureConfig(sigmas=(6.0, 10.0)),
                                                                             (5, 64, 64))[0]
    assert sigma_warnings(FeatureConfig(sigmas=(1.0, 6.0, 10.0), spacing=(10.0, 1.0, 1.0)), (5, 64, 64)) == []
    assert "columns" in sigma_warnings(FeatureConfig(sigmas=(40.0,)), (100, 30))[0]
    image, labels = _stack()
    with caplog.at_level(logging.WARNING, logger="pixlearn.classical.fit"):
        fit_pixel_classifier([image], [labels], FeatureConfig(sigmas=(1.0, 5.0)), CFG)
    assert "more than the 4 planes of the image" in caplog.text and "--spacing" in caplog.text
