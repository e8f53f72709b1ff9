"""Memory budgets, voxel spacing of files, and the core shapes a budget allows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile

from pixlearn.data.blocks import core_shape_for_budget
from pixlearn.data.memory import MIN_BUDGET, default_memory_budget, parse_memory, resident_memory
from pixlearn.data.spacing import file_spacing, parse_spacing, relative_spacing


@pytest.mark.parametrize("text, expected", [("2GiB", 2 * 2**30), ("2 gib", 2 * 2**30), ("1.5G", 1_500_000_000),
                                            ("300MiB", 300 * 2**20), ("4000000000", 4_000_000_000)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["two", "2 parsecs", "-1G", "", "10MiB"])
def test_parse_memory_refuses(text):
    with pytest.raises(ValueError):
        parse_memory(text)


def test_default_budget_is_a_fraction_of_ram_at_most_what_is_available():
    assert default_memory_budget(total=64 * 2**30, available=60 * 2**30) == 16 * 2**30
    assert default_memory_budget(total=64 * 2**30, available=3 * 2**30) == 3 * 2**30
    assert default_memory_budget(total=2**30, available=2**20) == MIN_BUDGET
    assert MIN_BUDGET <= default_memory_budget() and resident_memory() > 0


def test_spacing_from_imagej_and_ome_tiff(tmp_path):
    stack = np.zeros((3, 8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, resolution=(1 / 0.0046, 1 / 0.0046),
                     metadata={"spacing": 0.05, "unit": "um", "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "ome.tif", stack, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeZ": 50.0, "PhysicalSizeY": 4.6, "PhysicalSizeX": 4.6})
    tifffile.imwrite(tmp_path / "plain.tif", stack)
    tifffile.imwrite(tmp_path / "inplane.tif", stack, resolution=(100.0, 100.0), resolutionunit="CENTIMETER")
    assert file_spacing(tmp_path / "ij.tif", 3) == pytest.approx((0.05, 0.0046, 0.0046))
    assert file_spacing(tmp_path / "ome.tif", 3) == pytest.approx((50.0, 4.6, 4.6))
    assert file_spacing(tmp_path / "plain.tif", 3) is None
    assert file_spacing(tmp_path / "inplane.tif", 3) is None  # no plane spacing: not guessed
    assert file_spacing(tmp_path / "inplane.tif", 2) == pytest.approx((100.0, 100.0))
    assert relative_spacing(file_spacing(tmp_path / "ij.tif", 3)) == (10.8696, 1.0, 1.0)


def test_parse_spacing():
    assert parse_spacing("50,4.6,4.6") == (50.0, 4.6, 4.6)
    assert parse_spacing("2,1", ndim=2) == (2.0, 1.0)
    for bad in ("50;4.6", "0,1,1", "1", "1,2,3,4", "nan,1,1"):
        with pytest.raises(ValueError):
            parse_spacing(bad)
    with pytest.raises(ValueError, match="2 spatial axes"):
        parse_spacing("3,1,1", ndim=2)


@pytest.mark.parametrize("budget", [2**22, 2**25, 2**28, 2**31])
@pytest.mark.parametrize("shape, halo", [((5, 1024, 1024), (5, 46, 46)), ((200, 300), (20, 20)),
                                         ((64, 64, 64), (3, 3, 3))])
def test_core_shapes_fit_the_budget(budget, shape, halo):
    bpp = 360.0
    cores = core_shape_for_budget(shape, halo, budget, bpp)
    block = [n if c >= n else min(n, c + 2 * h) for n, c, h in zip(shape, cores, halo)]
    assert all(1 <= c <= n for c, n in zip(cores, shape))
    if any(c > 1 for c in cores):  # a budget too small for one pixel of core gets the smallest
        assert math.prod(block) * bpp <= budget
    # the cores are as large as the budget allows: one more pixel of edge would not fit
    if math.prod(shape) * bpp <= budget:
        assert cores == shape
    # the result depends on the budget, never grows with a smaller one
    assert all(a <= b for a, b in zip(core_shape_for_budget(shape, halo, budget / 4, bpp), cores))


def test_short_axes_are_whole_and_cores_even():
    assert core_shape_for_budget((5, 1024, 1024), (5, 46, 46), 2**29, 400.0) == (5, 342, 342)
    assert core_shape_for_budget((5, 1024, 1024), (5, 46, 46), 2**31, 400.0) == (5, 1024, 1024)
    assert core_shape_for_budget((10, 10), 2, 16, 1.0, divisor=4) == (4, 4)
