"""Bookkeeping between napari layers and pixlearn's canonical arrays (no Qt here).

A napari Image layer holds either a single-channel array ``(M, N)`` / ``(P, M, N)``, an RGB(A)
array ``(M, N, 3|4)`` (``layer.rgb``), or a multichannel array with the channel axis *first*
``(C, M, N)`` / ``(C, P, M, N)`` (the layout pixlearn's reader gives, so that Labels layers of
the spatial shape line up with the image's trailing axes). The axes are taken from
``layer.metadata["pixlearn_axes"]`` when the reader set them, else from the layer's shape, and
can be overridden in the widget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixlearn.data.axes import canonical_view

AXES_KEY = "pixlearn_axes"
# one colour per class (class k is painted as k + 1); class 1 is usually the background
PALETTE: tuple[str, ...] = (
    "#4c9be8", "#f5a623", "#7ed321", "#d0021b", "#bd10e0", "#50e3c2", "#f8e71c", "#8b572a",
)


def class_color(k: int) -> str:
    """Colour of painted value `k` (``1..``), cycling through :data:`PALETTE`."""
    return PALETTE[(k - 1) % len(PALETTE)]


def label_colormap(n_classes: int) -> Any:
    """A napari ``DirectLabelColormap``: value ``k`` in :func:`class_color`, 0 transparent."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[Any, Any] = {None: "transparent", 0: "transparent"}
    colors.update({k: class_color(k) for k in range(1, max(n_classes, len(PALETTE)) + 1)})
    return DirectLabelColormap(color_dict=colors)


def default_axes(layer: Any) -> str:
    """Axes of an Image layer's data: its metadata, else ``YXC`` (RGB), ``YX`` or ``ZYX``."""
    axes = (getattr(layer, "metadata", None) or {}).get(AXES_KEY)
    if axes:
        return str(axes)
    if getattr(layer, "rgb", False):
        return "YXC"
    return {2: "YX", 3: "ZYX", 4: "CZYX"}.get(int(layer.ndim), "ZYX")


def check_axes(axes: str, shape: tuple[int, ...], rgb: bool) -> str:
    """Validate `axes` for a layer of data `shape`; returns it upper-cased.

    Raises
    ------
    ValueError
        Wrong length, unknown letters, or a channel axis that is neither first nor (RGB) last.
    """
    axes = axes.strip().upper()
    if len(axes) != len(shape) or set(axes) - set("CZYX") or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} do not fit data of shape {shape} (use C, Z, Y, X)")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} need Y and X")
    if "C" in axes and axes.index("C") != 0 and not (rgb and axes[-1] == "C"):
        raise ValueError(f"axes {axes!r}: the channel axis must come first (or last for RGB)")
    return axes


def spatial_shape(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    """The spatial shape (``(M, N)`` or ``(P, M, N)``) of data of `shape` with `axes`."""
    return tuple(int(n) for n, a in zip(shape, axes) if a != "C")


def canonical_image(layer: Any, axes: str) -> Any:
    """The layer's data in the canonical layout ``(..., C)`` (a view or a lazy array).

    napari multiscale layers give their full-resolution level.
    """
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    if not isinstance(data, np.ndarray) and not hasattr(data, "__getitem__"):
        data = np.asarray(data)
    return canonical_view(data, axes)


def visible_region(layer: Any, spatial: tuple[int, ...], displayed: tuple[int, ...], point: tuple[float, ...],
                   axes: str) -> tuple[slice, ...]:
    """The spatial region of the image on screen.

    Parameters
    ----------
    layer : napari Image layer
        Its ``corner_pixels`` (data coordinates of the canvas corners) bound the displayed axes.
    spatial : tuple of int
        Spatial shape of the image.
    displayed : tuple of int
        The viewer's displayed dimensions (``viewer.dims.displayed``), in world = layer order.
    point : tuple of float
        ``viewer.dims.point`` in world coordinates: the plane shown along the other axes.
    axes : str
        The layer's axes.

    Returns
    -------
    region : tuple of slice
        One per spatial axis; 3D display gives the whole volume.
    """
    if len(displayed) == 3:
        return tuple(slice(0, n) for n in spatial)
    spatial_dims = [d for d, a in enumerate(axes) if a != "C"]  # RGB: C is last and not a layer dim
    world_offset = len(point) - layer.ndim
    corners = np.asarray(layer.corner_pixels)
    data_point = np.asarray(layer.world_to_data(point)) if hasattr(layer, "world_to_data") else np.asarray(point)
    region = []
    for dim, n in zip(spatial_dims, spatial):
        if dim + world_offset in displayed:
            lo = int(np.clip(np.floor(corners[0][dim]), 0, n - 1))
            hi = int(np.clip(np.ceil(corners[1][dim]) + 1, lo + 1, n))
            region.append(slice(lo, hi))
        else:
            index = int(np.clip(np.round(data_point[dim]), 0, n - 1))
            region.append(slice(index, index + 1))
    return tuple(region)


def snap_region(region: tuple[slice, ...], spatial: tuple[int, ...], step: int = 64) -> tuple[slice, ...]:
    """Grow a region outwards to multiples of `step` (so small pans reuse the same region)."""
    out = []
    for s, n in zip(region, spatial):
        if s.stop - s.start == 1:
            out.append(s)
            continue
        out.append(slice(s.start // step * step, min(n, -(-s.stop // step) * step)))
    return tuple(out)


def region_bbox(region: tuple[slice, ...]) -> tuple[list[int], list[int]]:
    """``(start, stop)`` corner lists of a region."""
    return [s.start for s in region], [s.stop for s in region]


def rectangle(region: tuple[slice, ...]) -> np.ndarray:
    """The 4 corners of a region's in-plane rectangle, as napari Shapes vertices ``(4, ndim)``."""
    (r0, r1), (c0, c1) = (region[-2].start, region[-2].stop - 1), (region[-1].start, region[-1].stop - 1)
    lead = [float(s.start) for s in region[:-2]]
    return np.array([lead + [r0, c0], lead + [r0, c1], lead + [r1, c1], lead + [r1, c0]], float)
