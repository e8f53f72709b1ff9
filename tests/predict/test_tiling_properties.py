"""Property tests of the tiler: tiled == whole, exactly, over random shapes, tiles and overlaps.

Two analytic predictors: ``t + 1`` (no context needed) and a mean filter of known halo (the
output at a pixel depends on the input within `halo` pixels, reflected at the image border).
Exact mode must equal the whole-image result bit for bit; blended mode up to float rounding of a
weighted average of equal values. The fast suite runs 4,800 examples (split over 2D/3D and both
predictors; each example draws its mode and blend), about 15 s; ``--runslow`` runs 48,000.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from pixlearn.predict import predict_tiled
from pixlearn.predict.tiling import TileConfig

FAST = {"plus_one": 1400, "mean_filter": 1000}  # per ndim: 2 x (1400 + 1000) = 4,800 in the fast suite
SLOW_FACTOR = 10  # 48,000 with --runslow


def _mean_filter(halo: int):
    def predict(block: np.ndarray) -> np.ndarray:
        size = (2 * halo + 1,) * (block.ndim - 1) + (1,)
        return ndimage.uniform_filter(block, size=size, mode="reflect")

    return predict


@st.composite
def _case(draw, ndim: int, with_halo: bool):
    """(image, tile_shape, overlap, halo, mode, blend)."""
    halo = draw(st.integers(1, 3)) if with_halo else 0
    max_side = 36 if ndim == 2 else 12
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(ndim))
    channels = draw(st.integers(1, 2))
    mode = draw(st.sampled_from(["exact", "blended"]))
    # a tile leaves a core inside the halo: > 2 * halo where the image is larger than the tile
    tile = tuple(draw(st.integers(max(3, 2 * halo + 1), max_side + 4)) for _ in range(ndim))
    overlap = (tuple(2 * halo + draw(st.integers(0, 3)) for _ in range(ndim)) if with_halo
               else tuple(draw(st.integers(0, 4)) for _ in range(ndim)))
    overlap = tuple(min(o, t - 1) for o, t in zip(overlap, tile))
    if with_halo and mode == "blended":
        overlap = tuple(max(o, 2 * halo) if t > 2 * halo else o for o, t in zip(overlap, tile))
    blend = draw(st.sampled_from(["gaussian", "cosine", "constant"]))
    seed = draw(st.integers(0, 2**16))
    image = np.random.default_rng(seed).normal(size=shape + (channels,)).astype(np.float32)
    return image, tile, overlap, halo, mode, blend


def _check(case) -> None:
    image, tile, overlap, halo, mode, blend = case
    fn = (lambda t: t + 1) if halo == 0 else _mean_filter(halo)
    cfg = TileConfig(tile_shape=tile, overlap=overlap, mode=mode, blend=blend)
    try:
        result = predict_tiled(image, fn, cfg, halo=halo)
    except ValueError as exc:  # refused up front (e.g. overlap not below the tile): never wrong output
        assert "tile" in str(exc) or "overlap" in str(exc), exc
        return
    whole = fn(image)
    assert result.shape == whole.shape and result.dtype == np.float32
    if mode == "exact":
        np.testing.assert_array_equal(result, whole)
    else:
        np.testing.assert_allclose(result, whole, rtol=1e-5, atol=1e-5)


def _test(ndim: int, with_halo: bool, examples: int):
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=_case(ndim, with_halo))
    def test(case):
        _check(case)

    return test


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("predictor", ["plus_one", "mean_filter"])
def test_tiled_equals_whole(ndim, predictor):
    _test(ndim, predictor == "mean_filter", FAST[predictor])()


@pytest.mark.slow
@pytest.mark.fuzz
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("predictor", ["plus_one", "mean_filter"])
def test_tiled_equals_whole_long_run(ndim, predictor):
    _test(ndim, predictor == "mean_filter", SLOW_FACTOR * FAST[predictor])()
