"""Objects measured tile by tile and on their own crops give the whole-image table, each object once."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import regionprops_table

from pixlearn.classical import ObjectFeatureConfig, find_object_boxes, object_feature_names, object_features
from pixlearn.classical.object_boxes import ObjectBoxes, padded_window

from .test_objects import _scene


class Recording:
    """A lazy array: reads regions of `array` when sliced, recording the size of each read."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.reads = array, []
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key):
        part = self.array[key]
        self.reads.append(part.size)
        return part


def _whole_image_reference(image: np.ndarray, labels: np.ndarray, cfg: ObjectFeatureConfig):
    """Shape columns by regionprops over the whole label image; intensities and ring on whole-image masks."""
    ndim = labels.ndim
    shape = ["area", "perimeter", "equivalent_diameter_area", "axis_major_length", "axis_minor_length",
             "eccentricity", "solidity", "extent", "euler_number", "moments_hu"] if ndim == 2 else [
        "area", "equivalent_diameter_area", "axis_major_length", "axis_minor_length", "solidity", "extent",
        "euler_number", "inertia_tensor_eigvals"]
    props = regionprops_table(labels, properties=["label", *shape])
    columns = np.stack([np.asarray(v, float) for k, v in props.items() if k != "label"], axis=1)
    intensity, ring = [], []
    for value in props["label"]:
        mask = labels == value
        near = (ndimage.distance_transform_edt(~mask) <= cfg.ring_px) & (labels == 0)
        for target, where in ((intensity, mask), (ring, near)):
            pixels = image[where]
            target.append([pixels.mean(), pixels.std(), *np.percentile(pixels, cfg.percentiles)])
    return columns, np.asarray(intensity), np.asarray(ring)


@pytest.mark.parametrize("ndim", [2, 3])
def test_tiles_and_crops_give_the_whole_image_table(ndim: int) -> None:
    image, labels, _ = _scene(3, ndim)
    cfg = ObjectFeatureConfig()
    names, whole = object_features(image, labels, cfg, tile_shape=labels.shape, batch_size=10**6)
    for tile in [(7,) * ndim, (16,) * ndim, (5,) * (ndim - 1) + (64,)]:
        _, tiled = object_features(image, labels, cfg, tile_shape=tile, batch_size=3)
        np.testing.assert_array_equal(tiled, whole)  # the boxes do not depend on the tiles
    lazy = object_features(Recording(image), Recording(labels), cfg, tile_shape=(8,) * ndim)[1]
    np.testing.assert_array_equal(lazy, whole)
    shape, intensity, ring = _whole_image_reference(image, labels, cfg)
    np.testing.assert_allclose(whole[:, : shape.shape[1]], shape, rtol=1e-10)
    first = names.index("intensity_mean_c0")
    np.testing.assert_allclose(whole[:, first : first + 5], intensity, rtol=1e-10)
    first = names.index("ring_mean_c0")
    np.testing.assert_allclose(whole[:, first : first + 5], ring, rtol=1e-10)


@pytest.mark.parametrize("ndim", [2, 3])
def test_an_object_across_tile_borders_is_measured_once_and_whole(ndim: int) -> None:
    shape = (12,) * (ndim - 2) + (40, 40)
    labels = np.zeros(shape, np.int32)
    labels[..., 5:30, 3:35] = 4  # crosses the borders of 8-pixel tiles along every axis
    labels[..., 33:36, 36:39] = 9
    image = np.where(labels > 0, 1.0, 0.1)
    names, table = object_features(image, labels, tile_shape=(8,) * ndim)
    assert table.shape[0] == 2
    np.testing.assert_array_equal(table[:, names.index("area")], [np.sum(labels == 4), np.sum(labels == 9)])
    boxes = find_object_boxes(labels, tile_shape=(8,) * ndim)
    assert boxes.ids.tolist() == [4, 9]
    assert boxes.box(0)[-2:] == (slice(5, 30), slice(3, 35))


def test_memory_is_bounded_by_a_tile_or_the_largest_crop() -> None:
    image, labels, _ = _scene(5, 2, cell=24, n_side=6)  # 144 x 144, 36 objects of at most 13 x 13 px
    lazy_labels, lazy_image = Recording(labels), Recording(image)
    cfg = ObjectFeatureConfig(ring_px=3)
    object_features(lazy_image, lazy_labels, cfg, tile_shape=(32, 32))
    boxes = find_object_boxes(labels, (32, 32))
    largest = max(int(np.prod([w.stop - w.start for w in padded_window(boxes.box(i), labels.shape, 3)]))
                  for i in range(boxes.ids.size))
    assert max(lazy_labels.reads) <= max(32 * 32, largest) < labels.size // 10
    assert max(lazy_image.reads) <= largest


def test_boxes_of_an_empty_image_and_the_doctests() -> None:
    from pixlearn.classical import object_boxes as module  # the module (the function is find_object_boxes)

    found = find_object_boxes(np.zeros((9, 9), np.uint16), tile_shape=(4, 4))
    assert isinstance(found, ObjectBoxes) and found.ids.size == 0
    names, table = object_features(np.zeros((9, 9)), np.zeros((9, 9), np.uint16), tile_shape=(4, 4))
    assert table.shape == (0, len(object_feature_names(2, 1)))
    with pytest.raises(ValueError, match="batch_size"):
        object_features(np.zeros((9, 9)), np.ones((9, 9), np.uint8), batch_size=0)
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0
