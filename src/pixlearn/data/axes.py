"""Axes strings and the canonical array layout.

pixlearn names axes with the letters ``Z`` (planes), ``Y`` (rows), ``X`` (columns) and ``C``
(channels); ``S`` (samples, as OME-TIFF writes RGB) is read as ``C``, and a ``T`` or ``Q`` axis
of length 1 is dropped. Inside the library every image has the *canonical* layout: spatial axes
first, channel last, ``"YXC"`` for 2D and ``"ZYXC"`` for 3D.

When no axes are given, they are inferred from the shape by this rule:

====================  ===========  =========================================
shape                 axes         note
====================  ===========  =========================================
``(M, N)``            ``YX``       grey 2D
``(M, N, 3|4)``       ``YXC``      RGB(A) 2D
``(P, M, N)``         ``ZYX``      any other 3-axis shape is a grey stack
``(P, M, N, 1..4)``   ``ZYXC``     channel-last stack
``(C, P, M, N)``      ``CZYX``     any other 4-axis shape
====================  ===========  =========================================

A ``(C, M, N)`` multichannel 2D image cannot be told from a stack: pass ``axes="CYX"``.

Images too large for memory (Zarr, memory-mapped TIFF) get the canonical layout lazily:
:func:`canonical_view` wraps them in a :class:`CanonicalView` that reads only the slices asked for.
The same view, given a per-block transform, is the lazy normalised or grey image that block-wise
code reads (:func:`transformed_view`, :func:`grey_view`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SPATIAL = "ZYX"
_KNOWN = set("ZYXCSTQ")


def normalize_axes(axes: str, ndim: int) -> str:
    """Check an axes string against an array's dimensionality and return it upper-cased.

    Parameters
    ----------
    axes : str
        Letters from ``ZYXCSTQ``, one per array axis, each at most once.
    ndim : int
        Number of axes of the array.

    Returns
    -------
    axes : str
        Upper-case, ``S`` replaced by ``C``.

    Raises
    ------
    ValueError
        Unknown or repeated letters, a length that differs from `ndim`, or no ``YX`` pair.

    Examples
    --------
    >>> normalize_axes("yxs", 3)
    'YXC'
    """
    axes = axes.upper().replace("S", "C")
    if len(axes) != ndim:
        raise ValueError(f"axes {axes!r} has {len(axes)} letters but the image has {ndim} axes")
    bad = set(axes) - _KNOWN
    if bad:
        raise ValueError(f"axes {axes!r}: unknown letters {sorted(bad)} (use Z, Y, X, C)")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r}: a letter appears twice")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r}: needs both Y and X")
    return axes


def infer_axes(shape: tuple[int, ...]) -> str:
    """Guess the axes of an array from its shape (see the module's table).

    Parameters
    ----------
    shape : tuple of int

    Returns
    -------
    axes : str

    Raises
    ------
    ValueError
        For fewer than 2 or more than 4 axes.

    Examples
    --------
    >>> infer_axes((512, 512, 3)), infer_axes((20, 512, 512)), infer_axes((2, 20, 64, 64))
    ('YXC', 'ZYX', 'CZYX')
    """
    ndim = len(shape)
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "YXC" if shape[-1] in (3, 4) else "ZYX"
    if ndim == 4:
        return "ZYXC" if shape[-1] <= 4 else "CZYX"
    raise ValueError(f"cannot infer axes for a {ndim}-axis image of shape {shape}: pass axes=")


def canonical_axes(axes: str) -> str:
    """Return the canonical layout for the spatial axes in `axes`: ``"YXC"`` or ``"ZYXC"``.

    Examples
    --------
    >>> canonical_axes("CZYX")
    'ZYXC'
    """
    return ("ZYX" if "Z" in axes.upper() else "YX") + "C"


def to_canonical(image: np.ndarray, axes: str | None = None) -> np.ndarray:
    """Reorder an image to the canonical layout ``(..., C)``, spatial axes first.

    Parameters
    ----------
    image : ndarray
        Any layout described by `axes`.
    axes : str, optional
        Axes of `image`; inferred with :func:`infer_axes` when ``None``.

    Returns
    -------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
        A view where possible; the dtype is unchanged. A missing channel axis is added.

    Raises
    ------
    ValueError
        Bad axes, or a ``T``/``Q`` axis longer than 1.

    Examples
    --------
    >>> to_canonical(np.zeros((2, 5, 6)), "CYX").shape
    (5, 6, 2)
    """
    axes = normalize_axes(infer_axes(image.shape) if axes is None else axes, image.ndim)
    for extra in "TQ":
        if extra in axes:
            i = axes.index(extra)
            if image.shape[i] != 1:
                raise ValueError(
                    f"axis {extra} has length {image.shape[i]}: time series are not supported, "
                    "split them into one file per time point"
                )
            image = np.take(image, 0, axis=i)
            axes = axes.replace(extra, "")
    if "C" not in axes:
        image = image[..., np.newaxis]
        axes = axes + "C"
    target = canonical_axes(axes)
    return np.transpose(image, [axes.index(a) for a in target])


def from_canonical(image: np.ndarray, axes: str) -> np.ndarray:
    """Inverse of :func:`to_canonical` for spatial-plus-channel images.

    Parameters
    ----------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
    axes : str
        Wanted layout, made of the same letters (``C`` may be left out when C == 1).

    Returns
    -------
    image : ndarray

    Examples
    --------
    >>> from_canonical(np.zeros((5, 6, 2)), "CYX").shape
    (2, 5, 6)
    """
    axes = axes.upper()
    src = canonical_axes(axes)
    if image.ndim != len(src):
        raise ValueError(f"expected a canonical {src} image, got shape {image.shape}")
    if "C" not in axes:
        if image.shape[-1] != 1:
            raise ValueError(f"axes {axes!r} has no C but the image has {image.shape[-1]} channels")
        image = image[..., 0]
        src = src[:-1]
    return np.transpose(image, [src.index(a) for a in axes])


def spatial_ndim(axes: str) -> int:
    """Number of spatial axes (2 or 3) in an axes string.

    Examples
    --------
    >>> spatial_ndim("ZYXC")
    3
    """
    return sum(a in SPATIAL for a in axes.upper())


def full_slices(key: Any, ndim: int) -> tuple[slice, ...]:
    """Expand a basic index (slices, an Ellipsis) into one slice per axis.

    Raises
    ------
    TypeError
        For integer or array indices.

    Examples
    --------
    >>> full_slices((Ellipsis, slice(1, 2)), 3)
    (slice(None, None, None), slice(None, None, None), slice(1, 2, None))
    """
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1:]
    key = key + (slice(None),) * (ndim - len(key))
    if not all(isinstance(k, slice) for k in key):
        raise TypeError("lazy canonical views support slices only")
    return key


class CanonicalView:
    """A lazy array in the canonical layout ``(..., C)`` over any stored layout.

    The one lazy view of pixlearn. Slicing reads only the requested part of the underlying
    array (Zarr, memory map, TIFF store, another view) and returns a NumPy array. ``T``/``Q``
    axes of length 1 are dropped, a missing channel axis is added. An optional `transform` is
    applied to every block read, with all its channels, before the channel index is applied:
    normalisation (:func:`pixlearn.data.normalize.normalized_view`) or the mean of the colours
    (:func:`grey_view`) seen lazily.

    Parameters
    ----------
    array : array-like
        Supports ``shape``, ``dtype`` and basic slicing.
    axes : str
        Axes of `array`, e.g. ``"CZYX"``.
    transform : callable, optional
        ``transform(block) -> block``: a canonical block ``(..., C)`` to ``(..., n_channels)``,
        pixel by pixel (a pixel's output depends on that pixel's channels only, so any region
        gives the same values as the whole image); must not modify its input.
    n_channels : int, optional
        Channels after `transform` (default: those of `array`).
    dtype : dtype, optional
        Data type after `transform` (default: that of `array`).

    Examples
    --------
    >>> view = CanonicalView(np.arange(24).reshape(2, 3, 4), "CYX")
    >>> view.shape, view[1:2, :2].tolist()
    ((3, 4, 2), [[[4, 16], [5, 17]]])
    >>> doubled = CanonicalView(np.arange(6).reshape(2, 3), "YX", lambda b: 2 * b)
    >>> doubled[1:, 1:].tolist()
    [[[8], [10]]]
    """

    def __init__(
        self,
        array: Any,
        axes: str,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        n_channels: int | None = None,
        dtype: Any = None,
    ) -> None:
        axes = normalize_axes(axes, len(array.shape))
        for extra in "TQ":
            if extra in axes and array.shape[axes.index(extra)] != 1:
                raise ValueError(f"axis {extra} has length {array.shape[axes.index(extra)]}: one time point per file")
        if transform is None and (n_channels is not None or dtype is not None):
            raise ValueError("n_channels and dtype describe a transform's output: give a transform")
        self._array = array
        self._axes = axes
        self._kept = [a for a in axes if a not in "TQ"]
        self._target = ("ZYX" if "Z" in axes else "YX") + "C"
        self._transform = transform
        sizes = dict(zip(axes, array.shape))
        shape = [int(sizes.get(a, 1)) for a in self._target]
        if n_channels is not None:
            shape[-1] = int(n_channels)
        self.shape = tuple(shape)
        self.dtype = np.dtype(array.dtype if dtype is None else dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = full_slices(key, self.ndim)
        by_axis = dict(zip(self._target, key))
        channels = by_axis["C"]
        if self._transform is not None:  # the transform needs every channel
            by_axis["C"] = slice(None)
        source_key = tuple(0 if a in "TQ" else by_axis[a] for a in self._axes)
        block = np.asarray(self._array[source_key])
        if "C" not in self._kept:
            block = block[..., np.newaxis]
            kept = self._kept + ["C"]
            block = block[..., by_axis["C"]]
        else:
            kept = self._kept
        block = np.transpose(block, [kept.index(a) for a in self._target])
        if self._transform is None:
            return block
        return np.asarray(self._transform(block), dtype=self.dtype)[..., channels]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        block = self[...]
        return block if dtype is None else block.astype(dtype, copy=False)


def transformed_view(
    image: Any,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    n_channels: int | None = None,
    dtype: Any = None,
) -> CanonicalView:
    """A lazy :class:`CanonicalView` of a canonical image with `transform` applied to every block read.

    Parameters
    ----------
    image : array-like of shape (M, N, C) or (P, M, N, C)
        Canonical layout; may be lazy.
    transform, n_channels, dtype
        As for :class:`CanonicalView`.

    Returns
    -------
    view : CanonicalView

    Examples
    --------
    >>> view = transformed_view(np.ones((2, 3, 1)), lambda b: b + 1, dtype=np.float32)
    >>> view.shape, view[:1, :2].tolist()
    ((2, 3, 1), [[[2.0], [2.0]]])
    """
    if len(image.shape) not in (3, 4):
        raise ValueError(f"expected a canonical (M, N, C) or (P, M, N, C) image, got shape {tuple(image.shape)}")
    return CanonicalView(image, "ZYXC"[-len(image.shape):], transform, n_channels=n_channels, dtype=dtype)


def _mean_of_colours(block: np.ndarray) -> np.ndarray:
    return block[..., :3].mean(axis=-1, keepdims=True, dtype=np.float32)


def grey_view(image: Any) -> CanonicalView:
    """A lazy one-channel view of a canonical colour image: the mean of its colours (alpha dropped).

    Parameters
    ----------
    image : array-like of shape (..., C)
        Canonical layout, ``C`` 3 (RGB) or 4 (RGBA); may be lazy.

    Returns
    -------
    view : CanonicalView of shape (..., 1), float32

    Examples
    --------
    >>> rgba = np.zeros((1, 2, 4)); rgba[..., 0] = 3; rgba[..., 3] = 9
    >>> grey_view(rgba)[...].tolist()
    [[[1.0], [1.0]]]
    """
    return transformed_view(image, _mean_of_colours, n_channels=1, dtype=np.float32)


def canonical_view(array: Any, axes: str) -> Any:
    """The canonical ``(..., C)`` layout of `array`: a NumPy view, or a lazy :class:`CanonicalView`."""
    if isinstance(array, np.ndarray):
        return to_canonical(array, axes)
    return CanonicalView(array, axes)
