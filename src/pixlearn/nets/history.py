"""What a training run did: :class:`History`, one record per epoch, how it ended, its precision path.

:func:`pixlearn.nets.training.train` returns it; checkpoints store :meth:`History.to_dict` for
resumption, and a trained model's metadata keeps :meth:`History.summary` (``pixlearn info``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class History:
    """What :func:`train` did: one record per epoch and how it ended.

    Attributes
    ----------
    records : list of dict
        Per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss``, ``lr``, ``seconds`` (of
        the epoch), ``elapsed_s`` (since the start, across resumptions).
    best_epoch : int
        Epoch whose weights the model holds after training (0: none validated).
    best_val_loss : float
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
    precision: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy (an infinite best loss becomes ``None``)."""
        best = None if not math.isfinite(self.best_val_loss) else float(self.best_val_loss)
        return {
            "records": [dict(r) for r in self.records],
            "best_epoch": int(self.best_epoch),
            "best_val_loss": best,
            "stop_reason": self.stop_reason,
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
            "final_train_loss": last.get("train_loss"),
            "train_seconds": last.get("elapsed_s"),
            "stop_reason": self.stop_reason,
            **self.precision,
        }


__all__ = ["History"]
