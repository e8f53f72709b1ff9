"""DSB2018 nuclei for the benchmarks and the built-in model: the split, and one rule for image groups.

The groups (the same rule for every run, from the image and its labels):

* ``colour``: an RGB image (stained tissue, brightfield in colour, coloured fluorescence);
* ``grey-brightfield``: a grey image whose median lies above the middle of its 1..99.8
  percentile range (dark nuclei on a bright background);
* ``grey-small`` / ``grey-large``: the other grey images (fluorescence), by the median nucleus
  diameter (equivalent diameter of the labelled objects) below or from 20 px.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pixlearn.data.folders import read_split
from pixlearn.data.pairs import Pair, load_pairs

GROUPS = ("grey-small", "grey-large", "grey-brightfield", "colour")
SMALL_DIAMETER_PX = 20.0


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter (px) of the labelled objects (0 when there are none)."""
    areas = np.bincount(np.asarray(labels).ravel().astype(np.int64))[1:]
    areas = areas[areas > 0]
    return float(np.median(2.0 * np.sqrt(areas / np.pi))) if areas.size else 0.0


def image_group(image: np.ndarray, labels: np.ndarray, colour: bool) -> str:
    """The group of one image (see the module's docstring); `image` canonical ``(M, N, C)``."""
    if colour:
        return "colour"
    grey = np.asarray(image, np.float32)[..., 0]
    low, high = np.percentile(grey, [1.0, 99.8])
    if np.median(grey) > (low + high) / 2:
        return "grey-brightfield"
    return "grey-small" if median_diameter(labels) < SMALL_DIAMETER_PX else "grey-large"


def load_split(root: Path, side: str, limit: int | None = None) -> tuple[list[Pair], list[str]]:
    """The pairs of one side of the split (``"train"`` or ``"test"``) and each one's group.

    Colour images are read as colour and turned grey (the mean of their colours) by
    :func:`~pixlearn.data.pairs.load_pairs`, which mixed sets need; their group is kept.
    """
    names = read_split(root)[side][:limit]
    with open(root / "metadata.csv") as fh:
        colour = {row["name"] for row in csv.DictReader(fh) if int(row["channels"]) == 3}
    pairs = load_pairs(root / "images", root / "labels", label_kind="instances", names=names)
    by_name = {pair.name: pair for pair in pairs}
    ordered = [by_name[n] for n in names]
    return ordered, [image_group(p.image, p.labels, n in colour) for n, p in zip(names, ordered)]
