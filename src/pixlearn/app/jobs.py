"""End-to-end jobs that the command line runs: training from folders and the demo.

Each function takes loaded pairs or paths plus explicit settings and returns a model or a
summary; the CLI only parses options and calls them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from pixlearn.data.labels import IGNORE, count_classes, to_class_targets
from pixlearn.data.pairs import Pair
from pixlearn.errors import PixlearnError
from pixlearn.experiment import ExperimentConfig

logger = logging.getLogger(__name__)


def class_names_for(label_kind: str, n_classes: int) -> list[str]:
    """Default class names: ``background``/``object`` for instances, else ``class_<value>``
    with the value as written in the annotation files.

    Examples
    --------
    >>> class_names_for("scribbles", 2), class_names_for("instances", 2)
    (['class_1', 'class_2'], ['background', 'object'])
    """
    if label_kind == "instances":
        return ["background", "object"]
    offset = 1 if label_kind == "scribbles" else 0
    return [f"class_{k + offset}" for k in range(n_classes)]


def class_targets(pairs: list[Pair], label_kind: str, n_classes: int | None = None) -> tuple[list[np.ndarray], int]:
    """Class targets (``0..K-1``, :data:`~pixlearn.data.labels.IGNORE` unlabelled) of every pair.

    Raises
    ------
    PixlearnError
        Values outside `n_classes`, negative values, no labelled pixel in any image, or only
        one class in all annotations.
    """
    targets = []
    for pair in pairs:
        try:
            targets.append(to_class_targets(pair.labels, label_kind, n_classes=n_classes, path=pair.label_path))
        except PixlearnError as exc:
            if "no labelled pixels" in exc.message and len(pairs) > 1:
                logger.warning("%s", exc)
                targets.append(np.full(pair.labels.shape, IGNORE, np.int64))
                continue
            raise
    if all((t == IGNORE).all() for t in targets):
        raise PixlearnError("no annotation has any labelled pixel", pairs[0].label_path.parent)
    found = count_classes(targets)
    if found < 2:
        raise PixlearnError("annotations hold a single class; at least two are needed", pairs[0].label_path.parent)
    return targets, n_classes or found


def resolve_spacing(pairs: list[Pair], given: tuple[float, ...] | None,
                    configured: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """The voxel spacing the filter bank uses, relative to the finest axis.

    ``--spacing`` (`given`) first, then the configuration file's ``features.spacing``
    (`configured`, kept as written), then what the image files state
    (:func:`pixlearn.data.spacing.file_spacing`), else ``None`` (isotropic).

    Raises
    ------
    PixlearnError
        `given` does not fit the images, or the files state different spacings (give one with
        ``--spacing``).
    """
    from pixlearn.data.spacing import file_spacing, relative_spacing

    ndim = pairs[0].image.ndim - 1
    if given is not None:
        if len(given) != ndim:
            raise PixlearnError(f"--spacing: {len(given)} values for {ndim}D images; give {'z,y,x' if ndim == 3 else 'y,x'}")
        return relative_spacing(given)
    if configured is not None:
        return configured
    stated = {p.image_path: file_spacing(p.image_path, ndim) for p in pairs}
    found = {path: relative_spacing(sp) for path, sp in stated.items() if sp is not None}
    if not found:
        return None
    first_path, first = next(iter(found.items()))
    for path, sp in found.items():
        if any(abs(a - b) > 0.01 * b for a, b in zip(sp, first)):
            raise PixlearnError(f"states a voxel spacing of {sp} (relative), {first_path.name} one of {first}; "
                                "give the spacing of all with --spacing", path)
    missing = [path.name for path, sp in stated.items() if sp is None]
    if missing:
        logger.warning("%s state no voxel spacing; using %s from %s", ", ".join(missing[:3]), first, first_path.name)
    logger.info("voxel spacing %s (relative to the finest axis), from %s", first, first_path.name)
    return first


def train_classical_model(
    pairs: list[Pair],
    *,
    label_kind: str,
    experiment: ExperimentConfig | None = None,
    n_classes: int | None = None,
    spacing: tuple[float, ...] | None = None,
    memory_budget: float | None = None,
) -> Any:
    """Fit a classical pixel classifier on loaded pairs.

    Parameters
    ----------
    pairs : list of Pair
    label_kind : {"dense", "scribbles", "instances"}
    experiment : ExperimentConfig, optional
        Its ``features``, ``classifier`` and ``normalization`` sections are used.
    n_classes : int, optional
        Declared number of classes; label values outside them are an error.
    spacing : tuple of float, optional
        Voxel size per spatial axis (``--spacing``); default: the experiment's, else what the
        image files state (:func:`resolve_spacing`).
    memory_budget : float, optional
        Bytes the training may hold (default:
        :func:`pixlearn.data.memory.default_memory_budget`).

    Returns
    -------
    model : pixlearn.classical.model.PixelClassifier
        Its feature configuration holds the spacing used.
    """
    from pixlearn.classical.fit import fit_pixel_classifier

    experiment = ExperimentConfig() if experiment is None else experiment
    targets, k = class_targets(pairs, label_kind, n_classes)
    small = np.int16 if k <= np.iinfo(np.int16).max else np.int32
    targets = [t.astype(small) for t in targets]  # a quarter of the memory of int64 for dense masks
    features = dataclasses.replace(experiment.features,
                                   spacing=resolve_spacing(pairs, spacing, experiment.features.spacing))
    start = time.perf_counter()
    model = fit_pixel_classifier(
        [p.image for p in pairs], targets, features, experiment.classifier,
        normalization=experiment.normalization, class_names=class_names_for(label_kind, k),
        memory_budget=memory_budget,
    )
    logger.info("fitted %s on %d images in %.1f s", experiment.classifier.method, len(pairs), time.perf_counter() - start)
    return model


def warn_about_inputs(model: Any, paths: list[Any], axes: str | None) -> None:
    """Warn about inputs a classical model was not made for: scales larger than the image
    (:func:`pixlearn.classical.scales.sigma_warnings`) or a voxel spacing the file states that
    differs from the one the model was trained with. Other models: nothing to check."""
    if getattr(model, "kind", None) != "classical":
        return
    from pixlearn.classical.scales import sigma_warnings
    from pixlearn.data.spacing import file_spacing, relative_spacing
    from pixlearn.predict.files import canonical_input

    said: set[str] = set()
    trained = model.feature_cfg.spacing or (1.0,) * model.ndim
    for path in paths:
        try:
            shape = canonical_input(path, axes, model.n_channels).shape[:-1]
        except PixlearnError:  # predict_many names it, with everything else it refuses
            continue
        lines = sigma_warnings(model.feature_cfg, shape) if len(shape) == model.ndim else []
        stated = file_spacing(path, model.ndim)
        if stated is not None and any(abs(a - b) > 0.05 * b for a, b in zip(relative_spacing(stated), trained)):
            lines.append(f"the file states a voxel spacing of {relative_spacing(stated)} (relative), the model was "
                         f"trained with {tuple(trained)}: its features do not match this image")
        for line in lines:
            if line not in said:
                said.add(line)
                logger.warning("%s: %s", path, line)


def train_network_model(
    pairs: list[Pair],
    *,
    task: str,
    label_kind: str,
    experiment: ExperimentConfig | None = None,
    val_pairs: list[Pair] | None = None,
    options: Any = None,
    init: Any = None,
    spacing: tuple[float, ...] | None = None,
) -> Any:
    """Train a U-Net on loaded pairs for a semantic, instance or restoration task.

    Parameters
    ----------
    pairs : list of Pair
    task : {"semantic", "instances", "restore"}
    label_kind : {"dense", "scribbles", "instances", "restore"}
        How the annotations of `pairs` were read.
    experiment : ExperimentConfig, optional
        Its ``unet``, ``train`` and ``normalization`` sections are used (a ``None`` network and
        the ``None`` training fields are chosen from the data, see
        :func:`pixlearn.nets.fit.resolve_setup`).
    val_pairs : list of Pair, optional
        Validation pairs; default a split of `pairs`.
    options : pixlearn.nets.fit.FitOptions, optional
        Checkpoint folder (needed for resuming), resumption, progress bar, device.
    init : NetworkModel, optional
        Fine-tune this trained network (its architecture, classes and, unless the experiment's
        ``normalization`` is passed, normalisation; see :mod:`pixlearn.nets.finetune`).
    spacing : tuple of float, optional
        Voxel size of 3D pairs (:func:`resolve_spacing`): whether a 2D network trains plane by
        plane, and a 3D network's pooling (see :func:`pixlearn.nets.fit.fit_network`).

    Returns
    -------
    model : pixlearn.nets.model.NetworkModel
        Holding the resolved configuration (:func:`resolved_experiment` gathers it).
    """
    from pixlearn.nets.fit import fit_network

    experiment = ExperimentConfig() if experiment is None else experiment

    def targets_of(chunk: list[Pair]) -> list[np.ndarray]:
        if task == "semantic":
            return class_targets(chunk, label_kind)[0]
        return [p.labels for p in chunk]  # instance label images, or restoration targets

    class_names: list[str] = []
    if task == "semantic" and init is None:  # a fine-tuned model keeps its class names
        class_names = class_names_for(label_kind, class_targets(pairs, label_kind)[1])
    validation = None
    if val_pairs:
        validation = ([p.image for p in val_pairs], targets_of(val_pairs))
    return fit_network(
        [p.image for p in pairs], targets_of(pairs), task,
        unet=experiment.unet, train_config=experiment.train, normalization=experiment.normalization,
        validation=validation, class_names=class_names, options=options, init=init, spacing=spacing,
    )


def resolved_experiment(experiment: ExperimentConfig, model: Any) -> ExperimentConfig:
    """`experiment` with the choices training made: a network's architecture and complete
    training set-up (patch shape, batch size, loss), as `model` holds them.

    Parameters
    ----------
    experiment : ExperimentConfig
        What the model was trained with.
    model : PixelModel
        The trained model.

    Returns
    -------
    experiment : ExperimentConfig
        For classical models `experiment` itself (nothing is chosen from the data); for image
        classifiers with their resolved ``classify`` section.
    """
    if model.kind == "image-classifier":
        from pixlearn.nets.classify_config import ClassifyConfig

        return dataclasses.replace(experiment, classify=ClassifyConfig(net=model.net_config, train=model.train_config))
    if model.kind != "network":
        return experiment
    return dataclasses.replace(experiment, unet=model.unet, train=model.train_config,
                               normalization=model.normalization)
