"""Reading and writing images, and matching raw images with their annotations.

Formats: TIFF and OME-TIFF (tifffile; memory-mapped or chunk-wise when possible), PNG and JPEG
(Pillow), and Zarr arrays or OME-Zarr groups (the first resolution level). Every write goes to a
temporary name beside the target and is renamed into place only when complete, so an interrupted
or failed write never leaves a file that could pass for finished.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.axes import infer_axes, normalize_axes, to_canonical
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")


PIL_SUFFIXES = (".png", ".jpg", ".jpeg")


ZARR_SUFFIXES = (".zarr",)


IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES + ZARR_SUFFIXES + (".npy",)

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


def file_stem(path: str | os.PathLike[str]) -> str:
    """Name of an image file without its image suffix (``a.ome.tif`` -> ``a``).

    Examples
    --------
    >>> file_stem("data/cell_01.ome.tiff"), file_stem("x.zarr")
    ('cell_01', 'x')
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr") + IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` has one of the image suffixes pixlearn reads."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def _zarr_open(path: Path) -> tuple[Any, str | None]:
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        axes = node.attrs.get("axes") if hasattr(node, "attrs") else None
        return node, axes
    attrs = dict(node.attrs)
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
    array = _checked_values(array, path)
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


def _checked_values(array: Any, path: Path) -> Any:
    """Refuse dtypes that are not pixel values, convert bool to uint8, and refuse NaN/Inf in
    images that are in memory (or small enough to scan); lazy big images are checked by size only."""
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
        return _checked_values(np.asarray(array[...]), Path(path)), axes
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


def check_finite(image: np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`PixlearnError` if a floating-point image holds NaN or Inf."""
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n_bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise PixlearnError(f"contains {n_bad} NaN or Inf pixels", path)


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


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    axes: str | None = None,
    chunks: Sequence[int] | None = None,
) -> Path:
    """Write an image atomically as TIFF (zlib-compressed), PNG, ``.npy`` or Zarr (by suffix).

    Parameters
    ----------
    path : path-like
        Target file; its parent folder is created when missing.
    image : ndarray
    axes : str, optional
        Stored in the TIFF (ImageJ/OME metadata) or Zarr attributes.
    chunks : sequence of int, optional
        Zarr chunk shape; default 256 along the last two spatial axes.

    Returns
    -------
    path : Path

    Raises
    ------
    PixlearnError
        When the target cannot be written (the error names it).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIFF_SUFFIXES + ZARR_SUFFIXES + (".png", ".npy"):
        raise PixlearnError(f"cannot write {suffix!r}; use .tif, .png, .npy or .zarr", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            if suffix in TIFF_SUFFIXES:
                import tifffile

                metadata = {"axes": axes} if axes else None
                colour = image.ndim == 3 and image.shape[-1] in (3, 4) and (axes or "YXC").upper().endswith("C")
                tifffile.imwrite(
                    tmp, image, compression="zlib", metadata=metadata,
                    photometric="rgb" if colour else "minisblack", bigtiff=image.nbytes > 2**31,
                )
            elif suffix == ".png":
                from PIL import Image

                Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
            elif suffix == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, image, allow_pickle=False)
            else:
                arr = create_zarr(tmp, image.shape, image.dtype, chunks=chunks, axes=axes)
                arr[...] = image
    except PixlearnError:
        raise
    except OSError as exc:
        raise PixlearnError(f"cannot write ({exc.strerror or exc})", path) from exc
    return path


def create_zarr(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    dtype: Any,
    *,
    chunks: Sequence[int] | None = None,
    axes: str | None = None,
) -> Any:
    """Create an empty chunked Zarr array on disk, for outputs written tile by tile.

    Parameters
    ----------
    path : path-like
    shape : sequence of int
    dtype : dtype-like
    chunks : sequence of int, optional
        Default: 256 along the last two axes (after dropping a trailing channel axis of the
        canonical layout), 1 along the planes of a stack, whole along channels.
    axes : str, optional
        Stored as the ``axes`` attribute.

    Returns
    -------
    array : zarr.Array
    """
    import zarr

    shape = tuple(int(s) for s in shape)
    if chunks is None:
        chunks = _default_chunks(shape, axes)
    array = zarr.open_array(
        str(path), mode="w", shape=shape, chunks=tuple(int(c) for c in chunks), dtype=dtype,
        fill_value=0,
    )
    if axes:
        array.attrs["axes"] = axes
    return array


def _default_chunks(shape: tuple[int, ...], axes: str | None) -> tuple[int, ...]:
    chunks = list(shape)
    spatial = [i for i, a in enumerate(axes)] if axes else list(range(len(shape)))
    if axes:
        spatial = [i for i, a in enumerate(axes) if a in "ZYX"]
    for i in spatial[-2:]:
        chunks[i] = min(shape[i], 256)
    for i in spatial[:-2]:
        chunks[i] = min(shape[i], 16)
    return tuple(chunks)

