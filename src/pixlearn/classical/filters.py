"""Per-scale filters of the filter bank: one channel, one scale, derivatives of one Gaussian.

The filters themselves are described in :mod:`pixlearn.classical.features`, which owns the
configuration, the feature names and the public entry points; this module computes them. At
each scale the image is smoothed once, and every derivative feature takes finite differences of
that one smoothed image (reflected about the half-sample edge, as ``mode="reflect"``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

from pixlearn.classical.eigen import eigenvalues_from_tensor

if TYPE_CHECKING:
    from pixlearn.classical.features import FeatureConfig

_EIGEN = ("hessian_eigenvalues", "structure_tensor_eigenvalues")
#: Rows per thread below which a smoothing pass runs in one thread.
_MIN_ROWS_PER_THREAD = 64
_DERIVATIVE = ("gradient_magnitude", "laplacian", "hessian_eigenvalues", "structure_tensor_eigenvalues")


def scale_items(cfg: FeatureConfig, sigma: float, ndim: int) -> list[tuple[str, int]]:
    """The features computed at one scale and how many values each gives, in output order.

    Parameters
    ----------
    cfg : FeatureConfig
    sigma : float
        One of ``cfg.sigmas``.
    ndim : int
        Number of spatial axes, 2 or 3 (the count of eigenvalues).

    Returns
    -------
    items : list of (str, int)
        ``(feature, n_values)``; scales below ``cfg.derivative_min_sigma`` give the Gaussian only.

    Examples
    --------
    >>> from pixlearn.classical.features import FeatureConfig
    >>> scale_items(FeatureConfig(sigmas=(1.0,), features=("gaussian", "hessian_eigenvalues")), 1.0, 3)
    [('gaussian', 1), ('hessian_eigenvalues', 3)]
    """
    items = []
    for name in cfg.features:
        if sigma < cfg.derivative_min_sigma and name != "gaussian":
            continue
        items.append((name, ndim if name in _EIGEN else 1))
    return items


def _radius(sigma_px: float, truncate: float) -> int:
    # scipy.ndimage.gaussian_filter1d's kernel radius
    return int(truncate * float(sigma_px) + 0.5)


def scale_halo(cfg: FeatureConfig, sigma: float, sp: tuple[float, ...]) -> tuple[int, ...]:
    """Context in pixels, per spatial axis, that the features of one scale need.

    Parameters
    ----------
    cfg : FeatureConfig
    sigma : float
        One of ``cfg.sigmas``, in physical units.
    sp : tuple of float
        Voxel spacing per spatial axis.

    Returns
    -------
    halo : tuple of int
        Gaussian kernel radius, plus one for the finite differences, plus the structure tensor's
        outer kernel radius, as far as the features of this scale use them.

    Examples
    --------
    >>> from pixlearn.classical.features import FeatureConfig
    >>> scale_halo(FeatureConfig(sigmas=(1.0,), features=("gaussian",)), 1.0, (1.0, 1.0))
    (3, 3)
    """
    names = {n for n, _ in scale_items(cfg, sigma, len(sp))}
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


def gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """SciPy's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, float64, summing to 1.

    Examples
    --------
    >>> w = gaussian_weights(1.0, 3.0)
    >>> w.shape, round(float(w.sum()), 12)
    ((7,), 1.0)
    """
    radius = _radius(sigma, truncate)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x**2)
    return phi / phi.sum()


def _run_rows(kernel: Any, args: tuple[Any, ...], rows: int, n_threads: int | None) -> None:
    """``kernel(*args, lo, hi)`` over balanced row ranges in a few threads (the kernels release the GIL)."""
    wanted = max(1, os.cpu_count() or 1) if n_threads is None or n_threads < 1 else int(n_threads)
    threads = max(1, min(wanted, rows // _MIN_ROWS_PER_THREAD))
    if threads == 1:
        kernel(*args, 0, rows)
        return
    bounds = np.linspace(0, rows, threads + 1).astype(np.int64)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: kernel(*args, int(bounds[i]), int(bounds[i + 1])), range(threads)))


def gaussian_filter(
    x: np.ndarray, sigma: Sequence[float], truncate: float, *, n_threads: int | None = None
) -> np.ndarray:
    """Gaussian smoothing with half-sample reflection at the borders, equal to SciPy's.

    The numba kernels of :mod:`pixlearn.classical.gaussian_kernels` (SciPy without numba) make one
    pass per axis in axis order, as ``scipy.ndimage.gaussian_filter`` does, with the same weights,
    float64 sums and a float32 result after each pass; vectorised along the contiguous axis and
    spread over rows in threads, they are about twice as fast on one core.

    Parameters
    ----------
    x : ndarray, float32
    sigma : sequence of float
        Standard deviation in pixels per axis; an axis whose kernel radius is 0 is left as it is.
    truncate : float
        Kernels end at `truncate` standard deviations.
    n_threads : int, optional
        Threads (default: all cores). Does not change the result.

    Returns
    -------
    smoothed : ndarray of the shape of `x`, float32
        A new array, equal to ``scipy.ndimage.gaussian_filter(x, sigma, mode="reflect",
        truncate=truncate, output=np.float32)``.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((4, 9, 7), dtype=np.float32)
    >>> ref = ndi.gaussian_filter(x, (0.5, 2.0, 3.0), mode="reflect", truncate=3.0, output=np.float32)
    >>> bool(np.array_equal(gaussian_filter(x, (0.5, 2.0, 3.0), 3.0), ref))
    True
    """
    sigmas = [float(s) for s in sigma]
    if len(sigmas) != x.ndim:
        raise ValueError(f"{len(sigmas)} sigmas for an array of {x.ndim} axes")
    try:
        from pixlearn.classical import gaussian_kernels as kernels
    except ImportError:  # pragma: no cover - numba is a dependency
        return ndi.gaussian_filter(x, sigmas, mode="reflect", truncate=truncate, output=np.float32)
    current = np.ascontiguousarray(x, dtype=np.float32)
    for axis, s in enumerate(sigmas):
        if s <= 1e-15 or _radius(s, truncate) == 0:  # SciPy: skipped, or a weight of exactly 1
            continue
        w, n = gaussian_weights(s, truncate), current.shape[axis]
        out = np.empty(current.shape, np.float32)
        if axis == current.ndim - 1:
            rows = current.size // n
            _run_rows(kernels.along_last, (current.reshape(rows, n), out.reshape(rows, n), w), rows, n_threads)
        else:
            view = (int(np.prod(current.shape[:axis], dtype=np.int64)), n, -1)
            rows = view[0] * n
            _run_rows(kernels.along_middle, (current.reshape(view), out.reshape(view), w), rows, n_threads)
        current = out
    return current if current is not x else current.copy()


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
    names = [n for n, _ in scale_items(cfg, sigma, ndim)]
    sig_px = [sigma / s for s in sp]
    smoothed = gaussian_filter(x, sig_px, cfg.truncate)
    results: dict[str, list[np.ndarray]] = {}
    if "gaussian" in names:
        results["gaussian"] = [smoothed[core]]
    if "difference_of_gaussians" in names:
        inner = gaussian_filter(x, [cfg.dog_ratio * s for s in sig_px], cfg.truncate)
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
                    prod = gaussian_filter(np.multiply(grads[a], grads[b]), outer_px, cfg.truncate)
                    tensor.append(prod[in_core])
                del grads, prod
                results["structure_tensor_eigenvalues"] = list(eigenvalues_from_tensor(tensor, ndim))
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
                results["hessian_eigenvalues"] = list(eigenvalues_from_tensor(tensor, ndim))
    return [arr for n in names for arr in results[n]]


def features_into(
    padded: np.ndarray,
    inner: tuple[slice, ...],
    cfg: FeatureConfig,
    sp: tuple[float, ...],
    out: np.ndarray,
    points: tuple[np.ndarray, ...] | None = None,
) -> None:
    """Features of the `inner` region of a canonical padded block into `out`, feature-major.

    Parameters
    ----------
    padded : ndarray of shape (M, N, C) or (P, M, N, C), float32
        The block with its context (:func:`pixlearn.data.blocks.pad_block`).
    inner : tuple of slice
        The block's region inside `padded`.
    cfg : FeatureConfig
    sp : tuple of float
        Voxel spacing per spatial axis.
    out : ndarray of shape (F,) + inner_shape, or (F, n) with `points`, float32
        Written in place, in the order of :func:`pixlearn.classical.features.feature_names`.
    points : tuple of ndarray of int, optional
        Coordinates (relative to `inner`, one array per axis) of the only ``n`` pixels whose
        features are kept: each feature is picked at them as soon as it is computed, so that
        the features of the whole block are never held at once.

    Raises
    ------
    RuntimeError
        `out` does not hold as many features as computed (an internal inconsistency).
    """
    k = 0
    for c in range(padded.shape[-1]):
        for sigma in cfg.sigmas:
            halo = scale_halo(cfg, sigma, sp)
            region = _grow(inner, halo, padded.shape[:-1])
            x = np.ascontiguousarray(padded[region + (c,)], dtype=np.float32)
            core = tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inner, region))
            for arr in _scale_features(x, core, cfg, sigma, sp):
                out[k] = arr if points is None else arr[points]
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
