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
