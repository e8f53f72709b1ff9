"""Per-scale filters of the filter bank: one channel, one scale, derivatives of one Gaussian.

The filters themselves are described in :mod:`pixlearn.classical.features`, which owns the
configuration, the feature names and the public entry points; this module computes them. At
each scale the image is smoothed once, and every derivative feature takes finite differences of
that one smoothed image (reflected about the half-sample edge, as ``mode="reflect"``). Smoothing,
finite differences and eigenvalues run on the threaded numba kernels of
:mod:`pixlearn.classical.fast_filters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pixlearn.classical.fast_filters import (
    Workers,
    eigenvalues,
    gaussian_filter,
    gradient_magnitude,
    gradient_products,
    hessian_fields,
    workers,
)

if TYPE_CHECKING:
    from pixlearn.classical.features import FeatureConfig

_EIGEN = ("hessian_eigenvalues", "structure_tensor_eigenvalues")
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


def _grow(region: tuple[slice, ...], by: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(
        slice(max(0, r.start - b), min(n, r.stop + b)) for r, b, n in zip(region, by, shape)
    )


def _scale_features(
    x: np.ndarray,
    core: tuple[slice, ...],
    cfg: FeatureConfig,
    sigma: float,
    sp: tuple[float, ...],
    work: Workers,
) -> list[np.ndarray]:
    """Features of one channel at one scale; `x` holds the core plus enough context."""
    names = [n for n, _ in scale_items(cfg, sigma, x.ndim)]
    sig_px = [sigma / s for s in sp]
    smoothed = gaussian_filter(x, sig_px, cfg.truncate, work=work)
    results: dict[str, list[np.ndarray]] = {}
    if "gaussian" in names:
        results["gaussian"] = [smoothed[core]]
    if "difference_of_gaussians" in names:
        inner = gaussian_filter(x, [cfg.dog_ratio * s for s in sig_px], cfg.truncate, work=work)
        dog = inner[core]
        dog -= smoothed[core]
        results["difference_of_gaussians"] = [dog]
        del inner
    if any(n in _DERIVATIVE for n in names):
        g = np.pad(smoothed, 1, mode="symmetric")  # half-sample reflection, as mode="reflect"
        del smoothed
        results.update(_first_derivative_features(g, core, names, cfg, sig_px, sp, work))
        results.update(_second_derivative_features(g, core, names, sp, work))
    return [arr for n in names for arr in results[n]]


def _first_derivative_features(
    g: np.ndarray,
    core: tuple[slice, ...],
    names: list[str],
    cfg: FeatureConfig,
    sig_px: list[float],
    sp: tuple[float, ...],
    work: Workers,
) -> dict[str, list[np.ndarray]]:
    """Gradient magnitude and structure-tensor eigenvalues from the 1-padded smoothed image `g`."""
    results: dict[str, list[np.ndarray]] = {}
    if "gradient_magnitude" in names:
        results["gradient_magnitude"] = [gradient_magnitude(g, core, sp, work=work)]
    if "structure_tensor_eigenvalues" in names:
        shape = tuple(n - 2 for n in g.shape)
        outer_px = [cfg.st_ratio * s for s in sig_px]
        region = _grow(core, [_radius(o, cfg.truncate) for o in outer_px], shape)
        in_core = tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))
        products = gradient_products(g, region, sp, work=work)
        tensor = []
        while products:  # each product freed once smoothed
            tensor.append(gaussian_filter(products.pop(0), outer_px, cfg.truncate, work=work)[in_core])
        results["structure_tensor_eigenvalues"] = list(eigenvalues(tensor, g.ndim, work=work))
    return results


def _second_derivative_features(
    g: np.ndarray, core: tuple[slice, ...], names: list[str], sp: tuple[float, ...], work: Workers
) -> dict[str, list[np.ndarray]]:
    """Laplacian and Hessian eigenvalues from the 1-padded smoothed image `g`."""
    if "laplacian" not in names and "hessian_eigenvalues" not in names:
        return {}
    lap, eig = hessian_fields(g, core, sp, "hessian_eigenvalues" in names, work=work)
    return {"laplacian": [lap], "hessian_eigenvalues": list(eig)}


def features_into(
    padded: np.ndarray,
    inner: tuple[slice, ...],
    cfg: FeatureConfig,
    sp: tuple[float, ...],
    out: np.ndarray,
    points: tuple[np.ndarray, ...] | None = None,
    *,
    n_threads: int | None = None,
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
    n_threads : int, optional
        Threads of the smoothing and eigenvalue kernels (default: all cores); they do not change
        the result.

    Raises
    ------
    RuntimeError
        `out` does not hold as many features as computed (an internal inconsistency).
    """
    k = 0
    with workers(n_threads) as work:
        for c in range(padded.shape[-1]):
            for sigma in cfg.sigmas:
                halo = scale_halo(cfg, sigma, sp)
                region = _grow(inner, halo, padded.shape[:-1])
                x = np.ascontiguousarray(padded[region + (c,)], dtype=np.float32)
                core = tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inner, region))
                for arr in _scale_features(x, core, cfg, sigma, sp, work):
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
