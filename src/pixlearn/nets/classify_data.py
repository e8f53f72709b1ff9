"""Training data of image classifiers: shape fitting, augmentation, splits, balance, a Dataset.

Images are canonical ``(M, N, C)`` or ``(P, M, N, C)`` float32 arrays, already normalised;
labels are class indices ``0..K-1``. Every random choice comes from an explicit
:class:`numpy.random.Generator`; :class:`ClassifyDataset` derives one per item from
``(seed, epoch, index)``, as :class:`pixlearn.nets.patches.PatchDataset` does, so an item does not
depend on what ran before and a resumed run draws what the uninterrupted one would have. Torch is
imported only when an item is made.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.errors import PixlearnError
from pixlearn.nets.classify_config import ClassifyAugmentConfig

logger = logging.getLogger(__name__)


def fit_to_shape(image: np.ndarray, shape: Sequence[int], rng: np.random.Generator | None = None) -> np.ndarray:
    """Pad (with edge values) or crop a canonical image to the spatial `shape`.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
    shape : sequence of int
        Target spatial shape.
    rng : numpy.random.Generator, optional
        Random crop and pad offsets; ``None``: centred.

    Returns
    -------
    image : ndarray of shape (*shape, C)
        A view when nothing is padded.

    Examples
    --------
    >>> fit_to_shape(np.zeros((5, 9, 2)), (7, 4)).shape
    (7, 4, 2)
    """
    spatial = image.shape[:-1]
    if len(shape) != len(spatial):
        raise PixlearnError(f"input shape {tuple(shape)} does not fit an image of spatial shape {spatial}")
    pads, crops = [], []
    for size, target in zip(spatial, shape):
        extra = max(0, target - size)
        before = int(rng.integers(extra + 1)) if rng is not None else extra // 2
        pads.append((before, extra - before))
        excess = max(0, size - target)
        start = int(rng.integers(excess + 1)) if rng is not None else excess // 2
        crops.append(slice(start, start + min(size, target)))
    out = image[tuple(crops)]
    if any(p != (0, 0) for p in pads):
        out = np.pad(out, pads + [(0, 0)], mode="edge")
    return out


def _affine(image: np.ndarray, angle_deg: float, scale: float) -> np.ndarray:
    """Rotate by `angle_deg` in the row/column plane and zoom by `scale`, about the centre."""
    nd = image.ndim - 1
    theta = math.radians(angle_deg)
    matrix = np.eye(nd)
    matrix[-2:, -2:] = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) / scale
    if nd == 3:
        matrix[0, 0] = 1.0 / scale
    centre = (np.array(image.shape[:-1], np.float64) - 1) / 2
    offset = centre - matrix @ centre
    return np.stack([ndimage.affine_transform(image[..., c], matrix, offset=offset, order=1, mode="reflect")
                     for c in range(image.shape[-1])], axis=-1)


def augment_image(image: np.ndarray, rng: np.random.Generator, cfg: ClassifyAugmentConfig | None = None) -> np.ndarray:
    """Randomly flip, rotate, zoom, blur and change the intensities of one normalised image.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C), float32
    rng : numpy.random.Generator
    cfg : ClassifyAugmentConfig, optional
        Default ``ClassifyAugmentConfig()``.

    Returns
    -------
    image : ndarray, float32
        A new contiguous array of the same shape (the input is not modified).

    Examples
    --------
    >>> out = augment_image(np.ones((8, 8, 3), np.float32), np.random.default_rng(0))
    >>> out.shape, out.dtype
    ((8, 8, 3), dtype('float32'))
    """
    cfg = ClassifyAugmentConfig() if cfg is None else cfg
    nd = image.ndim - 1
    if cfg.flips:
        for axis in range(nd):
            if rng.random() < 0.5:
                image = np.flip(image, axis)
    if cfg.rotations:
        square = image.shape[nd - 2] == image.shape[nd - 1]
        k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        image = np.rot90(image, k, axes=(nd - 2, nd - 1))
    angle = float(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)) if cfg.rotation_deg else 0.0
    scale = float(np.exp(rng.uniform(*np.log(cfg.scale_range))))
    image = np.array(image, dtype=np.float32)  # a copy: never hand back a view of the input
    if angle or scale != 1.0:
        image = _affine(image, angle, scale)
    if cfg.blur_probability and rng.random() < cfg.blur_probability:
        sigma = float(rng.uniform(*cfg.blur_sigma_px))
        image = ndimage.gaussian_filter(image, sigma=(sigma,) * nd + (0.0,))
    return _jitter_intensity(image, rng, cfg)


def _jitter_intensity(image: np.ndarray, rng: np.random.Generator, cfg: ClassifyAugmentConfig) -> np.ndarray:
    """Contrast about the mean, brightness shift, per-channel colour gain, additive noise."""
    if cfg.contrast:
        mean = image.mean(axis=tuple(range(image.ndim - 1)), keepdims=True)
        image = mean + (image - mean) * np.float32(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast))
    if cfg.brightness:
        image = image + np.float32(rng.uniform(-cfg.brightness, cfg.brightness))
    if cfg.colour and image.shape[-1] > 1:
        image = image * np.asarray(rng.uniform(1 - cfg.colour, 1 + cfg.colour, image.shape[-1]), np.float32)
    if cfg.noise_std:
        image = image + np.asarray(rng.normal(0.0, rng.uniform(0.0, cfg.noise_std), image.shape), np.float32)
    return np.ascontiguousarray(image, dtype=np.float32)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `fraction` of each class (at least one image of every class with two or more).

    Parameters
    ----------
    labels : ndarray of shape (n,), integer
    fraction : float
        Share held out per class, in [0, 1).
    seed : int

    Returns
    -------
    train, validation : ndarray of int64
        Sorted indices into `labels`; a class with a single image is only trained on.

    Examples
    --------
    >>> train, val = stratified_split(np.array([0, 0, 0, 0, 1, 1]), 0.25, seed=0)
    >>> len(train), len(val), sorted(np.array([0, 0, 0, 0, 1, 1])[val].tolist())
    (4, 2, [0, 1])
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if fraction <= 0 or len(members) < 2:
            continue
        n_val = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        held.extend(int(i) for i in rng.permutation(members)[:n_val])
    val = np.array(sorted(held), np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val).astype(np.int64)
    return train, val


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse class frequencies, scaled to mean 1 over the classes present (0 for absent ones).

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 3).round(3).tolist()
    [0.5, 1.5, 0.0]
    """
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    present = counts > 0
    return (weights / weights[present].mean()).astype(np.float32)


def dataset_bounds(images: Sequence[np.ndarray], pmin: float = 1.0, pmax: float = 99.8,
                   max_values: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel percentiles `pmin`, `pmax` of the pixels of all `images` (a strided sample).

    Returns
    -------
    low, high : ndarray of shape (C,), float32
        ``high > low`` (a flat channel gets ``high = low + 1``).
    """
    n_channels = images[0].shape[-1]
    per_image = max(1, max_values // len(images))
    samples = []
    for image in images:
        flat = np.asarray(image).reshape(-1, n_channels)
        samples.append(flat[:: max(1, len(flat) // per_image)])
    low, high = np.percentile(np.concatenate(samples).astype(np.float32), [pmin, pmax], axis=0).astype(np.float32)
    return low, np.where(high > low, high, low + 1).astype(np.float32)


class ClassifyDataset:
    """Torch map-style dataset of (image, class) items from in-memory normalised images.

    Training items (`augmentation` given) draw an image with ``default_rng([seed, epoch, index])``:
    with `balanced`, a class uniformly, then one of its images; else the epoch's permutation.
    The image is fitted to `input_shape` (random offsets) and augmented. Validation items (no
    `augmentation`) are the images in order, centred.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C), float32
    labels : ndarray of shape (n,), integer
    input_shape : sequence of int
    length : int, optional
        Items per epoch; default one per image.
    seed : int
    augmentation : ClassifyAugmentConfig, optional
        ``None``: the fixed validation items.
    balanced : bool
        Draw every class equally often (training items only).
    """

    def __init__(self, images: Sequence[np.ndarray], labels: np.ndarray, input_shape: Sequence[int], *,
                 length: int | None = None, seed: int = 0, augmentation: ClassifyAugmentConfig | None = None,
                 balanced: bool = False) -> None:
        if len(images) != len(labels) or not len(images):
            raise PixlearnError(f"need one label per image (got {len(images)} images, {len(labels)} labels), at least one")
        self.images = list(images)
        self.labels = np.asarray(labels, np.int64)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.length = len(self.images) if length is None else int(length)
        self.seed = int(seed)
        self.augmentation = augmentation
        self.members = [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
        self.balanced = bool(balanced)
        self.epoch = 0
        self._order: np.ndarray | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of epoch `epoch`."""
        self.epoch = int(epoch)
        self._order = None

    def __len__(self) -> int:
        return self.length

    def _pick(self, index: int, rng: np.random.Generator) -> int:
        if self.augmentation is None:
            return index % len(self.images)
        if self.balanced:
            members = self.members[int(rng.integers(len(self.members)))]
            return int(members[rng.integers(len(members))])
        if self._order is None:
            n = len(self.images)
            rounds = -(-self.length // n)
            stream = np.random.default_rng([self.seed, self.epoch])
            self._order = np.concatenate([stream.permutation(n) for _ in range(rounds)])
        return int(self._order[index])

    def item(self, index: int) -> tuple[np.ndarray, int]:
        """Item `index` of the current epoch as (image ``(*input_shape, C)`` float32, class)."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        chosen = self._pick(int(index), rng)
        train = self.augmentation is not None
        image = fit_to_shape(self.images[chosen], self.input_shape, rng if train else None)
        if self.augmentation is not None:
            image = augment_image(image, rng, self.augmentation)
        return np.ascontiguousarray(image, dtype=np.float32), int(self.labels[chosen])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        image, label = self.item(index)
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0))), torch.tensor(label)


__all__ = ["ClassifyDataset", "augment_image", "class_weights", "dataset_bounds", "fit_to_shape", "stratified_split"]
