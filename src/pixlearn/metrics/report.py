"""Score predictions against ground truth files: semantic, instance or restoration metrics.

:func:`evaluate_pairs` reads each (prediction, truth) pair, checks the shapes agree, and returns a
JSON-safe dict with one row per image and data-set aggregates; :func:`evaluate_folders` pairs two
folders by file stem; :func:`write_report` writes ``metrics.json``, ``metrics.csv`` (one row per
image) and, for semantic results, ``confusion_matrix.csv``. Undefined scores (a class absent
from both images, the PSNR of identical images) are ``null`` in JSON and empty in CSV.

Aggregates
    *semantic*: scores of the confusion matrix summed over all images (pixel-pooled).
    *instances*: tp/fp/fn summed over all images at each IoU threshold, as StarDist does;
    ``average_precision`` is the mean of the matching accuracy over the thresholds.
    *restore*: mean of each image's score.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.atomic import atomic_path
from pixlearn.data.folders import find_pairs
from pixlearn.data.formats import file_stem
from pixlearn.data.images import read_canonical, read_labels
from pixlearn.errors import PixlearnError
from pixlearn.metrics.classification import ClassificationScores, reliability_bins
from pixlearn.metrics.instance import DEFAULT_IOU_THRESHOLDS, aggregate_matchings, average_precision, matching_dataset
from pixlearn.metrics.restoration import nrmse, psnr, scale_to_target, ssim
from pixlearn.metrics.semantic import confusion_matrix, scores_from_confusion

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("semantic", "instances", "restore")


def _json_safe(value: Any) -> Any:
    """NumPy scalars to Python, NaN/Inf to None, tuples to lists, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _check_shapes(pred: np.ndarray, truth: np.ndarray, pred_path: Path, truth_path: Path) -> None:
    if pred.shape != truth.shape:
        raise PixlearnError(
            f"prediction has shape {pred.shape} but its ground truth {truth_path} has shape "
            f"{truth.shape}",
            pred_path,
        )


def _semantic(
    pairs: list[tuple[Path, Path]], n_classes: int | None, ignore: int | None
) -> dict[str, Any]:
    matrices: list[np.ndarray] = []
    for pred_path, truth_path in pairs:
        pred, truth = read_labels(pred_path), read_labels(truth_path)
        _check_shapes(pred, truth, pred_path, truth_path)
        counted = truth[truth != ignore] if ignore is not None else truth
        for path, values in ((pred_path, pred), (truth_path, counted)):
            if values.size and int(values.min()) < 0:
                raise PixlearnError(f"negative class value {int(values.min())}", path)
            if n_classes is not None and values.size and int(values.max()) >= n_classes:
                raise PixlearnError(
                    f"class value {int(values.max())} is outside the {n_classes} classes "
                    f"0..{n_classes - 1}",
                    path,
                )
        top = max(int(counted.max()) if counted.size else 0, int(pred.max()) if pred.size else 0)
        k = n_classes if n_classes is not None else top + 1
        matrices.append(confusion_matrix(truth, pred, k, ignore))
    k = max(m.shape[0] for m in matrices)
    padded = []
    for m in matrices:
        full = np.zeros((k, k), np.int64)
        full[: m.shape[0], : m.shape[1]] = m
        padded.append(full)
    rows = []
    for (pred_path, truth_path), m in zip(pairs, padded):
        s = scores_from_confusion(m)
        row: dict[str, Any] = {
            "name": file_stem(pred_path),
            "pred": os.fspath(pred_path),
            "truth": os.fspath(truth_path),
            "n_pixels": s.n_pixels,
            "pixel_accuracy": s.pixel_accuracy,
            "mean_iou": s.mean_iou,
            "mean_dice": s.mean_dice,
        }
        row.update({f"iou_{c}": v for c, v in enumerate(s.iou)})
        row.update({f"dice_{c}": v for c, v in enumerate(s.dice)})
        rows.append(row)
    total = scores_from_confusion(np.sum(padded, axis=0))
    aggregate = total.to_dict()
    confusion = aggregate.pop("confusion")
    return {"n_classes": k, "images": rows, "aggregate": aggregate, "confusion_matrix": confusion}


def _instances(
    pairs: list[tuple[Path, Path]], iou_thresholds: Sequence[float]
) -> dict[str, Any]:
    thresholds = tuple(float(t) for t in iou_thresholds)
    if not thresholds:
        raise ValueError("no IoU thresholds given")
    main = 0.5 if 0.5 in thresholds else thresholds[0]
    per_threshold: list[list[Any]] = [[] for _ in thresholds]
    rows = []
    for pred_path, truth_path in pairs:
        pred, truth = read_labels(pred_path), read_labels(truth_path)
        _check_shapes(pred, truth, pred_path, truth_path)
        for path, arr in ((pred_path, pred), (truth_path, truth)):
            if arr.size and int(arr.min()) < 0:
                raise PixlearnError(f"negative object label {int(arr.min())}", path)
        results = matching_dataset([truth], [pred], thresholds)
        for k, r in enumerate(results):
            per_threshold[k].append(r)
        m = results[thresholds.index(main)]
        row: dict[str, Any] = {
            "name": file_stem(pred_path),
            "pred": os.fspath(pred_path),
            "truth": os.fspath(truth_path),
        }
        row.update({k: v for k, v in m.to_dict().items() if k != "thresh"})
        row["average_precision"] = average_precision(results)
        rows.append(row)
    pooled = [aggregate_matchings(ms) for ms in per_threshold]
    head = pooled[thresholds.index(main)].to_dict()
    aggregate: dict[str, Any] = {"iou_thresh": head.pop("thresh"), **head}
    aggregate["average_precision"] = average_precision(pooled)
    aggregate["iou_thresholds"] = list(thresholds)
    aggregate["accuracy_per_threshold"] = [p.accuracy for p in pooled]
    return {"images": rows, "aggregate": aggregate, "per_threshold": [p.to_dict() for p in pooled]}


def _restore(pairs: list[tuple[Path, Path]], scale_invariant: bool = False) -> dict[str, Any]:
    rows = []
    for pred_path, truth_path in pairs:
        pred, truth = read_canonical(pred_path), read_canonical(truth_path)
        _check_shapes(pred, truth, pred_path, truth_path)
        data_range = None
        if scale_invariant:
            truth, pred = scale_to_target(truth, pred)
            data_range = 1.0
        try:
            row: dict[str, Any] = {
                "name": file_stem(pred_path),
                "pred": os.fspath(pred_path),
                "truth": os.fspath(truth_path),
                "psnr": psnr(truth, pred, data_range),
                "ssim": ssim(truth, pred, data_range, channel_axis=-1),
                "nrmse": nrmse(truth, pred),
            }
        except ValueError as exc:
            raise PixlearnError(str(exc), pred_path) from None
        rows.append(row)
    aggregate = {}
    for key in ("psnr", "ssim", "nrmse"):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        aggregate[key] = float(finite.mean()) if finite.size else float("nan")
        aggregate[f"n_finite_{key}"] = int(finite.size)
    return {"images": rows, "aggregate": aggregate}


def evaluate_pairs(
    pred_paths: Sequence[str | os.PathLike[str]],
    truth_paths: Sequence[str | os.PathLike[str]],
    kind: str = "semantic",
    n_classes: int | None = None,
    *,
    ignore: int | None = None,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    scale_invariant: bool = False,
) -> dict[str, Any]:
    """Score predicted images against ground truth images, paired by position.

    Parameters
    ----------
    pred_paths, truth_paths : sequence of path-like
        Image files of equal spatial shape, pair by pair. Semantic and instance files hold one
        integer per pixel (:func:`pixlearn.data.images.read_labels`); restoration files any image
        (:func:`pixlearn.data.images.read_canonical`), compared as stored.
    kind : {"semantic", "instances", "restore"}
        *semantic*: class maps (0..K-1) -- pixel accuracy, per-class IoU and Dice, confusion
        matrix. *instances*: instance label images -- matching at each IoU threshold, AP.
        *restore*: PSNR and SSIM (data range of the truth), NRMSE.
    n_classes : int, optional
        Semantic only: number of classes; values outside raise. Default: largest value + 1.
    ignore : int, optional
        Semantic only: truth value of pixels left out (e.g. 255).
    iou_thresholds : sequence of float
        Instances only: IoU thresholds; default 0.5, 0.55, ..., 0.95. Per-image rows and the
        top-level aggregate are at 0.5 (or the first threshold if 0.5 is not among them).
    scale_invariant : bool
        Restoration only: percentile-normalise each truth and fit each prediction to it
        (:func:`pixlearn.metrics.scale_to_target`) before scoring with data range 1, for images
        whose intensities were scaled independently.

    Returns
    -------
    result : dict
        JSON-safe: ``kind``, ``n_images``, ``images`` (one flat dict per image: ``name``,
        ``pred``, ``truth`` and the scores), ``aggregate``; semantic adds ``n_classes`` and
        ``confusion_matrix`` (rows = truth); instances add ``per_threshold``.

    Raises
    ------
    PixlearnError
        Unreadable files, mismatched shapes, or values outside the classes (names the file).
    ValueError
        Unknown `kind`, unequal or empty lists.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    if len(pred_paths) != len(truth_paths):
        raise ValueError(f"{len(pred_paths)} predictions but {len(truth_paths)} truth files")
    if not pred_paths:
        raise ValueError("no images to evaluate")
    if n_classes is not None and int(n_classes) < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    pairs = [(Path(p), Path(t)) for p, t in zip(pred_paths, truth_paths)]
    if kind == "semantic":
        body = _semantic(pairs, n_classes, ignore)
    elif kind == "instances":
        body = _instances(pairs, iou_thresholds)
    else:
        body = _restore(pairs, scale_invariant)
    logger.info("evaluated %d %s pairs", len(pairs), kind)
    return _json_safe({"kind": kind, "n_images": len(pairs), **body})


def evaluate_folders(
    pred_dir: str | os.PathLike[str],
    truth_dir: str | os.PathLike[str],
    kind: str = "semantic",
    n_classes: int | None = None,
    *,
    ignore: int | None = None,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    scale_invariant: bool = False,
) -> dict[str, Any]:
    """Score every prediction in a folder against the truth file of the same stem.

    Parameters
    ----------
    pred_dir, truth_dir : path-like
        Folders of images; ``a.tif`` pairs with ``a.tif``, ``a.png`` or ``a.ome.tif``
        (:func:`pixlearn.data.folders.find_pairs`).
    kind, n_classes, ignore, iou_thresholds, scale_invariant
        See :func:`evaluate_pairs`.

    Returns
    -------
    result : dict
        As :func:`evaluate_pairs`, plus ``pred_dir`` and ``truth_dir``.

    Raises
    ------
    PixlearnError
        A missing folder, files without a partner (listed), or any error of
        :func:`evaluate_pairs`.
    """
    pairs = find_pairs(pred_dir, truth_dir)
    result = evaluate_pairs(
        [p for p, _ in pairs],
        [t for _, t in pairs],
        kind,
        n_classes,
        ignore=ignore,
        iou_thresholds=iou_thresholds,
        scale_invariant=scale_invariant,
    )
    return {"pred_dir": os.fspath(pred_dir), "truth_dir": os.fspath(truth_dir), **result}


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def write_report(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write an evaluation result as ``metrics.json``, ``metrics.csv`` and, for semantic
    results, ``confusion_matrix.csv``; each file is written atomically.

    Parameters
    ----------
    result : dict
        As returned by :func:`evaluate_pairs` or :func:`evaluate_folders`.
    out_dir : path-like
        Created when missing.

    Returns
    -------
    paths : dict of str to Path
        ``"json"``, ``"csv"`` and (semantic) ``"confusion_matrix"``.

    Raises
    ------
    PixlearnError
        When the folder or a file cannot be written.
    ValueError
        A `result` without per-image rows.
    """
    if "images" not in result:
        raise ValueError("result has no 'images' rows; pass what evaluate_pairs returns")
    out_dir = Path(out_dir)
    files: dict[str, str] = {"json": json.dumps(_json_safe(result), indent=2, allow_nan=False)}
    rows = result["images"]
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    files["csv"] = _csv_text([columns] + [[row.get(c) for c in columns] for row in rows])
    matrix = result.get("confusion_matrix")
    if matrix is not None:
        k = len(matrix)
        header = ["true\\pred"] + [str(c) for c in range(k)]
        files["confusion_matrix"] = _csv_text(
            [header] + [[str(c)] + list(r) for c, r in enumerate(matrix)]
        )
    names = {
        "json": "metrics.json", "csv": "metrics.csv", "confusion_matrix": "confusion_matrix.csv"
    }
    return _write_files(files, names, out_dir)


def _write_files(files: dict[str, str], names: dict[str, str], out_dir: Path) -> dict[str, Path]:
    """Write each text of `files` atomically to ``out_dir / names[key]``."""
    paths: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for key, text in files.items():
            path = out_dir / names[key]
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            paths[key] = path
    except OSError as exc:
        raise PixlearnError(f"cannot write report ({exc.strerror or exc})", out_dir) from exc
    return paths


def write_classification_report(
    scores: ClassificationScores,
    out_dir: str | os.PathLike[str],
    *,
    y_true: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    n_bins: int = 10,
) -> dict[str, Path]:
    """Write classification scores as ``metrics.json``, ``per_class.csv``, ``confusion_matrix.csv``
    and, given the probabilities, ``reliability.csv`` (the points of a reliability diagram).

    Parameters
    ----------
    scores : ClassificationScores
        From :func:`~pixlearn.metrics.classification.classification_scores`.
    out_dir : path-like
        Created when missing; each file is written atomically.
    y_true : ndarray of shape (n_samples,), integer, optional
    probabilities : ndarray of shape (n_samples, K), optional
        Both or neither: the scored samples, for the reliability table.
    n_bins : int
        Confidence bins of the reliability table.

    Returns
    -------
    paths : dict of str to Path
        ``"json"``, ``"per_class"``, ``"confusion_matrix"`` and (with probabilities) ``"reliability"``.

    Raises
    ------
    PixlearnError
        When the folder or a file cannot be written.
    ValueError
        Only one of `y_true` and `probabilities`.
    """
    if (y_true is None) != (probabilities is None):
        raise ValueError("give both y_true and probabilities for the reliability table, or neither")
    rows = scores.per_class()
    columns = list(rows[0])
    names = list(scores.class_names)
    files = {
        "json": json.dumps(_json_safe(scores.to_dict()), indent=2, allow_nan=False),
        "per_class": _csv_text([columns] + [[row[c] for c in columns] for row in rows]),
        "confusion_matrix": _csv_text([["true\\pred", *names]] + [[n, *r] for n, r in zip(names, scores.confusion, strict=True)]),
    }
    if y_true is not None and probabilities is not None:
        counts, confidence, hits = reliability_bins(y_true, probabilities, n_bins)
        table: list[list[Any]] = [["bin_low", "bin_high", "count", "mean_confidence", "accuracy"]]
        for b in range(n_bins):
            empty = counts[b] == 0
            table.append([b / n_bins, (b + 1) / n_bins, int(counts[b]),
                          None if empty else float(confidence[b]), None if empty else float(hits[b])])
        files["reliability"] = _csv_text(table)
    file_names = {"json": "metrics.json", "per_class": "per_class.csv",
                  "confusion_matrix": "confusion_matrix.csv", "reliability": "reliability.csv"}
    return _write_files(files, file_names, Path(out_dir))


__all__ = ["KINDS", "evaluate_folders", "evaluate_pairs", "write_classification_report", "write_report"]
