from __future__ import annotations

import numpy as np
import pytest

from pixlearn.predict.tiling import (
    TileConfig,
    available_memory,
    axis_starts,
    blend_weights,
    choose_tile_shape,
    core_grid,
    tile_grid,
)


def test_tile_config_validates_and_round_trips(tmp_path):
    cfg = TileConfig(tile_shape=[64, 48], overlap=8, blend="cosine", batch_size=2)
    assert cfg.tile_shape == (64, 48) and cfg.overlap == (8,)
    assert TileConfig.from_dict(cfg.to_dict()) == cfg
    cfg.save(tmp_path / "tile.yaml")
    assert TileConfig.load(tmp_path / "tile.yaml") == cfg
    for bad in ({"blend": "linear"}, {"mode": "fast"}, {"tile_shape": (0, 4)}, {"overlap": -1},
                {"batch_size": 0}, {"sigma_scale": 0.0}, {"memory_budget_mib": -5}):
        with pytest.raises(ValueError):
            TileConfig(**bad)
    with pytest.raises(ValueError, match="unknown keys"):
        TileConfig.from_dict({"tile": 3})


@pytest.mark.parametrize("length", [1, 7, 40, 41, 100, 257])
@pytest.mark.parametrize("tile, overlap", [(8, 0), (16, 4), (40, 39), (64, 16)])
def test_axis_starts_even_flush_and_overlapping(length, tile, overlap):
    starts = axis_starts(length, tile, overlap)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile  # last tile flush with the border
    steps = np.diff(starts)
    assert (steps >= 1).all() and (steps <= tile - overlap).all()
    assert steps.max() - steps.min() <= 1  # evenly spaced


@pytest.mark.parametrize("length", [50, 64, 99, 130])
def test_axis_starts_with_divisor(length):
    starts = axis_starts(length, 32, 8, divisor=16)
    assert all(s % 16 == 0 for s in starts)
    assert starts[-1] + 32 >= length - 15  # the last tile reaches the border (up to divisor - 1 longer)
    assert all(a + 32 - b >= 8 for a, b in zip(starts, starts[1:]))


def test_axis_starts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        axis_starts(100, 10, 10)
    with pytest.raises(ValueError, match="divisor"):
        axis_starts(100, 10, 5, divisor=8)


@pytest.mark.parametrize("shape", [(16, 15), (5, 3), (9, 23, 19)])
def test_tile_grid_covers_image_within_bounds(shape):
    cover = np.zeros(shape, int)
    tiles = tile_grid(shape, 6, 2)
    for tile in tiles:
        assert all(0 <= s.start < s.stop <= n for s, n in zip(tile, shape))
        assert all(s.stop - s.start <= 6 for s in tile)
        cover[tile] += 1
    assert cover.min() >= 1
    assert len({tuple((s.start, s.stop) for s in t) for t in tiles}) == len(tiles)


def test_tile_grid_checks_axes():
    with pytest.raises(ValueError, match="spatial axes"):
        tile_grid((10, 10), (4, 4, 4), 1)


@pytest.mark.parametrize("shape, core, halo, divisor", [((16, 15), 5, 2, 1), ((9, 23, 19), (4, 7, 6), 3, 1),
                                                        ((37, 30), 16, 5, 8)])
def test_core_grid_partitions_and_reads_halo(shape, core, halo, divisor):
    count = np.zeros(shape, int)
    for tile in core_grid(shape, core, halo, divisor=divisor):
        count[tile.core] += 1
        for r, c, n in zip(tile.region, tile.core, shape):
            assert r.start % divisor == 0
            assert r.start <= max(0, c.start - halo) and r.stop == min(n, c.stop + halo)
        inner = tile.inner
        assert all(i.stop - i.start == c.stop - c.start for i, c in zip(inner, tile.core))
    np.testing.assert_array_equal(count, 1)


def test_core_grid_of_a_region():
    tiles = core_grid((20, 20), 4, 2, region=(slice(8, 16), slice(0, 20)))
    covered = np.zeros((20, 20), int)
    for tile in tiles:
        covered[tile.core] += 1
    assert covered[8:16].min() == 1 and covered[:8].max() == 0 and covered[16:].max() == 0
    assert min(t.region[0].start for t in tiles) == 6


@pytest.mark.parametrize("shape", [(64, 64), (31, 40), (8, 12, 10)])
def test_gaussian_weights_match_monai(shape):
    torch = pytest.importorskip("torch")
    monai_utils = pytest.importorskip("monai.inferers.utils")
    expected = monai_utils.compute_importance_map(shape, mode="gaussian", sigma_scale=0.125,
                                                  device="cpu", dtype=torch.float32).numpy()
    np.testing.assert_allclose(blend_weights(shape, "gaussian", 0.125), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["gaussian", "cosine", "constant"])
def test_blend_weights_positive_symmetric_with_zero_margins(mode):
    weights = blend_weights((12, 9), mode)
    assert weights.dtype == np.float32 and weights.min() >= 1e-3 and weights.max() <= 1.0
    np.testing.assert_allclose(weights, weights[::-1, ::-1], rtol=1e-6)
    trimmed = blend_weights((12, 9), mode, margins=[(2, 0), (1, 3)])
    assert (trimmed[:2] == 0).all() and (trimmed[:, :1] == 0).all() and (trimmed[:, -3:] == 0).all()
    assert trimmed[2:, 1:-3].min() >= 1e-3
    with pytest.raises(ValueError, match="nothing"):
        blend_weights((4,), mode, margins=[(2, 2)])


def test_choose_tile_shape_follows_budget_and_constraints():
    small = choose_tile_shape((4000, 4000), 2**22, 64.0)
    large = choose_tile_shape((4000, 4000), 2**26, 64.0)
    assert small[0] < large[0] <= 1024
    assert choose_tile_shape((4000, 4000), 2**22, 64.0, batch_size=4)[0] < small[0]
    tile = choose_tile_shape((300, 500, 500), 2**28, 100.0, halo=(2, 20, 20), divisor=16)
    assert all(t % 16 == 0 for t in tile) and max(tile) <= 128
    assert choose_tile_shape((100, 100), 10.0, 64.0, halo=30, divisor=8) == (72, 72)  # 2*halo + divisor, up to a multiple of 8
    assert choose_tile_shape((50, 70), 2**30, 4.0) == (50, 70)  # never beyond the image
    assert available_memory() > 2**20
