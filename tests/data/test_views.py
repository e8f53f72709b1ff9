"""The one lazy view: CanonicalView, with or without a per-block transform."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import pixlearn.data.axes
import pixlearn.data.normalize
from pixlearn.data.axes import CanonicalView, full_slices, grey_view, to_canonical, transformed_view
from pixlearn.data.normalize import NormalizeConfig, apply_normalization, compute_normalization, normalized_view


class _Recorder:
    """An array that records the regions read from it."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.array[key]


KEYS = [(slice(1, 4), slice(None), slice(None)), (slice(0, 2), slice(2, 5), slice(1, 2)), (Ellipsis, slice(0, 1))]


def test_doctests() -> None:
    for module in (pixlearn.data.axes, pixlearn.data.normalize):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("key", KEYS)
def test_transform_sees_every_channel_and_reorders_like_the_plain_view(key):
    stored = np.arange(3 * 5 * 6, dtype=np.float64).reshape(3, 5, 6)  # CYX
    canonical = to_canonical(stored, "CYX")
    weights = np.array([1.0, 10.0, 100.0])
    view = CanonicalView(stored, "CYX", lambda b: b * weights, dtype=np.float32)
    assert view.shape == (5, 6, 3) and view.dtype == np.float32
    expected = (canonical * weights).astype(np.float32)[key]
    got = view[key]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(CanonicalView(stored, "CYX")[key], canonical[key])


@pytest.mark.parametrize("key", KEYS)
def test_normalized_view_reads_only_the_region(key):
    rng = np.random.default_rng(0)
    image = rng.normal(100, 20, size=(6, 7, 2)).astype(np.float32)
    low, high = compute_normalization(image, NormalizeConfig())
    stored = _Recorder(image)
    view = normalized_view(stored, low, high)
    assert view.shape == image.shape and view.dtype == np.float32
    region = view[key]
    np.testing.assert_array_equal(region, apply_normalization(image, low, high)[key])
    # one read: the spatial part of the key, with all channels (normalisation is per channel)
    assert stored.reads == [full_slices(key, 3)[:-1] + (slice(None),)]
    np.testing.assert_array_equal(np.asarray(view), apply_normalization(image, low, high))


@pytest.mark.parametrize("channels", [3, 4])
def test_grey_view_is_the_mean_of_the_colours(channels):
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 255, size=(2, 5, 4, channels)).astype(np.uint8)
    grey = grey_view(colour)
    assert grey.shape == (2, 5, 4, 1) and grey.dtype == np.float32
    expected = colour[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)
    np.testing.assert_array_equal(grey[...], expected)
    np.testing.assert_array_equal(grey[1:, 2:4, :3, :], expected[1:, 2:4, :3, :])
    np.testing.assert_array_equal(np.asarray(grey, dtype=np.float64), expected.astype(np.float64))


def test_views_compose_and_refuse_bad_arguments():
    stored = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # CYX: a lazy canonical view below
    double = transformed_view(CanonicalView(stored, "CYX"), lambda b: 2 * b)
    np.testing.assert_array_equal(double[1:, :2], 2 * to_canonical(stored, "CYX")[1:, :2])
    with pytest.raises(ValueError, match="transform"):
        CanonicalView(stored, "CYX", n_channels=1)
    with pytest.raises(ValueError, match="canonical"):
        transformed_view(np.zeros((4, 4)), lambda b: b)
    with pytest.raises(TypeError, match="slices"):
        grey_view(np.zeros((2, 2, 3)))[0]
