"""The run's progress, the cosine schedule with warm-up, and the early-stopping rule (pure, torch-free)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from pixlearn.nets import config as config_module
from pixlearn.nets import schedule as schedule_module
from pixlearn.nets.config import DEFAULT_EPOCHS, TrainConfig
from pixlearn.nets.schedule import (
    MIN_LR_FACTOR,
    cosine_learning_rate,
    run_progress,
    smoothed_losses,
    stale_epochs,
    time_horizon,
)


def test_epochs_default_to_a_cap_only_without_a_time_limit():
    assert TrainConfig().max_epochs == DEFAULT_EPOCHS
    assert TrainConfig(time_limit_s=30.0).max_epochs is None
    assert TrainConfig(epochs=DEFAULT_EPOCHS, time_limit_s=30.0).max_epochs == DEFAULT_EPOCHS  # explicit: kept
    assert TrainConfig.from_dict(TrainConfig(time_limit_s=5.0).to_dict()).epochs is None
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        TrainConfig(warmup_fraction=0.8)
    with pytest.raises(ValueError, match="val_smoothing"):
        TrainConfig(val_smoothing=1.0)


def test_progress_follows_the_clock_less_the_reserve_and_the_steps_of_a_cap():
    limited = TrainConfig(time_limit_s=100.0)
    assert run_progress(limited, 10**6, 50.0) == 0.5  # no cap: steps do not count
    assert run_progress(limited, 0, 45.0, reserve_s=10.0) == pytest.approx(45.0 / 90.0)
    assert time_horizon(limited, reserve_s=80.0) == 50.0  # at most half the budget is reserved
    assert run_progress(limited, 0, 1e9) == 1.0
    capped = TrainConfig(epochs=4, steps_per_epoch=10, time_limit_s=100.0)
    assert run_progress(capped, 30, 10.0) == 0.75  # whichever is further
    assert run_progress(TrainConfig(epochs=4, steps_per_epoch=10), 20, 1e9) == 0.5  # no limit: the clock never counts


def test_cosine_schedule_warms_up_then_anneals_to_exactly_its_minimum():
    cfg = TrainConfig(lr=0.1, warmup_fraction=0.05)
    low = cfg.lr * MIN_LR_FACTOR
    progress = np.linspace(0.0, 1.0, 2001)
    rates = np.array([cosine_learning_rate(cfg, p) for p in progress])
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(low) and rates[peak] == pytest.approx(cfg.lr)
    assert progress[peak] == pytest.approx(0.05, abs=1e-3)
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) <= 1e-15)
    assert cosine_learning_rate(cfg, 1.0) == low  # exactly the minimum at the end of the run
    assert cosine_learning_rate(TrainConfig(lr=0.1, warmup_fraction=0.0), 0.0) == 0.1


def _noisy(curve: np.ndarray, sigma: float, seed: int) -> list[float]:
    return list(curve * (1.0 + sigma * np.random.default_rng(seed).standard_normal(curve.size)))


def _first_stop(losses: list[float], patience: int, smoothing: float, min_improvement: float) -> int | None:
    """The epoch (1-based) after which early stopping would end the run, or None."""
    for n in range(1, len(losses) + 1):
        if stale_epochs(losses[:n], smoothing=smoothing, min_improvement=min_improvement) >= patience:
            return n
    return None


def test_a_noisy_loss_that_still_improves_does_not_stop_the_run_a_flat_one_does():
    cfg = TrainConfig()
    epochs = np.arange(200)
    improving = 0.2 + 0.8 / (1.0 + 0.05 * epochs)  # still 2 % better every 20 epochs at the end
    plateau = np.where(epochs < 60, improving, improving[60])
    raw_stops = []
    for seed in range(5):
        losses = _noisy(improving, 0.05, seed)  # 5 % noise: a validation set of a few dozen patches
        assert _first_stop(losses, cfg.patience, cfg.val_smoothing, cfg.min_improvement) is None
        raw_stops.append(_first_stop(losses, cfg.patience, 0.0, 0.0))  # the rule before: raw loss, any improvement
        stop = _first_stop(_noisy(plateau, 0.05, seed + 100), cfg.patience, cfg.val_smoothing, cfg.min_improvement)
        assert stop is not None and 60 + cfg.patience <= stop <= 60 + 4 * cfg.patience
    assert any(s is not None for s in raw_stops)  # the raw rule stops some of these runs early


def test_stale_epochs_counts_from_the_last_relative_improvement():
    assert stale_epochs([], smoothing=0.9, min_improvement=0.01) == 0
    assert stale_epochs([2.0, 1.0, 1.0, 1.0], smoothing=0.0, min_improvement=0.01) == 2
    assert stale_epochs([1.0, 0.995, 0.991], smoothing=0.0, min_improvement=0.01) == 2  # under 1 %: not better
    assert stale_epochs([1.0, math.nan, 0.5], smoothing=0.0, min_improvement=0.01) == 0  # NaN: stale; 0.5: better
    assert smoothed_losses([math.nan, 2.0, 1.0], 0.5)[1:] == [2.0, 1.5]


def test_doctests():
    results = [doctest.testmod(module) for module in (schedule_module, config_module)]
    assert sum(r.attempted for r in results) >= 10 and all(r.failed == 0 for r in results)
