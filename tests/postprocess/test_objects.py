"""Object measurements and polygons of synthetic label images with known objects."""

from __future__ import annotations

import numpy as np
import pytest

from pixlearn.postprocess.objects import geojson_collection, object_measurements, object_polygons


def _polygon_area(ring):
    x, y = np.asarray(ring, float).T
    return 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def test_measurements_of_known_objects():
    labels = np.zeros((30, 40), np.int32)
    labels[2:6, 3:13] = 4          # 4 x 10 rectangle
    yy, xx = np.mgrid[:30, :40]
    labels[(yy - 20) ** 2 + (xx - 25) ** 2 <= 36] = 9  # disc of radius 6
    image = np.stack([labels * 1.0, np.ones_like(labels) * 3.0], -1)
    table = object_measurements(labels, image)
    assert table["label"].tolist() == [4, 9]
    assert table["area"][0] == 40 and table["area"][1] == (labels == 9).sum()
    assert table["centroid-0"][0] == pytest.approx(3.5) and table["centroid-1"][0] == pytest.approx(7.5)
    assert [table[f"bbox-{i}"][0] for i in range(4)] == [2, 3, 6, 13]
    assert table["intensity_mean-0"].tolist() == [4.0, 9.0] and table["intensity_mean-1"].tolist() == [3.0, 3.0]
    assert table["eccentricity"][1] < 0.2 < table["eccentricity"][0] and table["solidity"][0] == 1.0


def test_polygons_trace_pixel_edges():
    labels = np.zeros((20, 20), np.int32)
    yy, xx = np.mgrid[:20, :20]
    labels[(yy - 9) ** 2 + (xx - 9) ** 2 <= 25] = 1
    labels[0:3, 15:18] = 2
    labels[2, 14] = 2  # touches object 2 by a side
    labels[12:16, 0:4] = 3
    labels[13:15, 1:3] = 0  # a hole: the outer ring only
    rings = object_polygons(labels)
    assert _polygon_area(rings[1]) == (labels == 1).sum()
    assert _polygon_area(rings[2]) == (labels == 2).sum()
    assert _polygon_area(rings[3]) == 16
    for ring in rings.values():
        assert ring[0] == ring[-1] and len(set(map(tuple, ring[:-1]))) == len(ring) - 1  # closed, simple


def test_polygon_of_diagonal_pixels_keeps_the_largest_part():
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:3] = 1
    labels[3, 3] = 1  # only diagonally connected: a separate part
    assert object_polygons(labels)[1] == [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0], [1.0, 1.0]]


def test_features_and_3d():
    labels = np.zeros((10, 10), np.int32)
    labels[2:5, 2:5] = 1
    collection = geojson_collection(labels, object_measurements(labels), classification="Nucleus")
    props = collection["features"][0]["properties"]
    assert props["measurements"]["area"] == 9.0 and props["classification"] == {"name": "Nucleus"}
    volume = np.zeros((4, 8, 8), np.int32)
    volume[1:3, 2:5, 2:6] = 7
    table = object_measurements(volume)
    assert table["area"].tolist() == [24.0] and "eccentricity" not in table and "bbox-5" in table
    with pytest.raises(ValueError, match="2D"):
        object_polygons(volume)
