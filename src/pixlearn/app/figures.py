"""PNG figures for results: image | truth | prediction | probability panels, and image | labels ... panels.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: no global figure registry, no backend switch, nothing left open after a call.
matplotlib is imported inside the functions, so importing this module is cheap. Every figure is
written to a temporary name and renamed into place (:func:`pixlearn.data.atomic.atomic_path`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path

logger = logging.getLogger(__name__)

PANEL_INCHES = 3.0
"""Width and height of one image panel, inches (the title adds :data:`TITLE_INCHES`)."""
TITLE_INCHES = 0.3


def _new_figure(width_in: float, height_in: float, dpi: int) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str], dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _middle_plane(array: np.ndarray, spatial_ndim: int) -> np.ndarray:
    """The middle plane of a 3D array (``(P, M, N[, C])``); 2D arrays pass through."""
    return array[array.shape[0] // 2] if spatial_ndim == 3 else array


def _grey(image: np.ndarray) -> np.ndarray:
    """Percentile-stretched float image in [0, 1] for display (grey, or RGB when 3 channels)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 3 and image.shape[-1] not in (3, 4):
        image = image[..., 0]
    elif image.ndim == 3:
        image = image[..., :3]
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape, np.float32)
    low, high = np.percentile(finite, [1.0, 99.8])
    if high <= low:
        high = low + 1.0
    return np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0.0, 1.0)


def label_colors(labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Colour a label image: each label a random bright colour, 0 black.

    Parameters
    ----------
    labels : ndarray of shape (M, N), non-negative integers
    seed : int
        Seed of the colour table (the same seed gives label ``i`` the same colour).

    Returns
    -------
    rgb : ndarray of shape (M, N, 3), float32 in [0, 1]

    Examples
    --------
    >>> rgb = label_colors(np.array([[0, 1], [2, 2]]))
    >>> rgb.shape, rgb[0, 0].tolist(), bool((rgb[1, 0] == rgb[1, 1]).all())
    ((2, 2, 3), [0.0, 0.0, 0.0], True)
    """
    labels = np.asarray(labels)
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"labels must be non-negative, got minimum {int(labels.min())}")
    top = int(labels.max()) if labels.size else 0
    rng = np.random.default_rng(seed)
    table = rng.uniform(0.25, 1.0, size=(top + 1, 3)).astype(np.float32)
    table[0] = 0.0
    return table[labels.astype(np.intp)]


def save_panel(
    path: str | os.PathLike[str],
    raw: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    probability: np.ndarray | None = None,
    *,
    titles: Sequence[str] = ("image", "truth", "prediction", "probability"),
    probability_channel: int = -1,
    dpi: int = 100,
) -> Path:
    """Write a PNG with panels image | truth | prediction [| probability].

    Panels are :data:`PANEL_INCHES` square plus a title strip, so the PNG is
    ``round(n_panels * PANEL_INCHES * dpi)`` pixels wide and
    ``round((PANEL_INCHES + TITLE_INCHES) * dpi)`` high. 3D data show their middle plane.

    Parameters
    ----------
    path : path-like
        Target ``.png``; written atomically, parent folder created.
    raw : ndarray of shape (M, N), (M, N, C), (P, M, N) or (P, M, N, C)
        Shown in grey with a 1-99.8 percentile stretch (RGB when C is 3 or 4, else channel 0).
    truth, prediction : ndarray of shape (M, N) or (P, M, N), non-negative integers
        Class masks or instance labels, shown with random colours and 0 in black.
    probability : ndarray of shape (M, N), (P, M, N), (M, N, K) or (P, M, N, K), optional
        Probability map in [0, 1]; with a class axis, channel `probability_channel` is shown.
    titles : sequence of str
        Panel titles, in panel order.
    probability_channel : int
        Class shown from a per-class probability map (default the last one).
    dpi : int

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        When `truth`, `prediction` and `raw` do not share their spatial shape.
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    raw = np.asarray(raw)
    if truth.ndim not in (2, 3):
        raise ValueError(f"truth must be 2D or 3D, got shape {truth.shape}")
    spatial = truth.shape
    if prediction.shape != spatial or raw.shape[: len(spatial)] != spatial:
        raise ValueError(
            f"raw {raw.shape}, truth {truth.shape} and prediction {prediction.shape} "
            "must share their spatial shape"
        )
    if raw.ndim > len(spatial) + 1:
        raise ValueError(f"raw has shape {raw.shape}; expected spatial axes and at most one channel")
    ndim = truth.ndim
    panels: list[tuple[np.ndarray, dict[str, Any]]] = [
        (_grey(_middle_plane(raw, ndim)), {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}),
        (label_colors(_middle_plane(truth, ndim)), {}),
        (label_colors(_middle_plane(prediction, ndim)), {}),
    ]
    if probability is not None:
        probability = np.asarray(probability, np.float32)
        if probability.ndim == ndim + 1:
            probability = probability[..., probability_channel]
        if probability.shape != spatial:
            raise ValueError(f"probability has shape {probability.shape}, expected {spatial} (+ K)")
        panels.append(
            (_middle_plane(probability, ndim), {"cmap": "magma", "vmin": 0.0, "vmax": 1.0})
        )
    plane_note = f" (plane {truth.shape[0] // 2})" if ndim == 3 else ""
    return _write_panels(path, panels, titles, plane_note, dpi)


def _write_panels(
    path: str | os.PathLike[str],
    panels: Sequence[tuple[np.ndarray, dict[str, Any]]],
    titles: Sequence[str],
    plane_note: str,
    dpi: int,
) -> Path:
    """One row of square panels (``imshow`` data and style) with titles; `plane_note` follows the first."""
    n = len(panels)
    height = PANEL_INCHES + TITLE_INCHES
    fig = _new_figure(n * PANEL_INCHES, height, dpi)
    for i, (data, style) in enumerate(panels):
        ax = fig.add_axes((i / n, 0.0, 1.0 / n, PANEL_INCHES / height))
        ax.imshow(data, interpolation="nearest", **style)
        ax.set_axis_off()
        title = (titles[i] if i < len(titles) else "") + (plane_note if i == 0 else "")
        fig.text((i + 0.5) / n, 1.0 - 0.5 * TITLE_INCHES / height, title,
                 ha="center", va="center", fontsize=10)
    out = _save(fig, path, dpi)
    logger.info("wrote %s", out)
    return out


def _label_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of an object whose next pixel along a row or column holds another label.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer

    Returns
    -------
    boundary : ndarray of shape (M, N), bool
        The last pixels of each object before another object or the background, so that two
        touching objects of similar colour stay apart when drawn.

    Examples
    --------
    >>> _label_boundaries(np.array([[1, 1, 2, 0]])).tolist()
    [[False, True, True, False]]
    """
    labels = np.asarray(labels)
    boundary = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        step = np.diff(labels, axis=axis) != 0
        before = [slice(None)] * labels.ndim
        before[axis] = slice(0, -1)
        boundary[tuple(before)] |= step
    return boundary & (labels > 0)


def save_label_panels(
    path: str | os.PathLike[str],
    raw: np.ndarray,
    labels: Sequence[np.ndarray],
    *,
    titles: Sequence[str] = (),
    dpi: int = 100,
) -> Path:
    """Write a PNG with panels image | labels[0] | labels[1] | ..., object edges drawn dark.

    For comparing several instance segmentations of one image (and its truth): each label image
    is coloured with :func:`label_colors`, and the edges of its objects are
    darkened, so a merge (one object over two nuclei) shows as one colour without a line. The PNG
    is ``round((1 + len(labels)) * PANEL_INCHES * dpi)`` pixels wide and
    ``round((PANEL_INCHES + TITLE_INCHES) * dpi)`` high.

    Parameters
    ----------
    path : path-like
        Target ``.png``; written atomically, parent folder created.
    raw : ndarray of shape (M, N) or (M, N, C)
        Shown in grey with a 1-99.8 percentile stretch (RGB when C is 3 or 4, else channel 0).
    labels : sequence of ndarray of shape (M, N), non-negative integers
        Instance (or class) labels, 0 in black.
    titles : sequence of str
        Panel titles, the image's first.
    dpi : int

    Returns
    -------
    path : Path

    Raises
    ------
    ValueError
        No label images, or label images whose shape is not the spatial shape of `raw`.
    """
    raw = np.asarray(raw)
    arrays = [np.asarray(lab) for lab in labels]
    if not arrays:
        raise ValueError("no label images to show")
    spatial = raw.shape[:2]
    if raw.ndim not in (2, 3) or any(lab.shape != spatial for lab in arrays):
        raise ValueError(f"raw {raw.shape} and labels {[lab.shape for lab in arrays]} must share their 2D "
                         "spatial shape")
    panels: list[tuple[np.ndarray, dict[str, Any]]] = [
        (_grey(raw), {"cmap": "gray", "vmin": 0.0, "vmax": 1.0})
    ]
    for lab in arrays:
        rgb = label_colors(lab)
        rgb[_label_boundaries(lab)] *= 0.35
        panels.append((rgb, {}))
    return _write_panels(path, panels, titles, "", dpi)


def save_confusion_matrix(path: str | os.PathLike[str], confusion: Sequence[Sequence[int]],
                          class_names: Sequence[str], *, dpi: int = 100) -> Path:
    """Write a PNG of a confusion matrix: rows true, columns predicted, shaded by row share.

    Parameters
    ----------
    path : path-like
        Target ``.png``; written atomically.
    confusion : sequence of sequence of int, shape (K, K)
        ``confusion[i][j]``: samples of true class ``i`` predicted as ``j``.
    class_names : sequence of str
    dpi : int

    Returns
    -------
    path : Path
    """
    matrix = np.asarray(confusion, np.float64)
    k = len(class_names)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    side = max(4.0, 0.55 * k + 2.0)
    fig = _new_figure(side + 1.0, side, dpi)
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k), labels=list(class_names), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels=list(class_names), fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.tight_layout()
    return _save(fig, path, dpi)


def save_reliability_diagram(path: str | os.PathLike[str], counts: np.ndarray, confidence: np.ndarray,
                             accuracy: np.ndarray, *, ece: float | None = None, dpi: int = 100) -> Path:
    """Write a PNG of a reliability diagram: accuracy against confidence per bin, and bin counts.

    Parameters
    ----------
    path : path-like
    counts, confidence, accuracy : ndarray of shape (n_bins,)
        As :func:`pixlearn.metrics.classification.reliability_bins` returns (``nan`` where empty).
    ece : float, optional
        Shown in the title.
    dpi : int

    Returns
    -------
    path : Path
    """
    n_bins = len(counts)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    filled = np.asarray(counts) > 0
    fig = _new_figure(5.0, 6.0, dpi)
    ax, bottom = fig.add_subplot(4, 1, (1, 3)), fig.add_subplot(4, 1, 4)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.bar(centres[filled], np.asarray(accuracy)[filled], width=1.0 / n_bins, edgecolor="black", alpha=0.7,
           label="accuracy")
    ax.plot(np.asarray(confidence)[filled], np.asarray(accuracy)[filled], "o-", color="C3", label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""))
    ax.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, counts, width=1.0 / n_bins, color="C0", edgecolor="black")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence of the predicted class")
    bottom.set_ylabel("samples")
    fig.tight_layout()
    return _save(fig, path, dpi)


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, *, min_side_px: int = 128) -> np.ndarray:
    """An RGB picture of `image` with `saliency` laid over it as a heat map.

    Parameters
    ----------
    image : ndarray of shape (M, N), (M, N, C), (P, M, N) or (P, M, N, C)
        Shown with a 1-99.8 percentile stretch, in colour when C is 3 or 4; 3D images and maps as
        maximum projections along the planes.
    saliency : ndarray of shape (M, N) or (P, M, N), values in 0..1
    min_side_px : int
        Small images are enlarged by a whole factor (nearest neighbour) to at least this size.

    Returns
    -------
    rgb : ndarray of shape (M * f, N * f, 3), uint8

    Examples
    --------
    >>> saliency_overlay(np.zeros((8, 8)), np.ones((8, 8)), min_side_px=16).shape
    (16, 16, 3)
    """
    from matplotlib import colormaps

    saliency = np.clip(np.nan_to_num(np.asarray(saliency, np.float32)), 0.0, 1.0)
    image = np.asarray(image)
    if saliency.ndim == 3:
        image, saliency = image.max(axis=0), saliency.max(axis=0)
    grey = _grey(image)
    rgb = np.repeat(grey[..., None], 3, axis=-1) if grey.ndim == 2 else grey[..., :3]
    heat = colormaps["jet"](saliency)[..., :3].astype(np.float32)
    alpha = 0.6 * saliency[..., None]
    out = rgb * (1.0 - alpha) + heat * alpha
    factor = max(1, -(-min_side_px // max(out.shape[:2])))
    out = np.repeat(np.repeat(out, factor, axis=0), factor, axis=1)
    return (np.clip(out, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
