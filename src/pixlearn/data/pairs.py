"""Loading training pairs (raw image + annotation) from folders, with every check a user needs."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from pixlearn.data.folders import find_pairs
from pixlearn.data.formats import file_stem
from pixlearn.data.images import read_canonical, read_labels
from pixlearn.data.labels import check_label_kind
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Pair:
    """One training example.

    Attributes
    ----------
    name : str
        File stem shared by image and annotation.
    image : ndarray of shape (M, N, C) or (P, M, N, C)
        Canonical layout, stored dtype.
    labels : ndarray of shape (M, N) or (P, M, N)
        Integer annotation (or, for restoration, the target image in canonical layout).
    image_path, label_path : Path
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    image_path: Path
    label_path: Path


def load_pairs(
    image_dir: str | os.PathLike[str],
    label_dir: str | os.PathLike[str],
    *,
    label_kind: str = "dense",
    axes: str | None = None,
    names: list[str] | None = None,
) -> list[Pair]:
    """Read and check all image/annotation pairs of two folders.

    Parameters
    ----------
    image_dir, label_dir : path-like
        Files are matched by stem (:func:`pixlearn.data.folders.find_pairs`).
    label_kind : {"dense", "scribbles", "instances", "restore"}
        How annotations are read: integer labels (see :mod:`pixlearn.data.labels`), or for
        ``"restore"`` target images in the same layout as the inputs.
    axes : str, optional
        Axes of the raw images (inferred when ``None``).
    names : list of str, optional
        Only these stems (e.g. one side of a ``split.json``).

    Returns
    -------
    pairs : list of Pair

    Raises
    ------
    PixlearnError
        Unmatched files, unreadable files, NaN/Inf pixels, images of different dimensionality or
        channel count, or an annotation whose shape differs from its image.
    """
    if label_kind != "restore":
        check_label_kind(label_kind)
    found = find_pairs(image_dir, label_dir, names=names)
    pairs: list[Pair] = []
    for image_path, label_path in found:
        image = read_canonical(image_path, axes=axes)
        if label_kind == "restore":
            labels = read_canonical(label_path, axes=axes)
            if labels.shape != image.shape:
                raise PixlearnError(
                    f"restoration target shape {labels.shape} differs from image shape {image.shape} "
                    f"({image_path.name})",
                    label_path,
                )
        else:
            labels = read_labels(label_path)
            if labels.shape != image.shape[:-1]:
                raise PixlearnError(
                    f"annotation shape {labels.shape} differs from image shape {image.shape[:-1]} "
                    f"({image_path.name})",
                    label_path,
                )
        pairs.append(Pair(file_stem(image_path), image, labels, image_path, label_path))
    pairs = _harmonize(pairs)
    logger.info("loaded %d pairs from %s", len(pairs), image_dir)
    return pairs


def _harmonize(pairs: list[Pair]) -> list[Pair]:
    """Check that all images share dimensionality and channels; a mix of grey and RGB(A)
    images (as in DSB2018) is made grey, since a model takes one channel count."""
    first = pairs[0]
    for pair in pairs[1:]:
        if pair.image.ndim != first.image.ndim:
            raise PixlearnError(
                f"is {pair.image.ndim - 1}D but {first.image_path.name} is {first.image.ndim - 1}D",
                pair.image_path,
            )
    counts = {p.image.shape[-1] for p in pairs}
    if len(counts) == 1:
        return pairs
    if counts <= {1, 3, 4}:
        logger.warning("images mix grey and colour; converting colour images to grey")
        return [dataclasses.replace(p, image=to_grey(p.image)) for p in pairs]
    odd = next(p for p in pairs if p.image.shape[-1] != first.image.shape[-1])
    raise PixlearnError(
        f"has {odd.image.shape[-1]} channels but {first.image_path.name} has {first.image.shape[-1]}",
        odd.image_path,
    )


def to_grey(image: np.ndarray) -> np.ndarray:
    """Mean of the colour channels (alpha dropped) of a canonical image, as one channel.

    Parameters
    ----------
    image : ndarray of shape (..., C)

    Returns
    -------
    image : ndarray of shape (..., 1), float32 (unchanged when C == 1)
    """
    if image.shape[-1] == 1:
        return image
    colour = image[..., :3] if image.shape[-1] == 4 else image
    return colour.mean(axis=-1, keepdims=True, dtype=np.float32)



