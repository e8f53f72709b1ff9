"""A 2D model applied to a 3D stack, plane by plane.

Strongly anisotropic stacks (serial-section EM, a few confocal planes) are often best served by a
2D network, trained on their planes (:func:`pixlearn.nets.autoconfig.choose_layout`). At
prediction, :class:`PlanewiseModel` presents such a 2D model to the engine as a 3D one with no
context across planes: each block ``(B, P, M, N, C)`` is predicted as ``B * P`` planes, so tiling,
blending, every output format and Dask work unchanged on the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.models.protocol import PixelModel, crop_outputs


class PlanewiseModel:
    """A 2D `model` seen as a 3D model that predicts each plane on its own.

    Parameters
    ----------
    model : PixelModel
        A 2D model.
    """

    ndim = 3

    def __init__(self, model: PixelModel) -> None:
        if model.ndim != 2:
            raise ValueError(f"a plane-wise model wraps a 2D model, got {model.ndim}D")
        self.model = model

    kind = property(lambda self: self.model.kind)
    task = property(lambda self: self.model.task)
    n_channels = property(lambda self: self.model.n_channels)
    n_outputs = property(lambda self: self.model.n_outputs)
    tile_mode = property(lambda self: self.model.tile_mode)
    batches_tiles = property(lambda self: self.model.batches_tiles)

    @property
    def normalization(self) -> NormalizeConfig:
        return self.model.normalization

    @property
    def halo(self) -> tuple[int, ...]:
        """No context across planes."""
        return (0, *self.model.halo)

    @property
    def size_divisor(self) -> int:
        """1: planes are padded to the model's divisor in-plane (a divisor would bind the planes too)."""
        return 1

    @property
    def bytes_per_pixel(self) -> float:
        return self.model.bytes_per_pixel

    def memory_budget_bytes(self) -> float | None:
        return self.model.memory_budget_bytes()

    def to_metadata(self) -> dict[str, Any]:
        return {**self.model.to_metadata(), "planewise": True}

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        return self.predict_batch(np.asarray(image)[np.newaxis])[0]

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Every plane of every block through the 2D model, padded in-plane to its divisor."""
        blocks = np.asarray(blocks, np.float32)
        b, p, m, n, c = blocks.shape
        divisor = self.model.size_divisor
        pad_m, pad_n = -m % divisor, -n % divisor
        planes = blocks.reshape(b * p, m, n, c)
        if pad_m or pad_n:
            pad = ((0, 0), (0, pad_m), (0, pad_n), (0, 0))
            planes = np.pad(planes, pad, mode="reflect") if min(m, n) > max(pad_m, pad_n) else np.pad(planes, pad, mode="edge")
        out = self.model.predict_batch(planes)[:, :m, :n]
        return out.reshape(b, p, m, n, out.shape[-1])

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """The planes of `inner` through the 2D model's :meth:`predict_core` (no divisor to pad
        to), else :meth:`predict_batch` cropped to `inner`."""
        if self.model.size_divisor != 1:
            return crop_outputs(self.predict_batch(blocks), inner, labels)
        planes = np.asarray(blocks, np.float32)[:, inner[0]]
        b, p = planes.shape[:2]
        out = self.model.predict_core(planes.reshape((b * p,) + planes.shape[2:]), tuple(inner[1:]), labels)
        return out.reshape((b, p) + out.shape[1:])

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Objects of each plane, numbered through the stack (a 2D model knows no 3D objects)."""
        labels = np.zeros(outputs.shape[:-1], np.int64)
        offset = 0
        for z in range(outputs.shape[0]):
            plane = np.asarray(self.model.instances_from_outputs(outputs[z]), np.int64)
            labels[z] = np.where(plane > 0, plane + offset, 0)
            offset = max(offset, int(labels[z].max()))
        return labels


def planewise_for(model: PixelModel, shape: Sequence[int]) -> PixelModel:
    """`model`, or a :class:`PlanewiseModel` of it when a 2D model meets a 3D canonical `shape`."""
    return PlanewiseModel(model) if model.ndim == 2 and len(shape) == 4 else model
