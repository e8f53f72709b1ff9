"""OME formats: physical pixel sizes of inputs, OME-Zarr (NGFF 0.4) outputs, OME-TIFF outputs.

* :func:`physical_sizes` reads the pixel size of an input (OME-TIFF ``PhysicalSizeX/Y/Z``, ImageJ
  ``spacing`` and unit, TIFF resolution tags, OME-Zarr ``scale`` of level 0), 1.0 where unknown.
* :func:`create_ome_zarr` starts an OME-Zarr image (Zarr v2 layout, for reader compatibility)
  whose level 0 is written tile by tile; :func:`finish_ome_zarr` adds the multiscale pyramid
  (computed block by block from level 0, memory bounded), the ``multiscales`` metadata and, for
  label outputs, the label image under ``labels/<name>`` with its own pyramid and colours.
* :func:`pixlearn.data.ngff.check_ngff` lists what breaks the NGFF 0.4 rules pixlearn follows.
* :func:`write_ome_tiff` writes an OME-TIFF with axes and physical sizes.

NGFF 0.4 stores channels before the spatial axes, so a canonical ``(..., C)`` output is stored
``(C, ..., M, N)``; :class:`ChannelFirst` lets the tiled engine write canonical blocks into it.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

NGFF_VERSION = "0.4"
#: A pyramid halves the in-plane size per level while the smallest in-plane side is at least this.
MIN_LEVEL_SIDE = 256
MAX_LEVELS = 4
#: Chunk edge of the stored arrays: in-plane, and along planes.
CHUNKS = (256, 16)
#: Spatial units as NGFF (UDUNITS-2 names) and OME (symbols) spell them.
NGFF_UNITS = {"nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "centimeter": "cm", "meter": "m"}
_UNIT_ALIASES = {"micron": "micrometer", "microns": "micrometer", "um": "micrometer", "\\u00b5m": "micrometer",
                 "μm": "micrometer", "nanometers": "nanometer", "micrometers": "micrometer",
                 **{symbol: name for name, symbol in NGFF_UNITS.items()}, **{name: name for name in NGFF_UNITS}}


def ngff_unit(unit: Any) -> str | None:
    """The NGFF name of a spatial unit (``"µm"``, ``"micron"`` -> ``"micrometer"``), else ``None``.

    Examples
    --------
    >>> ngff_unit("µm"), ngff_unit("micron"), ngff_unit("pixel")
    ('micrometer', 'micrometer', None)
    """
    return _UNIT_ALIASES.get(str(unit).strip().lower()) if unit else None


# ------------------------------------------------------------------------------------ input sizes


def physical_sizes(path: str | os.PathLike[str]) -> tuple[dict[str, float], str | None]:
    """Pixel size of an image file along ``"Z"``, ``"Y"``, ``"X"`` (those it states) and the unit.

    Parameters
    ----------
    path : path-like
        TIFF / OME-TIFF, or Zarr / OME-Zarr; other files state no size.

    Returns
    -------
    sizes : dict of str to float
        Only the axes whose size the file states; callers use 1.0 for the others.
    unit : str or None
        NGFF name (``"micrometer"``), ``None`` when unknown.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".tif", ".tiff")):
            return _tiff_sizes(path)
        if path.is_dir():
            return _zarr_sizes(path)
    except Exception:  # metadata is a bonus: an odd header never stops a prediction
        pass
    return {}, None


def _tiff_sizes(path: Path) -> tuple[dict[str, float], str | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if tif.is_ome and tif.ome_metadata:
            image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
            pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
            sizes = {a: float(pixels[f"PhysicalSize{a}"]) for a in "ZYX" if f"PhysicalSize{a}" in pixels}
            unit = ngff_unit(pixels.get("PhysicalSizeXUnit", "µm"))
            return sizes, unit
        page = tif.pages[0]
        tags = page.tags  # type: ignore[union-attr]
        sizes = {}
        for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
            if tag in tags:
                num, den = tags[tag].value
                if num and den and (num, den) != (1, 1):
                    sizes[axis] = float(den) / float(num)
        unit = None
        resolution_unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 1
        if resolution_unit in (2, 3) and sizes:  # inch, centimetre: convert to micrometres
            factor = 25400.0 if resolution_unit == 2 else 10000.0
            sizes, unit = {a: s * factor for a, s in sizes.items()}, "micrometer"
        if tif.is_imagej and tif.imagej_metadata:
            meta = tif.imagej_metadata
            unit = ngff_unit(meta.get("unit")) or unit
            if "spacing" in meta:
                sizes["Z"] = float(meta["spacing"])
        return sizes, unit


def _zarr_sizes(path: Path) -> tuple[dict[str, float], str | None]:
    import zarr

    node: Any = zarr.open(str(path), mode="r")
    attrs: dict[str, Any] = dict(node.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        return {}, None
    meta = multiscales[0]
    axes = meta["axes"]
    scale = next(t["scale"] for t in meta["datasets"][0]["coordinateTransformations"] if t["type"] == "scale")
    sizes, unit = {}, None
    for axis, value in zip(axes, scale):
        axis_name = axis["name"] if isinstance(axis, dict) else axis
        if axis_name.upper() in ("Z", "Y", "X"):
            sizes[axis_name.upper()] = float(value)
            if isinstance(axis, dict):
                unit = ngff_unit(axis.get("unit")) or unit
    return sizes, unit


# ------------------------------------------------------------------------------------ OME-Zarr


class ChannelFirst:
    """A ``(C, ..., M, N)`` array seen in the canonical ``(..., M, N, C)`` layout, for writes of
    spatial regions (what the tiled engine does) and reads.

    Examples
    --------
    >>> stored = np.zeros((2, 4, 5))
    >>> view = ChannelFirst(stored)
    >>> view[0:2, 1:3] = np.ones((2, 2, 2))
    >>> view.shape, float(stored.sum()), view[0:1, 1:2].shape
    ((4, 5, 2), 8.0, (1, 1, 2))
    """

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = tuple(int(s) for s in array.shape[1:]) + (int(array.shape[0]),)
        self.dtype = array.dtype
        self.ndim = len(self.shape)
        self.attrs = getattr(array, "attrs", {})
        chunks = getattr(array, "chunks", None)
        self.chunks = None if chunks is None else tuple(chunks[1:]) + (chunks[0],)

    def _key(self, region: Any) -> tuple[Any, ...]:
        region = region if isinstance(region, tuple) else (region,)
        if any(r is Ellipsis for r in region) or len(region) > self.ndim - 1:
            raise IndexError("ChannelFirst takes spatial slices only")
        return (slice(None),) + region

    def __setitem__(self, region: Any, block: np.ndarray) -> None:
        self.array[self._key(region)] = np.moveaxis(np.asarray(block), -1, 0)

    def __getitem__(self, region: Any) -> np.ndarray:
        return np.moveaxis(np.asarray(self.array[self._key(region)]), 0, -1)


def _chunks(shape: Sequence[int], n_spatial: int) -> tuple[int, ...]:
    """Chunks of a stored NGFF array: whole channels, 16 planes, 256 x 256 in-plane."""
    extra = len(shape) - n_spatial
    planes = [min(int(s), CHUNKS[1]) for s in shape[extra:-2]]
    return tuple(1 for _ in range(extra)) + tuple(planes) + tuple(min(int(s), CHUNKS[0]) for s in shape[-2:])


def _create_level(group: Any, name: str, shape: Sequence[int], dtype: Any, n_spatial: int) -> Any:
    return group.create_array(name, shape=tuple(int(s) for s in shape), chunks=_chunks(shape, n_spatial),
                              dtype=dtype, fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"})


def create_ome_zarr(path: str | os.PathLike[str], shape: Sequence[int], dtype: Any, ndim: int) -> Any:
    """Start an OME-Zarr image at `path` (Zarr v2) and return its level 0 for tile-by-tile writes.

    Parameters
    ----------
    path : path-like
        A folder (created; usually the temporary path of an atomic write).
    shape : sequence of int
        Canonical shape: ``(M, N)`` / ``(P, M, N)`` for labels, ``(..., K)`` with channels.
    dtype : dtype-like
    ndim : int
        Number of spatial axes (2 or 3).

    Returns
    -------
    level0 : zarr.Array or ChannelFirst
        Takes canonical blocks at spatial regions (:class:`ChannelFirst` when there are channels).
    """
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    shape = tuple(int(s) for s in shape)
    if len(shape) == ndim:
        return _create_level(group, "0", shape, dtype, ndim)
    return ChannelFirst(_create_level(group, "0", (shape[-1],) + shape[:-1], dtype, ndim))


def pyramid_shapes(shape: Sequence[int], *, min_side: int = MIN_LEVEL_SIDE,
                   max_levels: int = MAX_LEVELS) -> list[tuple[int, ...]]:
    """Shapes of the levels of a stored array: in-plane halved (rounded up) while the smallest
    in-plane side of the last level is at least `min_side`, at most `max_levels` levels.

    Examples
    --------
    >>> pyramid_shapes((2, 600, 1000))
    [(2, 600, 1000), (2, 300, 500), (2, 150, 250)]
    """
    shapes = [tuple(int(s) for s in shape)]
    while len(shapes) < max_levels and min(shapes[-1][-2:]) >= min_side:
        last = shapes[-1]
        shapes.append(last[:-2] + tuple(math.ceil(s / 2) for s in last[-2:]))
    return shapes


def downsample(block: np.ndarray, method: str) -> np.ndarray:
    """Halve the last two axes: ``"mean"`` of each 2 x 2 window (of the pixels present at an odd
    edge) or ``"nearest"`` (its first pixel, for labels).

    Examples
    --------
    >>> downsample(np.arange(6.0).reshape(2, 3), "mean")
    array([[2. , 3.5]])
    >>> downsample(np.arange(6).reshape(2, 3), "nearest")
    array([[0, 2]])
    """
    if method == "nearest":
        return block[..., ::2, ::2]
    pad = [(0, 0)] * (block.ndim - 2) + [(0, block.shape[-2] % 2), (0, block.shape[-1] % 2)]
    padded = np.pad(block.astype(np.float32), pad, mode="edge")
    m, n = padded.shape[-2] // 2, padded.shape[-1] // 2
    return padded.reshape(padded.shape[:-2] + (m, 2, n, 2)).mean(axis=(-3, -1)).astype(block.dtype)


def _blocks(shape: tuple[int, ...], block: tuple[int, ...]) -> list[tuple[slice, ...]]:
    return [tuple(slice(s, min(s + b, n)) for s, b, n in zip(starts, block, shape))
            for starts in itertools.product(*(range(0, n, b) for n, b in zip(shape, block)))]


def _block_shape(shape: tuple[int, ...], n_spatial: int) -> tuple[int, ...]:
    """Output blocks of one channel, 16 planes (whole chunks) and 1024 x 1024 in-plane."""
    extra = len(shape) - n_spatial
    return (1,) * extra + (CHUNKS[1],) * (n_spatial - 2) + (1024, 1024)


def write_pyramid(group: Any, n_spatial: int, method: str, *, min_side: int = MIN_LEVEL_SIDE,
                  max_levels: int = MAX_LEVELS) -> int:
    """Levels ``1, 2, ...`` of `group` from its level ``"0"``, block by block; returns the count of levels.

    Memory holds one block of the finer level: one channel, 16 planes, 2048 x 2048 pixels.
    """
    level0 = group["0"]
    shapes = pyramid_shapes(level0.shape, min_side=min_side, max_levels=max_levels)
    for index, shape in enumerate(shapes[1:], 1):
        source, target = group[str(index - 1)], _create_level(group, str(index), shape, level0.dtype, n_spatial)
        for region in _blocks(shape, _block_shape(shape, n_spatial)):
            src = region[:-2] + tuple(slice(2 * r.start, 2 * r.stop) for r in region[-2:])
            target[region] = downsample(np.asarray(source[src]), method)
    return len(shapes)


def _axes_metadata(axes: str, unit: str | None) -> list[dict[str, str]]:
    out = []
    for axis in axes.lower():
        entry = {"name": axis, "type": "channel" if axis == "c" else "space"}
        if axis != "c" and unit:
            entry["unit"] = unit
        out.append(entry)
    return out


def _multiscales(axes: str, levels: int, sizes: dict[str, float], unit: str | None, method: str,
                 name: str) -> dict[str, Any]:
    datasets = []
    for level in range(levels):
        scale = [1.0 if a == "C" else float(sizes.get(a, 1.0)) * (2.0**level if a in "YX" else 1.0) for a in axes]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    return {"multiscales": [{"version": NGFF_VERSION, "name": name, "axes": _axes_metadata(axes, unit),
                             "datasets": datasets, "type": method,
                             "metadata": {"method": "pixlearn.data.ome.downsample", "kind": method}}]}


def label_colors(values: Sequence[int]) -> list[dict[str, Any]]:
    """NGFF ``image-label`` colours: background (0) transparent, others spread over hues.

    Examples
    --------
    >>> label_colors([0, 1])[0]
    {'label-value': 0, 'rgba': [0, 0, 0, 0]}
    """
    import colorsys

    colors = []
    for value in values:
        if value == 0:
            colors.append({"label-value": 0, "rgba": [0, 0, 0, 0]})
            continue
        r, g, b = colorsys.hsv_to_rgb((value * 0.618033988749895) % 1.0, 0.75, 0.95)
        colors.append({"label-value": int(value), "rgba": [int(r * 255), int(g * 255), int(b * 255), 255]})
    return colors


#: Most colours listed in a label image's metadata (instance labels beyond: viewers choose).
MAX_LISTED_COLORS = 4096


def finish_ome_zarr(path: str | os.PathLike[str], ndim: int, sizes: dict[str, float], unit: str | None, *,
                    labels: str | None = None, name: str = "pixlearn", min_side: int = MIN_LEVEL_SIDE,
                    max_levels: int = MAX_LEVELS) -> None:
    """Add the pyramid and the NGFF metadata to an image made by :func:`create_ome_zarr`.

    Parameters
    ----------
    path : path-like
    ndim : int
        Number of spatial axes.
    sizes : dict of str to float
        Pixel size along ``"Z"``, ``"Y"``, ``"X"`` (1.0 where missing), as :func:`physical_sizes`.
    unit : str, optional
        NGFF unit of `sizes`.
    labels : str, optional
        Also store level 0 as the label image ``labels/<labels>`` with its own pyramid (nearest)
        and ``image-label`` colours. Integer outputs are downsampled by nearest neighbour, float
        outputs by the mean.
    name : str
    min_side, max_levels : int
        See :func:`pyramid_shapes`.
    """
    import zarr

    group = zarr.open_group(str(path), mode="r+", zarr_format=2)
    level0: Any = group["0"]
    integer = np.issubdtype(level0.dtype, np.integer)
    method = "nearest" if integer else "mean"
    axes = ("C" if level0.ndim > ndim else "") + "ZYX"[3 - ndim:]
    levels = write_pyramid(group, ndim, method, min_side=min_side, max_levels=max_levels)
    group.attrs.update(_multiscales(axes, levels, sizes, unit, method, name))
    if labels is None:
        return
    label_group = group.require_group("labels").require_group(labels)
    target = _create_level(label_group, "0", level0.shape, level0.dtype, ndim)
    largest = 0
    for region in _blocks(tuple(level0.shape), _block_shape(tuple(level0.shape), ndim)):
        block = np.asarray(level0[region])
        largest = max(largest, int(block.max(initial=0)))
        target[region] = block
    label_levels = write_pyramid(label_group, ndim, "nearest", min_side=min_side, max_levels=max_levels)
    meta = _multiscales(axes, label_levels, sizes, unit, "nearest", labels)
    colors = label_colors(range(largest + 1)) if largest < MAX_LISTED_COLORS else label_colors([0])
    meta["image-label"] = {"version": NGFF_VERSION, "colors": colors, "source": {"image": "../../"}}
    label_group.attrs.update(meta)
    group["labels"].attrs["labels"] = [labels]


# ------------------------------------------------------------------------------------ OME-TIFF


def write_ome_tiff(path: str | os.PathLike[str], image: np.ndarray, ndim: int, sizes: dict[str, float],
                   unit: str | None) -> None:
    """Write a canonical output as OME-TIFF with axes and physical sizes (not atomic: give a
    temporary path).

    Channels go before the rows (``CYX``, or ``ZCYX`` for stacks: the ImageJ hyperstack order
    ``TZCYXS``, so Fiji opens a 3D multichannel output as a hyperstack of Z planes of C
    channels); labels are stored ``YX`` / ``ZYX``.

    Parameters
    ----------
    path : path-like
    image : ndarray of shape (M, N), (P, M, N), (M, N, K) or (P, M, N, K)
    ndim : int
        Number of spatial axes.
    sizes : dict of str to float
        Pixel size along ``"Z"``, ``"Y"``, ``"X"`` (1.0 where missing).
    unit : str, optional
        NGFF unit of `sizes` (default micrometre, OME's default).
    """
    import tifffile

    spatial = "ZYX"[3 - ndim:]
    if image.ndim > ndim:
        image = np.moveaxis(image, -1, -3)
        axes = spatial[:-2] + "C" + spatial[-2:]
    else:
        axes = spatial
    metadata: dict[str, Any] = {"axes": axes}
    symbol = NGFF_UNITS.get(unit or "micrometer", "µm")
    for axis in spatial:
        metadata[f"PhysicalSize{axis}"] = float(sizes.get(axis, 1.0))
        metadata[f"PhysicalSize{axis}Unit"] = symbol
    tifffile.imwrite(path, np.ascontiguousarray(image), ome=True, photometric="minisblack", compression="zlib",
                     metadata=metadata, bigtiff=image.nbytes > 2**31)
