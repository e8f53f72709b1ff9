"""Checks and limits on input images, before and after opening: file kind, size, dtype, NaN/Inf.

Every reader of :mod:`pixlearn.data.images` passes through these, so a crafted or corrupt file is
refused with one line naming it before anything sized by its header is allocated.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.errors import PixlearnError

#: Largest pixel count an image file may declare (2^38: a 256 GiB stack of bytes); larger headers
#: are refused as corrupt or crafted before anything is read, even lazily.
MAX_PIXELS = 2**38

#: Largest annotation value (object ids and classes): ids of 2^31 and more are refused before
#: anything sized by them (counts per id) is allocated.
MAX_LABEL = 2**31 - 1

#: In-memory images are checked for NaN/Inf when opened; lazy ones (Zarr, memory maps) up to this size.
_CHECK_LAZY_BYTES = 256 * 2**20

_REFUSED_KINDS = {"c": "complex", "V": "structured (record)", "U": "string", "S": "byte-string",
                  "O": "object", "M": "date-time", "m": "time-delta"}


def check_input_path(path: str | os.PathLike[str]) -> None:
    """Refuse a missing input, or one that is neither a regular file nor a folder (a FIFO would
    block forever, a device never ends). Never opens it.

    Raises
    ------
    PixlearnError
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise PixlearnError("no such file or folder", path) from None
    except OSError as exc:
        raise PixlearnError(f"cannot access ({exc.strerror or exc})", path) from None
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise PixlearnError(f"is a {kind}, not an image file", path)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise PixlearnError("is not a regular file or folder", path)


def available_memory() -> int:
    """Bytes of memory available now (physical pages free or reclaimable); 2^63 when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2**63


def check_declared_size(shape: Sequence[int], dtype: Any, path: str | os.PathLike[str] | None = None, *,
                        whole: bool = False) -> None:
    """Refuse an image whose header declares no pixels, an absurd size, or (when it must be read
    `whole`) more bytes than the memory available, before anything is decoded.

    Parameters
    ----------
    shape : sequence of int
        Declared shape.
    dtype : dtype-like
    path : path-like, optional
        Named in the error.
    whole : bool
        The read needs the whole image in memory (not tile by tile).

    Raises
    ------
    PixlearnError

    Examples
    --------
    >>> check_declared_size((512, 512), "uint8", whole=True)
    >>> check_declared_size((0, 512), "uint8")
    Traceback (most recent call last):
    ...
    pixlearn.errors.PixlearnError: image has no pixels (shape (0, 512))
    """
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise PixlearnError(f"image header declares a negative size {shape}", path)
    pixels = 1
    for n in shape:
        pixels *= n
    if pixels == 0:
        raise PixlearnError(f"image has no pixels (shape {shape})", path)
    if pixels > MAX_PIXELS:
        raise PixlearnError(f"image header declares {pixels} pixels {shape}, more than the limit {MAX_PIXELS}", path)
    if whole:
        nbytes = pixels * np.dtype(dtype).itemsize
        free = available_memory()
        if nbytes > free:
            raise PixlearnError(
                f"image of shape {shape} needs {nbytes / 2**30:.1f} GiB to read, "
                f"more than the {free / 2**30:.1f} GiB of memory available", path,
            )


def checked_values(array: Any, path: Path) -> Any:
    """Refuse dtypes that are not pixel values, convert bool to uint8, and refuse NaN/Inf in
    images that are in memory (or small enough to scan); lazy big images are checked by size only.

    Parameters
    ----------
    array : array-like
        An opened image (NumPy array, memory map or Zarr array); only small ones are scanned.
    path : Path
        Named in the error.

    Returns
    -------
    array : array-like
        `array` itself, or a uint8 copy of a small boolean one.

    Raises
    ------
    PixlearnError
        Complex, structured, string, object or date-time values; no pixels or too many
        (:func:`check_declared_size`); NaN or Inf in a scanned floating-point image.

    Examples
    --------
    >>> checked_values(np.array([[True, False]]), Path("mask.npy")).dtype
    dtype('uint8')
    """
    kind = array.dtype.kind
    if kind in _REFUSED_KINDS:
        raise PixlearnError(f"{_REFUSED_KINDS[kind]} pixel values ({array.dtype}) are not an image", path)
    check_declared_size(array.shape, array.dtype, path)
    in_memory = isinstance(array, np.ndarray) and not isinstance(array, np.memmap)
    small = isinstance(array, np.ndarray) and array.nbytes <= _CHECK_LAZY_BYTES
    if kind == "b" and small:
        return np.asarray(array).astype(np.uint8)
    if kind == "f" and (in_memory or small):
        check_finite(np.asarray(array), path)
    return array


def check_finite(image: np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`PixlearnError` if a floating-point image holds NaN or Inf."""
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n_bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise PixlearnError(f"contains {n_bad} NaN or Inf pixels", path)
