"""Tile grids and blending weights for tiled prediction; pure NumPy, no model, no torch.

Two ways of covering an image with tiles, used by :mod:`pixlearn.predict`:

*Exact* (``core_grid``)
    The image is cut into disjoint *cores*; each is read with `halo` pixels of context on every
    side that is not an image border, and only the core of the prediction is kept. For a model
    whose output at a pixel depends only on the input within `halo` pixels (a filter bank, a
    network's receptive field) the result equals whole-image prediction exactly.
*Blended* (``tile_grid`` + ``blend_weights``)
    Overlapping tiles, evenly spaced with the last tile flush with the border (nnU-Net), whose
    predictions are averaged with weights that fall off towards the tile edges (Gaussian, cosine
    or constant, as MONAI's ``sliding_window_inference``). A margin of `halo` pixels at inner
    tile edges can be given weight zero, so that wrong border predictions never enter the
    average: with ``overlap >= 2 * halo`` the result again equals whole-image prediction.

Both grids can align tile starts to multiples of a `divisor` (a U-Net with ``k`` poolings is
only shift-equivariant by multiples of ``2**k``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pixlearn.config import Config
from pixlearn.data.blocks import block_grid, per_axis

BLEND_MODES: tuple[str, ...] = ("constant", "gaussian", "cosine")
TILE_MODES: tuple[str, ...] = ("auto", "exact", "blended")
MIN_WEIGHT = 1e-3  # as MONAI: no pixel of a tile's valid region gets a weight below this


@dataclasses.dataclass(frozen=True)
class TileConfig(Config):
    """How an image is cut into tiles for prediction.

    Parameters
    ----------
    tile_shape : tuple of int, optional
        Spatial shape of the tiles handed to the model (context included). ``None``: chosen from
        the memory available (:func:`choose_tile_shape`).
    overlap : int or tuple of int, optional
        Blended mode: pixels shared by neighbouring tiles, per spatial axis. ``None``: twice the
        model's halo, the least for which blended prediction equals whole-image prediction.
    blend : {"gaussian", "cosine", "constant"}
        Blended mode: weights of the pixels of a tile.
    sigma_scale : float
        Gaussian blending: sigma as a fraction of the tile length (MONAI's default 0.125).
    mode : {"auto", "exact", "blended"}
        ``"exact"``: disjoint cores read with halo context; ``"blended"``: overlapping tiles
        averaged; ``"auto"``: the model's ``tile_mode`` (exact for classical models, blended
        for networks), exact for a bare predict function.
    batch_size : int
        Tiles of equal shape stacked into one call of the model (networks).
    memory_budget_mib : float, optional
        Memory for one batch of tiles when `tile_shape` is ``None``; default: a quarter of the
        available memory, at most 1 GiB.

    Examples
    --------
    >>> TileConfig(tile_shape=(256, 256), overlap=32).overlap
    (32,)
    """

    tile_shape: tuple[int, ...] | None = None
    overlap: tuple[int, ...] | int | None = None
    blend: str = "gaussian"
    sigma_scale: float = 0.125
    mode: str = "auto"
    batch_size: int = 4
    memory_budget_mib: float | None = None

    def __post_init__(self) -> None:
        if self.tile_shape is not None:
            shape = tuple(int(t) for t in self.tile_shape)
            if not shape or min(shape) < 1:
                raise ValueError(f"tile_shape must be positive integers, got {self.tile_shape}")
            object.__setattr__(self, "tile_shape", shape)
        if self.overlap is not None:
            overlap = (self.overlap,) if isinstance(self.overlap, int) else tuple(self.overlap)
            overlap = tuple(int(o) for o in overlap)
            if not overlap or min(overlap) < 0:
                raise ValueError(f"overlap must be non-negative integers, got {self.overlap}")
            object.__setattr__(self, "overlap", overlap)
        if self.blend not in BLEND_MODES:
            raise ValueError(f"blend {self.blend!r} is not one of {BLEND_MODES}")
        if self.mode not in TILE_MODES:
            raise ValueError(f"tile mode {self.mode!r} is not one of {TILE_MODES}")
        if not self.sigma_scale > 0:
            raise ValueError(f"sigma_scale must be positive, got {self.sigma_scale}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.memory_budget_mib is not None and not self.memory_budget_mib > 0:
            raise ValueError(f"memory_budget_mib must be positive, got {self.memory_budget_mib}")


class CoreTile(NamedTuple):
    """One tile of an exact grid: `region` is read, `core` (image coordinates) is kept."""

    region: tuple[slice, ...]
    core: tuple[slice, ...]

    @property
    def inner(self) -> tuple[slice, ...]:
        """The core in the coordinates of the region."""
        return tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.region))






def axis_starts(length: int, tile: int, overlap: int, divisor: int = 1) -> list[int]:
    """Start positions of overlapping tiles along one axis.

    Tiles are evenly spaced, the first at 0 and the last flush with the border; neighbours
    share at least `overlap` pixels. With ``divisor > 1`` every start is a multiple of
    `divisor` and the last tile ends at the border (it may be up to ``divisor - 1`` pixels
    longer than `tile`).

    Parameters
    ----------
    length : int
        Length of the image axis.
    tile : int
        Tile length; an axis shorter than `tile` gets one tile of its length.
    overlap : int
        Smallest overlap of neighbouring tiles, ``0 <= overlap < tile``.
    divisor : int

    Returns
    -------
    starts : list of int

    Examples
    --------
    >>> axis_starts(100, 40, 10)
    [0, 30, 60]
    >>> axis_starts(10, 40, 10)
    [0]
    """
    if tile < 1 or divisor < 1:
        raise ValueError(f"tile ({tile}) and divisor ({divisor}) must be positive")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be at least 0 and less than the tile length {tile}")
    if length <= tile:
        return [0]
    step = (tile - overlap) // divisor * divisor
    if step < 1:
        raise ValueError(f"tile {tile} minus overlap {overlap} is less than the divisor {divisor}")
    last = (length - tile) // divisor * divisor
    if divisor == 1:
        n = math.ceil((length - tile) / step) + 1
        return [round(i * (length - tile) / (n - 1)) for i in range(n)]
    n = math.ceil(last / step) + 1
    if n == 1:
        return [0]
    return [int(i * last / (n - 1)) // divisor * divisor for i in range(n)]


def tile_grid(
    shape: Sequence[int],
    tile_shape: Sequence[int] | int,
    overlap: Sequence[int] | int = 0,
    *,
    divisor: Sequence[int] | int = 1,
) -> list[tuple[slice, ...]]:
    """Overlapping tiles covering an image, in C order (last axis fastest).

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the image, (M, N) or (P, M, N).
    tile_shape : int or sequence of int
        Tile shape; clipped to `shape` where the image is smaller.
    overlap : int or sequence of int
        Smallest overlap of neighbouring tiles per axis.
    divisor : int or sequence of int
        Tile starts are multiples of it (see :func:`axis_starts`).

    Returns
    -------
    tiles : list of tuple of slice
        Regions of the image, all within it; their union is the whole image.

    Examples
    --------
    >>> tile_grid((5, 9), 5, 1)
    [(slice(0, 5, None), slice(0, 5, None)), (slice(0, 5, None), slice(4, 9, None))]
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    tiles = per_axis(tile_shape, ndim, "tile_shape")
    overlaps = per_axis(overlap, ndim, "overlap")
    divisors = per_axis(divisor, ndim, "divisor")
    slices = []
    for length, tile, ovl, div in zip(shape, tiles, overlaps, divisors):
        starts = axis_starts(length, tile, ovl, div)
        stops = [min(s + tile, length) for s in starts]
        stops[-1] = length
        slices.append([slice(a, b) for a, b in zip(starts, stops)])
    return [tuple(t) for t in itertools.product(*slices)]


def core_grid(
    shape: Sequence[int],
    core_shape: Sequence[int] | int,
    halo: Sequence[int] | int = 0,
    *,
    divisor: Sequence[int] | int = 1,
    region: Sequence[slice] | None = None,
) -> list[CoreTile]:
    """Disjoint cores covering an image, each with the region to read around it.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the image.
    core_shape : int or sequence of int
        Core shape (the last core along an axis may be shorter); rounded down to a multiple of
        `divisor` (at least one `divisor`).
    halo : int or sequence of int
        Context read on each side of a core, clipped at the image border.
    divisor : int or sequence of int
        Region starts are multiples of it.
    region : sequence of slice, optional
        Cover only this part of the image (its starts should be multiples of `divisor`);
        regions read around it still extend into the rest of the image.

    Returns
    -------
    tiles : list of CoreTile
        In C order; the cores partition the image (or `region`).

    Examples
    --------
    >>> [t.region for t in core_grid((10,), 4, 1)]
    [(slice(0, 5, None),), (slice(3, 9, None),), (slice(7, 10, None),)]
    """
    blocks = block_grid(shape, core_shape, halo, divisor=divisor, region=region)
    return [CoreTile(b.region, b.core) for b in blocks]


def _window_1d(length: int, mode: str, sigma_scale: float) -> np.ndarray:
    if mode == "constant":
        return np.ones(length, np.float32)
    x = np.arange(length, dtype=np.float32) - np.float32((length - 1) / 2.0)
    if mode == "gaussian":
        sigma = np.float32(length * sigma_scale)
        return np.exp(x**2 / (np.float32(-2.0) * sigma**2)).astype(np.float32)
    # cosine (Hann) window, sampled at pixel centres so that no pixel gets weight 0
    return (np.cos(np.float32(np.pi) * x / np.float32(length)) ** 2).astype(np.float32)


def blend_weights(
    tile_shape: Sequence[int],
    mode: str = "gaussian",
    sigma_scale: float = 0.125,
    *,
    margins: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Weights of a tile's pixels for blending overlapping predictions.

    The weight is a product of one window per axis (Gaussian with sigma ``sigma_scale *
    length``, cosine (Hann), or constant), clamped below at ``1e-3`` (MONAI's
    ``compute_importance_map``). Pixels within `margins` of the tile's edges get weight 0.

    Parameters
    ----------
    tile_shape : sequence of int
    mode : {"gaussian", "cosine", "constant"}
    sigma_scale : float
    margins : sequence of (int, int), optional
        Per axis, pixels at the low and high edge that get weight 0; the window spans the rest.

    Returns
    -------
    weights : ndarray of shape `tile_shape`, float32

    Examples
    --------
    >>> blend_weights((3,), "constant", margins=[(1, 0)]).tolist()
    [0.0, 1.0, 1.0]
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode {mode!r} is not one of {BLEND_MODES}")
    shape = tuple(int(s) for s in tile_shape)
    pads: list[tuple[int, ...]] = [(0, 0)] * len(shape) if margins is None else [tuple(map(int, m)) for m in margins]
    if len(pads) != len(shape):
        raise ValueError(f"{len(pads)} margins for a {len(shape)}-axis tile")
    inner = tuple(s - lo - hi for s, (lo, hi) in zip(shape, pads))
    if min(inner) < 1 or min(min(m) for m in pads) < 0:
        raise ValueError(f"margins {pads} leave nothing of the tile {shape}")
    weights = np.ones((), np.float32)
    for length in inner:
        weights = np.multiply.outer(weights, _window_1d(length, mode, float(sigma_scale)))
    weights = np.maximum(weights, np.float32(max(float(weights.min()), MIN_WEIGHT)))
    return np.pad(weights.astype(np.float32), pads)


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil, else ``/proc/meminfo``)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 4 * 2**30


def choose_tile_shape(
    image_shape: Sequence[int],
    budget_bytes: float,
    bytes_per_pixel: float,
    *,
    halo: Sequence[int] | int = 0,
    divisor: Sequence[int] | int = 1,
    batch_size: int = 1,
    max_edge: int | None = None,
) -> tuple[int, ...]:
    """The largest cube-like tile whose batch fits a memory budget.

    Parameters
    ----------
    image_shape : sequence of int
        Spatial shape of the image: a tile never exceeds it (rounded up to `divisor`).
    budget_bytes : float
        Memory for one batch of tiles (from :func:`available_memory`, or a GPU's free memory).
    bytes_per_pixel : float
        Memory the model needs per tile pixel (inputs, features or activations, outputs).
    halo : int or sequence of int
        The tile is at least ``2 * halo + divisor`` long (rounded up to a multiple of
        `divisor`), whatever the budget.
    divisor : int or sequence of int
        Tile lengths are multiples of it.
    batch_size : int
    max_edge : int, optional
        Longest tile edge; default 1024 in 2D, 128 in 3D.

    Returns
    -------
    tile_shape : tuple of int

    Examples
    --------
    >>> choose_tile_shape((5000, 5000), 2**26, 64.0, divisor=16)
    (1024, 1024)
    >>> choose_tile_shape((5000, 5000), 2**22, 64.0, divisor=16)
    (256, 256)
    """
    shape = tuple(int(s) for s in image_shape)
    ndim = len(shape)
    halos = per_axis(halo, ndim, "halo")
    divisors = per_axis(divisor, ndim, "divisor")
    if max_edge is None:
        max_edge = 1024 if ndim == 2 else 128
    pixels = max(1.0, budget_bytes / max(bytes_per_pixel, 1e-9) / max(batch_size, 1))
    edge = int(pixels ** (1.0 / ndim))
    tile = []
    for length, h, div in zip(shape, halos, divisors):
        t = max(min(edge, max_edge) // div * div, -(-(2 * h + div) // div) * div)
        tile.append(min(t, -(-length // div) * div))
    return tuple(tile)
