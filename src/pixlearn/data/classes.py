"""Images with one class each: folders per class, label tables (CSV) and prediction tables.

Two ways to say which class an image belongs to:

* **a folder per class**: ``DIR/<class name>/<image>`` (any depth below the class folder);
* **a table**: a CSV file with a header naming a ``name`` column (also ``file``, ``image`` or
  ``filename``) and a ``class`` column (also ``class_name`` or ``label``); other columns are
  ignored. A name is an image's path relative to the images folder (``a.png``, ``sub/a.png``) or
  its file stem (``a``), found anywhere below the folder.

Predictions are written as a table too (:func:`write_class_predictions`): ``name`` (the image's
file stem), ``class`` (the predicted one), ``probability`` (of that class) and one ``p_<class>``
column per class; :func:`read_class_predictions` reads it back. Every problem raises
:class:`~pixlearn.errors.PixlearnError` naming the file (and the line of a table).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixlearn.data.formats import file_stem, is_image_file
from pixlearn.data.writers import write_csv
from pixlearn.errors import PixlearnError

NAME_COLUMNS: tuple[str, ...] = ("name", "file", "image", "filename")
CLASS_COLUMNS: tuple[str, ...] = ("class", "class_name", "label")
PROBABILITY_PREFIX = "p_"


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """Image files and the class of each.

    Attributes
    ----------
    paths : tuple of Path
    labels : tuple of int
        Index of each image's class in `class_names`.
    class_names : tuple of str
    """

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        found = np.bincount(np.asarray(self.labels, np.int64), minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found)}


def find_images(root: str | os.PathLike[str]) -> list[Path]:
    """Image files below `root` at any depth, sorted (hidden entries and Zarr stores' insides skipped)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in [d for d in dirs if is_image_file(d)]:  # a Zarr store is one image
            found.append(Path(folder) / d)
            dirs.remove(d)
        found.extend(Path(folder) / f for f in files if is_image_file(f) and not f.startswith("."))
    return sorted(found)


def _class_indices(classes: Sequence[str], class_names: Sequence[str] | None, source: Path) -> tuple[tuple[int, ...], tuple[str, ...]]:
    names = tuple(sorted(set(classes))) if class_names is None else tuple(class_names)
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise PixlearnError(f"classes {unknown[:5]} are not among the model's classes {list(names)[:12]}", source)
    index = {n: i for i, n in enumerate(names)}
    return tuple(index[c] for c in classes), names


def read_class_folders(root: str | os.PathLike[str], class_names: Sequence[str] | None = None) -> LabelledImages:
    """The images of a folder holding one subfolder per class.

    Parameters
    ----------
    root : path-like
    class_names : sequence of str, optional
        The classes in order (a model's); default the subfolder names, sorted. A subfolder of
        another name is an error.

    Raises
    ------
    PixlearnError
        No such folder, images directly in it, fewer than two classes when `class_names` is not
        given, or a class folder without images.
    """
    root = Path(root)
    if not root.is_dir():
        raise PixlearnError("no such folder", root)
    loose = [p for p in root.iterdir() if is_image_file(p) and not p.name.startswith(".")]
    if loose:
        raise PixlearnError(f"holds images directly ({loose[0].name}, ...): put each class's images in a subfolder "
                            "named after the class, or give a labels table (--labels labels.csv)", root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths: list[Path] = []
    classes: list[str] = []
    for folder in folders:
        images = find_images(folder)
        if not images:
            raise PixlearnError("class folder holds no images", folder)
        paths += images
        classes += [folder.name] * len(images)
    if class_names is None and len(folders) < 2:
        raise PixlearnError(f"needs one subfolder per class, at least two (found {len(folders)})", root)
    labels, names = _class_indices(classes, class_names, root)
    return LabelledImages(tuple(paths), labels, names)


def read_table_rows(path: Path) -> list[list[str]]:
    """The non-empty rows of a CSV table (header first), at least one below the header."""
    if not path.is_file():
        raise PixlearnError("no such file", path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise PixlearnError("is not a UTF-8 text (CSV) file", path) from None
    except csv.Error as exc:
        raise PixlearnError(f"is not a valid CSV file ({exc})", path) from None
    except OSError as exc:
        raise PixlearnError(f"cannot read ({exc.strerror or exc})", path) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise PixlearnError("holds no rows below its header", path)
    return rows


def table_column(header: list[str], options: tuple[str, ...], what: str, path: Path) -> int:
    """Index of the first of `options` among the (case-insensitive) column names of `header`."""
    lowered = [h.strip().lower() for h in header]
    for option in options:
        if option in lowered:
            return lowered.index(option)
    raise PixlearnError(f"needs a header with a {what} column ({' or '.join(options)}); found "
                        f"{', '.join(h.strip() for h in header)[:120] or 'nothing'}", path)


def read_class_table(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The (name, class) rows of a labels table.

    Raises
    ------
    PixlearnError
        An unreadable file, no header with name and class columns, no rows, a row with an empty
        name or class, or a name listed twice (naming the line).
    """
    path = Path(path)
    rows = read_table_rows(path)
    name_col = table_column(rows[0], NAME_COLUMNS, "name", path)
    class_col = table_column(rows[0], CLASS_COLUMNS, "class", path)
    table: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(name_col, class_col):
            raise PixlearnError(f"line {line}: {len(row)} field(s), the header has {len(rows[0])}", path)
        name, label = row[name_col].strip(), row[class_col].strip()
        if not name or not label:
            raise PixlearnError(f"line {line}: empty {'name' if not name else 'class'}", path)
        if name in seen:
            raise PixlearnError(f"line {line}: {name!r} is listed again (first on line {seen[name]})", path)
        seen[name] = line
        table.append((name, label))
    return table


def read_labelled_images(images: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None,
                         class_names: Sequence[str] | None = None) -> LabelledImages:
    """Images with their classes: from a labels table when given, else from the class folders.

    Parameters
    ----------
    images : path-like
        The images folder (class subfolders, or any layout with a table).
    labels : path-like, optional
        A labels table (CSV) whose names are found below `images`.
    class_names : sequence of str, optional
        The classes in order; default the classes found, sorted.

    Raises
    ------
    PixlearnError
        See :func:`read_class_folders` and :func:`read_class_table`; a name of the table with no
        image below `images` (or with several), or fewer than two classes.
    """
    if labels is None:
        return read_class_folders(images, class_names)
    root, table_path = Path(images), Path(labels)
    table = read_class_table(table_path)
    if not root.is_dir():
        raise PixlearnError("no such folder", root)
    files = find_images(root)
    by_path = {p.relative_to(root).as_posix(): p for p in files}
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(file_stem(p), []).append(p)
    paths: list[Path] = []
    for line, (name, _) in enumerate(table, start=2):
        found = [by_path[name]] if name in by_path else by_stem.get(file_stem(name), [])
        if len(found) != 1:
            problem = "matches no image" if not found else f"matches {len(found)} images ({found[0]}, {found[1]})"
            raise PixlearnError(f"line {line}: {name!r} {problem} below {root}", table_path)
        paths.append(found[0])
    classes = [c for _, c in table]
    if class_names is None and len(set(classes)) < 2:
        raise PixlearnError(f"lists a single class ({classes[0]!r}); at least two are needed", table_path)
    indices, names = _class_indices(classes, class_names, table_path)
    return LabelledImages(tuple(paths), indices, names)


def write_class_predictions(path: str | os.PathLike[str], names: Sequence[str], probabilities: np.ndarray,
                            class_names: Sequence[str]) -> Path:
    """Write predicted classes and probabilities as a CSV table, atomically.

    Parameters
    ----------
    path : path-like
    names : sequence of str
        One per image (file stems).
    probabilities : ndarray of shape (n_images, K)
    class_names : sequence of str

    Returns
    -------
    path : Path
    """
    probabilities = np.asarray(probabilities, np.float64)
    top = probabilities.argmax(axis=1)
    columns: dict[str, object] = {"name": list(names), "class": [class_names[int(k)] for k in top],
                                  "probability": np.round(probabilities.max(axis=1), 6)}
    for k, name in enumerate(class_names):
        columns[f"{PROBABILITY_PREFIX}{name}"] = np.round(probabilities[:, k], 6)
    return write_csv(path, columns)


@dataclasses.dataclass(frozen=True)
class ClassPredictions:
    """A prediction table: names, predicted class indices, probabilities and the class names."""

    names: tuple[str, ...]
    predicted: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]


def _probability(text: str, line: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PixlearnError(f"line {line}: {text!r} is not a number", path) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise PixlearnError(f"line {line}: probability {text!r} is not in 0..1", path)
    return value


def read_class_predictions(path: str | os.PathLike[str], *, name_columns: tuple[str, ...] = NAME_COLUMNS,
                           prefix: str = "") -> ClassPredictions:
    """Read a table written by :func:`write_class_predictions`.

    Parameters
    ----------
    path : path-like
    name_columns : tuple of str
        The column naming the rows (the first found); e.g. ``("object_id",)`` for the object
        tables of ``pixlearn predict`` with an object classifier.
    prefix : str
        Put before every name (e.g. ``"<image>/"`` for object ids).

    Raises
    ------
    PixlearnError
        An unreadable table, no name column or fewer than two ``p_<class>`` columns, a predicted
        class that is not among them, a probability that is not a number in 0..1, or a name
        listed twice.
    """
    path = Path(path)
    rows = read_table_rows(path)
    header = [h.strip() for h in rows[0]]
    name_col = table_column(header, name_columns, "name", path)
    prob_cols = [i for i, h in enumerate(header) if h.startswith(PROBABILITY_PREFIX)]
    if len(prob_cols) < 2:
        raise PixlearnError(f"needs one {PROBABILITY_PREFIX}<class> column per class, at least two", path)
    class_names = tuple(header[i][len(PROBABILITY_PREFIX):] for i in prob_cols)
    class_col = header.index("class") if "class" in header else None
    names, predicted, probabilities = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise PixlearnError(f"line {line}: {len(row)} field(s), the header has {len(header)}", path)
        values = [_probability(row[i], line, path) for i in prob_cols]
        label = row[class_col].strip() if class_col is not None else class_names[int(np.argmax(values))]
        if label not in class_names:
            raise PixlearnError(f"line {line}: class {label!r} has no {PROBABILITY_PREFIX}{label} column", path)
        names.append(prefix + row[name_col].strip())
        predicted.append(class_names.index(label))
        probabilities.append(values)
    twice = [n for n, count in collections.Counter(names).items() if count > 1]
    if twice:
        raise PixlearnError(f"{twice[0]!r} is listed twice", path)
    return ClassPredictions(tuple(names), np.array(predicted, np.int64), np.array(probabilities, np.float64),
                            class_names)


__all__ = [
    "CLASS_COLUMNS",
    "NAME_COLUMNS",
    "PROBABILITY_PREFIX",
    "ClassPredictions",
    "LabelledImages",
    "find_images",
    "read_class_folders",
    "read_class_predictions",
    "read_class_table",
    "read_labelled_images",
    "read_table_rows",
    "table_column",
    "write_class_predictions",
]
