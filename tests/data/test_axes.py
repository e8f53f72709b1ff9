from __future__ import annotations

import numpy as np
import pytest

from pixlearn.data.axes import from_canonical, infer_axes, normalize_axes, to_canonical


@pytest.mark.parametrize(
    "shape, axes",
    [((5, 6), "YX"), ((5, 6, 3), "YXC"), ((4, 5, 6), "ZYX"), ((4, 5, 6, 2), "ZYXC"), ((7, 4, 5, 6), "CZYX")],
)
def test_infer_axes(shape, axes):
    assert infer_axes(shape) == axes


@pytest.mark.parametrize("axes", ["YX", "YXC", "CYX", "ZYX", "CZYX", "ZCYX", "XYC"])
def test_canonical_roundtrip(axes):
    rng = np.random.default_rng(0)
    shape = tuple(int(s) for s in rng.integers(2, 6, size=len(axes)))
    image = rng.random(shape)
    canon = to_canonical(image, axes)
    assert canon.ndim == (4 if "Z" in axes else 3)
    np.testing.assert_array_equal(from_canonical(canon, axes), image)


def test_time_axis_of_length_one_dropped_longer_refused():
    assert to_canonical(np.zeros((1, 5, 6)), "TYX").shape == (5, 6, 1)
    with pytest.raises(ValueError, match="time series"):
        to_canonical(np.zeros((2, 5, 6)), "TYX")


@pytest.mark.parametrize("axes, msg", [("YXX", "twice"), ("YXB", "unknown"), ("YX", "letters"), ("ZCY", "Y and X")])
def test_bad_axes(axes, msg):
    with pytest.raises(ValueError, match=msg):
        normalize_axes(axes, 3)
