"""Tables of annotated objects: classes by object id, classes at points, and object predictions.

Three CSV tables, each with a header (column names case-insensitive):

* **classes by object id** (:func:`read_object_classes`): ``image`` (also ``name``, ``file``,
  ``filename``: the image's file name or stem), ``object_id`` (also ``object`` or ``id``: the
  label value in that image's instance label image) and ``class`` (a class name). Training
  annotations and the truth of ``pixlearn evaluate --kind classify`` for objects.
* **classes at points** (:func:`read_object_points`): ``image``, ``y`` and ``x`` (also ``row``
  and ``column``), optionally ``z`` (also ``plane``), pixel coordinates (rounded to the nearest
  pixel), and ``class``: each point names the object under it.
* **object predictions** (:func:`read_object_predictions`): the ``<image>.objects.csv`` tables
  ``pixlearn predict`` writes with an object classifier (``object_id``, measurements, ``class``,
  ``probability``, one ``p_<class>`` per class), read back as one
  :class:`~pixlearn.data.classes.ClassPredictions` whose names are ``<image>/<object id>``
  (:func:`object_key`).

Image names are file stems (:func:`pixlearn.data.formats.file_stem`). Every problem raises
:class:`~pixlearn.errors.PixlearnError` naming the file and the line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from pixlearn.data.classes import (
    CLASS_COLUMNS,
    NAME_COLUMNS,
    ClassPredictions,
    read_class_predictions,
    read_table_rows,
    table_column,
)
from pixlearn.data.formats import file_stem
from pixlearn.errors import PixlearnError

__all__ = ["OBJECT_COLUMNS", "OBJECTS_SUFFIX", "object_key", "read_object_classes", "read_object_points",
           "read_object_predictions"]

OBJECT_COLUMNS: tuple[str, ...] = ("object_id", "object", "id")
#: Suffix of the per-image object tables of ``pixlearn predict`` with an object classifier.
OBJECTS_SUFFIX = ".objects.csv"
_IMAGE_COLUMNS: tuple[str, ...] = ("image", *[c for c in NAME_COLUMNS if c != "image"])
_AXIS_COLUMNS: dict[str, tuple[str, ...]] = {"z": ("z", "plane"), "y": ("y", "row"), "x": ("x", "column", "col")}


def object_key(image: str, object_id: int) -> str:
    """The name of one object among all images: ``"<image stem>/<object id>"``.

    Examples
    --------
    >>> object_key("cells_01.tif", 7)
    'cells_01/7'
    """
    return f"{file_stem(image)}/{int(object_id)}"


def _cells(row: list[str], columns: list[int], header: list[str], line: int, path: Path) -> list[str]:
    if len(row) <= max(columns):
        raise PixlearnError(f"line {line}: {len(row)} field(s), the header has {len(header)}", path)
    cells = [row[c].strip() for c in columns]
    if not all(cells):
        raise PixlearnError(f"line {line}: empty {header[columns[cells.index('')]].strip()}", path)
    return cells


def read_object_classes(path: str | os.PathLike[str]) -> dict[str, dict[int, str]]:
    """Class names of objects: image stem -> {object id: class name}.

    Raises
    ------
    PixlearnError
        An unreadable table, a missing column, an empty cell, an object id that is not a whole
        number above 0, or an object listed twice.

    Examples
    --------
    >>> import tempfile
    >>> table = Path(tempfile.mkdtemp()) / "classes.csv"
    >>> _ = table.write_text("image,object_id,class\\na.tif,3,round\\na.tif,5,long\\n")
    >>> read_object_classes(table)
    {'a': {3: 'round', 5: 'long'}}
    """
    path = Path(path)
    rows = read_table_rows(path)
    header = rows[0]
    columns = [table_column(header, _IMAGE_COLUMNS, "image", path), table_column(header, OBJECT_COLUMNS, "object id", path),
               table_column(header, CLASS_COLUMNS, "class", path)]
    result: dict[str, dict[int, str]] = {}
    for line, row in enumerate(rows[1:], start=2):
        image, text, label = _cells(row, columns, header, line, path)
        try:
            object_id = int(text)
        except ValueError:
            raise PixlearnError(f"line {line}: object id {text!r} is not a whole number", path) from None
        if object_id < 1:
            raise PixlearnError(f"line {line}: object id {object_id} is not above 0 (0 is the background)", path)
        objects = result.setdefault(file_stem(image), {})
        if object_id in objects:
            raise PixlearnError(f"line {line}: object {object_id} of {image!r} is listed again", path)
        objects[object_id] = label
    return result


def _coordinate(text: str, line: int, path: Path) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < -0.5:
        raise PixlearnError(f"line {line}: coordinate {text!r} is not a pixel position", path)
    return int(math.floor(value + 0.5))


def read_object_points(path: str | os.PathLike[str]) -> dict[str, list[tuple[tuple[int, ...], str]]]:
    """Points naming the class of the object under them: image stem -> [((z,) y, x), class name].

    Raises
    ------
    PixlearnError
        An unreadable table, a missing column, an empty cell, or a coordinate that is not a
        number at least -0.5.

    Examples
    --------
    >>> import tempfile
    >>> table = Path(tempfile.mkdtemp()) / "points.csv"
    >>> _ = table.write_text("image,y,x,class\\na.tif,3.2,4.7,round\\n")
    >>> read_object_points(table)
    {'a': [((3, 5), 'round')]}
    """
    path = Path(path)
    rows = read_table_rows(path)
    header = rows[0]
    lowered = [h.strip().lower() for h in header]
    axes = "zyx" if any(c in lowered for c in _AXIS_COLUMNS["z"]) else "yx"
    columns = [table_column(header, _IMAGE_COLUMNS, "image", path)]
    columns += [table_column(header, _AXIS_COLUMNS[a], a, path) for a in axes]
    columns.append(table_column(header, CLASS_COLUMNS, "class", path))
    result: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = _cells(row, columns, header, line, path)
        coords = tuple(_coordinate(c, line, path) for c in cells[1:-1])
        result.setdefault(file_stem(cells[0]), []).append((coords, cells[-1]))
    return result


def read_object_predictions(folder: str | os.PathLike[str]) -> ClassPredictions:
    """The object tables (``*.objects.csv``) of a prediction folder as one prediction table.

    Raises
    ------
    PixlearnError
        No object table, a table :func:`~pixlearn.data.classes.read_class_predictions` refuses,
        or tables of different classes.
    """
    folder = Path(folder)
    tables = sorted(p for p in folder.glob(f"*{OBJECTS_SUFFIX}") if p.is_file())
    if not tables:
        raise PixlearnError(f"holds no object tables (*{OBJECTS_SUFFIX})", folder)
    parts: list[ClassPredictions] = []
    for table in tables:
        with open(table, encoding="utf-8", errors="replace") as fh:
            if sum(1 for line in fh if line.strip()) < 2:  # an image without objects
                continue
        image = table.name[: -len(OBJECTS_SUFFIX)]
        part = read_class_predictions(table, name_columns=OBJECT_COLUMNS, prefix=f"{image}/")
        if parts and part.class_names != parts[0].class_names:
            raise PixlearnError(f"has the classes {list(part.class_names)}, {tables[0].name} has "
                                f"{list(parts[0].class_names)}", table)
        parts.append(part)
    if not parts:
        raise PixlearnError(f"its object tables (*{OBJECTS_SUFFIX}) hold no objects", folder)
    return ClassPredictions(tuple(n for p in parts for n in p.names), np.concatenate([p.predicted for p in parts]),
                            np.concatenate([p.probabilities for p in parts]), parts[0].class_names)
