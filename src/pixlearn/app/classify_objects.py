"""Object classification from files: train on annotated objects, classify the objects of images.

* :func:`train_object_classifier`: images, their instance labels (a folder, or an instance model
  that segments them) and a table of classes by object id or at points ->
  :func:`~pixlearn.classical.object_model.fit_object_classifier` -> an
  :class:`~pixlearn.classical.object_model.ObjectClassifier` (class names from the table).
* :func:`classify_object_files`: per image ``OUT/<name>.objects.csv`` (object id, measurements,
  predicted class, its probability, ``p_<class>`` per class), ``OUT/<name>.classes.tif`` (class
  index + 1 on each object's pixels, 0 background), with ``--segment`` also
  ``OUT/<name>.labels.tif`` (the instance labels the ids refer to), and ``OUT/summary.csv``
  (objects per class per image). As for :func:`pixlearn.predict.predict_many`: every input is
  checked before anything is written, every file is written under a temporary name and renamed,
  the manifest (``manifest.jsonl``) claims the outputs first, and a file pixlearn did not write
  is never replaced (one it wrote only with `overwrite`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlearn.app.object_inputs import LabelSource, annotations_for, class_names_of, read_object_pair
from pixlearn.data.folders import images_by_stem
from pixlearn.data.formats import file_stem
from pixlearn.data.object_tables import OBJECTS_SUFFIX, read_object_classes, read_object_points
from pixlearn.data.writers import write_csv, write_image
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)

__all__ = ["ObjectsResult", "classify_object_files", "predict_objects_command", "train_object_classifier",
           "train_objects_command"]

SUMMARY_CSV = "summary.csv"
CLASSES_SUFFIX = ".classes.tif"
LABELS_SUFFIX = ".labels.tif"


def _read_annotations(classes: Path | None, points: Path | None) -> tuple[Path, dict[str, Any]]:
    if (classes is None) == (points is None):
        raise PixlearnError("give the object classes as --classes TABLE.csv (image,object_id,class) or "
                            "--points TABLE.csv (image,y,x[,z],class), one of them")
    if classes is not None:
        return classes, dict(read_object_classes(classes))
    assert points is not None
    return points, dict(read_object_points(points))


def train_object_classifier(images: Path, *, labels: Path | None = None, segment: str | None = None,
                            classes: Path | None = None, points: Path | None = None, clf_cfg: Any = None,
                            feature_cfg: Any = None, axes: str | None = None, device: str | None = None) -> Any:
    """Train an object classifier on the annotated objects of a folder of images.

    Parameters
    ----------
    images : Path
        Folder of the images; the table's image names are their file names or stems.
    labels : Path, optional
        Folder of instance label images, matched by file stem (or give `segment`).
    segment : str, optional
        An instance model (file or built-in name, e.g. ``"nuclei"``) that makes the labels.
    classes, points : Path, optional
        The annotations (one of them): a table ``image,object_id,class`` or ``image,y,x[,z],class``.
    clf_cfg : ClassifierConfig, optional
        Default a class-balanced random forest.
    feature_cfg : ObjectFeatureConfig, optional
    axes : str, optional
        Axes of the image files (default: inferred).
    device : str, optional
        Where a segmentation network runs.

    Returns
    -------
    model : ObjectClassifier
        Its classes are the table's class names, sorted.

    Raises
    ------
    PixlearnError
        Unreadable tables, folders or images; names of the table without an image or label
        image; objects not in their label images; fewer than two classes.
    """
    from pixlearn.classical.object_model import fit_object_classifier

    table, annotations = _read_annotations(classes, points)
    class_names = class_names_of(annotations)
    if len(class_names) < 2:
        raise PixlearnError(f"names a single class ({', '.join(class_names)}); at least two are needed", table)
    found = images_by_stem(images)
    unknown = sorted(set(annotations) - set(found))
    if unknown:
        raise PixlearnError(f"names images that are not in {images}: {', '.join(unknown[:5])}", table)
    source = LabelSource.open(labels, segment, device)
    data, label_images, targets = [], [], []
    for stem in sorted(annotations):
        image, instance_labels = read_object_pair(found[stem], source, axes=axes)
        data.append(image)
        label_images.append(instance_labels)
        targets.append(annotations_for(instance_labels, annotations[stem], class_names, table, stem))
    logger.info("%d annotated object(s) in %d image(s)", sum(len(t) for t in targets), len(targets))
    return fit_object_classifier(data, label_images, targets, class_names=class_names, clf_cfg=clf_cfg,
                                 feature_cfg=feature_cfg)


@dataclasses.dataclass(frozen=True)
class ObjectsResult:
    """What :func:`classify_object_files` wrote: the per-image files, the summary, counts per class."""

    tables: tuple[Path, ...]
    class_images: tuple[Path, ...]
    summary: Path
    counts: dict[str, int]


def _targets(output: Path, names: Sequence[str], segmented: bool) -> list[Path]:
    suffixes = (OBJECTS_SUFFIX, CLASSES_SUFFIX) + ((LABELS_SUFFIX,) if segmented else ())
    return [output / f"{n}{s}" for n in names for s in suffixes] + [output / SUMMARY_CSV]


def _check_targets(output: Path, targets: Sequence[Path], overwrite: bool) -> None:
    """Refuse a file pixlearn did not write at a target (and one it wrote, without `overwrite`)."""
    from pixlearn.predict.batch import MANIFEST, made_by_pixlearn

    if os.path.lexists(output) and not output.is_dir():
        raise PixlearnError("the output folder is a file", output)
    made = made_by_pixlearn(output, claims=True) if output.is_dir() else set()
    for target in targets:
        if not os.path.lexists(target):
            continue
        if target.resolve() not in made:
            raise PixlearnError(f"exists and was not written by pixlearn (not in {MANIFEST}); not replaced: move it "
                                "or choose another output folder", target)
        if not overwrite:
            raise PixlearnError("exists; pass --overwrite to replace it", target)


def _check_inputs(model: Any, paths: Sequence[Path], source: LabelSource, axes: str | None) -> None:
    """Open every image (and label image) lazily before anything runs: their shapes against the model."""
    from pixlearn.data.axes import canonical_view
    from pixlearn.data.images import open_image
    from pixlearn.predict.apply import check_image_for_model
    from pixlearn.predict.files import canonical_input

    for path in paths:
        shape = tuple(canonical_input(path, axes).shape)
        if len(shape) - 1 != model.ndim or shape[-1] != model.n_channels:
            raise PixlearnError(f"is a {len(shape) - 1}D image of {shape[-1]} channel(s); the object classifier takes "
                                f"{model.ndim}D images of {model.n_channels}", path)
        label_path = source.label_file(path)
        if label_path is None:
            check_image_for_model(source.model, shape, path)
            continue
        array, found = open_image(label_path)
        label_shape = tuple(canonical_view(array, found).shape)
        if label_shape[:-1] != shape[:-1] or label_shape[-1] != 1:
            raise PixlearnError(f"label image of shape {label_shape[:-1]} does not match its image {path.name} of "
                                f"shape {shape[:-1]}", label_path)


def _object_columns(predictions: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {"object_id": predictions.ids}
    columns.update({name: predictions.table[:, j] for j, name in enumerate(predictions.feature_names)})
    columns["class"] = [predictions.class_names[int(k)] for k in predictions.classes]
    top = predictions.probabilities.max(axis=1) if predictions.ids.size else np.zeros(0)
    columns["probability"] = np.round(top, 6)
    for k, name in enumerate(predictions.class_names):
        columns[f"p_{name}"] = np.round(predictions.probabilities[:, k], 6)
    return columns


def _write_image_outputs(model: Any, path: Path, output: Path, source: LabelSource, axes: str | None) -> dict[str, int]:
    """Classify the objects of one image and write its files; its counts per class."""
    from pixlearn.classical.object_model import class_label_image

    image, labels = read_object_pair(path, source, axes=axes)
    predictions = model.predict_objects(image, labels)
    name, spatial = file_stem(path), "ZYX"[3 - labels.ndim:]
    if source.model is not None:
        write_image(output / f"{name}{LABELS_SUFFIX}", labels.astype(np.uint32), axes=spatial)
    write_image(output / f"{name}{CLASSES_SUFFIX}", class_label_image(labels, predictions.ids, predictions.classes),
                axes=spatial)
    write_csv(output / f"{name}{OBJECTS_SUFFIX}", _object_columns(predictions))
    return predictions.counts()


def classify_object_files(model: Any, paths: Sequence[Path], output: Path, *, source: LabelSource,
                          axes: str | None = None, overwrite: bool = False) -> ObjectsResult:
    """Classify the objects of image files; write their tables, class images and the summary.

    Parameters
    ----------
    model : ObjectClassifier
    paths : sequence of Path
        Image files (their file stems name the outputs and must differ).
    output : Path
        Output folder.
    source : LabelSource
        The instance labels: a folder matched by stem, or a segmentation model.
    axes : str, optional
    overwrite : bool
        Replace outputs pixlearn wrote before (never other files).

    Returns
    -------
    result : ObjectsResult

    Raises
    ------
    PixlearnError
        No inputs, two of one stem, an image without label image or of another shape, an image
        the model does not take, or an output that would replace a file (see the module).
    """
    from pixlearn.predict.batch import MANIFEST, append_manifest

    names = [file_stem(p) for p in paths]
    if not names:
        raise PixlearnError("no images to classify")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise PixlearnError(f"two inputs are named {twice!r}; their outputs would collide", output)
    targets = _targets(output, names, source.model is not None)
    _check_targets(output, targets, overwrite)
    _check_inputs(model, paths, source, axes)
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    append_manifest(output / MANIFEST, {"claimed": [t.name for t in targets]})
    per_image: list[dict[str, int]] = []
    try:
        for path in paths:
            per_image.append(_write_image_outputs(model, path, output, source, axes))
            append_manifest(output / MANIFEST, {"input": str(path), "output": str(output / f"{file_stem(path)}{OBJECTS_SUFFIX}"),
                                                "model": "object-classifier"})
    except BaseException:
        if created and not per_image:  # nothing finished: leave no output folder behind
            (output / MANIFEST).unlink(missing_ok=True)
            if not any(output.iterdir()):
                output.rmdir()
        raise
    summary: dict[str, Any] = {"image": names, "n_objects": [sum(c.values()) for c in per_image]}
    summary.update({name: [c[name] for c in per_image] for name in model.class_names})
    write_csv(output / SUMMARY_CSV, summary)
    totals = {name: int(sum(c[name] for c in per_image)) for name in model.class_names}
    return ObjectsResult(tuple(output / f"{n}{OBJECTS_SUFFIX}" for n in names),
                         tuple(output / f"{n}{CLASSES_SUFFIX}" for n in names), output / SUMMARY_CSV, totals)


def train_objects_command(images: Path, output: Path, method: str, *, labels: Path | None, segment: str | None,
                          classes: Path | None, points: Path | None, config: Path | None = None,
                          n_estimators: int | None = None, seed: int | None = None, axes: str | None = None,
                          device: str | None = None, overwrite: bool = False) -> str:
    """``pixlearn train --task objects``: check the output, train, save the model (with its experiment:
    the ``classifier`` section decides the estimator), and say what was done.

    Raises
    ------
    PixlearnError
        A method other than rf, svm or hgb, an output that would replace something, and what
        :func:`train_object_classifier` refuses.
    """
    from pixlearn.app.options import Method, check_model_output, experiment_from_options
    from pixlearn.models.model_file import save_model

    if method not in ("rf", "svm", "hgb"):
        raise PixlearnError(f"--task objects classifies measurements with --method rf, svm or hgb, not {method}")
    check_model_output(output, overwrite=overwrite, data=[images, labels])
    experiment = experiment_from_options(config, Method(method), sigmas=None, n_estimators=n_estimators, epochs=None,
                                         time_limit=None, seed=seed)
    model = train_object_classifier(images, labels=labels, segment=segment, classes=classes, points=points,
                                    clf_cfg=experiment.classifier, axes=axes, device=device)
    save_model(model, output, experiment=experiment, overwrite=overwrite)
    return (f"trained object classifier ({model.clf_cfg.method}, {len(model.class_names)} classes: "
            f"{', '.join(model.class_names)}; {len(model.feature_names)} measurements, {model.ndim}D) -> {output}")


def predict_objects_command(model_path: Path, inputs: Sequence[str], output: Path, *, labels: Path | None,
                            segment: str | None, axes: str | None = None, device: str | None = None,
                            overwrite: bool = False) -> str:
    """``pixlearn predict`` with an object classifier: the object tables, class images and summary."""
    from pixlearn.data.folders import list_images
    from pixlearn.models.model_file import load_model

    model = load_model(model_path)
    source = LabelSource.open(labels, segment, device)
    paths = list_images(inputs, exclude=[output])
    result = classify_object_files(model, paths, output, source=source, axes=axes, overwrite=overwrite)
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    return f"classified the objects of {len(paths)} image(s) ({counts}) -> {output} (summary: {result.summary})"
