"""Network training: the :func:`train` loop (its :class:`TrainConfig` lives in :mod:`pixlearn.nets.config`).

:func:`train` is one plain function (AdamW, cosine or plateau schedule, gradient clipping,
early stopping, a time limit, best and last checkpoints, resumption). The checkpoint files
are :mod:`pixlearn.nets.checkpoints`; nothing is pickled.

Randomness: weights are initialised by the caller; batches come from a dataset whose items
depend only on ``(seed, epoch, index)`` (:class:`pixlearn.nets.patches.PatchDataset`), so a resumed
CPU run repeats the uninterrupted one exactly. Choosing a network and a :class:`TrainConfig`
from the data is :func:`pixlearn.nets.autoconfig.auto_config`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixlearn.nets.checkpoints import (
    cpu_state,
    load_best,
    load_checkpoint,
    save_best,
    save_checkpoint,
    write_logs,
)
from pixlearn.nets.config import TrainConfig
from pixlearn.nets.history import History
from pixlearn.nets.losses import make_loss
from pixlearn.nets.precision import PrecisionPath, resolve_device, resolve_precision

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# helpers of the loop (device and precision choices: pixlearn.nets.precision)


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


def _make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The plateau scheduler, or ``None`` for the cosine schedule (set per step by the loop)."""
    if cfg.schedule == "cosine":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, cfg.patience // 4))


def _loader(dataset: Any, cfg: TrainConfig) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=False,  # items are already random and depend on (seed, epoch, index) only
        num_workers=cfg.num_workers,
        drop_last=False,
        persistent_workers=False,
    )


class _Progress:
    """A rich progress bar when asked for, else nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn())
            self.task = self.bar.add_task("training", total=total, info="")
            self.bar.start()

    def advance(self, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


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
) -> History:
    """Train `model` in place and leave it holding the weights of its best validation epoch.

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
    callbacks : sequence of callable
        ``callback(epoch, record, model)`` after each epoch; returning ``True`` stops training.
    checkpoint_dir : path-like, optional
        Where the last and best checkpoints, ``history.json``/``history.csv`` and ``curves.png``
        go. Without it, the best weights are kept in memory.
    resume : bool
        Continue from the last checkpoint in `checkpoint_dir` (start afresh when there is none).
    progress : bool
        Show a progress bar.
    device : str or torch.device, optional
        Default CUDA when available, else CPU.

    Returns
    -------
    history : History

    Raises
    ------
    ValueError
        `resume` without `checkpoint_dir`, or a training set shorter than one epoch.
    """
    device = resolve_device(device)
    _check_arguments(train_data, cfg, resume, checkpoint_dir)
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    step = _Step.create(model, cfg, device)
    run = _start(step, directory, resume)
    run.history.precision = step.precision.record()
    started = time.monotonic() - run.elapsed_before
    train_loader = _loader(train_data, cfg)
    val_loader = _loader(val_data, cfg)
    bar = _Progress(progress, (cfg.epochs - run.start_epoch) * cfg.steps_per_epoch)
    history = run.history
    try:
        for epoch in range(run.start_epoch + 1, cfg.epochs + 1):
            epoch_start = time.monotonic()
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            losses, out_of_time = _train_epoch(step, train_loader, run, started, bar, epoch)
            val_loss = _validate(step, val_loader)
            if cfg.schedule == "plateau":
                step.scheduler.step(val_loss)
            record = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)) if losses else math.nan,
                "val_loss": val_loss,
                "lr": float(step.optimizer.param_groups[0]["lr"]),
                "seconds": time.monotonic() - epoch_start,
                "elapsed_s": time.monotonic() - started,
            }
            history.records.append(record)
            logger.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, record["train_loss"], val_loss)
            _keep_best(step, run, val_loss, epoch, directory)
            patience_spent = bool(cfg.patience) and run.stale_epochs >= cfg.patience
            if out_of_time:
                history.stop_reason = "time_limit"
            elif patience_spent:
                history.stop_reason = "early_stopping"
            if directory is not None:
                _save_epoch(step, run, directory, epoch, record)
            stop = any([bool(callback(epoch, record, model)) for callback in callbacks])
            if stop and history.stop_reason == "completed":
                history.stop_reason = "callback"
            if out_of_time or stop or patience_spent:
                logger.info("stopping after epoch %d: %s", epoch, history.stop_reason)
                break
    finally:
        bar.close()
    model.load_state_dict(run.best_state)
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # torch's stubs omit it
    return history


# --------------------------------------------------------------------------------------------
# the steps of the loop


def _check_arguments(train_data: Any, cfg: TrainConfig, resume: bool, checkpoint_dir: Any) -> None:
    if cfg.batch_size is None:
        raise ValueError("TrainConfig.batch_size is None ('choose from the data'): give one, or resolve the "
                         "configuration first (pixlearn.nets.fit.resolve_setup)")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if len(train_data) < cfg.steps_per_epoch * cfg.batch_size:
        raise ValueError(f"training data has {len(train_data)} items; an epoch needs {cfg.steps_per_epoch * cfg.batch_size}")


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


@dataclasses.dataclass
class _Run:
    """Where a run stands: history, best weights, optimiser steps, epochs without improvement."""

    history: History
    best_state: dict[str, torch.Tensor]
    start_epoch: int = 0
    elapsed_before: float = 0.0
    global_step: int = 0
    stale_epochs: int = 0


def _start(step: _Step, directory: Path | None, resume: bool) -> _Run:
    """A fresh run, or the state of the last checkpoint in `directory` when resuming."""
    run = _Run(history=History(), best_state=cpu_state(step.model))
    loaded = load_checkpoint(directory) if resume and directory is not None else None
    if loaded is not None and directory is not None:
        weights, optimizer_state, state = loaded
        step.model.load_state_dict(weights)
        step.optimizer.load_state_dict(optimizer_state)
        _match_state_layout(step.optimizer)
        if step.scheduler is not None:
            step.scheduler.load_state_dict(state["scheduler"])
        run.global_step = int(state.get("step", 0))
        run.history = History.from_dict(state["history"])
        run.start_epoch = int(state["epoch"])
        run.elapsed_before = float(state["elapsed_s"])
        run.best_state = load_best(directory) or run.best_state
        logger.info("resuming after epoch %d from %s", run.start_epoch, directory)
    elif resume:
        logger.info("no checkpoint in %s: starting afresh", directory)
    records = run.history.records
    run.stale_epochs = 0 if not records else int(records[-1]["epoch"]) - max(run.history.best_epoch, 0)
    return run


def _match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter optimiser tensor its parameter's memory layout (strides).

    A loaded state is contiguous; with channels-last parameters, AdamW's moments would then be
    updated in another order of floating-point operations than in the uninterrupted run, and a
    resumed run would no longer repeat it exactly.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _train_epoch(step: _Step, loader: Any, run: _Run, started: float, bar: _Progress, epoch: int) -> tuple[list[float], bool]:
    """One epoch of optimiser steps; returns the batch losses and whether the time limit was hit."""
    cfg, model, optimizer, scaler = step.cfg, step.model, step.optimizer, step.scaler
    model.train()
    losses: list[float] = []
    for index, (x, y) in enumerate(loader):
        if index >= cfg.steps_per_epoch:
            break
        x = x.to(step.device, non_blocking=True).contiguous(memory_format=step.memory_format)
        y = y.to(step.device, non_blocking=True)
        if step.scheduler is None:
            rate = cosine_learning_rate(cfg, run.global_step, time.monotonic() - started)
            for group in optimizer.param_groups:
                group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        with step.precision.autocast(step.device):
            loss = step.loss_fn(model(x), y)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        run.global_step += 1
        losses.append(float(loss.detach()))
        bar.advance(f"epoch {epoch} loss {losses[-1]:.4f}")
        if cfg.time_limit_s is not None and time.monotonic() - started >= cfg.time_limit_s:
            return losses, True
    return losses, False


def _validate(step: _Step, loader: Any) -> float:
    """Mean loss over the validation items (weighted by batch length), in eval mode."""
    step.model.eval()
    val_losses, val_weights = [], []
    with torch.no_grad(), step.precision.autocast(step.device):
        for x, y in loader:
            x = x.to(step.device).contiguous(memory_format=step.memory_format)
            val_losses.append(float(step.loss_fn(step.model(x), y.to(step.device))))
            val_weights.append(len(x))
    return float(np.average(val_losses, weights=val_weights))


def _keep_best(step: _Step, run: _Run, val_loss: float, epoch: int, directory: Path | None) -> None:
    """Remember (and write) the weights of a new best epoch, else count one more stale epoch."""
    if val_loss < run.history.best_val_loss:
        run.history.best_val_loss, run.history.best_epoch, run.stale_epochs = val_loss, epoch, 0
        run.best_state = cpu_state(step.model)
        if directory is not None:
            save_best(directory, run.best_state)
    else:
        run.stale_epochs += 1


def _save_epoch(step: _Step, run: _Run, directory: Path, epoch: int, record: dict[str, float]) -> None:
    """The checkpoint after `epoch` (for resumption) and the updated logs and curves."""
    cfg = step.cfg
    state = {"epoch": epoch, "step": run.global_step, "elapsed_s": record["elapsed_s"],
             "history": run.history.to_dict(), "config": cfg.to_dict(),
             "rng": {"seed": cfg.seed, "scheme": "numpy default_rng([seed, epoch, index])"}}
    save_checkpoint(directory, epoch, step.model, step.optimizer, step.scheduler, state)
    write_logs(directory, run.history)


def _spatial_ndim(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "ndim", 2))
