"""The inputs of object classification: images with their instance labels, and the annotations.

The label image of an image comes from a folder of instance label images matched by file stem
(``--labels DIR``), or from an instance model run on the image (``--segment MODEL``: a pixlearn
instance model file or a built-in model such as ``nuclei``). Annotations come from a table of
classes by object id or of classes at points (:mod:`pixlearn.data.object_tables`), turned into
the ``{object id: class index}`` per image that
:func:`~pixlearn.classical.object_model.fit_object_classifier` takes. Every problem raises
:class:`~pixlearn.errors.PixlearnError` naming the file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.folders import images_by_stem
from pixlearn.data.formats import file_stem
from pixlearn.data.images import read_canonical, read_labels
from pixlearn.errors import PixlearnError

__all__ = ["LabelSource", "annotations_for", "class_names_of", "read_object_pair"]


@dataclasses.dataclass(frozen=True)
class LabelSource:
    """Where the instance labels of the images come from: a folder (by stem) or a segmentation model.

    Parameters
    ----------
    files : mapping of str to Path, optional
        Label image per image stem (:func:`images_by_stem` of the labels folder).
    model : PixelModel, optional
        An instance model applied to each image.
    """

    files: Mapping[str, Path] | None = None
    model: Any = None

    @classmethod
    def open(cls, labels: Path | None, segment: str | None, device: str | None = None) -> LabelSource:
        """From ``--labels DIR`` or ``--segment MODEL`` (exactly one).

        Raises
        ------
        PixlearnError
            Both or neither given, or a segmentation model that does not find instances.
        """
        if (labels is None) == (segment is None):
            raise PixlearnError("give the instance labels as --labels DIR or --segment MODEL (one of them)")
        if labels is not None:
            return cls(files=images_by_stem(labels))
        from pixlearn.zoo import load_model

        model = load_model(segment, device=device)  # type: ignore[arg-type]
        if getattr(model, "task", None) != "instances":
            raise PixlearnError(f"--segment: the model's task is {getattr(model, 'task', model.kind)!r}; an instance "
                                "model is needed (e.g. the built-in nuclei)", segment)
        return cls(model=model)

    def label_file(self, image: Path) -> Path | None:
        """The label image of `image` (``None`` when labels come from segmentation).

        Raises
        ------
        PixlearnError
            No label image of its name.
        """
        if self.files is None:
            return None
        stem = file_stem(image)
        if stem not in self.files:
            raise PixlearnError(f"has no label image of the name {stem!r} in the labels folder", image)
        return self.files[stem]


def read_object_pair(image_path: Path, source: LabelSource, *, axes: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An image (canonical, ``(..., C)``) and its instance labels, checked to match.

    Raises
    ------
    PixlearnError
        Unreadable files, labels of another shape, or an image the segmentation model does not take.
    """
    image = read_canonical(image_path, axes=axes)
    label_path = source.label_file(image_path)
    if label_path is None:
        from pixlearn.predict import apply_model
        from pixlearn.predict.apply import check_image_for_model

        check_image_for_model(source.model, image.shape, image_path)
        return image, np.asarray(apply_model(source.model, image))
    labels = read_labels(label_path)
    if labels.shape != image.shape[:-1]:
        raise PixlearnError(f"label image of shape {labels.shape} does not match its image of shape "
                            f"{image.shape[:-1]} ({image_path.name})", label_path)
    if labels.size and labels.min() < 0:
        raise PixlearnError("instance labels must be 0 (background) or positive object ids", label_path)
    return image, labels


def class_names_of(annotations: Mapping[str, Any]) -> tuple[str, ...]:
    """The class names of a table's annotations, sorted (the model's class order)."""
    names: set[str] = set()
    for entries in annotations.values():
        names |= set(entries.values()) if isinstance(entries, Mapping) else {c for _, c in entries}
    return tuple(sorted(names))


def annotations_for(labels: np.ndarray, entries: Any, class_names: Sequence[str], source: Path,
                    image: str) -> dict[int, int]:
    """``{object id: class index}`` of one image from its table entries.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N)
    entries : dict of int to str, or list of (coordinates, str)
        The image's classes by object id, or its points.
    class_names : sequence of str
    source : Path
        The table, named in errors.
    image : str
        The image's stem, named in errors.

    Raises
    ------
    PixlearnError
        An object id not in the label image, or a point outside it or of the wrong dimension.
    """
    from pixlearn.classical.object_model import objects_at_points
    from pixlearn.classical.objects import object_ids

    index = {name: k for k, name in enumerate(class_names)}
    if isinstance(entries, Mapping):
        present = set(object_ids(labels).tolist())
        missing = sorted(set(entries) - present)
        if missing:
            raise PixlearnError(f"objects {missing[:5]} of {image!r} are not in its label image", source)
        return {int(i): index[c] for i, c in entries.items()}
    try:
        return objects_at_points(labels, [(*coords, index[c]) for coords, c in entries])
    except ValueError as exc:
        raise PixlearnError(f"{image!r}: {exc}", source) from None
