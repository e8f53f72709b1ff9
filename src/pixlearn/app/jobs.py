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


def train_classical_model(
    pairs: list[Pair],
    *,
    label_kind: str,
    experiment: ExperimentConfig | None = None,
    n_classes: int | None = None,
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

    Returns
    -------
    model : pixlearn.classical.model.PixelClassifier
    """
    from pixlearn.classical.fit import fit_pixel_classifier

    experiment = ExperimentConfig() if experiment is None else experiment
    targets, k = class_targets(pairs, label_kind, n_classes)
    start = time.perf_counter()
    model = fit_pixel_classifier(
        [p.image for p in pairs], targets, experiment.features, experiment.classifier,
        normalization=experiment.normalization, class_names=class_names_for(label_kind, k),
    )
    logger.info("fitted %s on %d images in %.1f s", experiment.classifier.method, len(pairs), time.perf_counter() - start)
    return model


def train_network_model(
    pairs: list[Pair],
    *,
    task: str,
    label_kind: str,
    experiment: ExperimentConfig | None = None,
    val_pairs: list[Pair] | None = None,
    options: Any = None,
    init: Any = None,
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
        validation=validation, class_names=class_names, options=options, init=init,
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
