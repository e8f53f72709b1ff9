"""Colour and intensity augmentation (pixlearn.nets.colour) and its place in augment()."""

from __future__ import annotations

import numpy as np
import pytest

from pixlearn.nets.augment_config import COLOUR_ON, AugmentConfig, ColourAugmentConfig
from pixlearn.nets.colour import jitter_colour, rotate_hue
from pixlearn.nets.patches import augment

ONLY_COLOUR = AugmentConfig(flips=False, rotations=False, intensity=False, colour=COLOUR_ON)


def _patch(channels: int, shape=(12, 10), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape + (channels,)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("shape", [(12, 10), (4, 8, 6)])
def test_shapes_dtype_and_input_untouched(channels, shape):
    image = _patch(channels, shape)
    before = image.copy()
    out = jitter_colour(image, np.random.default_rng(1), COLOUR_ON)
    assert out.shape == image.shape and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isfinite(out).all() and not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("channels", [1, 3])
def test_identity_at_zero_strength_draws_nothing(channels):
    image = _patch(channels)
    rng = np.random.default_rng(5)
    out = jitter_colour(image, rng, ColourAugmentConfig(strength=0.0, hue=0.5, contrast=5.0))
    np.testing.assert_array_equal(out, image)
    assert rng.random() == np.random.default_rng(5).random()  # the stream is where it was
    geometric_off = AugmentConfig(flips=False, rotations=False, intensity=False)
    np.testing.assert_array_equal(augment(image, np.zeros(image.shape[:-1]), np.random.default_rng(0), geometric_off)[0],
                                  image)


def test_deterministic_with_a_seed_and_varies_between_seeds():
    image = _patch(3)
    first = jitter_colour(image, np.random.default_rng(7), COLOUR_ON)
    np.testing.assert_array_equal(first, jitter_colour(image, np.random.default_rng(7), COLOUR_ON))
    assert not np.array_equal(first, jitter_colour(image, np.random.default_rng(8), COLOUR_ON))


def test_ranges_of_brightness_and_contrast():
    image = _patch(1)
    only_brightness = ColourAugmentConfig(strength=1.0, brightness=0.1, contrast=0.0, gamma=0.0,
                                          blur_probability=0.0)
    for seed in range(20):
        shift = jitter_colour(image, np.random.default_rng(seed), only_brightness) - image
        assert np.ptp(shift) < 1e-6 and abs(float(shift.mean())) <= 0.1 + 1e-6
    only_contrast = ColourAugmentConfig(strength=0.5, brightness=0.0, contrast=1.0, gamma=0.0, blur_probability=0.0)
    for seed in range(20):
        out = jitter_colour(image, np.random.default_rng(seed), only_contrast)
        ratio = out.std() / image.std()
        assert 2 ** -0.5 - 1e-4 <= ratio <= 2**0.5 + 1e-4  # factor in [1/(1+c), 1+c] ** strength
        assert out.mean() == pytest.approx(image.mean(), abs=1e-5)


def test_full_strength_stays_in_a_bounded_range():
    image = _patch(3)
    for seed in range(20):
        out = jitter_colour(image, np.random.default_rng(seed), COLOUR_ON)
        assert -0.6 < out.min() and out.max() < 1.6


def test_hue_rotation_keeps_grey_and_chroma():
    image = _patch(3)
    turned = rotate_hue(image, 0.15)
    np.testing.assert_allclose(turned.mean(-1), image.mean(-1), atol=1e-6)
    chroma = np.linalg.norm(image - image.mean(-1, keepdims=True), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(turned - turned.mean(-1, keepdims=True), axis=-1), chroma, atol=1e-5)
    np.testing.assert_allclose(rotate_hue(image, 0.0), image, atol=1e-6)
    np.testing.assert_allclose(rotate_hue(rotate_hue(image, 0.2), -0.2), image, atol=1e-5)
    np.testing.assert_allclose(rotate_hue(np.array([[0.0, 1.0, 0.0]]), 1 / 3), [[0.0, 0.0, 1.0]], atol=1e-6)
    with pytest.raises(ValueError, match="3 channels"):
        rotate_hue(_patch(2), 0.1)


def test_grey_pixels_keep_no_colour():
    grey = np.repeat(_patch(1), 3, axis=-1)
    out = jitter_colour(grey, np.random.default_rng(3), ColourAugmentConfig(strength=1.0, blur_probability=0.0))
    np.testing.assert_allclose(out, np.repeat(out[..., :1], 3, axis=-1), atol=1e-5)


def test_blur_smooths_and_augment_moves_target_unchanged():
    image = _patch(1)
    blur = ColourAugmentConfig(strength=1.0, brightness=0.0, contrast=0.0, gamma=0.0, blur_probability=1.0,
                               blur_sigma_px=2.0)
    blurred = [jitter_colour(image, np.random.default_rng(s), blur) for s in range(5)]
    assert all(b.std() < image.std() for b in blurred)
    target = np.arange(120).reshape(12, 10)
    out, out_target = augment(image, target, np.random.default_rng(0), ONLY_COLOUR)
    np.testing.assert_array_equal(out_target, target)
    assert not np.array_equal(out, image)


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="strength"):
        ColourAugmentConfig(strength=-1.0)
    with pytest.raises(ValueError, match="blur_probability"):
        ColourAugmentConfig(blur_probability=1.5)
    with pytest.raises(ValueError, match="turns"):
        ColourAugmentConfig(hue=0.7)
    assert AugmentConfig.from_dict(ONLY_COLOUR.to_dict()) == ONLY_COLOUR
    assert AugmentConfig.from_dict({"flips": False}).colour == ColourAugmentConfig()  # older files: off
    assert not AugmentConfig().colour.enabled
