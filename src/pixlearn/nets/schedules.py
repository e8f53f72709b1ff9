"""Learning-rate schedules of the training loop: cosine decay, plateau halving, linear warm-up.

:func:`learning_rate` is what :func:`pixlearn.nets.training.train` sets before each optimiser
step: the ``"cosine"`` schedule (:func:`cosine_learning_rate`) times the warm-up
(:func:`warmup_factor`); under the ``"plateau"`` schedule (:func:`plateau_scheduler`, stepped once
per epoch on the validation loss) only the warm-up steps set a rate. All are pure functions of the
configuration, the step and the elapsed time, so a seeded run, and a resumed one, repeats.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pixlearn.nets.config import TrainConfig


def cosine_learning_rate(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """Learning rate of the ``"cosine"`` schedule after `step` optimiser steps and `elapsed_s` seconds.

    The run's progress is the larger of ``step / (epochs * steps_per_epoch)`` and, with a time
    limit, ``elapsed_s / time_limit_s``; the rate falls from ``cfg.lr`` to ``cfg.lr / 100`` along
    half a cosine of it. Without a time limit it depends on `step` only, so a seeded run (and a
    resumed one) is repeatable.

    Examples
    --------
    >>> cfg = TrainConfig(epochs=2, steps_per_epoch=5, lr=1.0, time_limit_s=60.0)
    >>> [round(cosine_learning_rate(cfg, s, 0.0), 3) for s in (0, 5, 10)]
    [1.0, 0.505, 0.01]
    >>> round(cosine_learning_rate(cfg, 0, 30.0), 3)  # half the time budget spent
    0.505
    """
    progress = step / float(cfg.epochs * cfg.steps_per_epoch)
    if cfg.time_limit_s is not None:
        progress = max(progress, elapsed_s / cfg.time_limit_s)
    low = cfg.lr / 100.0
    return low + (cfg.lr - low) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def warmup_factor(cfg: TrainConfig, step: int) -> float:
    """The linear warm-up: ``(step + 1) / warmup_steps`` over the first `warmup_steps` steps, then 1.

    Examples
    --------
    >>> [warmup_factor(TrainConfig(warmup_steps=4), s) for s in (0, 1, 3, 4)]
    [0.25, 0.5, 1.0, 1.0]
    >>> warmup_factor(TrainConfig(), 0)  # no warm-up
    1.0
    """
    steps = cfg.warmup_steps or 0
    return 1.0 if step >= steps else (step + 1) / steps


def learning_rate(cfg: TrainConfig, step: int, elapsed_s: float) -> float | None:
    """The rate to set before optimiser step `step`; ``None``: leave it to the plateau scheduler.

    Examples
    --------
    >>> cfg = TrainConfig(epochs=1, steps_per_epoch=10, lr=1.0, warmup_steps=2)
    >>> [round(learning_rate(cfg, s, 0.0), 3) for s in (0, 1, 2)]
    [0.5, 0.976, 0.905]
    >>> [learning_rate(cfg.replace(schedule="plateau"), s, 0.0) for s in (0, 1, 2)]
    [0.5, 1.0, None]
    """
    if cfg.schedule == "cosine":
        return cosine_learning_rate(cfg, step, elapsed_s) * warmup_factor(cfg, step)
    if step < (cfg.warmup_steps or 0):
        return cfg.lr * warmup_factor(cfg, step)
    return None


def plateau_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The plateau scheduler (halve on a validation plateau), or ``None`` for the cosine schedule."""
    if cfg.schedule == "cosine":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, cfg.patience // 4))


__all__ = ["cosine_learning_rate", "learning_rate", "plateau_scheduler", "warmup_factor"]
