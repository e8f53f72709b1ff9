"""Voxel spacing: what an image file states (:func:`file_spacing`), what ``--spacing`` says
(:func:`parse_spacing`), and the spacing relative to the finest axis (:func:`relative_spacing`).

Serial-section stacks are strongly anisotropic (electron microscopy: pixels of 4-5 nm, sections
of 40-50 nm). Filters should then reach as far in physical units along every axis, which
:class:`pixlearn.classical.features.FeatureConfig` does with its ``spacing``. pixlearn keeps that
spacing relative to the finest axis (``50, 4.6, 4.6`` nm become ``10.87, 1, 1``), so that scales
stay in pixels of the finest axis whatever unit a file uses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from pixlearn.data.ome import physical_sizes

__all__ = ["file_spacing", "parse_spacing", "relative_spacing"]

_AXES = {2: "YX", 3: "ZYX"}


def parse_spacing(text: str, ndim: int | None = None) -> tuple[float, ...]:
    """``"50,4.6,4.6"`` (plane, row, column) or ``"1,1"`` as positive floats.

    Parameters
    ----------
    text : str
        Comma-separated sizes in any one unit.
    ndim : int, optional
        Number of spatial axes the values must give.

    Returns
    -------
    spacing : tuple of float

    Raises
    ------
    ValueError
        Not 2 or 3 (or `ndim`) positive finite numbers.

    Examples
    --------
    >>> parse_spacing("50,4.6,4.6")
    (50.0, 4.6, 4.6)
    """
    try:
        values = tuple(float(t) for t in str(text).split(","))
    except ValueError:
        raise ValueError(f"cannot read the spacing {text!r}; use e.g. 50,4.6,4.6 (plane, row, column)") from None
    if len(values) not in (2, 3) or any(not (math.isfinite(v) and v > 0) for v in values):
        raise ValueError(f"the spacing {text!r} needs 2 or 3 positive numbers (plane, row, column), e.g. 50,4.6,4.6")
    if ndim is not None and len(values) != ndim:
        raise ValueError(f"the spacing {text!r} has {len(values)} values for images of {ndim} spatial axes")
    return values


def relative_spacing(spacing: Sequence[float]) -> tuple[float, ...]:
    """`spacing` divided by its smallest value (6 significant digits).

    Examples
    --------
    >>> relative_spacing((50.0, 4.6, 4.6))
    (10.8696, 1.0, 1.0)
    """
    finest = min(float(s) for s in spacing)
    return tuple(float(f"{float(s) / finest:.6g}") for s in spacing)


def file_spacing(path: str | os.PathLike[str], ndim: int) -> tuple[float, ...] | None:
    """The voxel spacing an image file states for all of its spatial axes, else ``None``.

    Read by :func:`pixlearn.data.ome.physical_sizes`: OME-TIFF ``PhysicalSizeZ/Y/X``, ImageJ
    TIFF ``spacing`` (planes) with the resolution tags (rows, columns), TIFF resolution tags,
    OME-Zarr ``scale``. A file that leaves out an axis (a TIFF stack with an in-plane resolution
    but no plane spacing) states no spacing: guessing 1 there would be the isotropy a stack may
    not have.

    Parameters
    ----------
    path : path-like
    ndim : int
        Spatial axes of the image, 2 or 3.

    Returns
    -------
    spacing : tuple of float or None
        ``(plane, row, column)`` or ``(row, column)`` in the file's unit.
    """
    sizes, _ = physical_sizes(path)
    axes = _AXES.get(ndim, "")
    if not axes or any(a not in sizes for a in axes):
        return None
    values = tuple(float(sizes[a]) for a in axes)
    if any(not (math.isfinite(v) and v > 0) for v in values):
        return None
    return values
