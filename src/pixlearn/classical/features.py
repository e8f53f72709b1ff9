"""Multi-scale filter-bank features for pixel classification, 2D and 3D, per channel, float32.

The filter bank follows ilastik's pixel-classification defaults. For every channel and every scale
``sigma`` (in physical units; divided by the voxel `spacing` per axis) we compute:

``gaussian``
    Gaussian smoothing ``G = g_sigma * I`` (``scipy.ndimage.gaussian_filter``, ``mode="reflect"``).
``gradient_magnitude``
    ``|grad G|`` with central differences on ``G``.
``laplacian``
    Laplacian of Gaussian: the trace of the Hessian of ``G``.
``difference_of_gaussians``
    ``g_{dog_ratio * sigma} * I - G`` (ilastik uses ``dog_ratio = 0.66``).
``hessian_eigenvalues``
    Eigenvalues of the Hessian of ``G`` (second differences), largest first.
``structure_tensor_eigenvalues``
    Eigenvalues of ``g_{st_ratio * sigma} * (grad G grad G^T)``, largest first (ilastik: inner
    scale ``sigma``, outer scale ``0.5 * sigma``).

Derivatives are finite differences of the one Gaussian-smoothed image per scale (as
``skimage.feature.hessian_matrix(..., use_gaussian_derivatives=False)`` does): ``G`` is computed
once and every derivative feature reuses it, which is several times cheaper than one Gaussian
derivative filter per derivative order. Borders reflect ``G`` about the half-sample edge, which
is what ``mode="reflect"`` does to the image. Scales below `derivative_min_sigma` (ilastik's 0.3)
give the Gaussian only.

Large images are processed block by block with a halo (:func:`pixlearn.data.blocks.block_grid`,
:func:`compute_features_block`); the halo of :func:`feature_halo` makes a block's features equal
to the whole-image features exactly, because the true image border is the only place where a
block is padded by reflection.

This module owns the configuration, the names, the halo and the entry points; the per-scale
filters are computed in :mod:`pixlearn.classical.filters`, with the closed-form eigenvalues of
:mod:`pixlearn.classical.eigen`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.classical.filters import features_into, scale_halo, scale_items
from pixlearn.classical.filters import features_last as features_last  # re-exported: it lived here
from pixlearn.config import Config
from pixlearn.data.blocks import pad_block

logger = logging.getLogger(__name__)

FEATURES: tuple[str, ...] = (
    "gaussian",
    "gradient_magnitude",
    "laplacian",
    "difference_of_gaussians",
    "hessian_eigenvalues",
    "structure_tensor_eigenvalues",
)
ILASTIK_SIGMAS: tuple[float, ...] = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
#: Largest scale in pixels (``sigma / spacing`` on the finest axis). The halo a block needs is
#: about ``truncate * (1 + st_ratio) * sigma`` (the structure tensor's inner and outer Gaussians:
#: 4.5 sigma with ilastik's settings), so 128 px means a halo of about 600 px: tiles of 2048 px
#: (what a 1 GiB budget gives) still keep a core of 800 px. A larger scale describes
#: nothing local, and only makes every tile read several thousand pixels of context and
#: every Gaussian run for minutes (``--sigmas 1e6`` would never finish).
MAX_SIGMA_PX = 128.0


@dataclasses.dataclass(frozen=True)
class FeatureConfig(Config):
    """Which filters at which scales.

    Parameters
    ----------
    sigmas : tuple of float
        Scales in physical units (pixels when `spacing` is ``None``), strictly increasing, at
        most :data:`MAX_SIGMA_PX` pixels on the finest axis (see there why).
    features : tuple of str
        Names from :data:`FEATURES`; their order is the order of the output features.
    spacing : tuple of float, optional
        Voxel spacing per spatial axis (``(plane, row, column)`` in 3D). Each scale is divided by it
        per axis, and derivatives are taken in physical units. ``None`` means isotropic, 1.
    derivative_min_sigma : float
        Scales below this give only the Gaussian (ilastik: 0.3 is smoothing only).
    dog_ratio : float
        The difference of Gaussians is ``G(dog_ratio * sigma) - G(sigma)``; in (0, 1).
    st_ratio : float
        Outer (integration) scale of the structure tensor, relative to `sigma`; in (0, 2].
    truncate : float
        Gaussian kernels end at `truncate` standard deviations: 3, as vigra (ilastik) does;
        SciPy's default is 4.

    Examples
    --------
    >>> FeatureConfig(sigmas=(1.0, 2.0), features=("gaussian",)).sigmas
    (1.0, 2.0)
    """

    sigmas: tuple[float, ...] = ILASTIK_SIGMAS
    features: tuple[str, ...] = FEATURES
    spacing: tuple[float, ...] | None = None
    derivative_min_sigma: float = 0.5
    dog_ratio: float = 0.66
    st_ratio: float = 0.5
    truncate: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        object.__setattr__(self, "features", tuple(self.features))
        if self.spacing is not None:
            object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if not self.sigmas:
            raise ValueError("FeatureConfig.sigmas is empty")
        if any(not math.isfinite(s) or s <= 0 for s in self.sigmas):
            raise ValueError(f"FeatureConfig.sigmas must be positive, got {self.sigmas}")
        if any(b <= a for a, b in zip(self.sigmas, self.sigmas[1:])):
            raise ValueError(f"FeatureConfig.sigmas must be strictly increasing, got {self.sigmas}")
        if not self.features:
            raise ValueError("FeatureConfig.features is empty")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {list(FEATURES)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"FeatureConfig.features has duplicates: {self.features}")
        if self.spacing is not None and (
            len(self.spacing) not in (2, 3) or any(not s > 0 for s in self.spacing)
        ):
            raise ValueError(f"FeatureConfig.spacing needs 2 or 3 positive values, got {self.spacing}")
        finest = min(self.spacing) if self.spacing else 1.0
        if self.sigmas[-1] / finest > MAX_SIGMA_PX:
            raise ValueError(
                f"FeatureConfig.sigmas: {self.sigmas[-1]:g} is {self.sigmas[-1] / finest:g} pixels, more than "
                f"{MAX_SIGMA_PX:g}; a scale that large needs a halo of thousands of pixels per tile")
        if not 0 < self.dog_ratio < 1:
            raise ValueError(f"FeatureConfig.dog_ratio must be in (0, 1), got {self.dog_ratio}")
        if not 0 < self.st_ratio <= 2:
            raise ValueError(f"FeatureConfig.st_ratio must be in (0, 2], got {self.st_ratio}")
        if not self.truncate >= 1:
            raise ValueError(f"FeatureConfig.truncate must be >= 1, got {self.truncate}")
        if self.derivative_min_sigma < 0:
            raise ValueError("FeatureConfig.derivative_min_sigma must be >= 0")
        if "gaussian" not in self.features and all(s < self.derivative_min_sigma for s in self.sigmas):
            raise ValueError("no feature left: every sigma is below derivative_min_sigma")


# --------------------------------------------------------------------------------------------
# names and halo


def feature_names(cfg: FeatureConfig, n_channels: int, ndim: int) -> list[str]:
    """Names of the output features, in the order of the last axis of :func:`compute_features`.

    Parameters
    ----------
    cfg : FeatureConfig
    n_channels : int
    ndim : int
        Number of spatial axes, 2 or 3.

    Returns
    -------
    names : list of str
        ``"ch{c}/{feature}/sigma={sigma:g}"``, eigenvalues as ``.../hessian_eigenvalue_{i}/...``.

    Examples
    --------
    >>> feature_names(FeatureConfig(sigmas=(0.3, 1.0), features=("gaussian", "hessian_eigenvalues")), 1, 2)
    ['ch0/gaussian/sigma=0.3', 'ch0/gaussian/sigma=1', 'ch0/hessian_eigenvalue_0/sigma=1', 'ch0/hessian_eigenvalue_1/sigma=1']
    """
    _check_ndim(ndim)
    names = []
    for c in range(n_channels):
        for sigma in cfg.sigmas:
            for name, count in scale_items(cfg, sigma, ndim):
                if count == 1:
                    names.append(f"ch{c}/{name}/sigma={sigma:g}")
                else:
                    stem = name[:-1]  # "..._eigenvalues" -> "..._eigenvalue"
                    names.extend(f"ch{c}/{stem}_{i}/sigma={sigma:g}" for i in range(count))
    return names


def n_features(cfg: FeatureConfig, n_channels: int, ndim: int) -> int:
    """Number of output features (the length of :func:`feature_names`)."""
    return n_channels * sum(n for s in cfg.sigmas for _, n in scale_items(cfg, s, ndim))


def voxel_spacing(cfg: FeatureConfig, ndim: int, spacing: Sequence[float] | None = None) -> tuple[float, ...]:
    """The spacing the scales are divided by: `spacing`, else ``cfg.spacing``, else 1 per axis.

    Examples
    --------
    >>> voxel_spacing(FeatureConfig(), 3), voxel_spacing(FeatureConfig(spacing=(4.0, 1.0, 1.0)), 3)
    ((1.0, 1.0, 1.0), (4.0, 1.0, 1.0))
    """
    sp = spacing if spacing is not None else cfg.spacing
    if sp is None:
        return (1.0,) * ndim
    sp = tuple(float(s) for s in sp)
    if len(sp) != ndim or any(not s > 0 for s in sp):
        raise ValueError(f"spacing {sp} does not give {ndim} positive values")
    return sp


def feature_halo(
    cfg: FeatureConfig, ndim: int, spacing: Sequence[float] | None = None
) -> tuple[int, ...]:
    """Context in pixels, per spatial axis, that a block needs for exact features.

    Parameters
    ----------
    cfg : FeatureConfig
    ndim : int
        2 or 3.
    spacing : sequence of float, optional
        Overrides ``cfg.spacing``.

    Returns
    -------
    halo : tuple of int
        A block read with this much extra context on every side that is not the image border
        gives, after cropping, the same features as the whole image.

    Examples
    --------
    >>> feature_halo(FeatureConfig(), 2)
    (46, 46)
    >>> feature_halo(FeatureConfig(sigmas=(1.0,), features=("gaussian",)), 3, (4.0, 1.0, 1.0))
    (1, 3, 3)
    """
    _check_ndim(ndim)
    sp = voxel_spacing(cfg, ndim, spacing)
    halos = [scale_halo(cfg, s, sp) for s in cfg.sigmas]
    return tuple(max(h[a] for h in halos) for a in range(ndim))


def _check_ndim(ndim: int) -> None:
    if ndim not in (2, 3):
        raise ValueError(f"features need 2 or 3 spatial axes, got {ndim}")


# --------------------------------------------------------------------------------------------
# blocks


def default_block_shape(ndim: int) -> tuple[int, ...]:
    """Core block size used when none is given: about 1-4 M pixels per block."""
    _check_ndim(ndim)
    return (1024, 1024) if ndim == 2 else (64, 256, 256)


# --------------------------------------------------------------------------------------------
# computation


def _check_image(image: Any) -> int:
    if image.ndim not in (3, 4):
        raise ValueError(
            f"expected a canonical image (M, N, C) or (P, M, N, C), got shape {tuple(image.shape)}"
        )
    return image.ndim - 1


def compute_features(
    image: np.ndarray, cfg: FeatureConfig, *, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """Filter-bank features of a whole canonical image.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
        Normalised intensities; cast to float32.
    cfg : FeatureConfig
    spacing : sequence of float, optional
        Voxel spacing per spatial axis; overrides ``cfg.spacing``.

    Returns
    -------
    features : ndarray of shape (M, N, F) or (P, M, N, F), float32
        In the order of :func:`feature_names`.

    Raises
    ------
    ValueError
        Not a canonical 2D/3D image, or bad spacing.

    Examples
    --------
    >>> cfg = FeatureConfig(sigmas=(1.0,), features=("gaussian", "laplacian"))
    >>> compute_features(np.zeros((6, 5, 2), np.float32), cfg).shape
    (6, 5, 4)
    """
    _check_image(image)
    full = tuple(slice(0, n) for n in image.shape[:-1])
    return compute_features_block(image, full, cfg, spacing=spacing)


def compute_features_block(
    image: Any,
    core: Sequence[slice],
    cfg: FeatureConfig,
    *,
    spacing: Sequence[float] | None = None,
    feature_axis: str = "last",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Features of one block of a (possibly lazy) canonical image, equal to the whole-image ones.

    Reads only the block plus :func:`feature_halo` of context (clipped to the image) from
    `image`, so a Zarr array or memory map is never loaded whole.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Normalised intensities; anything that supports slicing and ``np.asarray``.
    core : sequence of slice
        The block's spatial region, e.g. a core of :func:`pixlearn.data.blocks.block_grid`.
    cfg : FeatureConfig
    spacing : sequence of float, optional
        Overrides ``cfg.spacing``.
    feature_axis : {"last", "first"}
        ``"first"`` returns the feature-major stack ``(F, ...)`` that the filters write (no
        interleaving pass; consumers that go through pixels in chunks prefer it).
    out : ndarray, optional
        Output buffer of the returned shape, float32, written in place.

    Returns
    -------
    features : ndarray of shape core_shape + (F,) or (F,) + core_shape, float32
        Equal to ``compute_features(image)[core]`` (up to the axis order).

    Examples
    --------
    >>> cfg = FeatureConfig(sigmas=(1.0,), features=("gaussian",))
    >>> image = np.arange(64, dtype=np.float32).reshape(8, 8, 1)
    >>> block = compute_features_block(image, (slice(2, 5), slice(0, 8)), cfg)
    >>> bool(np.array_equal(block, compute_features(image, cfg)[2:5]))
    True
    """
    ndim = _check_image(image)
    if feature_axis not in ("last", "first"):
        raise ValueError(f"feature_axis must be 'last' or 'first', got {feature_axis!r}")
    sp = voxel_spacing(cfg, ndim, spacing)
    padded, inner = _read_padded(image, core, cfg, sp)
    core_shape = tuple(s.stop - s.start for s in inner)
    n_feat = n_features(cfg, image.shape[-1], ndim)
    want = (n_feat,) + core_shape if feature_axis == "first" else core_shape + (n_feat,)
    if out is not None and (out.shape != want or out.dtype != np.float32):
        raise ValueError(f"out has shape {out.shape} {out.dtype}, expected {want} float32")
    if feature_axis == "first":
        stack = np.empty(want, np.float32) if out is None else out
        features_into(padded, inner, cfg, sp, stack)
        return stack
    stack = np.empty((n_feat,) + core_shape, np.float32)
    features_into(padded, inner, cfg, sp, stack)
    return features_last(stack, out)


def _read_padded(image: Any, core: Sequence[slice], cfg: FeatureConfig, sp: tuple[float, ...]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The block `core` of `image` with the halo of `cfg` (clipped to the image), float32, and
    where the core lies inside it."""
    shape = tuple(image.shape[:-1])
    padded_region, inner = pad_block(core, shape, feature_halo(cfg, len(shape), sp))
    return np.asarray(image[padded_region], dtype=np.float32), inner


def compute_features_at(
    image: Any,
    core: Sequence[slice],
    points: Sequence[np.ndarray],
    cfg: FeatureConfig,
    *,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Features of some pixels of one block, never holding the features of the whole block.

    Each feature is picked at `points` as soon as it is computed, so the memory this takes is
    the filters' working arrays and the ``(F, n)`` result, not ``F`` values for every pixel of
    the block (what training from dense labels gathers, block by block).

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Normalised intensities (may be lazy).
    core : sequence of slice
        The block.
    points : sequence of ndarray of int
        Coordinates of the ``n`` pixels relative to the start of `core`, one array per axis.
    cfg : FeatureConfig
    spacing : sequence of float, optional
        Overrides ``cfg.spacing``.

    Returns
    -------
    features : ndarray of shape (F, n), float32
        Equal to ``compute_features(image)[core][points].T``.

    Examples
    --------
    >>> cfg = FeatureConfig(sigmas=(1.0,), features=("gaussian", "laplacian"))
    >>> image = np.random.default_rng(0).random((8, 8, 1), dtype=np.float32)
    >>> points = (np.array([0, 2]), np.array([5, 1]))
    >>> got = compute_features_at(image, (slice(2, 5), slice(0, 8)), points, cfg)
    >>> bool(np.array_equal(got, compute_features(image, cfg)[2:5][points].T))
    True
    """
    ndim = _check_image(image)
    sp = voxel_spacing(cfg, ndim, spacing)
    padded, inner = _read_padded(image, core, cfg, sp)
    local = tuple(np.asarray(p, dtype=np.intp) for p in points)
    out = np.empty((n_features(cfg, image.shape[-1], ndim), len(local[0])), np.float32)
    features_into(padded, inner, cfg, sp, out, points=local)
    return out
