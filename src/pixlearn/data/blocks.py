"""The one block grid: disjoint cores that cover an image, each read with a halo of context.

Block-wise computations (the filter bank of :mod:`pixlearn.classical`, exact tiled prediction in
:mod:`pixlearn.predict.tiling`) cut an image's spatial shape into disjoint *cores* in C order and
read each with `halo` pixels of context on every side that is not an image border. For an
operation whose output at a pixel depends only on the input within `halo` pixels, cropping the
core out of the result gives the whole-image values exactly. :func:`core_shape_for_budget` picks
the largest cores whose blocks fit a memory budget. Pure Python on shapes and slices.
"""

from __future__ import annotations

import itertools
import math
import numbers
import typing
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["Block", "block_grid", "block_numbers", "core_shape_for_budget", "pad_block"]


class Block(NamedTuple):
    """One block of a grid: `region` is read, `core` (image coordinates) is kept."""

    region: tuple[slice, ...]
    core: tuple[slice, ...]

    @property
    def inner(self) -> tuple[slice, ...]:
        """The core in the coordinates of the region."""
        return tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.region))


def per_axis(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """One integer per spatial axis from a scalar, a 1-sequence, or an `ndim`-sequence.

    Parameters
    ----------
    value : int or sequence of int
    ndim : int
    name : str
        Named in the error message.

    Returns
    -------
    values : tuple of int

    Raises
    ------
    ValueError
        A sequence of another length.

    Examples
    --------
    >>> per_axis(3, 2, "halo"), per_axis([4], 3, "tile"), per_axis((1, 2), 2, "overlap")
    ((3, 3), (4, 4, 4), (1, 2))
    """
    if isinstance(value, numbers.Integral):
        values: tuple[int, ...] = (int(value),) * ndim
    else:
        values = tuple(int(v) for v in typing.cast(Sequence[int], value))
    if len(values) == 1 and ndim > 1:
        values = values * ndim
    if len(values) != ndim:
        raise ValueError(f"{name} {tuple(values)} has {len(values)} entries for {ndim} spatial axes")
    return values


def pad_block(
    core: Sequence[slice],
    shape: Sequence[int],
    halo: Sequence[int] | int,
    *,
    divisor: Sequence[int] | int = 1,
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Grow a block by `halo`, clipped to the image, and say where the core lies inside it.

    Parameters
    ----------
    core : sequence of slice
        Region in the image (steps of 1).
    shape : sequence of int
        Spatial shape of the image.
    halo : int or sequence of int
        Context on each side, per axis.
    divisor : int or sequence of int
        The grown region starts at a multiple of it (it may then hold more context before the
        core than `halo`).

    Returns
    -------
    padded : tuple of slice
        Region to read from the image.
    inner : tuple of slice
        The core, relative to `padded`.

    Examples
    --------
    >>> pad_block((slice(4, 8),), (10,), (3,))
    ((slice(1, 10, None),), (slice(3, 7, None),))
    >>> pad_block((slice(4, 8),), (10,), 3, divisor=2)
    ((slice(0, 10, None),), (slice(4, 8, None),))
    """
    ndim = len(shape)
    halos = per_axis(halo, ndim, "halo")
    divisors = per_axis(divisor, ndim, "divisor")
    padded, inner = [], []
    for sl, n, h, div in zip(core, shape, halos, divisors):
        start, stop, _ = sl.indices(n)
        lo, hi = max(0, (start - h) // div * div), min(n, stop + h)
        padded.append(slice(lo, hi))
        inner.append(slice(start - lo, stop - lo))
    return tuple(padded), tuple(inner)


def block_grid(
    shape: Sequence[int],
    block_shape: Sequence[int] | int,
    halo: Sequence[int] | int = 0,
    *,
    divisor: Sequence[int] | int = 1,
    region: Sequence[slice] | None = None,
) -> list[Block]:
    """Disjoint cores covering an image (or a region of it), each with the region to read around it.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape ``(M, N)`` or ``(P, M, N)`` of the image.
    block_shape : int or sequence of int
        Core shape per axis (the last core along an axis may be shorter); rounded down to a
        multiple of `divisor` (at least one `divisor`).
    halo : int or sequence of int
        Context read on each side of a core, clipped at the image border (:func:`pad_block`).
    divisor : int or sequence of int
        Cores and read regions start at multiples of it (with `region`, relative to its start,
        which should itself be a multiple).
    region : sequence of slice, optional
        Cover only this part of the image; regions read around it still extend into the rest
        of the image.

    Returns
    -------
    blocks : list of Block
        In C order (last axis fastest); the cores partition the image (or `region`).

    Raises
    ------
    ValueError
        A non-positive `block_shape` or `divisor`, a negative `halo`, or a length other than the
        number of spatial axes.

    Examples
    --------
    >>> [b.core for b in block_grid((5, 3), (2, 3))]  # doctest: +NORMALIZE_WHITESPACE
    [(slice(0, 2, None), slice(0, 3, None)), (slice(2, 4, None), slice(0, 3, None)),
     (slice(4, 5, None), slice(0, 3, None))]
    >>> [b.region for b in block_grid((10,), 4, 1)]
    [(slice(0, 5, None),), (slice(3, 9, None),), (slice(7, 10, None),)]
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    cores = per_axis(block_shape, ndim, "block_shape")
    halos = per_axis(halo, ndim, "halo")
    divisors = per_axis(divisor, ndim, "divisor")
    if any(c < 1 for c in cores) or any(h < 0 for h in halos) or any(d < 1 for d in divisors):
        raise ValueError(
            f"block_shape {cores} and divisor {divisors} must be positive and halo {halos} non-negative"
        )
    bounds = [(0, n) for n in shape] if region is None else [
        (r.start or 0, n if r.stop is None else min(r.stop, n)) for r, n in zip(region, shape)
    ]
    axis_slices: list[list[slice]] = []
    for core, div, (first, end) in zip(cores, divisors, bounds):
        step = max(div, core // div * div)
        axis_slices.append([slice(start, min(start + step, end)) for start in range(first, end, step)])
    blocks = []
    for combo in itertools.product(*axis_slices):
        padded, _ = pad_block(combo, shape, halos, divisor=divisors)
        blocks.append(Block(padded, tuple(combo)))
    return blocks


def block_numbers(coords: Sequence[np.ndarray], shape: Sequence[int], block_shape: Sequence[int] | int) -> np.ndarray:
    """Index in ``block_grid(shape, block_shape)`` of the block that holds each pixel.

    Parameters
    ----------
    coords : sequence of ndarray of int
        One array of pixel coordinates per spatial axis (as ``numpy.unravel_index`` gives).
    shape : sequence of int
        Spatial shape of the image.
    block_shape : int or sequence of int
        As for :func:`block_grid` (no `divisor`, no `region`).

    Returns
    -------
    numbers : ndarray of int64
        ``block_grid(shape, block_shape)[numbers[i]].core`` contains pixel ``i``.

    Examples
    --------
    >>> block_numbers((np.array([0, 4]), np.array([2, 0])), (5, 3), (2, 3)).tolist()
    [0, 2]
    """
    shape = tuple(int(s) for s in shape)
    blocks = per_axis(block_shape, len(shape), "block_shape")
    if any(b < 1 for b in blocks):
        raise ValueError(f"block_shape {blocks} must be positive")
    grid = tuple(-(-n // b) for n, b in zip(shape, blocks))
    return np.ravel_multi_index(tuple(np.asarray(c) // b for c, b in zip(coords, blocks)), grid).astype(np.int64)


def _block_extent(n: int, core: int, halo: int) -> int:
    """Length of the largest block along an axis of length `n` cut into cores of `core`."""
    return n if core >= n else min(n, core + 2 * halo)


def core_shape_for_budget(
    shape: Sequence[int],
    halo: Sequence[int] | int,
    budget_bytes: float,
    bytes_per_pixel: float,
    *,
    divisor: Sequence[int] | int = 1,
) -> tuple[int, ...]:
    """The largest cube-like cores whose blocks (core and halo) fit a memory budget.

    Every core has the same edge ``e`` (clipped to each axis, so that a short axis, such as the
    few planes of a serial-section stack, is one core whole and needs no halo); ``e`` is the
    largest multiple of `divisor` for which the largest block, ``min(n, e + 2 * halo)`` per axis,
    needs at most `budget_bytes`. The cores are then evened out along each axis (1024 pixels in
    cores of at most 700 become two of 512, not one of 700 and one of 324).

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the image.
    halo : int or sequence of int
        Context a block reads on each side of its core.
    budget_bytes : float
        Memory that one block may take.
    bytes_per_pixel : float
        Memory per block pixel (context included).
    divisor : int or sequence of int
        Core lengths are multiples of it (but for the last core of an axis).

    Returns
    -------
    core_shape : tuple of int
        At least one `divisor` per axis, whatever the budget; the whole image when its one block
        fits.

    Examples
    --------
    >>> core_shape_for_budget((5, 1024, 1024), (5, 46, 46), 2**31, 400.0)  # planes whole, no halo
    (5, 1024, 1024)
    >>> core_shape_for_budget((5, 1024, 1024), (5, 46, 46), 2**29, 400.0)  # blocks of 5 x 434 x 434
    (5, 342, 342)
    >>> core_shape_for_budget((5, 1024, 1024), (5, 46, 46), 2**25, 400.0)
    (5, 37, 37)
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    halos = per_axis(halo, ndim, "halo")
    divisors = per_axis(divisor, ndim, "divisor")
    pixels = budget_bytes / max(float(bytes_per_pixel), 1e-12)

    def fits(edge: int) -> bool:
        need = 1
        for n, h, d in zip(shape, halos, divisors):
            need *= _block_extent(n, max(d, edge // d * d), h)
        return need <= pixels

    lo, hi = 1, max(shape)
    while lo < hi:  # the largest edge that fits (or 1)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    cores = []
    for n, d in zip(shape, divisors):
        edge = max(d, lo // d * d)
        if edge >= n:
            cores.append(n)
            continue
        pieces = math.ceil(n / edge)
        even = math.ceil(math.ceil(n / pieces) / d) * d  # n in `pieces` even cores, up to the divisor
        cores.append(min(edge, even))
    return tuple(cores)
