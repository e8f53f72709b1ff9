"""Percentile normalisation and the bright-objects polarity rule."""

from __future__ import annotations

import numpy as np
import pytest

from pixlearn.data.normalize import NormalizeConfig, apply_normalization, compute_normalization
from pixlearn.synthetic.nuclei import SyntheticConfig, make_nuclei


def _nuclei(seed: int) -> tuple[np.ndarray, np.ndarray]:
    image, labels = make_nuclei(SyntheticConfig(shape=(96, 96)), np.random.default_rng(seed))
    return np.asarray(image, np.float32).reshape(96, 96, 1), np.asarray(labels) > 0


@pytest.mark.parametrize("seed", range(4))
def test_bright_objects_makes_objects_bright_whatever_the_background(seed):
    image, objects = _nuclei(seed)
    cfg = NormalizeConfig(polarity="bright-objects")
    for raw in (image, image.max() + 1.0 - image):  # fluorescence, and the same as brightfield
        low, high = compute_normalization(raw, cfg)
        out = apply_normalization(raw, low, high)[..., 0]
        assert out[objects].mean() > out[~objects].mean() + 0.2
        assert 0.0 <= np.median(out) < 0.5  # background near 0 in both


def test_keep_leaves_a_bright_background_alone_and_inversion_is_exact():
    image, objects = _nuclei(0)
    dark = image.max() + 1.0 - image
    low, high = compute_normalization(dark, NormalizeConfig())
    assert (high > low).all()
    kept = apply_normalization(dark, low, high)[..., 0]
    assert kept[objects].mean() < kept[~objects].mean()
    inv_low, inv_high = compute_normalization(dark, NormalizeConfig(polarity="bright-objects"))
    np.testing.assert_allclose(inv_low, high) and np.testing.assert_allclose(inv_high, low)
    np.testing.assert_allclose(apply_normalization(dark, inv_low, inv_high), 1.0 - kept[..., None], atol=1e-5)


def test_polarity_is_decided_per_channel():
    image, _ = _nuclei(1)
    both = np.concatenate([image, image.max() + 1.0 - image], axis=-1)
    low, high = compute_normalization(both, NormalizeConfig(polarity="bright-objects"))
    assert high[0] > low[0] and high[1] < low[1]


def test_unknown_polarity_is_refused():
    with pytest.raises(ValueError, match="polarity"):
        NormalizeConfig(polarity="invert")
