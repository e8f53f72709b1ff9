"""The label convention: what the integer values of an annotation image mean.

pixlearn reads three kinds of annotation, named explicitly wherever labels are read:

``"dense"``
    Every pixel carries a class index ``0..K-1`` (class 0 is usually background).
``"scribbles"``
    Sparse brush strokes: ``0`` means *unlabelled*, ``1..K`` are the classes. Internally class
    ``k`` becomes index ``k - 1`` and unlabelled pixels become :data:`IGNORE`.
``"instances"``
    ``0`` is background and each object has its own positive integer ``1..N``.

Internally, class targets are ``int64`` arrays with values ``0..K-1`` or :data:`IGNORE`.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from pixlearn.errors import PixlearnError

LabelKind = Literal["dense", "scribbles", "instances"]
LABEL_KINDS: tuple[str, ...] = ("dense", "scribbles", "instances")
IGNORE = -1
MAX_CLASSES = 65535  # class values beyond this are refused before per-class arrays are sized


def check_label_kind(kind: str) -> str:
    """Return `kind` if it is one of :data:`LABEL_KINDS`, else raise ``ValueError``."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"label kind {kind!r} is not one of {LABEL_KINDS}")
    return kind


def to_class_targets(
    labels: np.ndarray,
    kind: str,
    *,
    n_classes: int | None = None,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Convert an annotation image to class indices ``0..K-1`` with :data:`IGNORE` for unlabelled.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer dtype
    kind : {"dense", "scribbles", "instances"}
        See the module docstring; instances become 2 classes (background, object).
    n_classes : int, optional
        When given, values outside the classes raise.
    path : path-like, optional
        Named in error messages.

    Returns
    -------
    targets : ndarray of int64, same shape

    Raises
    ------
    PixlearnError
        Negative values, values outside `n_classes`, or nothing annotated.

    Examples
    --------
    >>> to_class_targets(np.array([[0, 1], [2, 0]]), "scribbles").tolist()
    [[-1, 0], [1, -1]]
    """
    check_label_kind(kind)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iub":
        raise PixlearnError(f"annotation dtype {labels.dtype} is not integer", path)
    if labels.size and labels.min() < 0:
        raise PixlearnError(f"annotation has negative value {int(labels.min())}", path)
    if kind != "instances" and labels.size and int(labels.max()) > MAX_CLASSES:
        raise PixlearnError(
            f"annotation value {int(labels.max())} is not a class ({kind} annotations hold at most "
            f"{MAX_CLASSES} classes; instance ids need --label-kind instances)", path,
        )
    if kind == "instances":
        targets = (labels > 0).astype(np.int64)
    elif kind == "scribbles":
        targets = labels.astype(np.int64) - 1
    else:
        targets = labels.astype(np.int64)
    annotated = targets != IGNORE
    if not annotated.any():
        raise PixlearnError("annotation has no labelled pixels (scribbles: 0 means unlabelled)", path)
    if n_classes is not None:
        top = int(targets.max())
        if top >= n_classes:
            shown = top + 1 if kind == "scribbles" else top
            allowed = f"1..{n_classes}" if kind == "scribbles" else f"0..{n_classes - 1}"
            raise PixlearnError(
                f"annotation value {shown} is outside the {n_classes} classes ({allowed})", path
            )
    return targets


def count_classes(targets: list[np.ndarray]) -> int:
    """Number of classes ``K`` seen in a list of class-target arrays (max index + 1)."""
    return int(max(int(t.max()) for t in targets)) + 1


def object_diameters(labels: np.ndarray) -> np.ndarray:
    """Equivalent diameter (px) of each labelled object: of the disc (2D) or ball (3D) of its area.

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (P, M, N), integer
        Instance labels, 0 background.

    Returns
    -------
    diameters : ndarray of shape (n_objects,), float64

    Examples
    --------
    >>> labels = np.zeros((9, 9), int); labels[:4, :4] = 1
    >>> round(float(object_diameters(labels)[0]), 2)
    4.51
    """
    labels = np.asarray(labels)
    sizes = np.bincount(labels.ravel().astype(np.int64))[1:]
    sizes = sizes[sizes > 0].astype(np.float64)
    if labels.ndim == 3:
        return np.cbrt(6.0 * sizes / np.pi)
    return 2.0 * np.sqrt(sizes / np.pi)


def median_object_diameter(label_images: list[np.ndarray]) -> float | None:
    """Median equivalent diameter (px) of all objects of several instance label images.

    Returns ``None`` when there are no objects.
    """
    diameters = np.concatenate([object_diameters(lab) for lab in label_images]) if label_images else np.zeros(0)
    return float(np.median(diameters)) if diameters.size else None
