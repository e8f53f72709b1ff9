"""Objects of another size: run a model on its input resized so that objects reach the size it
was trained on, as Cellpose does with its diameter.

:class:`ScaledModel` wraps any :class:`~pixlearn.models.protocol.PixelModel`: each block the
engine hands it is resized by `factor` (linear interpolation), predicted, and its outputs
resized back, so tiling, blending, instance labelling and every output format work unchanged
at the image's own size. :func:`scale_for` chooses the factor from the object diameter the
model records (``object_diameter`` in its metadata, the median of its training objects) and
the diameter of the objects in the image: given by the user, or ``"auto"``, estimated from a
first pass at the image's own scale. More passes (``passes=2``: the model run again at the scale
the first estimate implies, for a model that misjudges objects far from its trained size) are
an option, not the default: on the DSB2018 test split they scored pooled AP@0.5 0.720 against
0.723 for one pass, with the same scale-normalised model (``benchmarks/recipe.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from pixlearn.data.labels import median_object_diameter
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.errors import PixlearnError
from pixlearn.models.protocol import PixelModel, crop_outputs

#: Factors this close to 1 are not worth resampling for.
KEEP_SCALE = (0.9, 1.1)
#: The factor is clipped to this range (an estimate far outside it is a failed first pass).
SCALE_LIMITS = (0.25, 4.0)
#: ``"auto"`` estimates the diameter on a centred crop of at most this many pixels per axis.
ESTIMATE_CROP = 1024


class ScaledModel:
    """A model applied to its input resized by `factor` (> 1 enlarges), outputs resized back.

    Parameters
    ----------
    model : PixelModel
    factor : float
        Resize factor of every spatial axis, in :data:`SCALE_LIMITS`.
    """

    def __init__(self, model: PixelModel, factor: float) -> None:
        if not SCALE_LIMITS[0] <= factor <= SCALE_LIMITS[1]:
            raise ValueError(f"scale factor {factor} outside {SCALE_LIMITS}")
        self.model = model
        self.factor = float(factor)

    kind = property(lambda self: self.model.kind)
    task = property(lambda self: self.model.task)
    ndim = property(lambda self: self.model.ndim)
    n_channels = property(lambda self: self.model.n_channels)
    n_outputs = property(lambda self: self.model.n_outputs)
    batches_tiles = property(lambda self: self.model.batches_tiles)

    @property
    def tile_mode(self) -> str:
        """``"blended"``: resampling a tile is not exactly resampling the whole image there."""
        return "blended"

    @property
    def normalization(self) -> NormalizeConfig:
        return self.model.normalization

    @property
    def halo(self) -> tuple[int, ...]:
        """The model's halo in this image's pixels, plus one for the interpolation."""
        return tuple(math.ceil(h / self.factor) + 1 for h in self.model.halo)

    @property
    def size_divisor(self) -> int:
        """1: blocks are padded to the model's divisor after resizing."""
        return 1

    @property
    def bytes_per_pixel(self) -> float:
        return self.model.bytes_per_pixel * self.factor**self.ndim + 8.0 * (self.n_channels + self.n_outputs)

    def memory_budget_bytes(self) -> float | None:
        return self.model.memory_budget_bytes()

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """:meth:`predict_batch` of the whole blocks, cropped to `inner` (the blocks are resampled whole)."""
        return crop_outputs(self.predict_batch(blocks), inner, labels)

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        return self.model.instances_from_outputs(outputs)

    def to_metadata(self) -> dict[str, Any]:
        return {**self.model.to_metadata(), "scale": self.factor}

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        return self.predict_batch(np.asarray(image)[np.newaxis])[0]

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Resize each block by :attr:`factor`, pad it to the model's divisor, predict, crop and
        resize the outputs back to the block's shape."""
        blocks = np.asarray(blocks, np.float32)
        spatial = blocks.shape[1:-1]
        scaled = tuple(max(1, round(s * self.factor)) for s in spatial)
        divisor = self.model.size_divisor
        padded = tuple(-(-s // divisor) * divisor for s in scaled)
        big = np.stack([_resized(block, scaled) for block in blocks])
        pad = [(0, 0)] + [(0, p - s) for p, s in zip(padded, scaled)] + [(0, 0)]
        out = self.model.predict_batch(np.pad(big, pad, mode="reflect" if min(scaled) > 1 else "edge"))
        crop = (slice(None),) + tuple(slice(0, s) for s in scaled)
        return np.stack([_resized(o, spatial) for o in out[crop]]).astype(np.float32, copy=False)


def _resized(block: np.ndarray, spatial: tuple[int, ...]) -> np.ndarray:
    """Linear resize of a ``(..., C)`` block to `spatial` (channels kept)."""
    if tuple(block.shape[:-1]) == tuple(spatial):
        return block
    return resize(block, tuple(spatial) + block.shape[-1:], order=1, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype(np.float32, copy=False)


def trained_diameter(model: PixelModel) -> float | None:
    """The median diameter (px) of the objects a model was trained on, if it records one."""
    value = model.to_metadata().get("object_diameter")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def estimate_diameter(model: PixelModel, image: Any, *, passes: int = 1) -> float | None:
    """Median diameter (px) of the objects `model` finds in `image` (a centred crop of at most
    :data:`ESTIMATE_CROP` pixels per axis); ``None`` when it finds none.

    The first pass runs at the image's own scale; each further pass runs the model at the scale
    the last estimate implies (:func:`scale_for`) and measures again, at the image's scale. A pass
    that finds nothing keeps the last estimate.
    """
    found = _found_diameter(model, image)
    for _ in range(passes - 1):
        trained = trained_diameter(model)
        if found is None or trained is None:
            break
        factor = float(np.clip(trained / found, *SCALE_LIMITS))
        if KEEP_SCALE[0] <= factor <= KEEP_SCALE[1]:
            break
        found = _found_diameter(ScaledModel(model, factor), image) or found
    return found


def _found_diameter(model: PixelModel, image: Any) -> float | None:
    """Median diameter (px) of the objects one pass of `model` finds in a centred crop of `image`."""
    from pixlearn.predict.apply import apply_model

    spatial = image.shape[:-1]
    crop = tuple(slice(max(0, (s - ESTIMATE_CROP) // 2), max(0, (s - ESTIMATE_CROP) // 2) + ESTIMATE_CROP)
                 for s in spatial)
    labels = np.asarray(apply_model(model, np.asarray(image[crop])))
    if model.task != "instances":  # class maps: the connected components of the foreground
        labels = ndimage.label(labels > 0)[0]
    return median_object_diameter([labels])


def scale_for(model: PixelModel, image: Any, diameter: float | str | None, path: Any = None, *,
              passes: int = 1) -> PixelModel:
    """`model` itself, or a :class:`ScaledModel` that brings objects of `diameter` px to the
    model's trained diameter.

    Parameters
    ----------
    model : PixelModel
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Used only for ``diameter="auto"``.
    diameter : float, "auto" or None
        The median object diameter in `image` (px); ``"auto"``: estimated by a first pass;
        ``None``: the model as it is.
    path : path-like, optional
        Named in errors.
    passes : int
        Passes of the ``"auto"`` estimate (:func:`estimate_diameter`).

    Raises
    ------
    PixlearnError
        A model that records no training diameter, or a diameter that is not positive.
    """
    if diameter is None:
        return model
    trained = trained_diameter(model)
    if trained is None:
        raise PixlearnError("this model does not record the size of its training objects (an instance network "
                            "trained by pixlearn does); predict without --diameter", path)
    if diameter == "auto":
        found = estimate_diameter(model, image, passes=passes)
        diameter = trained if found is None else found
    if isinstance(diameter, str) or not diameter > 0:
        raise PixlearnError(f"--diameter must be a positive number of pixels or 'auto', got {diameter!r}", path)
    factor = float(np.clip(trained / float(diameter), *SCALE_LIMITS))
    return model if KEEP_SCALE[0] <= factor <= KEEP_SCALE[1] else ScaledModel(model, factor)
