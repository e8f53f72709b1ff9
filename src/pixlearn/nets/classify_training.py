"""Training an image classifier: the :func:`train_classifier` loop and its losses.

The loop follows :func:`pixlearn.nets.training.train` (AdamW, the cosine schedule of
:func:`~pixlearn.nets.schedule.cosine_learning_rate` that follows the time limit, gradient
clipping, early stopping, best and last checkpoints in :mod:`pixlearn.nets.checkpoints`, resumption,
:class:`~pixlearn.nets.history.History` with its logs and curves) and differs where
classification does: a linear warm-up, class-weighted or focal cross-entropy with label smoothing
(:func:`classification_loss`), and the best epoch chosen by a validation score (macro F1 by
default, :func:`pixlearn.metrics.classification.classification_scores`) rather than by the loss.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixlearn.metrics.classification import classification_scores
from pixlearn.nets.checkpoints import cpu_state, load_best, load_checkpoint, save_best, save_checkpoint, write_logs
from pixlearn.nets.classify_config import ClassifyTrainConfig
from pixlearn.nets.config import TrainConfig
from pixlearn.nets.fit import FitOptions
from pixlearn.nets.history import History
from pixlearn.nets.precision import resolve_device
from pixlearn.nets.schedule import cosine_learning_rate, run_progress

logger = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def classification_loss(logits: torch.Tensor, target: torch.Tensor, *, weight: torch.Tensor | None = None,
                        label_smoothing: float = 0.0, focal_gamma: float = 0.0) -> torch.Tensor:
    """Cross-entropy of logits ``(B, K)`` against classes ``(B,)``, optionally weighted and focal.

    The weighted mean over the batch of ``w[y] * ce`` (``ce`` with `label_smoothing`), times
    ``(1 - p_y) ** focal_gamma`` when `focal_gamma` > 0 (Lin et al. 2017); computed in float32.

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    >>> round(float(classification_loss(logits, torch.tensor([0, 1]))), 4)
    0.1269
    >>> float(classification_loss(logits, torch.tensor([0, 1]), focal_gamma=2.0)) < 0.01
    True
    """
    logits, target = logits.float(), target.long()
    losses = F.cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction="none")
    if focal_gamma > 0:
        p_true = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        losses = losses * (1.0 - p_true).pow(focal_gamma)
    if weight is None:
        return losses.mean()
    return losses.sum() / weight.to(losses.device)[target].sum().clamp(min=1e-12)


def make_classification_loss(cfg: ClassifyTrainConfig, weight: np.ndarray | None = None) -> LossFn:
    """The loss `cfg` asks for, with class `weight` (``balance="weights"``) when given."""
    weights = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
    gamma = cfg.focal_gamma if cfg.loss == "focal" else 0.0

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = None if weights is None else weights.to(logits.device)
        return classification_loss(logits, target, weight=w, label_smoothing=cfg.label_smoothing, focal_gamma=gamma)

    return loss


def learning_rate(cfg: ClassifyTrainConfig, steps_per_epoch: int, step: int, elapsed_s: float) -> float:
    """Linear warm-up over `cfg.warmup_fraction` of the run, then the U-Nets' cosine decay.

    The run's progress is the larger of the share of steps done and (with a time limit) of the
    time spent, as in :func:`pixlearn.nets.schedule.run_progress`, which gives the decay.

    Examples
    --------
    >>> cfg = ClassifyTrainConfig(epochs=10, lr=1.0, warmup_fraction=0.1)
    >>> [round(learning_rate(cfg, 10, s, 0.0), 3) for s in (0, 5, 10, 100)]
    [0.1, 0.6, 1.0, 0.01]
    """
    schedule = TrainConfig(epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, lr=cfg.lr, time_limit_s=cfg.time_limit_s,
                           warmup_fraction=0.0)
    rate = cosine_learning_rate(schedule, run_progress(schedule, step, elapsed_s))
    if cfg.warmup_fraction > 0:
        progress = (step + 1) / float(cfg.epochs * steps_per_epoch)
        if cfg.time_limit_s is not None:
            progress = max(progress, elapsed_s / cfg.time_limit_s)
        rate *= min(1.0, progress / cfg.warmup_fraction)
    return rate


def _switch(value: str, device: torch.device) -> bool:
    return value == "on" or (value == "auto" and device.type == "cuda")


def _autocast(enabled: bool, device: torch.device) -> Any:
    if not enabled:
        return torch.autocast(device.type, enabled=False)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _optimizer(net: nn.Module, cfg: ClassifyTrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and normalisation parameters."""
    decay = [p for p in net.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in net.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type in ("cpu", "cuda"))


@dataclasses.dataclass
class _Loop:
    """One run's working state: network, optimiser, loss, precision, and where the run stands."""

    net: nn.Module
    cfg: ClassifyTrainConfig
    device: torch.device
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    use_autocast: bool
    memory_format: torch.memory_format
    steps_per_epoch: int
    history: History = dataclasses.field(default_factory=History)
    best_state: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    best_score: float = -math.inf
    start_epoch: int = 0
    elapsed_before: float = 0.0
    step: int = 0


def _create(net: nn.Module, cfg: ClassifyTrainConfig, loss_fn: LossFn, device: torch.device, steps: int) -> _Loop:
    use_autocast = _switch(cfg.autocast, device)
    two_d = getattr(getattr(net, "cfg", None), "ndim", 2) == 2
    memory_format = torch.channels_last if _switch(cfg.channels_last, device) and two_d else torch.contiguous_format
    net.to(device=device, memory_format=memory_format)  # type: ignore[call-overload]  # omitted by the stubs
    scaler = torch.amp.GradScaler("cuda", enabled=use_autocast and device.type == "cuda"
                                  and not torch.cuda.is_bf16_supported())
    return _Loop(net, cfg, device, loss_fn, _optimizer(net, cfg, device), scaler, use_autocast, memory_format,
                 steps, best_state=cpu_state(net))


def _resume(loop: _Loop, directory: Path) -> None:
    """Continue from the last checkpoint in `directory` (start afresh when there is none)."""
    loaded = load_checkpoint(directory)
    if loaded is None:
        logger.info("no checkpoint in %s: starting afresh", directory)
        return
    weights, optimizer_state, state = loaded
    loop.net.load_state_dict(weights)
    loop.optimizer.load_state_dict(optimizer_state)
    loop.history = History.from_dict(state["history"])
    loop.start_epoch, loop.step = int(state["epoch"]), int(state["step"])
    loop.elapsed_before = float(state["elapsed_s"])
    loop.best_score = -math.inf if state.get("best_score") is None else float(state["best_score"])
    loop.best_state = load_best(directory) or loop.best_state
    logger.info("resuming after epoch %d from %s", loop.start_epoch, directory)


def train_classifier(net: nn.Module, train_data: Any, val_data: Any, cfg: ClassifyTrainConfig, *,
                     loss_fn: LossFn | None = None, options: FitOptions | None = None) -> History:
    """Train a classifier in place and leave it holding the weights of its best validation epoch.

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, C, *S)`` batches to ``(B, K)`` logits, already initialised.
    train_data : dataset
        Items ``(x, y)`` as :class:`pixlearn.nets.classify_data.ClassifyDataset` gives (its
        ``set_epoch`` is called before each epoch); its length is one epoch.
    val_data : dataset
        Fixed validation items; their score (``cfg.select``) chooses the best epoch.
    cfg : ClassifyTrainConfig
    loss_fn : callable, optional
        ``loss(logits, target)``; default :func:`make_classification_loss` of `cfg`.
    options : FitOptions, optional
        Checkpoint folder (checkpoints, ``history.json``/``.csv``, ``curves.png``), resumption,
        progress bar, device, and callbacks ``callback(epoch, record, net)`` (``True`` stops).

    Returns
    -------
    history : History
        Records also hold ``val_macro_f1``, ``val_balanced_accuracy`` and ``val_accuracy``.

    Raises
    ------
    ValueError
        `resume` without a checkpoint folder.
    """
    options = FitOptions() if options is None else options
    if options.resume and options.checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    device = resolve_device(options.device)
    directory = None if options.checkpoint_dir is None else Path(options.checkpoint_dir)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    steps = max(1, math.ceil(len(train_data) / cfg.batch_size))
    loop = _create(net, cfg, loss_fn or make_classification_loss(cfg), device, steps)
    if options.resume and directory is not None:
        _resume(loop, directory)
    started = time.monotonic() - loop.elapsed_before
    train_loader = torch.utils.data.DataLoader(train_data, batch_size=cfg.batch_size, shuffle=False)
    val_loader = torch.utils.data.DataLoader(val_data, batch_size=cfg.batch_size, shuffle=False)
    bar = _Bar(options.progress, (cfg.epochs - loop.start_epoch) * steps)
    try:
        for epoch in range(loop.start_epoch + 1, cfg.epochs + 1):
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)
            if _epoch(loop, epoch, train_loader, val_loader, started, bar, directory, options):
                break
    finally:
        bar.close()
    net.load_state_dict(loop.best_state)
    net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # omitted by the stubs
    return loop.history


def _epoch(loop: _Loop, epoch: int, train_loader: Any, val_loader: Any, started: float, bar: _Bar,
           directory: Path | None, options: FitOptions) -> bool:
    """Train and validate one epoch, keep the best weights, write the checkpoint; True: stop."""
    epoch_start = time.monotonic()
    losses, out_of_time = _train_steps(loop, train_loader, started, bar, epoch)
    val_loss, scores = _validate(loop, val_loader)
    record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else math.nan, "val_loss": val_loss,
              "val_macro_f1": scores.macro_f1, "val_balanced_accuracy": scores.balanced_accuracy,
              "val_accuracy": scores.accuracy, "lr": float(loop.optimizer.param_groups[0]["lr"]),
              "seconds": time.monotonic() - epoch_start, "elapsed_s": time.monotonic() - started}
    history = loop.history
    history.records.append(record)
    logger.info("epoch %d: train loss %.4f, validation loss %.4f, macro F1 %.3f", epoch, record["train_loss"],
                val_loss, scores.macro_f1)
    score = -val_loss if loop.cfg.select == "loss" else float(record[f"val_{loop.cfg.select}"])
    if score > loop.best_score or (score == loop.best_score and val_loss < history.best_val_loss):
        loop.best_score, history.best_val_loss, history.best_epoch = score, val_loss, epoch
        loop.best_state = cpu_state(loop.net)
        if directory is not None:
            save_best(directory, loop.best_state)
    patience_spent = bool(loop.cfg.patience) and epoch - history.best_epoch >= loop.cfg.patience
    history.stop_reason = "time_limit" if out_of_time else "early_stopping" if patience_spent else "completed"
    if directory is not None:
        state = {"epoch": epoch, "step": loop.step, "elapsed_s": record["elapsed_s"], "history": history.to_dict(),
                 "config": loop.cfg.to_dict(), "best_score": loop.best_score if math.isfinite(loop.best_score) else None,
                 "rng": {"seed": loop.cfg.seed, "scheme": "numpy default_rng([seed, epoch, index])"}}
        save_checkpoint(directory, epoch, loop.net, loop.optimizer, None, state)
        write_logs(directory, history)
    stop = any([bool(callback(epoch, record, loop.net)) for callback in options.callbacks])
    if stop and history.stop_reason == "completed":
        history.stop_reason = "callback"
    return out_of_time or patience_spent or stop


def _train_steps(loop: _Loop, loader: Any, started: float, bar: _Bar, epoch: int) -> tuple[list[float], bool]:
    """One epoch of optimiser steps; the batch losses and whether the time limit was reached."""
    net, optimizer, cfg = loop.net, loop.optimizer, loop.cfg
    net.train()
    losses: list[float] = []
    for x, y in loader:
        x = x.to(loop.device, non_blocking=True).contiguous(memory_format=loop.memory_format)
        y = y.to(loop.device, non_blocking=True)
        rate = learning_rate(cfg, loop.steps_per_epoch, loop.step, time.monotonic() - started)
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        with _autocast(loop.use_autocast, loop.device):
            loss = loop.loss_fn(net(x), y)
        loop.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            loop.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        loop.scaler.step(optimizer)
        loop.scaler.update()
        loop.step += 1
        losses.append(float(loss.detach()))
        bar.advance(f"epoch {epoch} loss {losses[-1]:.4f}")
        if cfg.time_limit_s is not None and time.monotonic() - started >= cfg.time_limit_s:
            return losses, True
    return losses, False


def _validate(loop: _Loop, loader: Any) -> tuple[float, Any]:
    """Mean validation loss and the scores of the validation items (eval mode, no gradients)."""
    loop.net.eval()
    logits, targets = [], []
    with torch.no_grad(), _autocast(loop.use_autocast, loop.device):
        for x, y in loader:
            logits.append(loop.net(x.to(loop.device).contiguous(memory_format=loop.memory_format)).float().cpu())
            targets.append(y)
    all_logits, all_targets = torch.cat(logits), torch.cat(targets)
    val_loss = float(loop.loss_fn(all_logits, all_targets))
    probabilities = torch.softmax(all_logits, dim=1).numpy()
    return val_loss, classification_scores(all_targets.numpy(), probabilities=probabilities)


class _Bar:
    """A rich progress bar when asked for, else nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar: Any = None
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


__all__ = ["classification_loss", "learning_rate", "make_classification_loss", "train_classifier"]
