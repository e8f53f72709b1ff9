"""Training checkpoints and logs: safetensors and JSON files, written so a crash leaves a loadable set.

A checkpoint is a folder ``epoch-NNNN/`` with ``weights.safetensors``, ``optimizer.safetensors``
(the optimizer's tensors) and ``state.json`` (everything else: epoch, step, history, scheduler
and optimizer scalars, the random-stream description). ``last.json`` names the newest complete
one and is replaced atomically, so a ``kill -9`` at any moment leaves a loadable checkpoint.
``state.json`` also records the network's configuration (``network``, ``network_kind``), so that
a resumed run rebuilds the network it checkpointed (:func:`resumed_setup`) rather than choosing
one afresh, which may differ (another time limit, another measured precision path).
The best weights so far are ``best.safetensors``; the per-epoch log is ``history.json`` and
``history.csv``, with the loss curves in ``curves.png``. Nothing is pickled.

Where a run stands between epochs is a :class:`RunState`: :func:`start_run` makes a fresh one
or resumes the last checkpoint, :func:`keep_best` remembers the best weights and
:func:`save_epoch` writes the checkpoint of an epoch. In a distributed run only the main process
reads and writes the files; it sends what it read to the others.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixlearn.data.atomic import atomic_path
from pixlearn.errors import PixlearnError
from pixlearn.nets.config import TrainConfig, UNetConfig
from pixlearn.nets.distributed import World
from pixlearn.nets.history import History

logger = logging.getLogger(__name__)

BEST = "best.safetensors"
LAST = "last.json"
LOG_JSON = "history.json"
LOG_CSV = "history.csv"
CURVES = "curves.png"


def _optimizer_to_files(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors (for safetensors) and JSON-safe rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of `model`'s ``state_dict``."""
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(directory: Path, epoch: int, model: nn.Module, optimizer: Any, scheduler: Any,
                    state: dict[str, Any]) -> None:
    """Write ``epoch-NNNN/``, then point ``last.json`` at it (atomic), then drop older ones."""
    from safetensors.torch import save_file

    name = f"epoch-{epoch:04d}"
    folder = directory / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    save_file(cpu_state(model), str(folder / "weights.safetensors"))
    tensors, optimizer_meta = _optimizer_to_files(optimizer.state_dict())
    save_file(tensors, str(folder / "optimizer.safetensors"))
    payload = {**state, "optimizer": optimizer_meta, "scheduler": None if scheduler is None else scheduler.state_dict()}
    (folder / "state.json").write_text(json.dumps(payload, indent=1))
    _write_text(directory / LAST, json.dumps({"checkpoint": name, "epoch": epoch}))
    for old in directory.glob("epoch-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]] | None:
    """The newest complete checkpoint in `directory` as (weights, optimizer ``state_dict``,
    state), or ``None`` when there is none."""
    from safetensors.torch import load_file

    pointer = directory / LAST
    if not pointer.is_file():
        return None
    folder = directory / json.loads(pointer.read_text())["checkpoint"]
    weights = load_file(str(folder / "weights.safetensors"))
    state = json.loads((folder / "state.json").read_text())
    optimizer = _optimizer_from_files(load_file(str(folder / "optimizer.safetensors")), state["optimizer"])
    return weights, optimizer, state


def save_best(directory: Path, weights: dict[str, torch.Tensor]) -> None:
    """Write ``best.safetensors`` atomically."""
    from safetensors.torch import save_file

    with atomic_path(directory / BEST) as tmp:
        save_file(weights, str(tmp))


def load_best(directory: Path) -> dict[str, torch.Tensor] | None:
    """The weights in ``best.safetensors``, or ``None`` when there are none."""
    from safetensors.torch import load_file

    path = directory / BEST
    return load_file(str(path)) if path.is_file() else None


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_logs(directory: Path, history: Any) -> None:
    """Per-epoch log as JSON and CSV, and a PNG of the loss curves, from a
    :class:`pixlearn.nets.history.History`."""
    _write_text(directory / LOG_JSON, json.dumps(history.to_dict(), indent=1))
    keys = ["epoch", "train_loss", "val_loss", "lr", "seconds", "elapsed_s"]
    lines = [",".join(keys)] + [",".join(f"{r.get(k, '')}" for k in keys) for r in history.records]
    _write_text(directory / LOG_CSV, "\n".join(lines) + "\n")
    try:
        from matplotlib.figure import (
            Figure,  # no pyplot: no global backend state is touched
        )
    except ImportError:  # plotting is a convenience
        return
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [r["epoch"] for r in history.records]
    ax.plot(epochs, [r["train_loss"] for r in history.records], label="training loss")
    ax.plot(epochs, [r["val_loss"] for r in history.records], label="validation loss")
    if history.best_epoch:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best (epoch {history.best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    with atomic_path(directory / CURVES) as tmp:
        fig.savefig(tmp, format="png")


# --------------------------------------------------------------------------------------------
# the state of a run between epochs


@dataclasses.dataclass
class RunState:
    """Where a training run stands: its history, best weights and optimiser steps, and its clock.

    Attributes
    ----------
    history : History
    best_state : dict of str to torch.Tensor
        CPU copy of the weights of the best validation epoch so far.
    start_epoch : int
        Epochs done before this call of :func:`pixlearn.nets.training.train` (resumed ones).
    started : float
        :func:`time.monotonic` at the start, earlier by the time of the runs it resumes.
    global_step : int
        Optimiser steps so far.
    progress : float
        The furthest :func:`pixlearn.nets.schedule.run_progress` so far (so that the learning
        rate never climbs back when the reserve of a time limit shrinks).
    epoch_ends : list of float
        Seconds of each end of epoch (validation, checkpoint, callbacks) in this call.
    """

    history: History
    best_state: dict[str, torch.Tensor]
    start_epoch: int = 0
    started: float = 0.0
    global_step: int = 0
    progress: float = 0.0
    epoch_ends: list[float] = dataclasses.field(default_factory=list)

    RESERVE_WINDOW = 5

    @property
    def reserve_s(self) -> float:
        """What a time limit keeps free for the end of the last epoch: the longest of the last
        few ends of epoch (a one-off cost such as the first plot expires after a few epochs)."""
        return max(self.epoch_ends[-self.RESERVE_WINDOW:], default=0.0)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
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


def start_run(model: nn.Module, optimizer: Any, scheduler: Any, directory: Path | None, *, resume: bool,
              world: World) -> RunState:
    """A fresh run, or the state of the last checkpoint in `directory` loaded into `model`,
    `optimizer` and `scheduler` when resuming (read by the main process, sent to the others)."""
    run = RunState(history=History(), best_state=cpu_state(model), started=time.monotonic())
    loaded = None
    if resume and directory is not None:
        loaded = world.broadcast_object(_read_resume_point(directory) if world.is_main else None)
    if loaded is not None:
        weights, optimizer_state, state, best = loaded
        _load_weights(model, weights, directory)
        optimizer.load_state_dict(optimizer_state)
        match_state_layout(optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        run.global_step = int(state.get("step", 0))
        run.history = History.from_dict(state["history"])
        run.history.stop_reason = "completed"  # how the resumed run ended is not how this one will
        run.start_epoch = int(state["epoch"])
        run.started -= float(state["elapsed_s"])
        run.best_state = best or run.best_state
        if world.is_main:
            logger.info("resuming after epoch %d from %s", run.start_epoch, directory)
    elif resume and world.is_main:
        logger.info("no checkpoint in %s: starting afresh", directory)
    return run


def _load_weights(model: nn.Module, weights: dict[str, torch.Tensor], directory: Path | None) -> None:
    """`weights` into `model`; a checkpoint of another network is one clear error, not a traceback."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = "; ".join(lines[:2]).rstrip(":")[:200] or type(exc).__name__
        raise PixlearnError(
            f"{directory}: the checkpoint holds the weights of another network ({first}); resume with the "
            "network it was trained with, or train afresh without --resume") from None


def recorded_setup(directory: Path) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
    """The U-Net configuration and the training configuration the last checkpoint in `directory`
    recorded, as dicts (the first ``None`` for another kind of network or an older checkpoint);
    ``None`` when there is no checkpoint. Reads ``state.json`` only."""
    pointer = directory / LAST
    if not pointer.is_file():
        return None
    try:
        state = json.loads((directory / json.loads(pointer.read_text())["checkpoint"] / "state.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PixlearnError(f"{directory}: the last checkpoint cannot be read ({exc})") from None
    network = state.get("network") if state.get("network_kind") == "UNet" else None
    return network, dict(state.get("config") or {})


def resumed_setup(directory: Path | None, unet: UNetConfig | None,
                  train_config: TrainConfig) -> tuple[UNetConfig | None, TrainConfig]:
    """The network and the patch shape and batch size a resumed run continues with.

    Where the caller left them to be chosen (``None``), they are the checkpoint's, so that the run
    goes on with the network whose weights it saved; given ones are kept, and a given network
    other than the checkpoint's is refused.

    Parameters
    ----------
    directory : Path, optional
        The checkpoint folder (``None``, or one without a checkpoint: nothing changes).
    unet : UNetConfig, optional
        The network the caller asks for (``None``: to be chosen).
    train_config : TrainConfig
        Its ``None`` `patch_shape` and `batch_size` are filled from the checkpoint.

    Returns
    -------
    unet : UNetConfig or None
    train_config : TrainConfig

    Raises
    ------
    PixlearnError
        A given `unet` that differs from the one the checkpoint recorded, or a last checkpoint
        whose ``state.json`` cannot be read.
    """
    recorded = None if directory is None else recorded_setup(directory)
    if recorded is None:
        return unet, train_config
    network, config = recorded
    try:
        saved = None if network is None else UNetConfig.from_dict(network)
    except ValueError as exc:  # written by another version: the weights themselves are checked on loading
        logger.warning("%s: the network the checkpoint records is not readable here (%s)", directory, exc)
        saved = None
    if saved is not None:
        if unet is None:
            logger.info("resuming the network of the checkpoint in %s", directory)
            unet = saved
        elif unet != saved:
            changed = sorted(k for k, v in unet.to_dict().items() if saved.to_dict().get(k) != v)
            raise PixlearnError(
                f"{directory}: the checkpoint was trained with another network (it differs in {', '.join(changed)}); "
                "resume with the same network, or train afresh without --resume")
    chosen = {key: config[key] for key in ("patch_shape", "batch_size")
              if getattr(train_config, key) is None and config.get(key) is not None}
    if "patch_shape" in chosen:
        chosen["patch_shape"] = tuple(int(n) for n in chosen["patch_shape"])
    return unet, train_config.replace(**chosen) if chosen else train_config


def _read_resume_point(directory: Path) -> tuple[Any, ...] | None:
    """The last checkpoint and the best weights in `directory`, or ``None`` when there is none."""
    loaded = load_checkpoint(directory)
    return None if loaded is None else (*loaded, load_best(directory))


def keep_best(run: RunState, model: nn.Module, val_loss: float, epoch: int, directory: Path | None,
              world: World) -> None:
    """Remember the weights of a new best epoch (and, in the main process, write them)."""
    if val_loss < run.history.best_val_loss:
        run.history.best_val_loss, run.history.best_epoch = val_loss, epoch
        run.best_state = cpu_state(model)
        if directory is not None and world.is_main:
            save_best(directory, run.best_state)


def save_epoch(run: RunState, model: nn.Module, optimization: tuple[Any, Any], cfg: TrainConfig, directory: Path,
               record: dict[str, float]) -> None:
    """The checkpoint after the epoch of `record` (for resumption) and the updated logs and curves.

    `optimization` is the ``(optimizer, scheduler)`` pair; the scheduler may be ``None``.
    """
    optimizer, scheduler = optimization
    epoch = int(record["epoch"])
    state = {"epoch": epoch, "step": run.global_step, "elapsed_s": record["elapsed_s"],
             "history": run.history.to_dict(), "config": cfg.to_dict(),
             "rng": {"seed": cfg.seed, "scheme": "numpy default_rng([seed, epoch, index])"},
             "network_kind": type(model).__name__, "network": _network_config(model)}
    save_checkpoint(directory, epoch, model, optimizer, scheduler, state)
    write_logs(directory, run.history)


def _network_config(model: nn.Module) -> dict[str, Any] | None:
    """The configuration a network was built from (``model.cfg``), as a dict, where it has one."""
    cfg = getattr(model, "cfg", None)
    to_dict = getattr(cfg, "to_dict", None)
    return to_dict() if callable(to_dict) else None
