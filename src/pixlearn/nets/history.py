"""What a training run did and shows while it runs: :class:`History` and :class:`ProgressBar`.

:class:`History` is the per-epoch record :func:`pixlearn.nets.training.train` returns and
writes with every checkpoint (``history.json``); :class:`ProgressBar` is the optional terminal
bar. Neither imports torch. A trained model's metadata keeps :meth:`History.summary`,
its precision path included (``pixlearn info``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class History:
    """What :func:`pixlearn.nets.training.train` did: one record per epoch and how it ended.

    Attributes
    ----------
    records : list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss``, ``lr``, ``seconds`` (of
        the epoch), ``elapsed_s`` (since the start, across resumptions; the main process's clock
        in a distributed run).
    best_epoch : int
        Epoch of the lowest validation loss (0: none validated).
    best_val_loss : float
    kept : str
        Whose weights the model holds after training: ``"best"`` (those of `best_epoch`) or
        ``"last"`` (those of the last epoch; :attr:`pixlearn.nets.config.TrainConfig.keep`).
    stop_reason : str
        ``"completed"``, ``"early_stopping"``, ``"time_limit"`` or ``"callback"``.
    precision : dict
        The precision path the (last part of the) run took
        (:meth:`pixlearn.nets.precision.PrecisionPath.record`: ``precision``,
        ``precision_source`` and the measured ``precision_timings_s``); empty before a run.
    """

    records: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stop_reason: str = "completed"
    kept: str = "best"
    precision: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy (an infinite best loss becomes ``None``)."""
        best = None if not math.isfinite(self.best_val_loss) else float(self.best_val_loss)
        return {
            "records": [dict(r) for r in self.records],
            "best_epoch": int(self.best_epoch),
            "best_val_loss": best,
            "stop_reason": self.stop_reason,
            "kept": self.kept,
            "precision": dict(self.precision),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        best = data.get("best_val_loss")
        return cls(
            records=[dict(r) for r in data.get("records", [])],
            best_epoch=int(data.get("best_epoch", 0)),
            best_val_loss=math.inf if best is None else float(best),
            stop_reason=str(data.get("stop_reason", "completed")),
            kept=str(data.get("kept", "best")),
            precision=dict(data.get("precision") or {}),
        )

    def summary(self) -> dict[str, Any]:
        """Short JSON-safe description for model metadata."""
        last = self.records[-1] if self.records else {}
        best = None if not math.isfinite(self.best_val_loss) else float(self.best_val_loss)
        return {
            "epochs": len(self.records),
            "best_epoch": int(self.best_epoch),
            "best_val_loss": best,
            "kept": self.kept,
            "kept_epoch": int(last.get("epoch", 0)) if self.kept == "last" else int(self.best_epoch),
            "final_train_loss": last.get("train_loss"),
            "train_seconds": last.get("elapsed_s"),
            "stop_reason": self.stop_reason,
            **self.precision,
        }


class ProgressBar:
    """A rich progress bar of a run's progress (``0..1``, see :func:`pixlearn.nets.schedule.run_progress`)
    when `enabled`, else nothing.

    Parameters
    ----------
    enabled : bool
        Show the bar (the main process of a distributed run only).
    """

    RESOLUTION = 1000

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn())
            self.task = self.bar.add_task("training", total=self.RESOLUTION, info="")
            self.bar.start()

    def update(self, progress: float, info: str) -> None:
        """Show `progress` (``0..1``) and the text `info`."""
        if self.bar is not None:
            self.bar.update(self.task, completed=round(progress * self.RESOLUTION), info=info)

    def close(self) -> None:
        """Stop drawing the bar."""
        if self.bar is not None:
            self.bar.stop()


__all__ = ["History", "ProgressBar"]
