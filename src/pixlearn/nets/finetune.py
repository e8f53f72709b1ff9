"""Fine-tuning: what a fit that starts from a trained network keeps, refuses and changes.

:func:`pixlearn.nets.fit.fit_network` with ``init=model`` (``pixlearn train --init``) calls these:

* the **architecture** is the model's :class:`~pixlearn.nets.config.UNetConfig`; a different one
  given by the caller is refused, naming the fields that differ (:func:`start_from`);
* the **task** is the model's, and a semantic model keeps its classes and their names;
* the **normalisation** (with its ``polarity``) is the model's unless the caller gives one;
* **colour images for a grey model** are made grey (the mean of their colours), as prediction
  reads them (:func:`as_model_channels`);
* the **schedule** suits fine-tuning (:func:`fine_tune_schedule`): the learning rate is
  ``lr * init_lr_factor`` (the full rate by default) and rises over a short linear warm-up of
  :data:`FINE_TUNE_WARMUP_STEPS` optimiser steps (at most a tenth of the run's steps) unless
  ``warmup_steps`` is given, and the run keeps its last (annealed) weights unless ``keep`` says
  ``"best"``;
* the **instance thresholds** are tuned again on the validation images, with the model's own
  setting tried first, so that it is kept unless another one scores better (:func:`threshold_grid`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.data.pairs import to_grey
from pixlearn.errors import PixlearnError
from pixlearn.nets.config import TrainConfig, UNetConfig

logger = logging.getLogger(__name__)

FINE_TUNE_WARMUP_STEPS = 20
"""Optimiser steps of the linear warm-up when fine-tuning (``TrainConfig.warmup_steps=None``)."""


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    """What a fit starting from a trained model takes from it.

    Attributes
    ----------
    unet : UNetConfig
        The model's architecture.
    normalization : NormalizeConfig
        The caller's, else the model's.
    class_names : tuple of str
        The caller's, else the model's.
    """

    unet: UNetConfig
    normalization: NormalizeConfig
    class_names: tuple[str, ...]


def start_from(
    init: Any,
    task: str,
    *,
    unet: UNetConfig | None = None,
    normalization: NormalizeConfig | None = None,
    class_names: Sequence[str] = (),
) -> StartingPoint:
    """Check that training `init` further fits the request, and what it keeps.

    Parameters
    ----------
    init : NetworkModel
        The trained network to start from.
    task : {"semantic", "instances", "restore"}
    unet : UNetConfig, optional
        The caller's architecture: ``None`` or equal to the model's.
    normalization : NormalizeConfig, optional
        ``None``: the model's.
    class_names : sequence of str, optional
        Empty: the model's.

    Returns
    -------
    start : StartingPoint

    Raises
    ------
    PixlearnError
        `init` is not a network, was trained for another task, or `unet` differs from its
        architecture (the message names the fields).
    """
    if getattr(init, "kind", None) != "network":
        raise PixlearnError(f"fine-tuning starts from a network model; this one is a {getattr(init, 'kind', '?')} model")
    if init.task != task:
        raise PixlearnError(f"the initial model was trained for the {init.task} task, not {task}: fine-tune it for "
                            f"{init.task}, or train a new model from scratch")
    if unet is not None and unet != init.unet:
        given, own = unet.to_dict(), init.unet.to_dict()
        differ = ", ".join(f"{key} {given[key]!r} (the model's: {own[key]!r})" for key in own if given[key] != own[key])
        raise PixlearnError(f"fine-tuning keeps the initial model's architecture, but the given unet differs in {differ}; "
                            "leave the unet settings out (or make them equal)")
    return StartingPoint(unet=init.unet, normalization=init.normalization if normalization is None else normalization,
                         class_names=tuple(class_names) or tuple(init.class_names))


def as_model_channels(init: Any, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`images` as `init` takes them: 2D colour images ``(M, N, 3|4)`` made grey for a grey model.

    Parameters
    ----------
    init : NetworkModel
    images : sequence of ndarray of shape (M, N, C) or (P, M, N, C)

    Returns
    -------
    images : list of ndarray
        New arrays where converted, the inputs otherwise.
    """
    out = []
    for image in images:
        if init.n_channels == 1 and image.ndim == 3 and image.shape[-1] in (3, 4):
            image = to_grey(image)
        out.append(image)
    if any(a is not b for a, b in zip(out, images)):
        logger.info("colour images for a grey model: using the mean of their colours")
    return out


def model_outputs(init: Any, task: str, needed: int) -> int:
    """The network outputs of a fine-tuned model: the model's own, when the data fits them.

    Parameters
    ----------
    init : NetworkModel
    task : {"semantic", "instances", "restore"}
    needed : int
        Outputs the data needs (semantic: the largest class found plus one).

    Returns
    -------
    n_outputs : int

    Raises
    ------
    PixlearnError
        The labels hold more classes than the model has, or restoration targets of another
        channel count.
    """
    own = int(init.unet.out_channels)
    if needed > own or (task == "restore" and needed != own):
        what = "classes" if task == "semantic" else "output channels"
        raise PixlearnError(f"the labels need {needed} {what} but the initial model has {own}")
    return own


def fine_tune_schedule(cfg: TrainConfig) -> TrainConfig:
    """The training set-up of a fine-tuning run: ``lr * init_lr_factor``, a short warm-up, the last weights.

    Parameters
    ----------
    cfg : TrainConfig
        As given; its `warmup_steps` kept unless ``None``: then :data:`FINE_TUNE_WARMUP_STEPS`,
        at most a tenth of ``epochs * steps_per_epoch``.

    Returns
    -------
    cfg : TrainConfig
        With the learning rate used and ``init_lr_factor=1`` (run again with ``init``, it trains
        at the same rate); the warm-up by steps replaces the warm-up by a fraction of the run;
        ``keep="auto"`` becomes ``"last"``.

    Examples
    --------
    >>> cfg = fine_tune_schedule(TrainConfig(lr=1e-3, init_lr_factor=0.1))
    >>> round(cfg.lr, 6), cfg.warmup_steps, cfg.init_lr_factor, cfg.keep
    (0.0001, 20, 1.0, 'last')
    >>> fine_tune_schedule(TrainConfig(lr=1e-3, warmup_steps=0)).lr
    0.001
    >>> fine_tune_schedule(TrainConfig(epochs=5, steps_per_epoch=10)).warmup_steps  # a short run
    5
    """
    warmup = cfg.warmup_steps
    if warmup is None:
        steps = None if cfg.max_epochs is None else cfg.max_epochs * cfg.steps_per_epoch
        warmup = FINE_TUNE_WARMUP_STEPS if steps is None else min(FINE_TUNE_WARMUP_STEPS, steps // 10)
    keep = "last" if cfg.keep == "auto" else cfg.keep
    return cfg.replace(lr=cfg.lr * cfg.init_lr_factor, init_lr_factor=1.0, warmup_steps=warmup,
                       warmup_fraction=0.0, keep=keep)


def threshold_grid(stored: Any, grid: Sequence[dict[str, tuple[Any, ...]]]) -> tuple[Any, list[dict[str, tuple[Any, ...]]]]:
    """The tuning grid with the initial model's thresholds tried first (a tie keeps them).

    Parameters
    ----------
    stored : dict or None
        The initial model's ``thresholds``.
    grid : sequence of dict
        The settings to try (:data:`pixlearn.postprocess.tuning.DEFAULT_TUNING_GRID`).

    Returns
    -------
    base : InstanceThresholds or None
        The initial setting (the base of the other fields), ``None`` without one.
    grid : list of dict
        `stored` alone first, then `grid`.
    """
    from pixlearn.postprocess.instances import stored_thresholds

    base = stored_thresholds(stored)
    if base is None:
        return None, list(grid)
    return base, [{"prob_thresh": (base.prob_thresh,)}, *grid]


__all__ = [
    "FINE_TUNE_WARMUP_STEPS",
    "StartingPoint",
    "as_model_channels",
    "fine_tune_schedule",
    "model_outputs",
    "start_from",
    "threshold_grid",
]
