"""What every trained model offers to the prediction engine, whatever its kind.

Classical pixel classifiers (:class:`pixlearn.classical.model.PixelClassifier`) and networks
(:class:`pixlearn.nets.model.NetworkModel`) both satisfy :class:`PixelModel`. The engine in
:mod:`pixlearn.predict` uses these members and nothing else: it never asks which kind a model
is, never probes for optional members, and knows nothing of scikit-learn or torch.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from pixlearn.data.normalize import NormalizeConfig
from pixlearn.postprocess.labels import threshold_probabilities

TASKS: tuple[str, ...] = ("semantic", "instances", "restore")
#: Values of :attr:`PixelModel.tile_mode`.
MODEL_TILE_MODES: tuple[str, ...] = ("exact", "blended")


@runtime_checkable
class PixelModel(Protocol):
    """Interface of a trained model: the whole contract of :mod:`pixlearn.predict`.

    Attributes
    ----------
    kind : str
        ``"classical"`` or ``"network"``: only selects the loader in
        :mod:`pixlearn.models.model_file`; prediction never reads it.
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
    tile_mode : {"exact", "blended"}
        How ``TileConfig(mode="auto")`` tiles this model: disjoint cores read with halo context
        (models whose output is exactly local, such as filter banks), or overlapping tiles
        averaged with smooth weights (networks).
    size_divisor : int
        Tiles start at multiples of it, and blended tiles are multiples of it (a U-Net with
        ``k`` poolings: ``2**k``; else 1).
    bytes_per_pixel : float
        Working memory per tile pixel while predicting (features or activations, outputs), to
        size tiles to a memory budget.
    batches_tiles : bool
        Whether :meth:`predict_batch` runs a stack of tiles at once (a network: batching pays,
        and the working memory grows with the batch), or one tile after another (a filter bank
        and forest): then the engine budgets and streams one tile at a time, so tiles may be
        ``TileConfig.batch_size`` times larger.
    """

    @property
    def kind(self) -> str: ...

    @property
    def task(self) -> str: ...

    @property
    def ndim(self) -> int: ...

    @property
    def n_channels(self) -> int: ...

    @property
    def n_outputs(self) -> int: ...

    @property
    def halo(self) -> tuple[int, ...]: ...

    @property
    def normalization(self) -> NormalizeConfig: ...

    @property
    def tile_mode(self) -> str: ...

    @property
    def size_divisor(self) -> int: ...

    @property
    def bytes_per_pixel(self) -> float: ...

    @property
    def batches_tiles(self) -> bool: ...

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Map a normalised canonical block ``(..., C)`` float32 to ``(..., n_outputs)`` float32."""

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Map a stack ``(B, ..., C)`` of normalised blocks of equal shape to ``(B, ..., n_outputs)``.

        Item ``i`` of the result equals ``predict_raw(blocks[i])``; the engine always calls this.
        """

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """Outputs ``(B, *inner_shape, n_outputs)`` of the `inner` region of blocks read with their halo.

        Equal to ``predict_batch(blocks)[(slice(None),) + inner]``, where `inner` keeps at least
        :attr:`halo` of context inside each block on every side that is not the image's border
        (the exact tiles of :func:`pixlearn.predict.tiling.core_grid`). A model whose outputs are
        local (a filter bank) computes the core alone; others crop (:func:`crop_outputs`).
        With `labels` (semantic models), the class of each pixel instead, ``(B, *inner_shape, 1)``:
        :func:`pixlearn.postprocess.labels.threshold_probabilities` of those outputs (a forest
        stops early for pixels whose class is settled).
        """

    def memory_budget_bytes(self) -> float | None:
        """Memory for one batch of tiles where the model runs (e.g. half a GPU's free memory).

        ``None``: the model runs in host memory, which the engine budgets itself.
        """

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Integer labels ``(...)`` of the objects in an outputs block ``(..., n_outputs)``; 0 is background."""

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description: everything but the fitted arrays/estimator."""


def crop_outputs(outputs: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
    """The `inner` region of a stack of outputs ``(B, ..., K)`` (with `labels`, its class map
    ``(B, ..., 1)``): :meth:`PixelModel.predict_core` of a model that computes whole blocks.

    Examples
    --------
    >>> outputs = np.zeros((2, 5, 6, 3))
    >>> outputs[..., 2] = 1
    >>> crop_outputs(outputs, (slice(1, 4), slice(0, 2))).shape
    (2, 3, 2, 3)
    >>> crop_outputs(outputs, (slice(1, 4), slice(0, 2)), labels=True)[0, 0, 0].tolist()
    [2]
    """
    core = outputs[(slice(None),) + tuple(inner)]
    return threshold_probabilities(core)[..., np.newaxis] if labels else core


@runtime_checkable
class SavableModel(Protocol):
    """What :func:`pixlearn.models.model_file.save_model` needs of a model of any kind.

    Every :class:`PixelModel` is one; so is :class:`pixlearn.nets.classifier_model.ImageClassifierModel`,
    which classifies whole images and is not applied tile by tile. Besides these members, a model
    offers its fitted state: ``estimator`` (classical) or ``state_dict()`` (networks, classifiers).
    """

    @property
    def kind(self) -> str: ...

    @property
    def task(self) -> str: ...

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description: everything but the fitted arrays/estimator."""
