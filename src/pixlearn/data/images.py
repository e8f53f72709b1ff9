"""Reading images, whole, lazily or in the canonical layout, and reading annotations.

Formats: TIFF and OME-TIFF (tifffile; memory-mapped or chunk-wise when possible), PNG and JPEG
(Pillow), and Zarr arrays or OME-Zarr groups (the first resolution level). Every input passes the
checks of :mod:`pixlearn.data.checks` (file kind, declared size, dtype, NaN/Inf); the suffixes and
names live in :mod:`pixlearn.data.formats`, writing in :mod:`pixlearn.data.writers`. The public
names of those three are importable from here as well, where they were documented first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.axes import infer_axes, normalize_axes, to_canonical
from pixlearn.data.checks import (
    MAX_LABEL,
    MAX_PIXELS,
    available_memory,
    check_declared_size,
    check_finite,
    check_input_path,
    checked_values,
)
from pixlearn.data.formats import (
    IMAGE_SUFFIXES,
    PIL_SUFFIXES,
    TIFF_SUFFIXES,
    ZARR_SUFFIXES,
    file_stem,
    is_image_file,
)
from pixlearn.data.writers import create_zarr, write_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


def _zarr_open(path: Path) -> tuple[Any, str | None]:
    import zarr

    node: Any = zarr.open(str(path), mode="r")  # an array, or a group (OME-Zarr); attributes are JSON
    if hasattr(node, "shape"):
        axes = node.attrs.get("axes") if hasattr(node, "attrs") else None
        return node, axes
    attrs: dict[str, Any] = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        arrays = sorted(name for name, _ in node.arrays())
        if len(arrays) != 1:
            raise PixlearnError(f"Zarr group without OME multiscales holds arrays {arrays}", path)
        return node[arrays[0]], None
    level = multiscales[0]["datasets"][0]["path"]
    names = [a["name"] if isinstance(a, dict) else a for a in multiscales[0].get("axes", [])]
    axes = "".join(n[0].upper() for n in names) or None
    return node[level], axes


def open_image(
    path: str | os.PathLike[str], *, axes: str | None = None
) -> tuple[Any, str]:
    """Open an image without reading it all when the format allows it.

    Parameters
    ----------
    path : path-like
        A TIFF/OME-TIFF, PNG, JPEG, ``.npy`` file, or a Zarr array / OME-Zarr group.
    axes : str, optional
        Axes of the stored array; taken from the file's metadata (OME, ImageJ, OME-Zarr) or
        inferred from the shape (:func:`pixlearn.data.axes.infer_axes`) when ``None``.

    Returns
    -------
    array : array-like
        A NumPy array, a memory map or a Zarr array: anything that supports ``shape``,
        ``dtype`` and slicing.
    axes : str
        Normalised axes of `array`.

    Raises
    ------
    PixlearnError
        When the file is missing, unreadable or corrupt, or `axes` does not fit it.
    """
    path = Path(path)
    check_input_path(path)
    suffix = path.suffix.lower()
    stored_axes: str | None = None
    try:
        if suffix in TIFF_SUFFIXES:
            array, stored_axes = _open_tiff(path)
        elif suffix in ZARR_SUFFIXES or (path.is_dir() and (path / ".zattrs").exists())\
                or (path.is_dir() and (path / "zarr.json").exists()):
            array, stored_axes = _zarr_open(path)
        elif suffix in PIL_SUFFIXES:
            from PIL import Image

            im: Any
            with Image.open(path) as im:
                bands = len(im.getbands())
                check_declared_size((im.height, im.width, bands), np.uint8 if im.mode != "I;16" else np.uint16,
                                    path, whole=True)
                im.load()
                if im.mode == "P":
                    im = im.convert("RGB") if "transparency" not in im.info else im.convert("RGBA")
                array = np.asarray(im)
        elif suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            raise PixlearnError(f"unsupported file type {suffix!r}; use one of {IMAGE_SUFFIXES}", path)
    except PixlearnError:
        raise
    except Exception as exc:  # corrupt files raise a zoo of exception types
        raise PixlearnError(f"cannot read image ({type(exc).__name__}: {exc})", path) from exc
    if array.ndim < 2:
        raise PixlearnError(f"not an image: shape {array.shape}", path)
    array = checked_values(array, path)
    try:
        if axes is not None:
            chosen = normalize_axes(axes, array.ndim)
        elif stored_axes is not None and len(stored_axes) == array.ndim and not set(stored_axes) & set("QI"):
            # Q and I are tifffile's "unknown"/"generic sequence": fall back to the shape rule
            chosen = normalize_axes(stored_axes, array.ndim)
        else:
            chosen = infer_axes(tuple(array.shape))
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    return array, chosen


def _open_tiff(path: Path) -> tuple[Any, str | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        stored_axes = series.axes
        shape = series.shape
        check_declared_size(shape, series.dtype, path)
        page = series.pages[0] if series.pages else None
        counts = getattr(page, "databytecounts", None)
        if counts is not None and sum(counts) == 0:
            raise PixlearnError(f"TIFF declares {tuple(shape)} pixels but holds no image data", path)
        # an uncompressed contiguous series can be memory-mapped; anything else is read
        # chunk-wise through tifffile's zarr store when large, else read at once
        nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize
        if nbytes > 256 * 2**20:
            try:
                return tifffile.memmap(path, mode="r"), stored_axes
            except Exception:
                import zarr

                store = tif.aszarr()
                return zarr.open(store, mode="r"), stored_axes
        array = series.asarray()
    return array, stored_axes


def read_image(path: str | os.PathLike[str], *, axes: str | None = None) -> tuple[np.ndarray, str]:
    """Read a whole image into memory.

    Parameters
    ----------
    path : path-like
    axes : str, optional
        See :func:`open_image`.

    Returns
    -------
    image : ndarray
        As stored (dtype unchanged).
    axes : str

    Raises
    ------
    PixlearnError
        Missing, unreadable or corrupt file.
    """
    array, axes = open_image(path, axes=axes)
    if not isinstance(array, np.ndarray) or isinstance(array, np.memmap):
        check_declared_size(array.shape, array.dtype, path, whole=True)
    try:
        return checked_values(np.asarray(array[...]), Path(path)), axes
    except Exception as exc:
        raise PixlearnError(f"cannot read image data ({type(exc).__name__}: {exc})", path) from exc


def read_canonical(path: str | os.PathLike[str], *, axes: str | None = None) -> np.ndarray:
    """Read an image in the canonical layout ``(..., C)`` and check its values are finite.

    Parameters
    ----------
    path : path-like
    axes : str, optional
        See :func:`open_image`.

    Returns
    -------
    image : ndarray of shape (M, N, C) or (P, M, N, C)
        Stored dtype.

    Raises
    ------
    PixlearnError
        Unreadable file, bad axes, or NaN/Inf pixels.
    """
    image, axes = read_image(path, axes=axes)
    try:
        image = to_canonical(image, axes)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    check_finite(image, path)
    return image


def read_labels(path: str | os.PathLike[str], *, axes: str | None = None) -> np.ndarray:
    """Read an annotation image as integers with spatial axes only.

    Parameters
    ----------
    path : path-like
    axes : str, optional
        See :func:`open_image`; a channel axis of length 1 is dropped.

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), integer dtype

    Raises
    ------
    PixlearnError
        Unreadable file, several channels, or non-integer values.
    """
    labels, axes = read_image(path, axes=axes)
    try:
        canon = to_canonical(labels, axes)
    except ValueError as exc:
        raise PixlearnError(str(exc), path) from None
    if canon.shape[-1] != 1:
        raise PixlearnError(
            f"annotation has {canon.shape[-1]} channels; expected one integer value per pixel", path
        )
    labels = canon[..., 0]
    if np.issubdtype(labels.dtype, np.floating):
        check_finite(labels, path)
        if labels.size and (labels.max() > MAX_LABEL or labels.min() < -MAX_LABEL):
            raise PixlearnError(f"annotation values beyond +-{MAX_LABEL}", path)
        if not np.all(labels == np.round(labels)):
            raise PixlearnError("annotation holds non-integer values", path)
        labels = labels.astype(np.int64)
    elif labels.dtype == bool:
        labels = labels.astype(np.uint8)
    elif not np.issubdtype(labels.dtype, np.integer):
        raise PixlearnError(f"annotation dtype {labels.dtype} is not integer", path)
    if labels.size and int(labels.max()) > MAX_LABEL:
        raise PixlearnError(f"annotation value {int(labels.max())} exceeds the largest label {MAX_LABEL}", path)
    return labels


__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_LABEL",
    "MAX_PIXELS",
    "PIL_SUFFIXES",
    "TIFF_SUFFIXES",
    "ZARR_SUFFIXES",
    "available_memory",
    "check_declared_size",
    "check_finite",
    "check_input_path",
    "create_zarr",
    "file_stem",
    "is_image_file",
    "open_image",
    "read_canonical",
    "read_image",
    "read_labels",
    "write_image",
]
