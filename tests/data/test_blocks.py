"""The one block grid of pixlearn.data.blocks: cores partition the image, regions hold the halo."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import pixlearn.data.blocks
from pixlearn.data.blocks import Block, block_grid, block_numbers, pad_block


def test_doctests() -> None:
    result = doctest.testmod(pixlearn.data.blocks, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "shape, block, halo, divisor",
    [((16, 15), (5, 4), 0, 1), ((16, 15), 5, 2, 1), ((9, 23, 19), (4, 7, 6), (1, 3, 2), 1), ((37, 30), 16, 5, 8),
     ((3, 4), (8, 8), 2, 1)],
)
def test_cores_partition_the_image_in_c_order(shape, block, halo, divisor):
    blocks = block_grid(shape, block, halo, divisor=divisor)
    count = np.zeros(shape, int)
    for b in blocks:
        assert isinstance(b, Block)
        count[b.core] += 1
        padded, inner = pad_block(b.core, shape, halo, divisor=divisor)
        assert b.region == padded and b.inner == inner
        assert all(r.start % divisor == 0 for r in b.region)
    np.testing.assert_array_equal(count, 1)
    starts = [tuple(s.start for s in b.core) for b in blocks]
    assert starts == sorted(starts)  # C order: last axis fastest


def test_region_read_around_a_core_is_its_halo_clipped():
    shape = (20, 11)
    for b in block_grid(shape, (6, 4), (2, 3)):
        for r, c, n, h in zip(b.region, b.core, shape, (2, 3)):
            assert r.start == max(0, c.start - h) and r.stop == min(n, c.stop + h)


def test_grid_of_a_region_covers_only_it():
    blocks = block_grid((20, 20), 4, 2, region=(slice(8, 16), slice(0, 20)))
    covered = np.zeros((20, 20), int)
    for b in blocks:
        covered[b.core] += 1
    assert covered[8:16].min() == 1 and covered[:8].max() == 0 and covered[16:].max() == 0
    assert min(b.region[0].start for b in blocks) == 6


@pytest.mark.parametrize("shape, block", [((17, 9), (4, 5)), ((6, 13, 10), (3, 4, 10)), ((5, 5), (8, 8))])
def test_block_numbers_index_the_grid(shape, block):
    rng = np.random.default_rng(3)
    n = int(np.prod(shape))
    flat = rng.choice(n, size=min(40, n), replace=False)
    coords = np.unravel_index(flat, shape)
    grid = block_grid(shape, block)
    for i, number in enumerate(block_numbers(coords, shape, block)):
        core = grid[number].core
        assert all(s.start <= c[i] < s.stop for s, c in zip(core, coords))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"block_shape": (0, 2)}, "block_shape"), ({"block_shape": 2, "halo": -1}, "halo"),
     ({"block_shape": 2, "divisor": 0}, "divisor"), ({"block_shape": (2, 2, 2)}, "spatial axes")],
)
def test_bad_grids_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        block_grid((4, 4), **kwargs)
