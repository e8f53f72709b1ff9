"""How far a training run is, its learning rate, and when it has stopped improving: pure functions.

:func:`run_progress` measures a run in ``0..1`` by its steps and, with a time limit, by its wall
clock; :func:`cosine_learning_rate` maps that progress to the rate of the ``"cosine"`` schedule
(linear warm-up, then half a cosine that reaches its minimum at progress 1, that is when the epoch
cap or the time limit is reached). :func:`stale_epochs` is the early-stopping rule of
:func:`pixlearn.nets.training.train`. None of them imports torch or keeps state, so a resumed run
recomputes them from its history and step count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pixlearn.nets.config import TrainConfig

MIN_LR_FACTOR = 0.01
"""The cosine schedule starts its warm-up at, and ends at, ``lr * MIN_LR_FACTOR``."""


def time_horizon(cfg: TrainConfig, reserve_s: float = 0.0) -> float | None:
    """Seconds of optimiser steps a time-limited run has: its budget less `reserve_s`.

    `reserve_s` is the time the end of an epoch (validation, checkpoint) takes; the steps stop
    that much earlier so that the last epoch ends within the budget. At most half the budget is
    reserved. ``None`` without a time limit.

    Examples
    --------
    >>> time_horizon(TrainConfig(time_limit_s=60.0), reserve_s=2.0)
    58.0
    >>> time_horizon(TrainConfig(time_limit_s=60.0), reserve_s=45.0), time_horizon(TrainConfig())
    (30.0, None)
    """
    if cfg.time_limit_s is None:
        return None
    return max(cfg.time_limit_s - max(reserve_s, 0.0), 0.5 * cfg.time_limit_s)


def run_progress(cfg: TrainConfig, step: int, elapsed_s: float, *, reserve_s: float = 0.0) -> float:
    """How far a run is after `step` optimiser steps and `elapsed_s` seconds, in ``0..1``.

    The larger of ``step / (max_epochs * steps_per_epoch)`` (when the run has an epoch cap) and
    ``elapsed_s / time_horizon(cfg, reserve_s)`` (when it has a time limit). Without a time limit
    it depends on `step` only, so a seeded run (and a resumed one) is repeatable.

    Examples
    --------
    >>> run_progress(TrainConfig(epochs=2, steps_per_epoch=5), 5, 999.0)
    0.5
    >>> run_progress(TrainConfig(time_limit_s=60.0), 5, 15.0)  # no epoch cap: the clock alone
    0.25
    >>> run_progress(TrainConfig(epochs=1, steps_per_epoch=5, time_limit_s=60.0), 5, 15.0)
    1.0
    """
    progress = 0.0
    if cfg.max_epochs is not None:
        progress = step / float(cfg.max_epochs * cfg.steps_per_epoch)
    horizon = time_horizon(cfg, reserve_s)
    if horizon is not None:
        progress = max(progress, elapsed_s / horizon)
    return min(max(progress, 0.0), 1.0)


def cosine_learning_rate(cfg: TrainConfig, progress: float) -> float:
    """Learning rate of the ``"cosine"`` schedule at `progress` (:func:`run_progress`).

    From ``low = cfg.lr * MIN_LR_FACTOR`` the rate rises linearly to ``cfg.lr`` over the first
    ``cfg.warmup_fraction`` of the run, then falls along half a cosine to exactly ``low`` at
    progress 1.

    Examples
    --------
    >>> cfg = TrainConfig(lr=1.0, warmup_fraction=0.0)
    >>> [round(cosine_learning_rate(cfg, p), 3) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.505, 0.01]
    >>> warm = TrainConfig(lr=1.0, warmup_fraction=0.1)
    >>> [round(cosine_learning_rate(warm, p), 3) for p in (0.0, 0.05, 0.1, 1.0)]
    [0.01, 0.505, 1.0, 0.01]
    """
    progress = min(max(progress, 0.0), 1.0)
    low = cfg.lr * MIN_LR_FACTOR
    warmup = cfg.warmup_fraction
    if progress < warmup:
        return low + (cfg.lr - low) * progress / warmup
    annealed = (progress - warmup) / (1.0 - warmup)
    return low + (cfg.lr - low) * 0.5 * (1.0 + math.cos(math.pi * annealed))


def smoothed_losses(val_losses: Sequence[float], smoothing: float) -> list[float]:
    """Exponential moving average ``s = smoothing * s + (1 - smoothing) * loss``, started at the first loss.

    A loss that is not finite is skipped (the average carries on unchanged; ``inf`` before any
    finite loss).

    Examples
    --------
    >>> smoothed_losses([1.0, 0.0, 0.0], 0.5)
    [1.0, 0.5, 0.25]
    """
    out: list[float] = []
    average = math.inf
    for loss in val_losses:
        if math.isfinite(loss):
            average = loss if not math.isfinite(average) else smoothing * average + (1.0 - smoothing) * loss
        out.append(average)
    return out


def stale_epochs(val_losses: Sequence[float], *, smoothing: float, min_improvement: float) -> int:
    """Epochs since the smoothed validation loss last improved enough: the early-stopping counter.

    The validation losses are smoothed (:func:`smoothed_losses`); an epoch improves when its
    smoothed loss is below the best smoothed loss so far by more than `min_improvement` of that
    best (relative). Training stops once this count reaches ``TrainConfig.patience``: a noisy
    loss that still trends down keeps setting new smoothed bests and never stops the run, a loss
    that has flattened out (or rises) does.

    Parameters
    ----------
    val_losses : sequence of float
        The validation loss of every epoch so far, in order.
    smoothing : float
        Weight of the past in the moving average, in ``[0, 1)``.
    min_improvement : float
        Relative decrease that counts as an improvement, in ``[0, 1)``.

    Returns
    -------
    stale : int
        Epochs after the last improving one (0 when the last epoch improved or there is none).

    Examples
    --------
    >>> stale_epochs([1.0, 0.8, 0.81, 0.79, 0.8], smoothing=0.0, min_improvement=0.05)
    3
    >>> stale_epochs([1.0, 1.2, 0.9, 1.1, 0.8, 1.0, 0.7], smoothing=0.5, min_improvement=0.01)
    0
    """
    best, stale = math.inf, 0
    for average in smoothed_losses(val_losses, smoothing):
        if math.isfinite(average) and (not math.isfinite(best) or average < best - abs(best) * min_improvement):
            best, stale = average, 0
        else:
            stale += 1
    return stale


__all__ = [
    "MIN_LR_FACTOR",
    "cosine_learning_rate",
    "run_progress",
    "smoothed_losses",
    "stale_epochs",
    "time_horizon",
]


def warmup_factor(cfg: TrainConfig, step: int) -> float:
    """The linear warm-up by steps (fine-tuning): ``(step + 1) / warmup_steps`` over the first
    `warmup_steps` optimiser steps, then 1.

    Examples
    --------
    >>> [warmup_factor(TrainConfig(warmup_steps=4), s) for s in (0, 1, 3, 4)]
    [0.25, 0.5, 1.0, 1.0]
    >>> warmup_factor(TrainConfig(), 0)  # no warm-up by steps
    1.0
    """
    steps = cfg.warmup_steps or 0
    return 1.0 if step >= steps else (step + 1) / steps


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float | None:
    """The rate to set before optimiser step `step` at `progress` (:func:`run_progress`);
    ``None``: leave it to the plateau scheduler.

    ``"cosine"``: :func:`cosine_learning_rate` times the warm-up by steps (:func:`warmup_factor`);
    ``"plateau"``: ``cfg.lr`` times the warm-up during the warm-up steps, then ``None``.

    Examples
    --------
    >>> cfg = TrainConfig(epochs=1, steps_per_epoch=10, lr=1.0, warmup_steps=2, warmup_fraction=0.0)
    >>> [round(learning_rate(cfg, s, s / 10), 3) for s in (0, 1, 2)]
    [0.5, 0.976, 0.905]
    >>> [learning_rate(cfg.replace(schedule="plateau"), s, s / 10) for s in (0, 1, 2)]
    [0.5, 1.0, None]
    """
    if cfg.schedule == "cosine":
        return cosine_learning_rate(cfg, progress) * warmup_factor(cfg, step)
    if step < (cfg.warmup_steps or 0):
        return cfg.lr * warmup_factor(cfg, step)
    return None

