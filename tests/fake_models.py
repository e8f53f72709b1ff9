"""Protocol-only fake models and label images shared by the prediction tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.models.protocol import crop_outputs


class Smoother:
    """A protocol-only model: a Gaussian of the input (restore), or discs above 0.5 (instances),
    recording the block shapes it is given and the diameter it 'was trained on'."""

    kind = "fake"
    ndim = 2
    n_channels = 1
    n_outputs = 1
    halo = (6, 6)
    normalization = NormalizeConfig(mode="none")
    size_divisor = 4
    bytes_per_pixel = 16.0
    batches_tiles = True

    def __init__(self, task: str = "restore", tile_mode: str = "blended", diameter: float | None = 20.0) -> None:
        self.task, self.tile_mode, self.diameter = task, tile_mode, diameter
        self.shapes: list[tuple[int, ...]] = []

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(image, (1.5, 1.5, 0), mode="nearest").astype(np.float32)

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        self.shapes.append(blocks.shape)
        return np.stack([self.predict_raw(b) for b in blocks])

    def memory_budget_bytes(self) -> float | None:
        return None

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        return crop_outputs(self.predict_batch(blocks), inner, labels)

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        return ndimage.label(outputs[..., 0] > 0.5)[0]

    def to_metadata(self) -> dict[str, Any]:
        return {"task": self.task, "object_diameter": self.diameter}


def discs(diameter: float, shape=(160, 144)) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    step = int(diameter * 2)
    for i, (y, x) in enumerate((y, x) for y in range(step // 2, shape[0] - step // 2, step)
                               for x in range(step // 2, shape[1] - step // 2, step)):
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= (diameter / 2) ** 2] = i + 1
    return (labels > 0).astype(np.float32)[..., None], labels
