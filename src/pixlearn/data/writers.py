"""Writing images atomically (TIFF, PNG, ``.npy``, Zarr) and creating Zarr outputs for tiles.

Every write goes to a temporary name beside the target and is renamed into place only when
complete (:func:`pixlearn.data.atomic.atomic_path`), so an interrupted or failed write never
leaves a file that could pass for finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.formats import TIFF_SUFFIXES, ZARR_SUFFIXES
from pixlearn.errors import PixlearnError


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


def write_geojson(path: str | os.PathLike[str], collection: dict[str, Any]) -> Path:
    """Write a GeoJSON object (e.g. a FeatureCollection) atomically.

    Raises
    ------
    PixlearnError
        When the target cannot be written.
    """
    import json

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(collection))
    except OSError as exc:
        raise PixlearnError(f"cannot write ({exc.strerror or exc})", path) from exc
    return path


def write_csv(path: str | os.PathLike[str], columns: dict[str, Any]) -> Path:
    """Write equal-length columns as a CSV table with a header line, atomically.

    Raises
    ------
    PixlearnError
        When the target cannot be written.
    """
    import csv

    path = Path(path)
    names = list(columns)
    values = [np.asarray(columns[n]).tolist() for n in names]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            writer.writerows(zip(*values))
    except OSError as exc:
        raise PixlearnError(f"cannot write ({exc.strerror or exc})", path) from exc
    return path
