"""Per-object measurements of an instance label image, in 2D and 3D, as one named table.

:func:`object_features` measures every object (label ``> 0``) of `labels` on `image`:

* shape (:func:`skimage.measure.regionprops`): area, perimeter (2D), equivalent
  diameter, major and minor axis lengths, eccentricity (2D), solidity, extent, Euler number,
  Hu moments (2D) or the inertia-tensor eigenvalues (3D);
* intensity per channel inside the object and in a ring of background pixels around it
  (pixels of other objects are not part of a ring): mean, standard deviation, percentiles;
* texture of the grey image (mean over channels) inside the object: Haralick properties of the
  grey-level co-occurrence matrix (:func:`skimage.feature.graycomatrix`, the pixels outside the
  object left out, co-occurrences summed over planes in 3D) and, in 2D, the histogram of
  uniform local binary patterns;
* neighbourhood: distance to the nearest other centroid and the count of centroids within a
  radius.

Rows follow :func:`object_ids` (increasing label values); columns are named by
:func:`object_feature_names`. A value that is undefined (a ring with no background pixel, a
lone object's nearest neighbour) is ``nan``. Lengths are in pixels.

Large images are measured tile by tile: the objects' bounding boxes are found one tile at a time
(:mod:`pixlearn.classical.object_boxes`), then each object on its own box plus margin, so that an
object crossing tile borders is measured whole and once, and memory stays bounded by a tile or
the largest object's crop; the arrays may be lazy (Zarr, memory maps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from pixlearn.classical.object_boxes import find_object_boxes, padded_window
from pixlearn.config import Config

__all__ = ["ObjectFeatureConfig", "object_feature_names", "object_features", "object_ids"]

_SHAPE_2D = ("area", "perimeter", "equivalent_diameter_area", "axis_major_length", "axis_minor_length",
             "eccentricity", "solidity", "extent", "euler_number")
_SHAPE_3D = ("area", "equivalent_diameter_area", "axis_major_length", "axis_minor_length",
             "solidity", "extent", "euler_number")
_GLCM_PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
_GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
#: Objects measured per batch by :func:`object_features`.
BATCH_OBJECTS = 256


@dataclasses.dataclass(frozen=True)
class ObjectFeatureConfig(Config):
    """Which object measurements to compute and their settings.

    Parameters
    ----------
    ring_px : int
        Width of the background ring around each object (0: no ring features).
    percentiles : tuple of float
        Intensity percentiles inside the object and in its ring.
    texture : bool
        Haralick (and, in 2D, LBP) texture features.
    glcm_levels : int
        Grey levels of the co-occurrence matrix; each object's grey values are quantised
        between its own 1st and 99th percentiles.
    glcm_distances_px : tuple of int
        Offsets of the co-occurrence matrix (each averaged over 4 angles).
    lbp_points : int
        Neighbours of the uniform local binary pattern (radius 1 px per 8 points).
    neighbour_radius_px : float
        Radius of the neighbour count.

    Examples
    --------
    >>> ObjectFeatureConfig(ring_px=2).glcm_levels
    16
    """

    ring_px: int = 3
    percentiles: tuple[float, ...] = (10.0, 50.0, 90.0)
    texture: bool = True
    glcm_levels: int = 16
    glcm_distances_px: tuple[int, ...] = (1, 2)
    lbp_points: int = 8
    neighbour_radius_px: float = 50.0

    def __post_init__(self) -> None:
        if self.ring_px < 0:
            raise ValueError(f"ring_px must be >= 0, got {self.ring_px}")
        if any(not 0 <= p <= 100 for p in self.percentiles):
            raise ValueError(f"percentiles must lie in 0..100, got {self.percentiles}")
        if not 2 <= self.glcm_levels <= 256:
            raise ValueError(f"glcm_levels must be 2..256, got {self.glcm_levels}")
        if not self.glcm_distances_px or min(self.glcm_distances_px) < 1:
            raise ValueError(f"glcm_distances_px must be positive, got {self.glcm_distances_px}")
        if self.lbp_points < 4:
            raise ValueError(f"lbp_points must be >= 4, got {self.lbp_points}")
        if self.neighbour_radius_px <= 0:
            raise ValueError(f"neighbour_radius_px must be > 0, got {self.neighbour_radius_px}")


def object_ids(labels: Any, tile_shape: Sequence[int] | None = None) -> np.ndarray:
    """Label values of the objects of `labels`, increasing (the row order of the tables).

    Parameters
    ----------
    labels : array-like of shape (M, N) or (P, M, N), integer
        0 is background; read tile by tile (see
        :func:`~pixlearn.classical.object_boxes.find_object_boxes`).
    tile_shape : sequence of int, optional

    Returns
    -------
    ids : ndarray of shape (n_objects,), int64

    Examples
    --------
    >>> object_ids(np.array([[0, 3], [3, 1]])).tolist()
    [1, 3]
    """
    return find_object_boxes(_as_array(labels), tile_shape).ids


def _intensity_names(prefix: str, n_channels: int, percentiles: tuple[float, ...]) -> list[str]:
    stats = ["mean", "std"] + [f"p{p:g}" for p in percentiles]
    return [f"{prefix}_{s}_c{c}" for c in range(n_channels) for s in stats]


def object_feature_names(ndim: int, n_channels: int, config: ObjectFeatureConfig | None = None) -> list[str]:
    """Column names of :func:`object_features` for `ndim`-D images of `n_channels` channels.

    Parameters
    ----------
    ndim : {2, 3}
    n_channels : int
    config : ObjectFeatureConfig, optional

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> names = object_feature_names(2, 1)
    >>> names[:3], "ring_mean_c0" in names, "lbp_0" in names
    (['area', 'perimeter', 'equivalent_diameter_area'], True, True)
    """
    cfg = config or ObjectFeatureConfig()
    if ndim not in (2, 3):
        raise ValueError(f"objects are measured in 2D or 3D, got ndim={ndim}")
    names = list(_SHAPE_2D) + [f"moments_hu_{i}" for i in range(7)] if ndim == 2 else (
        list(_SHAPE_3D) + [f"inertia_eigval_{i}" for i in range(3)])
    names += _intensity_names("intensity", n_channels, cfg.percentiles)
    if cfg.ring_px > 0:
        names += _intensity_names("ring", n_channels, cfg.percentiles)
    if cfg.texture:
        names += [f"glcm_{p.lower()}_d{d}" for d in cfg.glcm_distances_px for p in _GLCM_PROPS]
        if ndim == 2:
            names += [f"lbp_{i}" for i in range(cfg.lbp_points + 2)]
    names += ["neighbour_distance_px", f"neighbours_within_{cfg.neighbour_radius_px:g}px"]
    return names


def _channel_count(image: Any, labels: Any) -> int:
    """Channels of `image` (0: no channel axis, one value per pixel), after the shape checks."""
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or 3D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer, got {labels.dtype}")
    if tuple(image.shape) == tuple(labels.shape):
        return 0
    if tuple(image.shape[:-1]) != tuple(labels.shape):
        raise ValueError(f"image of shape {image.shape} does not match labels of shape {labels.shape} "
                         "(expected the same spatial shape, channels last)")
    return int(image.shape[-1])


def _stats(values: np.ndarray, percentiles: tuple[float, ...]) -> list[float]:
    """Mean, std and percentiles of each column of `values` (n_pixels, C), channel-major."""
    n_stats = 2 + len(percentiles)
    if values.shape[0] == 0:
        return [np.nan] * (n_stats * values.shape[1])
    out = np.empty((values.shape[1], n_stats))
    out[:, 0] = values.mean(axis=0)
    out[:, 1] = values.std(axis=0)
    if percentiles:
        out[:, 2:] = np.percentile(values, percentiles, axis=0).T
    return out.ravel().tolist()


def _glcm_features(grey: np.ndarray, mask: np.ndarray, cfg: ObjectFeatureConfig) -> list[float]:
    """Haralick properties of the object's grey values, background pixels left out."""
    from skimage.feature import graycomatrix, graycoprops

    inside = grey[mask]
    low, high = np.percentile(inside, (1, 99))
    scale = (cfg.glcm_levels - 1) / (high - low) if high > low else 0.0
    levels = np.zeros(grey.shape, np.uint16)  # level 0: outside the object
    levels[mask] = 1 + np.clip(np.round((inside - low) * scale), 0, cfg.glcm_levels - 1).astype(np.uint16)
    planes = levels if levels.ndim == 3 else levels[None]
    counts = sum(
        graycomatrix(plane, list(cfg.glcm_distances_px), list(_GLCM_ANGLES), levels=cfg.glcm_levels + 1,
                     symmetric=True, normed=False)
        for plane in planes
    )
    counts = np.asarray(counts, np.float64)[1:, 1:]  # drop the pairs that touch the background
    total = counts.sum(axis=(0, 1), keepdims=True)
    normed = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    result = []
    for d in range(len(cfg.glcm_distances_px)):
        if not total[..., d, :].any():  # no pair of object pixels this far apart: undefined
            result += [np.nan] * len(_GLCM_PROPS)
            continue
        sub = normed[:, :, d : d + 1, :]
        for prop in _GLCM_PROPS:
            values = graycoprops(sub, prop)[0]
            result.append(float(np.nanmean(values)) if np.isfinite(values).any() else np.nan)
    return result


def _lbp_histogram(grey: np.ndarray, mask: np.ndarray, cfg: ObjectFeatureConfig) -> list[float]:
    from skimage.feature import local_binary_pattern

    low, high = float(grey.min()), float(grey.max())
    scaled = np.zeros(grey.shape, np.uint8) if high <= low else np.round((grey - low) * 255 / (high - low)).astype(np.uint8)
    codes = local_binary_pattern(scaled, cfg.lbp_points, cfg.lbp_points / 8.0, method="uniform")
    hist = np.bincount(codes[mask].astype(np.int64), minlength=cfg.lbp_points + 2).astype(np.float64)
    return (hist / max(hist.sum(), 1.0)).tolist()


def _as_array(value: Any) -> Any:
    """`value` itself when it is array-like (NumPy, Zarr, a memory map: sliced lazily), else an ndarray."""
    return value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)


def _measure_object(image: Any, labels: Any, label_value: int, window: tuple[slice, ...], channels: int,
                    cfg: ObjectFeatureConfig) -> tuple[list[float], list[float]]:
    """Shape, intensity and texture row and centroid of one object, read on its own window."""
    from skimage.measure import regionprops

    local = np.asarray(labels[window])
    mask = local == label_value
    values = np.asarray(image[window], np.float64)
    values = values[..., None] if channels == 0 else values
    region = regionprops(mask.astype(np.uint8))[0]
    shape_props = _SHAPE_2D + ("moments_hu",) if local.ndim == 2 else _SHAPE_3D + ("inertia_tensor_eigvals",)
    row = [float(v) for name in shape_props for v in np.ravel(getattr(region, name))]
    row += _stats(values[mask], cfg.percentiles)
    if cfg.ring_px > 0:
        near = ndimage.distance_transform_edt(~mask) <= cfg.ring_px
        row += _stats(values[near & (local == 0)], cfg.percentiles)
    if cfg.texture:
        grey = values.mean(axis=-1)
        row += _glcm_features(grey, mask, cfg)
        if local.ndim == 2:
            row += _lbp_histogram(grey, mask, cfg)
    centroid = [float(c) + w.start for c, w in zip(region.centroid, window, strict=True)]
    return row, centroid


def _neighbour_columns(centroids: np.ndarray, radius: float) -> np.ndarray:
    """Distance to the nearest other centroid (``nan`` for a lone object) and neighbours within `radius`."""
    tree = cKDTree(centroids)
    if centroids.shape[0] > 1:
        distances, _ = tree.query(centroids, k=2)
        nearest = distances[:, 1]
    else:
        nearest = np.full(1, np.nan)
    counts = np.array([len(n) - 1 for n in tree.query_ball_point(centroids, radius)], np.float64)
    return np.stack([nearest, counts], axis=1)


def object_features(
    image: Any,
    labels: Any,
    config: ObjectFeatureConfig | None = None,
    *,
    tile_shape: Sequence[int] | None = None,
    batch_size: int = BATCH_OBJECTS,
) -> tuple[list[str], np.ndarray]:
    """Measure every object of `labels` on `image`, each on its own bounding-box crop.

    The objects and their boxes are found tile by tile
    (:func:`~pixlearn.classical.object_boxes.find_object_boxes`: an object crossing tile borders gets
    one box around all of it); then each object is measured, in batches of `batch_size`, on its
    box grown by the ring (and texture) margin, read from `labels` and `image`. Neither array is
    read whole: the memory needed is one tile or one object's crop (the largest box plus its
    margin) at a time, plus the table. The result does not depend on `tile_shape` or `batch_size`.

    Parameters
    ----------
    image : array-like of shape (M, N), (M, N, C), (P, M, N) or (P, M, N, C)
        Intensities (any real dtype); channels last, spatial shape that of `labels`. May be lazy
        (Zarr, memory map): only crops are read.
    labels : array-like of shape (M, N) or (P, M, N), integer
        Instance labels, 0 is background; may be lazy.
    config : ObjectFeatureConfig, optional
    tile_shape : sequence of int, optional
        Tiles of the box search (default
        :func:`~pixlearn.classical.object_boxes.default_tile_shape`).
    batch_size : int
        Objects measured per batch.

    Returns
    -------
    names : list of str
        :func:`object_feature_names` of this image.
    table : ndarray of shape (n_objects, n_features), float64
        One row per object in the order of :func:`object_ids`.

    Raises
    ------
    ValueError
        Shapes that do not match, non-integer labels, or labels that are neither 2D nor 3D.

    Examples
    --------
    >>> labels = np.zeros((12, 12), int); labels[2:5, 2:5] = 1; labels[7:11, 6:11] = 2
    >>> names, table = object_features(labels * 10.0, labels)
    >>> table.shape[0], table[:, names.index("area")].tolist()
    (2, [9.0, 20.0])
    """
    cfg = config or ObjectFeatureConfig()
    labels, image = _as_array(labels), _as_array(image)
    channels = _channel_count(image, labels)
    names = object_feature_names(labels.ndim, max(channels, 1), cfg)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    boxes = find_object_boxes(labels, tile_shape)
    if boxes.ids.size == 0:
        return names, np.zeros((0, len(names)))
    pad = max(cfg.ring_px, int(np.ceil(cfg.lbp_points / 8.0)) if cfg.texture else 0)
    rows, centroids = [], []
    for first in range(0, boxes.ids.size, batch_size):
        for index in range(first, min(first + batch_size, boxes.ids.size)):
            window = padded_window(boxes.box(index), labels.shape, pad)
            row, centroid = _measure_object(image, labels, int(boxes.ids[index]), window, channels, cfg)
            rows.append(row)
            centroids.append(centroid)
    neighbours = _neighbour_columns(np.asarray(centroids, np.float64), cfg.neighbour_radius_px)
    table = np.concatenate([np.asarray(rows, np.float64), neighbours], axis=1)
    if table.shape[1] != len(names):  # a bug, not a user error
        raise RuntimeError(f"object table has {table.shape[1]} columns for {len(names)} names")
    return names, table
