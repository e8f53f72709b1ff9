"""Objects of an instance label image: measurements for tables and polygons for QuPath.

Pure functions on arrays: :func:`object_measurements` (one row per object: area, centroid,
bounding box, mean intensity per channel, shape descriptors) and :func:`geojson_collection`
(a GeoJSON FeatureCollection of one polygon per object, as QuPath imports detections).
Writing them is :func:`pixlearn.data.writers.write_geojson` / :func:`~pixlearn.data.writers.write_csv`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The columns of :func:`object_measurements` for a 2D label image (``centroid-1`` is the
#: column, ``bbox-0..3`` are min row, min column, max row, max column, exclusive).
COLUMNS_2D = ("label", "area", "centroid-0", "centroid-1", "bbox-0", "bbox-1", "bbox-2", "bbox-3",
              "eccentricity", "solidity")


def object_measurements(labels: np.ndarray, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One row per object of `labels`: area, centroid, bounding box, shape, mean intensities.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels, 0 is background.
    image : ndarray of shape labels.shape + (C,), optional
        Intensities; adds ``intensity_mean-<c>`` per channel.

    Returns
    -------
    columns : dict of str to ndarray
        Equal-length columns, objects in increasing label order: those of :data:`COLUMNS_2D`
        (in 3D: centroid and bbox over 3 axes, no eccentricity), pixel units.

    Examples
    --------
    >>> labels = np.zeros((6, 6), np.int32); labels[1:3, 1:4] = 5
    >>> table = object_measurements(labels)
    >>> int(table["label"][0]), float(table["area"][0]), [int(table[f"bbox-{i}"][0]) for i in range(4)]
    (5, 6.0, [1, 1, 3, 4])
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    properties = ["label", "area", "centroid", "bbox", "solidity"]
    if labels.ndim == 2:
        properties.insert(4, "eccentricity")
    intensity = None
    if image is not None:
        intensity = np.asarray(image, dtype=np.float32)
        if intensity.shape[: labels.ndim] != labels.shape:
            raise ValueError(f"image of shape {intensity.shape} for labels of shape {labels.shape}")
        properties.append("intensity_mean")
    table = regionprops_table(labels.astype(np.int64, copy=False), intensity_image=intensity, properties=properties)
    if intensity is not None and intensity.ndim == labels.ndim and "intensity_mean" in table:
        table["intensity_mean-0"] = table.pop("intensity_mean")
    return {name: np.asarray(values) for name, values in table.items()}


def object_polygons(labels: np.ndarray) -> dict[int, list[list[float]]]:
    """The outline of each object of a 2D label image, as one closed ring of ``[x, y]`` points.

    The ring follows the pixel edges of the object's largest connected part (its holes are not
    traced), in image coordinates where pixel ``(row, column)`` covers ``[column, column + 1) x
    [row, row + 1)``, as QuPath counts them.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer

    Returns
    -------
    rings : dict of int to list of [x, y]
        First and last points equal; clockwise on screen (``y`` downwards), which is
        counter-clockwise with ``y`` upwards, as GeoJSON asks of outer rings.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.int32); labels[1, 1:3] = 7
    >>> object_polygons(labels)[7]
    [[1.0, 1.0], [3.0, 1.0], [3.0, 2.0], [1.0, 2.0], [1.0, 1.0]]
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"polygons need a 2D label image, not shape {labels.shape}")
    rings: dict[int, list[list[float]]] = {}
    for index, box in enumerate(ndimage.find_objects(labels), 1):
        if box is None:
            continue
        mask = labels[box] == index
        parts, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(parts.ravel())[1:]
            mask = parts == int(np.argmax(sizes)) + 1
        ring = _boundary(mask)
        rings[index] = [[float(x + box[1].start), float(y + box[0].start)] for x, y in ring]
    return rings


def _boundary(mask: np.ndarray) -> list[tuple[int, int]]:
    """Outer boundary of one 4-connected-or-not component along pixel edges, as ``(x, y)`` corners.

    Walks the directed edges that have the object on their left (in ``x, y`` with ``y`` down,
    that is clockwise on screen); at a corner where two walks touch it turns towards the
    object, so the ring stays simple.
    """
    padded = np.pad(mask, 1)
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    rows, cols = np.nonzero(padded)
    for r, c in zip(rows.tolist(), cols.tolist()):
        x, y = c - 1, r - 1  # corner coordinates of the unpadded mask
        if not padded[r - 1, c]:
            edges.setdefault((x, y), []).append((x + 1, y))  # top edge, left to right
        if not padded[r, c + 1]:
            edges.setdefault((x + 1, y), []).append((x + 1, y + 1))  # right edge, downwards
        if not padded[r + 1, c]:
            edges.setdefault((x + 1, y + 1), []).append((x, y + 1))  # bottom edge, right to left
        if not padded[r, c - 1]:
            edges.setdefault((x, y + 1), []).append((x, y))  # left edge, upwards
    start = min(edges)  # top-left corner: on the outer boundary
    ring = [start]
    point, direction = start, (1, 0)
    while True:
        options = edges[point]
        if len(options) > 1:  # a corner shared by two diagonal pixels: turn towards the object
            right = (-direction[1], direction[0])
            nxt = next((o for o in options if (o[0] - point[0], o[1] - point[1]) == right), options[0])
        else:
            nxt = options[0]
        options.remove(nxt)
        direction = (nxt[0] - point[0], nxt[1] - point[1])
        point = nxt
        ring.append(point)
        if point == start:
            break
    return _simplify(ring)


def _simplify(ring: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop the points of a closed ring that lie on a straight run."""
    core = ring[:-1]
    kept = [p for i, p in enumerate(core)
            if (p[0] - core[i - 1][0]) * (core[(i + 1) % len(core)][1] - p[1])
            != (p[1] - core[i - 1][1]) * (core[(i + 1) % len(core)][0] - p[0])]
    return kept + kept[:1]


def geojson_collection(labels: np.ndarray, measurements: dict[str, np.ndarray] | None = None,
                    *, classification: str | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of one polygon per object, as QuPath imports detections.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
    measurements : dict of str to ndarray, optional
        Columns of :func:`object_measurements`; each object's row becomes its ``measurements``.
    classification : str, optional
        QuPath class name given to every object.

    Returns
    -------
    collection : dict
        ``{"type": "FeatureCollection", "features": [...]}``, JSON-safe; each feature has
        ``properties`` ``objectType: "detection"``, ``label`` and ``measurements``.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 2
    >>> feature = geojson_collection(labels)["features"][0]
    >>> feature["geometry"]["type"], feature["properties"]["objectType"], feature["properties"]["label"]
    ('Polygon', 'detection', 2)
    """
    rings = object_polygons(labels)
    rows: dict[int, dict[str, float]] = {}
    if measurements is not None:
        names = [n for n in measurements if n != "label"]
        for i, value in enumerate(measurements["label"]):
            rows[int(value)] = {n: float(measurements[n][i]) for n in names}
    features = []
    for value, ring in rings.items():
        properties: dict[str, Any] = {"objectType": "detection", "label": int(value), "name": f"object {value}"}
        if classification:
            properties["classification"] = {"name": classification}
        if value in rows:
            properties["measurements"] = rows[value]
        features.append({"type": "Feature", "id": f"pixlearn-{value}",
                         "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": properties})
    return {"type": "FeatureCollection", "features": features}
