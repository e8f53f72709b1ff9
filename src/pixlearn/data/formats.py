"""Image file formats by suffix: which files pixlearn reads, and their names without the suffix."""

from __future__ import annotations

import os
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
ZARR_SUFFIXES = (".zarr",)
#: Every suffix pixlearn reads (``.npy`` too); Zarr stores may also be folders without a suffix.
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES + ZARR_SUFFIXES + (".npy",)


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
