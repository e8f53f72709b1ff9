"""Tiles from a memory budget: exact cores as large as the budget allows, what the model and outputs leave."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixlearn.classical.config import ClassifierConfig, ForestConfig
from pixlearn.classical.features import FeatureConfig
from pixlearn.classical.fit import fit_pixel_classifier
from pixlearn.data.memory import resident_memory
from pixlearn.predict._machinery import MIN_TILE_BUDGET, budget_tiles, make_setup, prepare_job
from pixlearn.predict.tiling import TileConfig

MiB = 2**20


@pytest.mark.parametrize("budget_mib", [64, 256, 1024, 4096])
def test_exact_tiles_fit_the_budget_and_are_mostly_core(budget_mib):
    shape, halo, bpp = (5, 1024, 1024), (5, 46, 46), 360.0
    setup = make_setup(shape, TileConfig(memory_budget_mib=budget_mib, batch_size=1), halo, 1, None, bpp)
    assert math.prod(setup.tile) * bpp <= budget_mib * MiB
    assert setup.tile[0] == 5 and setup.core[0] == 5  # the few planes are whole: no halo across them
    if budget_mib >= 1024:
        assert setup.core[1] >= 512  # not the 1-pixel cores of a 93-pixel cube
    if 5 * 1024 * 1024 * bpp <= budget_mib * MiB:
        assert setup.tile == shape  # one tile, no halo at all
    smaller = make_setup(shape, TileConfig(memory_budget_mib=budget_mib, batch_size=4), halo, 1, None, bpp)
    assert math.prod(smaller.tile) * bpp * 4 <= budget_mib * MiB  # a batch of 4 tiles fits too


def _model():
    rng = np.random.default_rng(0)
    image = rng.random((3, 16, 16, 1), dtype=np.float32)
    return image, fit_pixel_classifier([image], [(image[..., 0] > 0.5).astype(np.int64)],
                                       FeatureConfig(sigmas=(1.0,), spacing=(4.0, 1.0, 1.0)),
                                       ClassifierConfig(rf=ForestConfig(n_estimators=3)))


def test_tiles_get_what_the_model_and_the_outputs_leave():
    image, model = _model()
    job = prepare_job(model, image, tta=False)
    cfg = TileConfig()
    assert budget_tiles(job, cfg, None, 0) is cfg  # no budget: the tile configuration decides
    assert budget_tiles(job, TileConfig(tile_shape=(3, 8, 8)), 2**40, 0).memory_budget_mib is None
    budget_tiles(job, cfg, resident_memory() + 300 * MiB, 0)  # the model's first prediction, done once
    total = resident_memory() + 300 * MiB
    plenty = budget_tiles(job, cfg, total, 0).memory_budget_mib
    held = budget_tiles(job, cfg, total, 100 * MiB).memory_budget_mib
    assert plenty is not None and held is not None
    # the process's resident memory moves by a few pages between two readings (a CI run saw 300.004)
    assert 150 < plenty <= 304 and held == pytest.approx(plenty - 100, abs=20)
    assert budget_tiles(job, cfg, 1, 0).memory_budget_mib == MIN_TILE_BUDGET / MiB


def test_blended_tiles_chosen_from_a_budget_are_at_least_four_halos_long():
    """Regression: a 2D network of halo 128 applied plane by plane (halo (0, 128, 128)) got 3D tiles
    capped at 128 px, so 257 px tiles with one pixel of core each: days for a 5 x 1024 x 1024 stack."""
    setup = make_setup((5, 1024, 1024), TileConfig(mode="blended", memory_budget_mib=1024), (0, 128, 128), 1, None, 300.0)
    assert setup.tile[1:] == (512, 512) and setup.core[1:] == (256, 256)
    small = make_setup((5, 300, 1024), TileConfig(mode="blended", memory_budget_mib=1024), (0, 128, 128), 1, None, 300.0)
    assert small.tile[1] == 300  # never longer than the image
    plain = make_setup((64, 64), TileConfig(mode="blended", memory_budget_mib=64), (4, 4), 8, None, 300.0)
    assert plain.tile == (64, 64)  # what the budget gives, when it is more
