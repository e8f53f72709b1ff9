"""Patch sampling, augmentation and the patch dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.nets.patches import (
    NO_AUGMENT,
    AugmentConfig,
    PatchDataset,
    augment,
    normalize_images,
    sample_patches,
)


def test_sample_patches_shapes_and_determinism(blobs_2d):
    image, labels = blobs_2d
    images, targets = [image[..., None]], [labels.astype(np.int64)]
    x1, y1 = sample_patches(images, targets, (16, 24), 5, np.random.default_rng(3))
    x2, y2 = sample_patches(images, targets, (16, 24), 5, np.random.default_rng(3))
    assert x1.shape == (5, 16, 24, 1) and y1.shape == (5, 16, 24)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_foreground_oversampling(blobs_2d):
    image, labels = blobs_2d
    sparse = np.zeros_like(labels)
    sparse[labels == 1] = 1  # one object only
    fg = [sparse > 0]
    _, always = sample_patches([image[..., None]], [sparse], (8, 8), 40, np.random.default_rng(0),
                               foreground=fg, foreground_fraction=1.0)
    _, never = sample_patches([image[..., None]], [sparse], (8, 8), 40, np.random.default_rng(0),
                              foreground=fg, foreground_fraction=0.0)
    assert all(p.any() for p in always)
    assert sum(p.any() for p in always) > sum(p.any() for p in never)


def test_sample_patches_bad_inputs(blobs_2d):
    image, labels = blobs_2d
    with pytest.raises(PixlearnError, match="smaller than the patch"):
        sample_patches([image[..., None]], [labels], (64, 8), 1, np.random.default_rng(0))
    with pytest.raises(PixlearnError, match="spatial shape"):
        sample_patches([image[..., None]], [labels[:-1]], (8, 8), 1, np.random.default_rng(0))
    with pytest.raises(PixlearnError, match="as many targets"):
        sample_patches([image[..., None]], [], (8, 8), 1, np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(12, 12), (12, 10), (4, 12, 12), (4, 8, 12)])
def test_augment_moves_image_and_target_together(shape):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5, shape)
    image = base[..., None].astype(np.float32)
    before = image.copy()
    cfg = AugmentConfig(intensity=False)
    for seed in range(8):
        x, y = augment(image, base, np.random.default_rng(seed), cfg)
        assert x.shape == image.shape and y.shape == base.shape and x.dtype == np.float32
        np.testing.assert_array_equal(x[..., 0], y.astype(np.float32))
    np.testing.assert_array_equal(image, before)  # input untouched


def test_augment_is_seeded_and_changes_intensity(blobs_2d):
    image = blobs_2d[0][..., None]
    target = (blobs_2d[1] > 0).astype(np.int64)
    x1, y1 = augment(image, target, np.random.default_rng(5))
    x2, y2 = augment(image, target, np.random.default_rng(5))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = augment(image, target, np.random.default_rng(5), NO_AUGMENT)
    np.testing.assert_array_equal(x3, image)


def test_elastic_keeps_label_values(blobs_2d):
    image, labels = blobs_2d
    cfg = AugmentConfig(elastic=True, intensity=False)
    x, y = augment(image[..., None], labels.astype(np.int64), np.random.default_rng(1), cfg)
    assert x.shape == image.shape + (1,) and y.shape == labels.shape
    assert set(np.unique(y)) <= set(np.unique(labels))
    float_target = np.stack([labels > 0, labels > 0], -1).astype(np.float32)
    _, yf = augment(image[..., None], float_target, np.random.default_rng(1), cfg)
    assert yf.shape == float_target.shape and yf.dtype == np.float32


def test_augment_config_validation():
    with pytest.raises(ValueError, match="gamma"):
        AugmentConfig(gamma_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="low"):
        AugmentConfig(scale_range=(1.2, 0.8))
    cfg = AugmentConfig(elastic=True)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg


def test_patch_dataset_items_depend_on_seed_epoch_index(blobs_3d):
    image, labels = blobs_3d
    ds = PatchDataset([image[..., None]], [labels.astype(np.int64)], (4, 16, 16), 6, seed=2,
                      augmentation=AugmentConfig(), foreground=[labels > 0])
    x, y = ds[3]
    assert x.shape == (1, 4, 16, 16) and x.dtype == torch.float32
    assert y.shape == (4, 16, 16) and y.dtype == torch.int64
    assert torch.equal(ds[3][0], x)
    ds.set_epoch(1)
    assert not torch.equal(ds[3][0], x)
    ds.set_epoch(0)
    assert torch.equal(ds[3][0], x)
    assert len(ds) == 6


def test_patch_dataset_float_targets(blobs_2d):
    image, labels = blobs_2d
    target = np.stack([labels > 0, labels > 0], -1).astype(np.float32)
    x, y = PatchDataset([image[..., None]], [target], (16, 16), 2)[0]
    assert x.shape == (1, 16, 16) and y.shape == (2, 16, 16) and y.dtype == torch.float32


def test_normalize_images(blobs_2d):
    image = blobs_2d[0][..., None] * 1000 + 50
    (out,) = normalize_images([image], NormalizeConfig(pmin=1, pmax=99))
    assert out.dtype == np.float32
    assert abs(np.percentile(out, 1)) < 1e-3 and abs(np.percentile(out, 99) - 1) < 1e-3
