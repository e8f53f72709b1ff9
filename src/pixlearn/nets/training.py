"""Network training: the :func:`train` loop (its :class:`TrainConfig` lives in :mod:`pixlearn.nets.config`).

:func:`train` is one plain function (AdamW, cosine or plateau schedule, gradient clipping,
early stopping, a time limit, best and last checkpoints, resumption, several processes). The
schedule and the stopping rule are pure functions of :mod:`pixlearn.nets.schedule`, the record
of a run is :mod:`pixlearn.nets.history`, the checkpoint files are :mod:`pixlearn.nets.checkpoints`
(nothing is pickled) and the distributed plumbing is :mod:`pixlearn.nets.distributed`.

When a run ends:

* an epoch cap (:attr:`TrainConfig.max_epochs`: `epochs` when given; none with a time limit;
  else 100) ends it after that many epochs (``"completed"``);
* a time limit ends it when the next optimiser step would start past the budget less the time
  the recent ends of epoch (validation, checkpoint) took, so the run, validated and saved, ends
  at about the limit (``"time_limit"``); the cosine schedule follows the same clock and so
  reaches its minimum learning rate exactly then (at least one step and one validation run,
  whatever the limit);
* early stopping ends it when the smoothed validation loss has not improved by
  ``min_improvement`` (relative) for ``patience`` epochs (:func:`pixlearn.nets.schedule.stale_epochs`:
  ``"early_stopping"``), whatever the other two say;
* a callback that returns ``True`` ends it (``"callback"``).

The model keeps the weights of the epoch with the lowest (raw) validation loss.

Randomness: weights are initialised by the caller; batches come from a dataset whose items
depend only on ``(seed, epoch, index)`` (:class:`pixlearn.nets.patches.PatchDataset`), so a resumed
CPU run repeats the uninterrupted one exactly (unless a time limit, which follows the clock, is
set), and a run in ``N`` processes sees the same patches as one in a single process.
Choosing a network and a :class:`TrainConfig` from the data is :func:`pixlearn.nets.autoconfig.auto_config`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixlearn.nets.checkpoints import RunState, keep_best, save_epoch, start_run, write_logs
from pixlearn.nets.config import TrainConfig
from pixlearn.nets.distributed import BlockSampler, World, replicate, wrap
from pixlearn.nets.history import History, ProgressBar
from pixlearn.nets.losses import make_loss
from pixlearn.nets.precision import PrecisionPath, resolve_device, resolve_precision
from pixlearn.nets.schedule import learning_rate, run_progress, stale_epochs, time_horizon

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# helpers of the loop (device and precision choices: pixlearn.nets.precision)


def _make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The plateau scheduler, or ``None`` for the cosine schedule (set per step by the loop)."""
    if cfg.schedule == "cosine":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, cfg.patience // 4))


def _loader(dataset: Any, cfg: TrainConfig, world: World) -> torch.utils.data.DataLoader:
    """Batches of this process's share of `dataset` (:class:`BlockSampler`; all of it in a single process)."""
    block = world.local_batch_size(int(cfg.batch_size or 1))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=block,
        sampler=BlockSampler(len(dataset), block, world),  # items are already random: (seed, epoch, index)
        num_workers=cfg.num_workers,
        drop_last=False,
        persistent_workers=False,
    )


# --------------------------------------------------------------------------------------------
# the loop


def train(
    model: nn.Module,
    train_data: Any,
    val_data: Any,
    cfg: TrainConfig,
    *,
    callbacks: Sequence[Callable[[int, dict[str, float], nn.Module], bool | None]] = (),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = False,
    device: Any = None,
    world: World | None = None,
) -> History:
    """Train `model` in place and leave it holding the weights of its best validation epoch
    (or of its last, with ``cfg.keep="last"``).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, *S)`` batches to ``(B, K, *S)`` raw outputs, already initialised.
    train_data : dataset
        Items ``(x, y)`` as :class:`pixlearn.nets.patches.PatchDataset` gives; its ``set_epoch`` is
        called before each epoch when it has one. ``cfg.steps_per_epoch * cfg.batch_size``
        items are used per epoch (the dataset must be at least that long).
    val_data : dataset
        Fixed validation items; their mean loss selects the best epoch.
    cfg : TrainConfig
        How long and how to train; the module docstring says when a run ends.
    callbacks : sequence of callable
        ``callback(epoch, record, model)`` after each epoch; returning ``True`` stops training.
    checkpoint_dir : path-like, optional
        Where the last and best checkpoints, ``history.json``/``history.csv`` and ``curves.png``
        go (written by the main process only). Without it, the best weights are kept in memory.
    resume : bool
        Continue from the last checkpoint in `checkpoint_dir` (start afresh when there is none).
    progress : bool
        Show a progress bar (in the main process).
    device : str or torch.device, optional
        Default CUDA when available, else CPU; in a distributed run this process's device
        (:func:`pixlearn.nets.distributed.process_device`).
    world : World, optional
        This process's place in a distributed run whose process group is joined
        (:func:`pixlearn.nets.distributed.joined`); default a single process. Every process
        calls :func:`train` with the same arguments; each trains on its part of every batch.

    Returns
    -------
    history : History
        The same in every process of a distributed run (losses averaged over the processes).

    Raises
    ------
    ValueError
        `resume` without `checkpoint_dir`, a training set shorter than one epoch, or a batch
        size that the processes cannot share evenly.
    """
    device = resolve_device(device)
    world = World() if world is None else world
    _check_arguments(train_data, cfg, resume, checkpoint_dir, world)
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    if directory is not None and world.is_main:
        directory.mkdir(parents=True, exist_ok=True)
    step = _Step.create(replicate(model, world, device), cfg, device)
    step = dataclasses.replace(step, world=world, wrapped=wrap(step.model, world, device))
    run = start_run(step.model, step.optimizer, step.scheduler, directory, resume=resume, world=world)
    train_loader, val_loader = _loader(train_data, cfg, world), _loader(val_data, cfg, world)
    bar = ProgressBar(progress and world.is_main)
    run.history.precision = step.precision.record()
    try:
        for epoch in _epochs(cfg, run.start_epoch):
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            if not _run_epoch(step, run, (train_loader, val_loader), epoch, bar, directory, callbacks):
                break
    finally:
        bar.close()
    run.history.kept = "last" if cfg.keep == "last" and run.history.records else "best"
    if run.history.kept == "best":
        model.load_state_dict(run.best_state)
    model.to(device=device, memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # torch's stubs omit it
    return run.history


def _epochs(cfg: TrainConfig, start_epoch: int) -> Iterable[int]:
    """The numbers of the epochs still to run: up to the cap, or without end (a time limit ends them)."""
    if cfg.max_epochs is None:
        return itertools.count(start_epoch + 1)
    return range(start_epoch + 1, cfg.max_epochs + 1)


def _run_epoch(
    step: _Step,
    run: RunState,
    loaders: tuple[Any, Any],
    epoch: int,
    bar: ProgressBar,
    directory: Path | None,
    callbacks: Sequence[Callable[[int, dict[str, float], nn.Module], bool | None]],
) -> bool:
    """Train, validate, record and save one epoch; whether training goes on."""
    cfg, world, history = step.cfg, step.world, run.history
    epoch_start = time.monotonic()
    losses, out_of_time = _train_epoch(step, loaders[0], run, bar, epoch)
    if not losses:  # the budget ran out before this epoch's first step: nothing new to validate
        history.stop_reason = "time_limit"
        if directory is not None and world.is_main:
            write_logs(directory, history)
        return False
    closing = time.monotonic()
    val_loss = _validate(step, loaders[1])
    if cfg.schedule == "plateau":
        step.scheduler.step(val_loss)
    total, count = world.sum_over_ranks([sum(losses), len(losses)])
    record = {"epoch": epoch, "train_loss": total / count, "val_loss": val_loss,
              "lr": float(step.optimizer.param_groups[0]["lr"]), "seconds": time.monotonic() - epoch_start,
              "elapsed_s": time.monotonic() - run.started}
    history.records.append(record)
    if world.is_main:
        logger.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, record["train_loss"], val_loss)
    keep_best(run, step.model, val_loss, epoch, directory, world)
    ending = _time_or_patience_spent(cfg, history, out_of_time)
    if directory is not None and world.is_main:
        save_epoch(run, step.model, (step.optimizer, step.scheduler), cfg, directory, record)
    stop = world.any_rank(any([bool(callback(epoch, record, step.model)) for callback in callbacks]))
    if stop and history.stop_reason == "completed":
        history.stop_reason = "callback"
    # the next epochs leave room for an end of epoch as long as the recent ones (the same on every process)
    run.epoch_ends.append(world.broadcast_float(time.monotonic() - closing))
    if ending or stop:
        if world.is_main:
            logger.info("stopping after epoch %d: %s", epoch, history.stop_reason)
        return False
    return True


def _time_or_patience_spent(cfg: TrainConfig, history: History, out_of_time: bool) -> bool:
    """Whether the time limit or early stopping ends the run now (the history then says which)."""
    stale = stale_epochs([r["val_loss"] for r in history.records], smoothing=cfg.val_smoothing,
                         min_improvement=cfg.min_improvement)
    if out_of_time:
        history.stop_reason = "time_limit"
    elif cfg.patience and stale >= cfg.patience:
        history.stop_reason = "early_stopping"
    else:
        return False
    return True


# --------------------------------------------------------------------------------------------
# the steps of the loop


def _check_arguments(train_data: Any, cfg: TrainConfig, resume: bool, checkpoint_dir: Any, world: World) -> None:
    if cfg.batch_size is None:
        raise ValueError("TrainConfig.batch_size is None ('choose from the data'): give one, or resolve the "
                         "configuration first (pixlearn.nets.fit.resolve_setup)")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if len(train_data) < cfg.steps_per_epoch * cfg.batch_size:
        raise ValueError(f"training data has {len(train_data)} items; an epoch needs {cfg.steps_per_epoch * cfg.batch_size}")
    world.local_batch_size(cfg.batch_size)


@dataclasses.dataclass
class _Step:
    """What one optimiser or validation step needs: the model on its device, the optimiser, the
    schedule, the loss, and the precision and memory-format choices."""

    model: nn.Module
    cfg: TrainConfig
    device: torch.device
    loss_fn: Callable[..., torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    precision: PrecisionPath
    memory_format: torch.memory_format
    world: World = dataclasses.field(default_factory=World)
    wrapped: nn.Module | None = None  # the DistributedDataParallel wrapper of `model`, when distributed

    @property
    def trained(self) -> nn.Module:
        """What the training steps call: the DDP wrapper (it averages gradients) or the model."""
        return self.model if self.wrapped is None else self.wrapped

    @classmethod
    def create(cls, model: nn.Module, cfg: TrainConfig, device: torch.device) -> _Step:
        """Resolve the precision path (once per run), move `model` to `device` in its memory
        format and build the optimiser and schedule."""
        loss_fn = make_loss(cfg.loss)
        ndim = _spatial_ndim(model)
        precision = resolve_precision(cfg.precision, device, mode="train", ndim=ndim, channels_last=cfg.channels_last)
        memory_format = precision.memory_format(ndim)
        scaler = torch.amp.GradScaler("cuda", enabled=precision.dtype == "fp16")
        model.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]  # omitted by the stubs
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                      fused=device.type in ("cpu", "cuda"))
        return cls(model, cfg, device, loss_fn, optimizer, _make_scheduler(optimizer, cfg), scaler,
                   precision, memory_format)



def _train_epoch(step: _Step, loader: Any, run: RunState, bar: ProgressBar, epoch: int) -> tuple[list[float], bool]:
    """One epoch of optimiser steps; returns this process's batch losses and whether the time is up.

    Before each step the main process's clock is shared, so that every process sets the same
    learning rate and stops at the same step.
    """
    cfg, optimizer, scaler, world = step.cfg, step.optimizer, step.scaler, step.world
    step.model.train()
    losses: list[float] = []
    for index, (x, y) in enumerate(loader):
        if index >= cfg.steps_per_epoch:
            break
        elapsed = world.broadcast_float(time.monotonic() - run.started)
        horizon = time_horizon(cfg, run.reserve_s)
        if horizon is not None and elapsed >= horizon and (losses or run.history.records):  # at least one step
            return losses, True
        progress = run.progress = max(run.progress, run_progress(cfg, run.global_step, elapsed, reserve_s=run.reserve_s))
        rate = learning_rate(cfg, run.global_step, progress)
        if rate is not None:  # None: the plateau scheduler's rate, after the warm-up steps
            for group in optimizer.param_groups:
                group["lr"] = rate
        x = x.to(step.device, non_blocking=True).contiguous(memory_format=step.memory_format)
        y = y.to(step.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with step.precision.autocast(step.device):
            loss = step.loss_fn(step.trained(x), y)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(step.model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        run.global_step += 1
        losses.append(float(loss.detach()))
        bar.update(progress, f"epoch {epoch} loss {losses[-1]:.4f}")
    return losses, False


def _validate(step: _Step, loader: Any) -> float:
    """Mean loss over the validation items (weighted by batch length, summed over the processes), in eval mode."""
    step.model.eval()
    step.world.sync_buffers(step.model)  # every process validates (and process 0 saves) the same network
    total, count = 0.0, 0.0
    with torch.no_grad(), step.precision.autocast(step.device):
        for x, y in loader:
            x = x.to(step.device).contiguous(memory_format=step.memory_format)
            total += float(step.loss_fn(step.model(x), y.to(step.device))) * len(x)
            count += len(x)
    total, count = step.world.sum_over_ranks([total, count])
    return total / count if count else math.nan


def _spatial_ndim(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "ndim", 2))


__all__ = ["History", "TrainConfig", "resolve_device", "train"]
