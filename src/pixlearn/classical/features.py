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
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

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
_EIGEN = ("hessian_eigenvalues", "structure_tensor_eigenvalues")
_DERIVATIVE = ("gradient_magnitude", "laplacian", "hessian_eigenvalues", "structure_tensor_eigenvalues")


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


def _per_scale(cfg: FeatureConfig, sigma: float, ndim: int) -> list[tuple[str, int]]:
    """(feature, n_values) computed at `sigma`, in output order."""
    items = []
    for name in cfg.features:
        if sigma < cfg.derivative_min_sigma and name != "gaussian":
            continue
        items.append((name, ndim if name in _EIGEN else 1))
    return items


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
            for name, count in _per_scale(cfg, sigma, ndim):
                if count == 1:
                    names.append(f"ch{c}/{name}/sigma={sigma:g}")
                else:
                    stem = name[:-1]  # "..._eigenvalues" -> "..._eigenvalue"
                    names.extend(f"ch{c}/{stem}_{i}/sigma={sigma:g}" for i in range(count))
    return names


def n_features(cfg: FeatureConfig, n_channels: int, ndim: int) -> int:
    """Number of output features (the length of :func:`feature_names`)."""
    return n_channels * sum(n for s in cfg.sigmas for _, n in _per_scale(cfg, s, ndim))


def _radius(sigma_px: float, truncate: float) -> int:
    # scipy.ndimage.gaussian_filter1d's kernel radius
    return int(truncate * float(sigma_px) + 0.5)


def _spacing(cfg: FeatureConfig, ndim: int, spacing: Sequence[float] | None) -> tuple[float, ...]:
    sp = spacing if spacing is not None else cfg.spacing
    if sp is None:
        return (1.0,) * ndim
    sp = tuple(float(s) for s in sp)
    if len(sp) != ndim or any(not s > 0 for s in sp):
        raise ValueError(f"spacing {sp} does not give {ndim} positive values")
    return sp


def _scale_halo(cfg: FeatureConfig, sigma: float, sp: tuple[float, ...]) -> tuple[int, ...]:
    names = {n for n, _ in _per_scale(cfg, sigma, len(sp))}
    halo = []
    for s in sp:
        h = 0
        if names & {"gaussian", "difference_of_gaussians"} or names & set(_DERIVATIVE):
            h = _radius(sigma / s, cfg.truncate)
        if names & set(_DERIVATIVE):
            h += 1
        if "structure_tensor_eigenvalues" in names:
            h += _radius(cfg.st_ratio * sigma / s, cfg.truncate)
        halo.append(h)
    return tuple(halo)


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
    sp = _spacing(cfg, ndim, spacing)
    halos = [_scale_halo(cfg, s, sp) for s in cfg.sigmas]
    return tuple(max(h[a] for h in halos) for a in range(ndim))


def _check_ndim(ndim: int) -> None:
    if ndim not in (2, 3):
        raise ValueError(f"features need 2 or 3 spatial axes, got {ndim}")


# --------------------------------------------------------------------------------------------
# eigenvalues of symmetric matrices, closed form, vectorised


def eigenvalues_sym2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the symmetric 2x2 matrices ``[[a, b], [b, c]]``, largest first.

    Parameters
    ----------
    a, b, c : ndarray, same shape, float

    Returns
    -------
    l0, l1 : ndarray
        ``l0 >= l1``.

    Examples
    --------
    >>> [v.tolist() for v in eigenvalues_sym2(np.array([2.0]), np.array([0.0]), np.array([3.0]))]
    [[3.0], [2.0]]
    """
    half_diff = (a - c) * 0.5
    root = np.hypot(half_diff, b)
    mean = (a + c) * 0.5
    return mean + root, mean - root


def eigenvalues_sym3(
    a11: np.ndarray, a22: np.ndarray, a33: np.ndarray, a12: np.ndarray, a13: np.ndarray, a23: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues of symmetric 3x3 matrices by the trigonometric method, largest first.

    Parameters
    ----------
    a11, a22, a33, a12, a13, a23 : ndarray, same shape, float
        The six distinct entries; not modified.

    Returns
    -------
    l0, l1, l2 : ndarray
        ``l0 >= l1 >= l2``, in the floating dtype of the input (at least float32).

    Examples
    --------
    >>> e = eigenvalues_sym3(*[np.array([v]) for v in (1.0, 2.0, 3.0, 0.0, 0.0, 0.0)])
    >>> [round(float(v[0]), 6) for v in e]
    [3.0, 2.0, 1.0]
    """
    dtype = np.result_type(a11, np.float32)
    q = np.add(a11, a22, dtype=dtype)
    q += a33
    q *= 1.0 / 3.0
    b11, b22, b33 = np.subtract(a11, q), np.subtract(a22, q), np.subtract(a33, q)
    # p2 = (|B|_F^2) / 6 with B = A - q I
    p2 = np.square(a12)
    tmp = np.square(a13)
    p2 += tmp
    np.square(a23, out=tmp)
    p2 += tmp
    p2 *= 2.0
    for b in (b11, b22, b33):
        np.square(b, out=tmp)
        p2 += tmp
    p2 *= 1.0 / 6.0
    # det(B)
    det = np.multiply(b22, b33)
    np.square(a23, out=tmp)
    det -= tmp
    det *= b11
    np.multiply(a12, b33, out=tmp)
    t2 = np.multiply(a23, a13)
    tmp -= t2
    tmp *= a12
    det -= tmp
    np.multiply(a12, a23, out=tmp)
    np.multiply(b22, a13, out=t2)
    tmp -= t2
    tmp *= a13
    det += tmp
    del b11, b22, b33, t2
    # r = det(B) / (2 p^3), phi = acos(r) / 3
    p = np.sqrt(p2)
    np.multiply(p2, p, out=tmp)
    np.maximum(tmp, np.finfo(dtype).tiny, out=tmp)
    tmp *= 2.0
    det /= tmp
    np.clip(det, -1.0, 1.0, out=det)
    phi = np.arccos(det, out=det)
    phi *= 1.0 / 3.0
    p *= 2.0
    l0 = np.cos(phi)
    l0 *= p
    l0 += q
    phi += 2.0 * np.pi / 3.0
    l2 = np.cos(phi, out=phi)
    l2 *= p
    l2 += q
    # l1 = 3 q - l0 - l2
    l1 = np.multiply(q, 3.0, out=q)
    l1 -= l0
    l1 -= l2
    return l0, l1, l2


# --------------------------------------------------------------------------------------------
# blocks


def default_block_shape(ndim: int) -> tuple[int, ...]:
    """Core block size used when none is given: about 1-4 M pixels per block."""
    _check_ndim(ndim)
    return (1024, 1024) if ndim == 2 else (64, 256, 256)


# --------------------------------------------------------------------------------------------
# computation


def _grow(region: tuple[slice, ...], by: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(
        slice(max(0, r.start - b), min(n, r.stop + b)) for r, b, n in zip(region, by, shape)
    )


def _shift(region: tuple[slice, ...], offsets: dict[int, int]) -> tuple[slice, ...]:
    """`region` (unpadded coordinates) moved by `offsets` per axis, in the 1-padded array."""
    return tuple(
        slice(r.start + 1 + offsets.get(a, 0), r.stop + 1 + offsets.get(a, 0))
        for a, r in enumerate(region)
    )


def _scale_features(
    x: np.ndarray,
    core: tuple[slice, ...],
    cfg: FeatureConfig,
    sigma: float,
    sp: tuple[float, ...],
) -> list[np.ndarray]:
    """Features of one channel at one scale; `x` holds the core plus enough context."""
    ndim = x.ndim
    names = [n for n, _ in _per_scale(cfg, sigma, ndim)]
    sig_px = [sigma / s for s in sp]
    smoothed = ndi.gaussian_filter(x, sig_px, mode="reflect", truncate=cfg.truncate, output=np.float32)
    results: dict[str, list[np.ndarray]] = {}
    if "gaussian" in names:
        results["gaussian"] = [smoothed[core]]
    if "difference_of_gaussians" in names:
        inner = ndi.gaussian_filter(
            x, [cfg.dog_ratio * s for s in sig_px], mode="reflect", truncate=cfg.truncate, output=np.float32
        )
        dog = inner[core]
        dog -= smoothed[core]
        results["difference_of_gaussians"] = [dog]
        del inner
    derivative = [n for n in names if n in _DERIVATIVE]
    if derivative:
        g = np.pad(smoothed, 1, mode="symmetric")  # half-sample reflection, as mode="reflect"
        del smoothed
        st = "structure_tensor_eigenvalues" in names
        outer_px = [cfg.st_ratio * s for s in sig_px]
        grad_region = (
            _grow(core, [_radius(o, cfg.truncate) for o in outer_px], x.shape) if st else core
        )
        if "gradient_magnitude" in names or st:
            grads = []
            for a in range(ndim):
                d = np.subtract(g[_shift(grad_region, {a: 1})], g[_shift(grad_region, {a: -1})])
                d *= np.float32(0.5 / sp[a])
                grads.append(d)
            # the core inside grad_region
            in_core = tuple(
                slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, grad_region)
            )
            if "gradient_magnitude" in names:
                mag = np.square(grads[0][in_core])
                for d in grads[1:]:
                    mag += np.square(d[in_core])
                np.sqrt(mag, out=mag)
                results["gradient_magnitude"] = [mag]
            if st:
                tensor = []
                for a, b in itertools.combinations_with_replacement(range(ndim), 2):
                    prod = np.multiply(grads[a], grads[b])
                    ndi.gaussian_filter(prod, outer_px, mode="reflect", truncate=cfg.truncate, output=prod)
                    tensor.append(prod[in_core])
                del grads, prod
                results["structure_tensor_eigenvalues"] = list(_eigen(tensor, ndim))
            else:
                del grads
        if "laplacian" in names or "hessian_eigenvalues" in names:
            centre = g[_shift(core, {})]
            hess = {}
            for a in range(ndim):
                h = np.add(g[_shift(core, {a: 1})], g[_shift(core, {a: -1})])
                h -= centre
                h -= centre
                h *= np.float32(1.0 / (sp[a] * sp[a]))
                hess[a, a] = h
            if "hessian_eigenvalues" in names:
                for a, b in itertools.combinations(range(ndim), 2):
                    pp = _shift(core, {a: 1, b: 1})
                    pm = _shift(core, {a: 1, b: -1})
                    mp = _shift(core, {a: -1, b: 1})
                    mm = _shift(core, {a: -1, b: -1})
                    h = np.subtract(g[pp], g[pm])
                    h -= g[mp]
                    h += g[mm]
                    h *= np.float32(0.25 / (sp[a] * sp[b]))
                    hess[a, b] = h
            if "laplacian" in names:
                lap = hess[0, 0].copy()
                for a in range(1, ndim):
                    lap += hess[a, a]
                results["laplacian"] = [lap]
            if "hessian_eigenvalues" in names:
                tensor = [hess[a, b] for a, b in itertools.combinations_with_replacement(range(ndim), 2)]
                results["hessian_eigenvalues"] = list(_eigen(tensor, ndim))
    return [arr for n in names for arr in results[n]]


def _eigen(tensor: list[np.ndarray], ndim: int, chunk: int = 16384) -> tuple[np.ndarray, ...]:
    """Eigenvalues from the upper-triangle entries in combinations_with_replacement order.

    Works through the pixels in cache-sized chunks: the closed forms take a few dozen
    element-wise operations, which are memory-bound on whole arrays.
    """
    shape = tensor[0].shape
    flats = [np.ascontiguousarray(t).reshape(-1) for t in tensor]
    outs = [np.empty(flats[0].size, np.float32) for _ in range(ndim)]
    for start in range(0, flats[0].size, chunk):
        part = [f[start : start + chunk] for f in flats]
        if ndim == 2:
            values = eigenvalues_sym2(*part)
        else:
            a11, a12, a13, a22, a23, a33 = part
            values = eigenvalues_sym3(a11, a22, a33, a12, a13, a23)
        for o, v in zip(outs, values):
            o[start : start + chunk] = v
    return tuple(o.reshape(shape) for o in outs)


def _features_into(
    padded: np.ndarray,
    inner: tuple[slice, ...],
    cfg: FeatureConfig,
    sp: tuple[float, ...],
    out: np.ndarray,
) -> None:
    """Features of the `inner` region of a canonical padded block into `out`, shape (F, ...)."""
    k = 0
    for c in range(padded.shape[-1]):
        for sigma in cfg.sigmas:
            halo = _scale_halo(cfg, sigma, sp)
            region = _grow(inner, halo, padded.shape[:-1])
            x = np.ascontiguousarray(padded[region + (c,)], dtype=np.float32)
            core = tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inner, region))
            for arr in _scale_features(x, core, cfg, sigma, sp):
                out[k] = arr
                k += 1
    if k != out.shape[0]:  # internal consistency with feature_names
        raise RuntimeError(f"computed {k} features, expected {out.shape[0]}")


def features_last(stack: np.ndarray, out: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """Move the feature axis of a feature-major stack to the end, in cache-sized chunks.

    Parameters
    ----------
    stack : ndarray of shape (F, ...)
    out : ndarray of shape (..., F), optional
        Written in place when given (reusing a buffer avoids page faults on big blocks).
    chunk : int
        Pixels per step.

    Returns
    -------
    features : ndarray of shape (..., F), C-contiguous

    Examples
    --------
    >>> features_last(np.arange(6.0).reshape(2, 3)).tolist()
    [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    n_feat = stack.shape[0]
    if out is None:
        out = np.empty(stack.shape[1:] + (n_feat,), stack.dtype)
    flat_in = stack.reshape(n_feat, -1)
    flat_out = out.reshape(-1, n_feat)
    for start in range(0, flat_out.shape[0], chunk):
        flat_out[start : start + chunk] = flat_in[:, start : start + chunk].T
    return out


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
    sp = _spacing(cfg, ndim, spacing)
    shape = tuple(image.shape[:-1])
    halo = feature_halo(cfg, ndim, sp)
    padded_region, inner = pad_block(core, shape, halo)
    padded = np.asarray(image[padded_region], dtype=np.float32)
    core_shape = tuple(s.stop - s.start for s in inner)
    n_feat = n_features(cfg, image.shape[-1], ndim)
    want = (n_feat,) + core_shape if feature_axis == "first" else core_shape + (n_feat,)
    if out is not None and (out.shape != want or out.dtype != np.float32):
        raise ValueError(f"out has shape {out.shape} {out.dtype}, expected {want} float32")
    if feature_axis == "first":
        stack = np.empty(want, np.float32) if out is None else out
        _features_into(padded, inner, cfg, sp, stack)
        return stack
    stack = np.empty((n_feat,) + core_shape, np.float32)
    _features_into(padded, inner, cfg, sp, stack)
    return features_last(stack, out)
