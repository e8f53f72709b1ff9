"""Fixtures of the GUI tests: a display is needed (run under ``xvfb-run -a`` on a headless machine)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

try:  # torch before Qt (they can clash over the OpenMP runtime otherwise)
    import torch  # noqa: F401
except ImportError:
    pass

NO_DISPLAY = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the GUI tests, with the reason, where no display can be had."""
    if not NO_DISPLAY:
        return
    skip = pytest.mark.skip(reason="no display: napari needs an X server for image layers; run under `xvfb-run -a`")
    for item in items:
        if "tests/app/napari" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture
def nuclei():
    """(image uint16 (160, 160), semantic truth uint8 0/1) of synthetic nuclei, seeded."""
    from pixlearn.synthetic import SyntheticConfig, make_nuclei

    image, labels = make_nuclei(SyntheticConfig(shape=(160, 160)), np.random.default_rng(5))
    return image, (labels > 0).astype(np.uint8)
