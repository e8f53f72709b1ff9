"""Intensity normalisation: percentile scaling, computed once per image and applied per tile."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from pixlearn.config import Config
from pixlearn.data.axes import CanonicalView, transformed_view


@dataclasses.dataclass(frozen=True)
class NormalizeConfig(Config):
    """How raw intensities are scaled before features or networks see them.

    Parameters
    ----------
    mode : {"percentile", "fixed", "none"}
        ``"percentile"``: per image and channel, `pmin`..`pmax` percentiles map to 0..1.
        ``"fixed"``: `low`..`high` map to 0..1 for every image. ``"none"``: cast to float32.
    pmin, pmax : float
        Percentiles for ``"percentile"``.
    low, high : float
        Bounds for ``"fixed"``.
    polarity : {"keep", "bright-objects"}
        ``"bright-objects"`` (``"percentile"`` mode): a channel whose median lies above the middle
        of its `pmin`..`pmax` range (a bright background: brightfield, H&E) is inverted, so that
        objects are bright on a dark background in every image, as in fluorescence. The inversion
        is ``high < low`` in the bounds, decided per image and channel.
    """

    mode: str = "percentile"
    pmin: float = 1.0
    pmax: float = 99.8
    low: float = 0.0
    high: float = 1.0
    polarity: str = "keep"

    def __post_init__(self) -> None:
        if self.mode not in ("percentile", "fixed", "none"):
            raise ValueError(f"normalisation mode {self.mode!r} is not percentile, fixed or none")
        if not 0.0 <= self.pmin < self.pmax <= 100.0:
            raise ValueError(f"need 0 <= pmin < pmax <= 100, got {self.pmin}, {self.pmax}")
        if not self.low < self.high:
            raise ValueError(f"need low < high, got {self.low}, {self.high}")
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity {self.polarity!r} is not one of {POLARITIES}")


POLARITIES: tuple[str, ...] = ("keep", "bright-objects")


def _sample(image: Any, max_values: int) -> np.ndarray:
    """A strided subsample of a (possibly lazy) canonical image, at most ~`max_values` pixels."""
    spatial = image.shape[:-1]
    n = int(np.prod(spatial))
    step = max(1, int(np.ceil((n / max_values) ** (1.0 / len(spatial)))))
    return np.asarray(image[tuple(slice(None, None, step) for _ in spatial)])


def compute_normalization(
    image: Any, cfg: NormalizeConfig, *, max_values: int = 4_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel intensity bounds ``(low, high)`` of a canonical image.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        May be lazy (Zarr, memory map): large images are subsampled on a regular grid.
    cfg : NormalizeConfig
    max_values : int
        Pixels read at most for the percentiles.

    Returns
    -------
    low, high : ndarray of shape (C,), float32
        ``high != low`` always (a flat channel gets ``high = low + 1``); ``high < low`` for a
        channel inverted by ``polarity="bright-objects"``.

    Examples
    --------
    >>> lo, hi = compute_normalization(np.arange(100.0).reshape(10, 10, 1), NormalizeConfig(pmin=0, pmax=100))
    >>> float(lo[0]), float(hi[0])
    (0.0, 99.0)
    """
    n_channels = image.shape[-1]
    if cfg.mode == "none":
        return np.zeros(n_channels, np.float32), np.ones(n_channels, np.float32)
    if cfg.mode == "fixed":
        return (np.full(n_channels, cfg.low, np.float32), np.full(n_channels, cfg.high, np.float32))
    sample = _sample(image, max_values).reshape(-1, n_channels).astype(np.float32)
    low, high = np.percentile(sample, [cfg.pmin, cfg.pmax], axis=0).astype(np.float32)
    flat = high <= low
    high = np.where(flat, low + 1.0, high).astype(np.float32)
    low = low.astype(np.float32)
    if cfg.polarity == "bright-objects":
        bright_background = np.median(sample, axis=0) > (low + high) / 2
        low, high = np.where(bright_background, high, low), np.where(bright_background, low, high)
    return low, high


def apply_normalization(image: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map ``low..high`` to ``0..1`` per channel (no clipping; ``high < low`` inverts); returns
    a new float32 array.

    Parameters
    ----------
    image : ndarray of shape (..., C)
    low, high : ndarray of shape (C,)

    Returns
    -------
    image : ndarray of shape (..., C), float32
    """
    low = np.asarray(low, np.float32)
    scale = np.float32(1.0) / (np.asarray(high, np.float32) - low)
    out = np.asarray(image, dtype=np.float32) - low
    out *= scale
    return out




def normalized_view(image: Any, low: np.ndarray, high: np.ndarray) -> CanonicalView:
    """A lazy view of a canonical image that normalises whatever region is read.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Raw intensities; may be lazy (Zarr, memory map): only the slices read are loaded.
    low, high : ndarray of shape (C,)
        As :func:`compute_normalization` gives.

    Returns
    -------
    view : CanonicalView, float32
        ``view[region]`` equals ``apply_normalization(image[region], low, high)``.

    Examples
    --------
    >>> view = normalized_view(np.full((2, 2, 1), 3.0), np.array([1.0]), np.array([5.0]))
    >>> view[:1, :1].tolist()
    [[[0.5]]]
    """
    return transformed_view(image, functools.partial(apply_normalization, low=low, high=high), dtype=np.float32)
