"""DSB2018 nuclei for the benchmarks and the built-in model: the split, and one rule for image groups.

The groups (the same rule for every run, from the image and its labels):

* ``colour``: an RGB image (stained tissue, brightfield in colour, coloured fluorescence);
* ``grey-brightfield``: a grey image whose median lies above the middle of its 1..99.8
  percentile range (dark nuclei on a bright background);
* ``grey-small`` / ``grey-large``: the other grey images (fluorescence), by the median nucleus
  diameter (equivalent diameter of the labelled objects) below or from 20 px.

:func:`analyse` scores one model's predictions of the test split: the headline figures (pooled
AP@0.5 as StarDist counts it, per-image averaged AP@0.5 as the DSB2018 leaderboard did, the
fluorescence groups beside StarDist's 0.864, the colour group) and the error analysis of
:func:`pixlearn.metrics.error_analysis`; :func:`report` prints its tables.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.folders import read_split
from pixlearn.data.pairs import Pair, load_pairs
from pixlearn.metrics import ErrorAnalysis, error_analysis, format_error_analysis

GROUPS = ("grey-small", "grey-large", "grey-brightfield", "colour")
FLUORESCENCE = ("grey-small", "grey-large")  # the grey groups that are not brightfield
SMALL_DIAMETER_PX = 20.0
# StarDist 2D, AP at IoU 0.5 on its own DSB2018 fluorescence test subset (Schmidt et al., MICCAI 2018)
STARDIST_FLUO_AP50 = 0.864


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


def analyse(pairs: Sequence[Pair], groups: Sequence[str], predictions: Sequence[np.ndarray]) -> tuple[dict[str, Any], ErrorAnalysis]:
    """The DSB2018 figures of one set of predictions (keys ``dsb2018_*``) and their error analysis.

    ``dsb2018_ap50`` is pooled over all objects (StarDist's convention, the headline),
    ``dsb2018_ap50_avg`` the mean of the images' AP@0.5 (DSB2018's), ``dsb2018_ap50_fluo`` pooled
    over :data:`FLUORESCENCE` (``None`` when the images hold none), ``dsb2018_ap50_colour`` the
    colour group; ``dsb2018_errors`` is :meth:`ErrorAnalysis.to_dict`.
    """
    analysis = error_analysis([p.labels for p in pairs], predictions, groups, [p.name for p in pairs],
                              group_order=GROUPS)
    fluo = [g for g in FLUORESCENCE if g in analysis.by_group]
    colour = analysis.by_group.get("colour")
    figures = {
        "dsb2018_ap50": analysis.overall.ap50,
        "dsb2018_ap75": analysis.overall.ap75,
        "dsb2018_ap50_avg": analysis.overall.ap50_per_image,
        "dsb2018_ap50_fluo": analysis.pooled(fluo).ap50 if fluo else None,
        "dsb2018_ap50_colour": colour.ap50 if colour else None,
        "dsb2018_mean_matched_iou": analysis.overall.mean_matched_iou,
        "dsb2018_errors": analysis.to_dict(),
    }
    return figures, analysis


def report(analysis: ErrorAnalysis) -> str:
    """The tables of the error analysis, with the fluorescence pool beside StarDist's figure."""
    fluo = [g for g in FLUORESCENCE if g in analysis.by_group]
    text = format_error_analysis(analysis, pools={"fluorescence": fluo} if fluo else None)
    if not fluo:
        return text
    pooled = analysis.pooled(fluo)
    return (f"{text}\n\nAP@0.5 pooled {analysis.overall.ap50:.3f} (StarDist's convention), averaged per image "
            f"{analysis.overall.ap50_per_image:.3f} (DSB2018's); fluorescence ({' + '.join(fluo)}, "
            f"{pooled.images} images) {pooled.ap50:.3f} vs StarDist {STARDIST_FLUO_AP50} on its fluorescence subset")
