"""The NGFF 0.4 rules an OME-Zarr image must follow, checked: :func:`check_ngff`.

Written for pixlearn's OME-Zarr outputs (:mod:`pixlearn.data.ome`) without the ``ome-zarr``
package; the rules are those of the NGFF 0.4 specification that a reader relies on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.ome import NGFF_UNITS, NGFF_VERSION


def check_ngff(path: str | os.PathLike[str]) -> list[str]:
    """What breaks the NGFF 0.4 rules in the OME-Zarr image at `path` (empty when none).

    Checked: Zarr v2 groups and arrays; ``multiscales`` with version ``"0.4"``, 2 to 5 axes with
    unique names, known types, at most one channel axis before 2 or 3 space axes, UDUNITS space
    units; datasets whose arrays exist with as many dimensions as axes, and whose one ``scale``
    transformation (first) has one positive value per axis; levels that never grow; and the
    ``labels`` group: each listed label image is a multiscale image of integers with
    ``image-label`` metadata (version, unique integer ``label-value``, ``rgba`` of 4 bytes).
    """
    path = Path(path)
    problems = _image_problems(path, str(path.name))
    labels = path / "labels"
    if labels.exists():
        listed = _group_attrs(labels).get("labels")
        if not isinstance(listed, list) or not listed:
            problems.append("labels: no list of label images")
        for name in listed or []:
            if "image-label" not in _group_attrs(labels / str(name)):
                problems.append(f"labels/{name}: no image-label metadata")
            problems += _image_problems(labels / str(name), f"labels/{name}")
    return problems


def _image_problems(where: Path, what: str) -> list[str]:
    """Problems of one multiscale image group (an image or a label image) named `what`."""
    if not (where / ".zgroup").exists():
        return [f"{what}: not a Zarr v2 group"]
    attrs = _group_attrs(where)
    multiscales = attrs.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        return [f"{what}: no multiscales list"]
    problems: list[str] = []
    for meta in multiscales:
        if meta.get("version") != NGFF_VERSION:
            problems.append(f"{what}: multiscales version {meta.get('version')!r} is not {NGFF_VERSION}")
        problems += _axes_problems(meta.get("axes", []), what)
        problems += _datasets_problems(where, meta, "image-label" in attrs, what)
    label_meta = attrs.get("image-label")
    if label_meta is not None:
        problems += _label_meta_problems(label_meta, what)
    return problems


def _axes_problems(axes: list[dict[str, Any]], what: str) -> list[str]:
    """Problems of a multiscales ``axes`` list: count, unique names, type order, space units."""
    problems = []
    names = [a.get("name") for a in axes]
    types: list[Any] = [a.get("type") for a in axes]
    if not 2 <= len(axes) <= 5 or len(set(names)) != len(names):
        problems.append(f"{what}: axes {names} (2 to 5 unique names)")
    order = {"time": 0, "channel": 1, "space": 2}
    if any(t not in order for t in types) or types != sorted(types, key=order.__getitem__) \
            or types.count("channel") > 1 or not 2 <= types.count("space") <= 3:
        problems.append(f"{what}: axis types {types} (time, channel, then 2 or 3 space axes)")
    for axis in axes:
        if axis.get("type") == "space" and "unit" in axis and axis["unit"] not in NGFF_UNITS:
            problems.append(f"{what}: unit {axis['unit']!r} is not a UDUNITS length")
    return problems


def _datasets_problems(where: Path, meta: dict[str, Any], is_label: bool, what: str) -> list[str]:
    """Problems of the levels of one multiscales entry: arrays, dimensions, scales, sizes, dtype."""
    import zarr

    n_axes = len(meta.get("axes", []))
    datasets = meta.get("datasets", [])
    if not datasets:
        return [f"{what}: no datasets"]
    problems = []
    previous = None
    for dataset in datasets:
        array_path = where / dataset.get("path", "")
        if not (array_path / ".zarray").exists():
            problems.append(f"{what}: dataset {dataset.get('path')!r} is not a Zarr v2 array")
            continue
        array = zarr.open_array(str(array_path), mode="r", zarr_format=2)
        if array.ndim != n_axes:
            problems.append(f"{what}: dataset {dataset['path']} has {array.ndim} dimensions, {n_axes} axes")
        transforms = dataset.get("coordinateTransformations", [])
        scales = [t for t in transforms if t.get("type") == "scale"]
        if not transforms or transforms[0].get("type") != "scale" or len(scales) != 1:
            problems.append(f"{what}: dataset {dataset['path']} needs one scale transformation, first")
        elif len(scales[0]["scale"]) != n_axes or min(scales[0]["scale"]) <= 0:
            problems.append(f"{what}: dataset {dataset['path']} scale {scales[0]['scale']} for {n_axes} axes")
        if previous is not None and any(s > p for s, p in zip(array.shape, previous)):
            problems.append(f"{what}: dataset {dataset['path']} is larger than the level before")
        previous = array.shape
        if is_label and not np.issubdtype(array.dtype, np.integer):
            problems.append(f"{what}: label image of dtype {array.dtype}")
    return problems


def _label_meta_problems(label_meta: dict[str, Any], what: str) -> list[str]:
    """Problems of ``image-label`` metadata: version, unique integer values, RGBA bytes."""
    problems = []
    values = [c.get("label-value") for c in label_meta.get("colors", [])]
    if label_meta.get("version") != NGFF_VERSION or len(set(values)) != len(values) \
            or not all(isinstance(v, int) for v in values):
        problems.append(f"{what}: image-label version or label-values")
    for c in label_meta.get("colors", []):
        rgba = c.get("rgba", [])
        if len(rgba) != 4 or not all(isinstance(v, int) and 0 <= v <= 255 for v in rgba):
            problems.append(f"{what}: rgba {rgba}")
    return problems


def _group_attrs(where: Path) -> dict[str, Any]:
    import zarr

    return dict(zarr.open_group(str(where), mode="r", zarr_format=2).attrs)
