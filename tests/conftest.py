"""Shared fixtures: small synthetic images made here with fixed seeds; options for slow/GPU tests."""

from __future__ import annotations

import numpy as np
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run accuracy tests on real data")
    parser.addoption("--rungpu", action="store_true", help="run tests that need a CUDA device")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("slow", "--runslow"), ("gpu", "--rungpu")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """pixlearn's user cache (the measured precision paths) in a folder of this session, never in $HOME."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXLEARN_CACHE_DIR", str(tmp_path_factory.mktemp("pixlearn-cache")))
        yield


def _discs(shape: tuple[int, ...], n: int, radius: tuple[float, float], seed: int):
    """Noisy bright discs/balls on a dark background, with their instance labels."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    labels = np.zeros(shape, np.uint16)
    for i in range(1, n + 1):
        centre = [rng.uniform(r * 0.1, r * 0.9) for r in shape]
        rad = rng.uniform(*radius)
        dist2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
        labels[(dist2 <= rad**2) & (labels == 0)] = i
    image = (labels > 0).astype(np.float32) * 0.6 + 0.2
    image += rng.normal(0.0, 0.08, size=shape).astype(np.float32)
    return image.astype(np.float32), labels


@pytest.fixture
def blobs_2d():
    """(image float32 (48, 40), instance labels uint16) with 6 discs."""
    return _discs((48, 40), 6, (4.0, 7.0), seed=12)


@pytest.fixture
def blobs_3d():
    """(image float32 (10, 32, 28), instance labels uint16) with 4 balls."""
    return _discs((10, 32, 28), 4, (3.0, 5.0), seed=34)


@pytest.fixture
def one_torch_thread():
    """Run tiny networks on one PyTorch thread (they gain nothing from more, and on a busy
    machine threads wait for each other); the previous setting is restored afterwards."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def discs_and_squares(n: int, seed: int, size: int = 24):
    """`n` noisy images ``(size, size, 1)`` uint16, alternately a bright disc (class 0) or square
    (class 1) at a random place, with the classes ``(n,)`` and the object masks."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size, size))
    images, classes, masks = [], [], []
    for i in range(n):
        radius = rng.uniform(5.0, 7.0)
        row, col = rng.uniform(radius + 1.5, size - radius - 1.5, 2)
        if i % 2 == 0:
            mask = (grid[0] - row) ** 2 + (grid[1] - col) ** 2 <= radius**2
        else:
            mask = (np.abs(grid[0] - row) <= 0.9 * radius) & (np.abs(grid[1] - col) <= 0.9 * radius)
        image = np.clip(0.2 + 0.6 * mask + rng.normal(0.0, 0.05, (size, size)), 0.0, 1.0)
        images.append((image[..., None] * 1000).astype(np.uint16))
        classes.append(i % 2)
        masks.append(mask)
    return images, np.array(classes), masks


@pytest.fixture(scope="session")
def shapes_2d():
    """(train, test) sets of :func:`discs_and_squares`: 120 and 40 images of 24x24 pixels."""
    return discs_and_squares(120, seed=0), discs_and_squares(40, seed=1)


@pytest.fixture
def bright_dim_objects():
    """(image float32 (144, 144), instance labels int32, class per object id: 1 bright, 0 dim):
    a 6x6 grid of discs of random radius 5-9 px, each bright or dim at random, on noise."""
    rng = np.random.default_rng(21)
    size, n, step = 144, 6, 24
    grid = np.indices((size, size))
    image = rng.normal(20.0, 4.0, (size, size))
    labels = np.zeros((size, size), np.int32)
    classes = {}
    for k, (i, j) in enumerate(np.ndindex(n, n), start=1):
        centre = np.array([i, j]) * step + step // 2 + rng.integers(-2, 3, 2)
        mask = ((grid - centre[:, None, None]) ** 2).sum(axis=0) <= rng.uniform(5.0, 9.0) ** 2
        classes[k] = int(rng.random() < 0.5)
        labels[mask] = k
        image[mask] += rng.normal(180.0 if classes[k] else 70.0, 10.0, int(mask.sum()))
    return image.astype(np.float32), labels, classes
