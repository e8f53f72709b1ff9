"""The image-classification jobs the command line runs: train, predict (with explanations), evaluate.

* :func:`train_image_classifier`: images in a folder per class (or any layout with a labels
  table) -> :func:`pixlearn.nets.classify_fit.fit_image_classifier` -> an
  :class:`~pixlearn.nets.classifier_model.ImageClassifierModel`.
* :func:`classify_images`: a prediction table (``predictions.csv``: name, class, probability,
  ``p_<class>`` per class) and, with `explain`, one saliency PNG per image; every file is written
  atomically, and nothing is written when the inputs are refused.
* :func:`evaluate_classification`: a prediction table against a labels table or a folder per
  class: ``metrics.json``, ``per_class.csv``, ``confusion_matrix.csv``/``.png``,
  ``reliability.csv``/``.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.data.classes import LabelledImages, find_images, read_labelled_images, write_class_predictions
from pixlearn.data.folders import list_images
from pixlearn.data.formats import file_stem
from pixlearn.data.images import read_canonical
from pixlearn.data.writers import write_image
from pixlearn.errors import PixlearnError
from pixlearn.experiment import ExperimentConfig

logger = logging.getLogger(__name__)

PREDICTIONS_CSV = "predictions.csv"
EXPLAIN_DIR = "explain"
#: Images read (and predicted) at a time.
CHUNK = 256


def read_images(paths: Sequence[Path], *, axes: str | None = None, n_channels: int | None = None) -> list[np.ndarray]:
    """Canonical images of `paths`, all of one dimensionality and channel count.

    Raises
    ------
    PixlearnError
        An unreadable image, or one whose dimensionality or channels differ from the first's
        (or from `n_channels`), naming it.
    """
    images: list[np.ndarray] = []
    for path in paths:
        image = read_canonical(path, axes=axes)
        reference = images[0] if images else None
        if reference is not None and image.ndim != reference.ndim:
            raise PixlearnError(f"is {image.ndim - 1}D but {paths[0].name} is {reference.ndim - 1}D", path)
        channels = n_channels if n_channels is not None else (None if reference is None else reference.shape[-1])
        if channels is not None and image.shape[-1] != channels:
            raise PixlearnError(f"has {image.shape[-1]} channel(s), {channels} expected", path)
        images.append(image)
    return images


def _class_summary(found: LabelledImages) -> str:
    return ", ".join(f"{name} {n}" for name, n in found.counts().items())


def train_image_classifier(images: Path, labels: Path | None = None, *, experiment: ExperimentConfig | None = None,
                           val_images: Path | None = None, val_labels: Path | None = None, axes: str | None = None,
                           options: Any = None) -> Any:
    """Train an image classifier on a folder per class, or on a folder and a labels table.

    Parameters
    ----------
    images : Path
        Folder of the training images (a subfolder per class unless `labels` is given).
    labels : Path, optional
        Labels table (CSV: name,class).
    experiment : ExperimentConfig, optional
        Its ``classify`` section (network and training) is used.
    val_images, val_labels : Path, optional
        Validation images, laid out like the training ones; default a stratified split.
    axes : str, optional
        Axes of the image files (default: inferred).
    options : pixlearn.nets.fit.FitOptions, optional

    Returns
    -------
    model : pixlearn.nets.classifier_model.ImageClassifierModel

    Raises
    ------
    PixlearnError
        Unreadable folders, tables or images, or classes the validation set adds.
    """
    from pixlearn.nets.classify_fit import fit_image_classifier

    experiment = ExperimentConfig() if experiment is None else experiment
    found = read_labelled_images(images, labels)
    logger.info("%d training images: %s", len(found), _class_summary(found))
    data = read_images(found.paths, axes=axes)
    validation = None
    if val_images is not None:
        val = read_labelled_images(val_images, val_labels, class_names=found.class_names)
        validation = (read_images(val.paths, axes=axes, n_channels=data[0].shape[-1]), list(val.labels))
    return fit_image_classifier(data, list(found.labels), found.class_names, config=experiment.classify,
                                validation=validation, options=options)


def prediction_targets(output: Path) -> tuple[Path, Path]:
    """The prediction table and the explanation folder of an output: ``OUT.csv`` and ``OUT_explain/``,
    or ``OUT/predictions.csv`` and ``OUT/explain/`` for a folder."""
    if output.suffix.lower() == ".csv":
        return output, output.with_name(output.stem + "_" + EXPLAIN_DIR)
    return output / PREDICTIONS_CSV, output / EXPLAIN_DIR


def list_classify_inputs(inputs: Sequence[str | os.PathLike[str]], exclude: Sequence[Path] = ()) -> list[Path]:
    """Image files of `inputs`: folders searched at any depth (a folder per class works), files and patterns."""
    excluded = [e.resolve() for e in exclude]
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not path.name.lower().endswith(".zarr"):
            found = [p for p in find_images(path)
                     if not any(e == p.resolve() or e in p.resolve().parents for e in excluded)]
            if not found:
                raise PixlearnError("folder holds no images (at any depth)", path)
            paths += found
        else:
            paths += list_images([item])
    return paths


def _check_targets(table: Path, explain_dir: Path | None, names: Sequence[str], overwrite: bool) -> None:
    """Refuse outputs that would replace a file without `overwrite`, or a table pixlearn did not write."""
    if os.path.lexists(table):
        header = ""
        if table.is_file():
            with open(table, encoding="utf-8", errors="replace") as fh:
                header = fh.readline()
        if not header.startswith("name,class,probability"):
            raise PixlearnError("exists and is not a pixlearn prediction table; not replaced", table)
        if not overwrite:
            raise PixlearnError("exists; pass --overwrite to replace it", table)
    if explain_dir is not None and not overwrite:
        taken = [n for n in names if (explain_dir / f"{n}.png").exists()]
        if taken:
            raise PixlearnError(f"already holds {taken[0]}.png; pass --overwrite to replace", explain_dir)


@dataclasses.dataclass(frozen=True)
class ClassifyResult:
    """What :func:`classify_images` wrote: the table, the explanations, the counts per class."""

    table: Path
    explanations: tuple[Path, ...]
    counts: dict[str, int]


def classify_images(model: Any, paths: Sequence[Path], output: Path, *, explain: str | None = None,
                    axes: str | None = None, overwrite: bool = False) -> ClassifyResult:
    """Classify image files; write the prediction table and, with `explain`, saliency PNGs.

    Parameters
    ----------
    model : ImageClassifierModel
    paths : sequence of Path
        Image files (their file stems must differ: they name the rows and PNGs).
    output : Path
        ``OUT.csv``, or a folder (``OUT/predictions.csv``); see :func:`prediction_targets`.
    explain : {"gradcam", "occlusion"}, optional
        Write ``<name>.png`` per image: the image with the saliency map of its predicted class.
    axes : str, optional
    overwrite : bool
        Replace an existing prediction table (one pixlearn wrote) and explanation PNGs.

    Returns
    -------
    result : ClassifyResult

    Raises
    ------
    PixlearnError
        No inputs, two inputs of one file stem, outputs that would be replaced without
        `overwrite`, or an image that does not fit the model.
    """
    names = [file_stem(p) for p in paths]
    if not names:
        raise PixlearnError("no images to classify")
    seen: dict[str, Path] = {}
    for name, path in zip(names, paths):
        if name in seen:
            raise PixlearnError(f"two inputs are named {name!r} ({seen[name]}); their rows would be ambiguous", path)
        seen[name] = path
    table, explain_dir = prediction_targets(Path(output))
    _check_targets(table, explain_dir if explain else None, names, overwrite)
    probabilities, explanations = [], []
    for start in range(0, len(paths), CHUNK):
        chunk = list(paths[start:start + CHUNK])
        images = read_images(chunk, axes=axes, n_channels=model.n_channels)
        for image, path in zip(images, chunk):
            if image.ndim != model.ndim + 1:
                raise PixlearnError(f"is {image.ndim - 1}D; the model classifies {model.ndim}D images", path)
        chunk_probabilities = model.predict_proba(images)
        probabilities.append(chunk_probabilities)
        if explain:
            explanations += _explain(model, images, chunk, explain_dir, explain, chunk_probabilities)
    all_probabilities = np.concatenate(probabilities)
    write_class_predictions(table, names, all_probabilities, model.class_names)
    counts = np.bincount(all_probabilities.argmax(axis=1), minlength=len(model.class_names))
    return ClassifyResult(table, tuple(explanations), {c: int(n) for c, n in zip(model.class_names, counts)})


def _explain(model: Any, images: list[np.ndarray], paths: list[Path], folder: Path, method: str,
             probabilities: np.ndarray) -> list[Path]:
    """One overlay PNG per image: its saliency map for its predicted class."""
    from pixlearn.app.figures import saliency_overlay

    written = []
    for image, path, p in zip(images, paths, probabilities):
        saliency = model.explain(image, method, target=int(np.argmax(p)))
        written.append(write_image(folder / f"{file_stem(path)}.png", saliency_overlay(image, saliency)))
    return written


def evaluate_classification(pred: Path, truth: Path, output: Path | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Score a prediction table against the truth; write the report, the confusion matrix and reliability PNGs.

    Parameters
    ----------
    pred : Path
        A prediction table, or a folder holding ``predictions.csv``.
    truth : Path
        A labels table (name,class) or a folder with one subfolder per class.
    output : Path, optional
        Report folder; default the prediction table's folder.

    Returns
    -------
    scores : dict
        JSON-safe :class:`~pixlearn.metrics.classification.ClassificationScores`.
    paths : dict of str to Path
        What was written.
    """
    from pixlearn.app.figures import save_confusion_matrix, save_reliability_diagram
    from pixlearn.metrics.classification import reliability_bins
    from pixlearn.metrics.classify_report import evaluate_class_predictions
    from pixlearn.metrics.report import write_classification_report

    result = evaluate_class_predictions(pred, truth)
    out_dir = output or (pred if pred.is_dir() else pred.parent)
    written = write_classification_report(result.scores, out_dir, y_true=result.y_true,
                                          probabilities=result.probabilities)
    scores = result.scores
    written["confusion_png"] = save_confusion_matrix(out_dir / "confusion_matrix.png", scores.confusion,
                                                     scores.class_names)
    bins = reliability_bins(result.y_true, result.probabilities)
    written["reliability_png"] = save_reliability_diagram(out_dir / "reliability.png", *bins,
                                                          ece=scores.expected_calibration_error)
    return scores.to_dict(), written


def train_command(images: Path, labels: Path | None, output: Path, experiment: ExperimentConfig, *,
                  validation: tuple[Path | None, Path | None] = (None, None), axes: str | None = None,
                  overwrite: bool = False, options: Any = None) -> str:
    """``pixlearn train --method cnn --task classify``: train, save the model (with its resolved
    experiment), and say what was done.

    Returns
    -------
    summary : str
        One line for the terminal.
    """
    from pixlearn.app.jobs import resolved_experiment
    from pixlearn.models.model_file import save_model

    model = train_image_classifier(images, labels, experiment=experiment, val_images=validation[0],
                                   val_labels=validation[1], axes=axes, options=options)
    save_model(model, output, experiment=resolved_experiment(experiment, model), overwrite=overwrite)
    history = model.history
    return (f"trained image classifier ({len(model.class_names)} classes, {model.ndim}D, {model.n_channels} channel(s)) "
            f"on {history['n_train']} image(s), validation macro F1 {history.get('val_macro_f1', float('nan')):.3f} "
            f"(epoch {history['best_epoch']} of {history['epochs']}, {history['stop_reason']}) -> {output}")


def predict_command(model_path: Path, inputs: Sequence[str], output: Path, *, explain: str | None = None,
                    axes: str | None = None, device: str | None = None, overwrite: bool = False) -> str:
    """``pixlearn predict`` with an image classifier: the prediction table (and explanations).

    Raises
    ------
    PixlearnError
        An unknown `explain` method, and what :func:`classify_images` refuses.
    """
    from pixlearn.models.model_file import load_model
    from pixlearn.nets.classifier_model import EXPLAIN_METHODS

    if explain is not None and explain not in EXPLAIN_METHODS:
        raise PixlearnError(f"--explain {explain!r}: use {' or '.join(EXPLAIN_METHODS)}")
    paths = list_classify_inputs(inputs, exclude=[output, prediction_targets(output)[1]])  # never its own outputs
    result = classify_images(load_model(model_path, device=device), paths, output, explain=explain, axes=axes,
                             overwrite=overwrite)
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    where = f"; explanations in {prediction_targets(output)[1]}" if explain else ""
    return f"classified {len(paths)} image(s) ({counts}) -> {result.table}{where}"


def evaluate_command(pred: Path, truth: Path, output: Path | None = None) -> str:
    """``pixlearn evaluate --kind classify``: the headline scores as JSON and the files written."""
    import json

    scores, paths = evaluate_classification(pred, truth, output)
    keys = ("n_samples", "accuracy", "balanced_accuracy", "macro_f1", "macro_roc_auc", "expected_calibration_error")
    return json.dumps({k: scores[k] for k in keys}, indent=2) + f"\nreport: {', '.join(str(p) for p in paths.values())}"


__all__ = ["ClassifyResult", "classify_images", "evaluate_classification", "evaluate_command", "list_classify_inputs",
           "predict_command", "prediction_targets", "read_images", "train_command", "train_image_classifier"]
