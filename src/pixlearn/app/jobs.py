"""End-to-end jobs that the command line runs: training from folders and the demo.

Each function takes loaded pairs or paths plus explicit settings and returns a model or a
summary; the CLI only parses options and calls them.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from pixlearn.data.labels import IGNORE, count_classes, to_class_targets
from pixlearn.data.normalize import NormalizeConfig
from pixlearn.data.pairs import Pair
from pixlearn.errors import PixlearnError

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
    sections: dict[str, Any] | None = None,
    classifier_overrides: dict[str, Any] | None = None,
    feature_overrides: dict[str, Any] | None = None,
    n_classes: int | None = None,
) -> Any:
    """Fit a classical pixel classifier on loaded pairs.

    Parameters
    ----------
    pairs : list of Pair
    label_kind : {"dense", "scribbles", "instances"}
    sections : dict, optional
        Config-file sections ``features``, ``classifier``, ``normalization``.
    classifier_overrides, feature_overrides : dict, optional
        Command-line values that replace the config file's.
    n_classes : int, optional
        Declared number of classes; label values outside them are an error.

    Returns
    -------
    model : pixlearn.classical.model.PixelClassifier
    """
    from pixlearn.classical.config import ClassifierConfig
    from pixlearn.classical.features import FeatureConfig
    from pixlearn.classical.fit import fit_pixel_classifier

    sections = sections or {}
    feature_cfg = FeatureConfig.from_dict({**sections.get("features", {}), **(feature_overrides or {})})
    clf_cfg = ClassifierConfig.from_dict({**sections.get("classifier", {}), **(classifier_overrides or {})})
    normalization = NormalizeConfig.from_dict(sections.get("normalization", {}))
    targets, k = class_targets(pairs, label_kind, n_classes)
    start = time.perf_counter()
    model = fit_pixel_classifier(
        [p.image for p in pairs], targets, feature_cfg, clf_cfg,
        normalization=normalization, class_names=class_names_for(label_kind, k),
    )
    logger.info("fitted %s on %d images in %.1f s", clf_cfg.method, len(pairs), time.perf_counter() - start)
    return model


def train_network_model(
    pairs: list[Pair],
    *,
    task: str,
    label_kind: str,
    sections: dict[str, Any] | None = None,
    val_pairs: list[Pair] | None = None,
    train_overrides: dict[str, Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    device: str | None = None,
) -> Any:
    """Train a U-Net on loaded pairs for a semantic, instance or restoration task.

    Parameters
    ----------
    pairs : list of Pair
    task : {"semantic", "instances", "restore"}
    label_kind : {"dense", "scribbles", "instances", "restore"}
        How the annotations of `pairs` were read.
    sections : dict, optional
        Config-file sections ``unet``, ``train``, ``normalization`` (missing ones are chosen
        from the data, see :func:`pixlearn.nets.autoconfig.auto_config`).
    val_pairs : list of Pair, optional
        Validation pairs; default a split of `pairs`.
    train_overrides : dict, optional
        ``TrainConfig`` fields from the command line (epochs, time_limit_s, seed, ...).
    checkpoint_dir : path-like, optional
        Checkpoints, per-epoch log and curves; needed for `resume`.
    resume : bool
    device : str, optional

    Returns
    -------
    model : pixlearn.nets.model.NetworkModel
    """
    from pixlearn.nets.fit import FitOptions, fit_network
    from pixlearn.nets.training import TrainConfig
    from pixlearn.nets.unet import UNetConfig

    sections = sections or {}
    unet = UNetConfig.from_dict(sections["unet"]) if "unet" in sections else None
    train_cfg = TrainConfig.from_dict({**sections.get("train", {}), **(train_overrides or {})})
    normalization = NormalizeConfig.from_dict(sections.get("normalization", {}))

    def targets_of(chunk: list[Pair]) -> list[np.ndarray]:
        if task == "semantic":
            return class_targets(chunk, label_kind)[0]
        return [p.labels for p in chunk]  # instance label images, or restoration targets

    class_names: list[str] = []
    if task == "semantic":
        class_names = class_names_for(label_kind, class_targets(pairs, label_kind)[1])
    validation = None
    if val_pairs:
        validation = ([p.image for p in val_pairs], targets_of(val_pairs))
    return fit_network(
        [p.image for p in pairs], targets_of(pairs), task,
        unet=unet, train_config=train_cfg, normalization=normalization, validation=validation,
        class_names=class_names,
        options=FitOptions(checkpoint_dir=checkpoint_dir, resume=resume, progress=True, device=device),
    )

