"""Training patches from in-memory image/target pairs: sampling, augmentation, a torch Dataset.

Images are canonical ``(..., C)`` float32 arrays, already normalised (see
:func:`normalize_images`). Targets have the same spatial shape and are either class indices
``(...)`` int64 (with :data:`pixlearn.data.labels.IGNORE` for unannotated pixels) or float maps
``(..., K)`` (instance representation, restoration targets). All randomness comes from an explicit
:class:`numpy.random.Generator`; :class:`PatchDataset` derives one per item from
``(seed, epoch, index)``, so a patch does not depend on worker count or on what ran before,
which makes resumed training repeat an uninterrupted run exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from pixlearn.data.normalize import (
    NormalizeConfig,
    apply_normalization,
    compute_normalization,
)
from pixlearn.errors import PixlearnError
from pixlearn.nets.colour import jitter_colour
from pixlearn.nets.config import NO_AUGMENT as NO_AUGMENT  # re-exported from its new home
from pixlearn.nets.config import AugmentConfig
from pixlearn.nets.scaling import draw_zoom, resize_patch, zoomed_region


def normalize_images(images: Sequence[np.ndarray], cfg: NormalizeConfig) -> list[np.ndarray]:
    """Normalise canonical images one by one (per image and channel for ``"percentile"``).

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)
    cfg : NormalizeConfig

    Returns
    -------
    images : list of ndarray, float32, same shapes
    """
    out = []
    for image in images:
        low, high = compute_normalization(image, cfg)
        out.append(apply_normalization(image, low, high))
    return out


def _check_pair(image: np.ndarray, target: np.ndarray, patch_shape: tuple[int, ...], index: int) -> None:
    spatial = image.shape[:-1]
    if target.shape[: len(spatial)] != spatial:
        raise PixlearnError(f"pair {index}: image has spatial shape {spatial} but its target {target.shape}")
    if len(patch_shape) != len(spatial):
        raise PixlearnError(f"patch shape {patch_shape} has {len(patch_shape)} axes but pair {index} is {len(spatial)}D")
    if any(s < p for s, p in zip(spatial, patch_shape)):
        raise PixlearnError(f"pair {index}: image of spatial shape {spatial} is smaller than the patch {patch_shape}")


def _patch_start(
    spatial: tuple[int, ...], patch_shape: tuple[int, ...], rng: np.random.Generator, centre: np.ndarray | None
) -> tuple[int, ...]:
    if centre is None:
        return tuple(int(rng.integers(0, s - p + 1)) for s, p in zip(spatial, patch_shape))
    starts = []
    for c, s, p in zip(centre, spatial, patch_shape):
        jitter = int(rng.integers(-(p // 4), p // 4 + 1)) if p >= 4 else 0
        starts.append(int(np.clip(int(c) - p // 2 + jitter, 0, s - p)))
    return tuple(starts)


def _draw_patch(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    patch_shape: tuple[int, ...],
    rng: np.random.Generator,
    foreground: Sequence[np.ndarray | None],
    foreground_fraction: float,
    zoom: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One patch: pick an image (by size), then a random or a foreground-centred position; with a
    `zoom` other than 1, a region of about ``patch_shape / zoom`` resized to the patch."""
    sizes = np.array([np.prod(im.shape[:-1]) for im in images], dtype=np.float64)
    i = int(rng.choice(len(images), p=sizes / sizes.sum()))
    spatial = images[i].shape[:-1]
    region = patch_shape if zoom == 1.0 else zoomed_region(patch_shape, spatial, zoom)
    fg = foreground[i]
    centre = None
    if fg is not None and len(fg) and rng.random() < foreground_fraction:
        centre = np.asarray(np.unravel_index(int(fg[rng.integers(len(fg))]), spatial))
    start = _patch_start(spatial, region, rng, centre)
    box = tuple(slice(a, a + p) for a, p in zip(start, region))
    return resize_patch(images[i][box], targets[i][box], patch_shape)


def _foreground_indices(masks: Sequence[np.ndarray | None] | None, n: int) -> list[np.ndarray | None]:
    if masks is None:
        return [None] * n
    return [None if m is None else np.flatnonzero(np.asarray(m)) for m in masks]


def sample_patches(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    patch_shape: Sequence[int],
    n: int,
    rng: np.random.Generator,
    *,
    foreground: Sequence[np.ndarray | None] | None = None,
    foreground_fraction: float = 0.33,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `n` random patches from image/target pairs, oversampling foreground.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C), float32
    targets : sequence of ndarray of shape (M, N[, K]) or (P, M, N[, K])
        Same spatial shape as the image of the pair.
    patch_shape : sequence of int
        Spatial patch shape, e.g. ``(128, 128)`` or ``(16, 64, 64)``.
    n : int
        Number of patches.
    rng : numpy.random.Generator
    foreground : sequence of bool ndarray or None, optional
        Per pair, pixels worth centring a patch on (objects, rare classes, annotated scribble
        pixels). ``None``: uniform sampling only.
    foreground_fraction : float
        Share of patches centred (with jitter) on a random foreground pixel.

    Returns
    -------
    image_patches : ndarray of shape (n, *patch_shape, C)
    target_patches : ndarray of shape (n, *patch_shape[, K])

    Raises
    ------
    PixlearnError
        Mismatched pair shapes, or an image smaller than the patch.

    Examples
    --------
    >>> x, y = sample_patches([np.zeros((20, 30, 1), np.float32)], [np.zeros((20, 30), np.int64)],
    ...                       (8, 8), 3, np.random.default_rng(0))
    >>> x.shape, y.shape
    ((3, 8, 8, 1), (3, 8, 8))
    """
    patch_shape = tuple(int(p) for p in patch_shape)
    if len(images) != len(targets) or not images:
        raise PixlearnError(f"need as many targets as images (got {len(images)} and {len(targets)}), at least one")
    for i, (image, target) in enumerate(zip(images, targets)):
        _check_pair(image, target, patch_shape, i)
    fg = _foreground_indices(foreground, len(images))
    pairs = [_draw_patch(images, targets, patch_shape, rng, fg, foreground_fraction) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _elastic(image: np.ndarray, target: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray]:
    spatial = image.shape[:-1]
    coords = np.indices(spatial, dtype=np.float32)
    for axis in range(len(spatial)):
        field = rng.standard_normal(spatial).astype(np.float32)
        field = ndimage.gaussian_filter(field, cfg.elastic_sigma_px)
        field *= cfg.elastic_alpha_px / (np.abs(field).max() + 1e-6)
        coords[axis] += field
    warped = np.stack(
        [ndimage.map_coordinates(image[..., c], coords, order=1, mode="reflect") for c in range(image.shape[-1])],
        axis=-1,
    )
    order = 0 if np.issubdtype(target.dtype, np.integer) else 1
    if target.ndim == len(spatial):
        warped_target = ndimage.map_coordinates(target, coords, order=order, mode="reflect")
    else:
        warped_target = np.stack(
            [ndimage.map_coordinates(target[..., c], coords, order=order, mode="reflect") for c in range(target.shape[-1])],
            axis=-1,
        )
    return warped.astype(np.float32), warped_target.astype(target.dtype)


def augment(
    image: np.ndarray, target: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Randomly flip, rotate, deform and change the intensities (and colours) of one training pair.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C), float32
    target : ndarray of shape (M, N[, K]) or (P, M, N[, K])
        Transformed geometrically like `image`; intensities are left alone.
    rng : numpy.random.Generator
    cfg : AugmentConfig, optional
        Default ``AugmentConfig()``. Its `colour` section runs
        :func:`pixlearn.nets.colour.jitter_colour` after the geometric changes.

    Returns
    -------
    image, target : ndarray
        New contiguous arrays (the inputs are not modified). The spatial shape is unchanged.

    Examples
    --------
    >>> x, y = augment(np.ones((8, 8, 1), np.float32), np.zeros((8, 8), np.int64), np.random.default_rng(0))
    >>> x.shape, y.shape, x.dtype
    ((8, 8, 1), (8, 8), dtype('float32'))
    """
    cfg = AugmentConfig() if cfg is None else cfg
    nd = image.ndim - 1
    if cfg.flips:
        for axis in range(nd):
            if rng.random() < 0.5:
                image = np.flip(image, axis)
                target = np.flip(target, axis)
    if cfg.rotations:
        rows, cols = nd - 2, nd - 1
        square = image.shape[rows] == image.shape[cols]
        k = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
        if k:
            image = np.rot90(image, k, axes=(rows, cols))
            target = np.rot90(target, k, axes=(rows, cols))
    if cfg.elastic:
        image, target = _elastic(np.ascontiguousarray(image), np.ascontiguousarray(target), rng, cfg)
    image = np.array(image, dtype=np.float32)  # copy: never hand back a view of the input
    if cfg.colour.enabled:
        image = jitter_colour(image, rng, cfg.colour)
    if cfg.intensity:
        low, high = float(image.min()), float(image.max())
        if high > low:
            gamma = float(np.exp(rng.uniform(*np.log(cfg.gamma_range))))
            image = low + (high - low) * ((image - low) / (high - low)) ** gamma
        image = image * np.float32(rng.uniform(*cfg.scale_range)) + np.float32(rng.uniform(*cfg.shift_range))
        if cfg.noise_std > 0:
            sigma = rng.uniform(0.0, cfg.noise_std)
            image = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.ascontiguousarray(image, dtype=np.float32), np.array(target)


class PatchDataset:
    """Torch map-style dataset of random (augmented) patches from in-memory pairs.

    Item ``i`` of epoch ``e`` is drawn with ``numpy.random.default_rng([seed, e, i])``, so it is
    the same whatever the worker count, order or resumption. Call :meth:`set_epoch` each epoch.

    Parameters
    ----------
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C), float32
        Normalised canonical images (:func:`normalize_images`).
    targets : sequence of ndarray
        Class indices ``(M, N)`` int64 or float maps ``(M, N, K)``, one per image.
    patch_shape : sequence of int
    length : int
        Patches per epoch.
    seed : int
    augmentation : AugmentConfig or None
        ``None`` or :data:`NO_AUGMENT` for validation patches.
    foreground : sequence of bool ndarray or None, optional
        See :func:`sample_patches`.
    foreground_fraction : float
    scale_jitter : float
        Each patch is cut at a zoom drawn log-uniformly in ``[1/scale_jitter, scale_jitter]``
        (:func:`pixlearn.nets.scaling.draw_zoom`, a region resized to `patch_shape`); 1 (the
        default) cuts patches as they are.

    Raises
    ------
    PixlearnError
        See :func:`sample_patches`.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        patch_shape: Sequence[int],
        length: int,
        *,
        seed: int = 0,
        augmentation: AugmentConfig | None = None,
        foreground: Sequence[np.ndarray | None] | None = None,
        foreground_fraction: float = 0.33,
        scale_jitter: float = 1.0,
    ) -> None:
        self.patch_shape = tuple(int(p) for p in patch_shape)
        if len(images) != len(targets) or not images:
            raise PixlearnError(f"need as many targets as images (got {len(images)} and {len(targets)}), at least one")
        for i, (image, target) in enumerate(zip(images, targets)):
            _check_pair(image, target, self.patch_shape, i)
        self.images = list(images)
        self.targets = list(targets)
        self.length = int(length)
        self.seed = int(seed)
        self.augmentation = augmentation
        self.foreground = _foreground_indices(foreground, len(self.images))
        self.foreground_fraction = float(foreground_fraction)
        self.scale_jitter = float(scale_jitter)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of epoch `epoch`."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        zoom = draw_zoom(rng, self.scale_jitter)
        image, target = _draw_patch(
            self.images, self.targets, self.patch_shape, rng, self.foreground, self.foreground_fraction, zoom
        )
        if self.augmentation is not None:
            image, target = augment(image, target, rng, self.augmentation)
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))
        if np.issubdtype(target.dtype, np.integer):
            y = torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64))
        else:
            y = torch.from_numpy(np.ascontiguousarray(np.moveaxis(target, -1, 0), dtype=np.float32))
        return x, y
