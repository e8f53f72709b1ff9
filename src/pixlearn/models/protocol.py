"""What every trained model offers to the prediction engine, whatever its kind.

Classical pixel classifiers (:class:`pixlearn.classical.model.PixelClassifier`) and networks
(:class:`pixlearn.nets.model.NetworkModel`) both satisfy :class:`PixelModel`. The tiled engine in
:mod:`pixlearn.predict` only uses these members, so it knows nothing of scikit-learn or torch.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from pixlearn.data.normalize import NormalizeConfig

TASKS: tuple[str, ...] = ("semantic", "instances", "restore")


@runtime_checkable
class PixelModel(Protocol):
    """Interface of a trained model.

    Attributes
    ----------
    kind : str
        ``"classical"`` or ``"network"``: selects the loader in :mod:`pixlearn.models.model_file`.
    task : str
        ``"semantic"``, ``"instances"`` or ``"restore"``.
    ndim : int
        Number of spatial axes the model takes (2 or 3).
    n_channels : int
        Input channels.
    n_outputs : int
        Channels of :meth:`predict_raw`'s output (class probabilities, instance representation,
        or restored channels).
    halo : tuple of int
        Context each tile needs on each side, per spatial axis, for the tiled result to equal
        the whole-image result (feature-filter support or network receptive-field margin).
    normalization : NormalizeConfig
    """

    kind: str
    task: str
    ndim: int
    n_channels: int
    n_outputs: int
    halo: tuple[int, ...]
    normalization: NormalizeConfig

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Map a normalised canonical block ``(..., C)`` float32 to ``(..., n_outputs)`` float32."""

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description: everything but the fitted arrays/estimator."""
