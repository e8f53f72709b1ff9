"""Training checkpoints and logs: safetensors and JSON files, written so a crash leaves a loadable set.

A checkpoint is a folder ``epoch-NNNN/`` with ``weights.safetensors``, ``optimizer.safetensors``
(the optimizer's tensors) and ``state.json`` (everything else: epoch, step, history, scheduler
and optimizer scalars, the random-stream description). ``last.json`` names the newest complete
one and is replaced atomically, so a ``kill -9`` at any moment leaves a loadable checkpoint.
The best weights so far are ``best.safetensors``; the per-epoch log is ``history.json`` and
``history.csv``, with the loss curves in ``curves.png``. Nothing is pickled.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixlearn.data.atomic import atomic_path

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
