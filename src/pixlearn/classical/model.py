"""Classical pixel classifiers: filter-bank features + random forest, SVM or gradient boosting.

:func:`fit_pixel_classifier` gathers the features of labelled pixels only (block by block, so
sparse scribbles on big images never need a whole feature stack) and fits a scikit-learn
estimator; :class:`PixelClassifier` holds it with the feature, classifier and normalisation
settings and predicts probability and label maps block by block with bounded memory.

Random-forest prediction uses :mod:`pixlearn.classical.forest` (numba kernels over a compact copy of the
trees, rebuilt from the estimator and cached on the :class:`PixelClassifier`); without numba it
walks the scikit-learn trees (``Tree.apply``, which releases the GIL) over cache-sized chunks of
pixels in a few threads. Either way it averages the leaf class fractions: the same numbers as
``RandomForestClassifier.predict_proba`` (summed in float32). Label maps stop early: a pixel
whose lead over the runner-up class exceeds the number of trees left cannot change class, so it
skips them (exact; most pixels of a confident model).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from pixlearn.classical.config import ClassifierConfig
from pixlearn.classical.features import (
    FeatureConfig,
    compute_features_block,
    default_block_shape,
    feature_halo,
    n_features,
)
from pixlearn.classical.predict import ScratchStack, compile_forest_or_none, predict_stack
from pixlearn.data.blocks import block_grid
from pixlearn.data.normalize import NormalizeConfig, compute_normalization, normalized_view
from pixlearn.errors import PixlearnError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PixelClassifier:
    """A fitted pixel classifier: settings plus a scikit-learn estimator.

    Satisfies :class:`pixlearn.models.protocol.PixelModel` (``kind="classical"``, ``task="semantic"``).

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
    feature_cfg : FeatureConfig
    clf_cfg : ClassifierConfig
    normalization : NormalizeConfig
    class_names : tuple of str
        One per class; ``K = len(class_names)``.
    ndim : int
        Spatial axes, 2 or 3.
    n_channels : int
    training : dict
        JSON-safe facts about the fit (pixels per class, images, seconds, versions).
    """

    kind: ClassVar[str] = "classical"
    task: ClassVar[str] = "semantic"

    estimator: Any
    feature_cfg: FeatureConfig
    clf_cfg: ClassifierConfig
    normalization: NormalizeConfig
    class_names: tuple[str, ...]
    ndim: int
    n_channels: int
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    # (estimator, CompiledForest or None): compiled on first prediction, never saved
    _forest: tuple[Any, Any] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    # the feature stack of the last block, reused by the next (never saved or pickled)
    _scratch: ScratchStack = dataclasses.field(default_factory=ScratchStack, init=False, repr=False, compare=False)

    def _compiled_forest(self) -> Any | None:
        if self._forest is None or self._forest[0] is not self.estimator:
            self._forest = (self.estimator, compile_forest_or_none(self.estimator))
        return self._forest[1]

    @property
    def n_outputs(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def halo(self) -> tuple[int, ...]:
        """Feature support radius per spatial axis (see :func:`pixlearn.classical.features.feature_halo`)."""
        return feature_halo(self.feature_cfg, self.ndim)

    @property
    def n_features(self) -> int:
        """Number of features the estimator takes."""
        return n_features(self.feature_cfg, self.n_channels, self.ndim)

    @property
    def bytes_per_pixel(self) -> float:
        """Approximate working memory per block pixel (features, filter temporaries, output)."""
        return 4.0 * (self.n_features + 24 + self.n_outputs)

    # ---------------------------------------------------------------- PixelModel tiling members
    #: Filter-bank features are exactly local: disjoint cores read with halo context.
    tile_mode: ClassVar[str] = "exact"
    #: Any tile start is fine.
    size_divisor: ClassVar[int] = 1
    #: Features and forest take one tile at a time: the budget goes to one tile, not a batch.
    batches_tiles: ClassVar[bool] = False

    def memory_budget_bytes(self) -> float | None:
        """``None``: runs in host memory, which the prediction engine budgets itself."""
        return None

    def predict_batch(self, blocks: np.ndarray) -> np.ndarray:
        """Class probabilities of a stack of normalised blocks, one :meth:`predict_raw` each.

        Parameters
        ----------
        blocks : ndarray of shape (B, M, N, C) or (B, P, M, N, C), float32

        Returns
        -------
        probabilities : ndarray of shape (B, M, N, K) or (B, P, M, N, K), float32
        """
        blocks = np.asarray(blocks)
        if len(blocks) == 0:
            return np.zeros(blocks.shape[:-1] + (self.n_outputs,), np.float32)
        return np.stack([self.predict_raw(block) for block in blocks])

    def predict_core(self, blocks: np.ndarray, inner: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """Class probabilities of the `inner` region of each block: features and forest there only.

        Parameters
        ----------
        blocks : ndarray of shape (B, M, N, C) or (B, P, M, N, C), float32
            Normalised, read with :attr:`halo` of context around `inner` (clipped at the image's
            border, where the features reflect, as on the whole image).
        inner : tuple of slice
        labels : bool
            The most probable class instead (forests stop early, exactly, where it is settled).

        Returns
        -------
        probabilities : ndarray of shape (B, *inner_shape, K), float32
            Equal to ``predict_batch(blocks)[:, inner]``, without computing the halo's pixels.
        labels : ndarray of shape (B, *inner_shape, 1), float32
            With ``labels=True``: the arg-max class of those probabilities.
        """
        blocks = np.asarray(blocks)
        inner = tuple(inner)
        if len(blocks) == 0:
            core = tuple(s.stop - s.start for s in inner)
            return np.zeros((0,) + core + (1 if labels else self.n_outputs,), np.float32)
        if labels:
            return np.stack([self._predict_region(block, inner, True)[..., None] for block in blocks]).astype(np.float32)
        return np.stack([self._predict_region(block, inner) for block in blocks])

    def _predict_region(self, block: Any, region: tuple[slice, ...], labels: bool = False) -> np.ndarray:
        """Probabilities ``(*region_shape, K)`` (or classes, `labels`) of `region` of a normalised
        block or image (which may be lazy: only the region and its halo are read)."""
        self._check(block)
        want = (self.n_features,) + tuple(s.stop - s.start for s in region)
        with self._scratch.lend(want) as stack:  # reused: fresh pages are slow to fault in
            compute_features_block(block, region, self.feature_cfg, feature_axis="first", out=stack)
            return predict_stack(self.estimator, stack, self.n_outputs, n_jobs=self.clf_cfg.n_jobs, labels=labels,
                                 compiled=self._compiled_forest())

    def instances_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Objects of a probabilities block: connected components of the non-background classes.

        See :func:`pixlearn.postprocess.labels.label_foreground`.
        """
        from pixlearn.postprocess.labels import label_foreground

        return label_foreground(outputs)

    def _check(self, image: Any) -> None:
        if image.ndim != self.ndim + 1:
            raise PixlearnError(
                f"the model takes {self.ndim}D images (canonical {self.ndim + 1} axes), "
                f"got shape {tuple(image.shape)}"
            )
        if image.shape[-1] != self.n_channels:
            raise PixlearnError(
                f"the model takes {self.n_channels} channel(s), the image has {image.shape[-1]}"
            )

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities of a normalised canonical block.

        Parameters
        ----------
        image : ndarray of shape (M, N, C) or (P, M, N, C), float32
            Already normalised (:attr:`normalization`).

        Returns
        -------
        probabilities : ndarray of shape (M, N, K) or (P, M, N, K), float32
            Cropping a block padded by :attr:`halo` gives the whole-image values exactly.
        """
        return self._predict_region(image, tuple(slice(0, n) for n in np.shape(image)[:-1]))

    def predict_probabilities(
        self,
        image: Any,
        *,
        out: Any | None = None,
        block_shape: Sequence[int] | None = None,
    ) -> Any:
        """Normalise a raw canonical image and predict class probabilities block by block.

        Parameters
        ----------
        image : array-like of shape (M, N, C) or (P, M, N, C)
            Raw intensities; may be lazy (Zarr, memory map).
        out : array-like of shape (..., K), optional
            Float32 destination (e.g. a Zarr array); allocated when ``None``.
        block_shape : sequence of int, optional
            Core block size (default :func:`pixlearn.classical.features.default_block_shape`).

        Returns
        -------
        probabilities : array-like of shape (..., K), float32
            `out` when given.
        """
        shape = tuple(image.shape[:-1]) + (self.n_outputs,)
        return self._predict_into(image, out, shape, np.float32, block_shape, labels=False)

    def predict_labels(
        self,
        image: Any,
        *,
        out: Any | None = None,
        block_shape: Sequence[int] | None = None,
    ) -> Any:
        """Normalise a raw canonical image and predict the most probable class per pixel.

        Parameters
        ----------
        image : array-like of shape (M, N, C) or (P, M, N, C)
        out : array-like of shape (M, N) or (P, M, N), optional
            Integer destination; allocated (uint8, or uint16 past 255 classes) when ``None``.
        block_shape : sequence of int, optional

        Returns
        -------
        labels : array-like of shape (M, N) or (P, M, N)
            Class indices ``0..K-1``: the arg-max of :meth:`predict_probabilities`. Random
            forests stop early, exactly, for pixels whose class the remaining trees cannot change.
        """
        dtype = np.uint8 if self.n_outputs <= 256 else np.uint16
        return self._predict_into(image, out, tuple(image.shape[:-1]), dtype, block_shape, labels=True)

    def _predict_into(self, image: Any, out: Any | None, shape: tuple[int, ...], dtype: Any,
                      block_shape: Sequence[int] | None, *, labels: bool) -> Any:
        """Check `image` and `out` (allocated as `shape`/`dtype` when ``None``), fill it by blocks."""
        self._check(image)
        if out is None:
            out = np.empty(shape, dtype)
        elif tuple(out.shape) != shape:
            raise PixlearnError(f"out has shape {tuple(out.shape)}, expected {shape}")
        for core, block in self._blocks(image, block_shape, labels=labels):
            out[core] = block.astype(out.dtype, copy=False)
        return out

    def _blocks(self, image: Any, block_shape: Sequence[int] | None, *, labels: bool = False) -> Any:
        low, high = compute_normalization(image, self.normalization)
        view = normalized_view(image, low, high)
        shape = block_shape or default_block_shape(self.ndim)
        for core in (block.core for block in block_grid(image.shape[:-1], shape)):
            yield core, self._predict_region(view, core, labels)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe description of everything but the estimator.

        Returns
        -------
        meta : dict
            Read back by :meth:`from_metadata`.
        """
        return {
            "kind": self.kind,
            "task": self.task,
            "ndim": self.ndim,
            "n_channels": self.n_channels,
            "n_outputs": self.n_outputs,
            "halo": list(self.halo),
            "class_names": list(self.class_names),
            "features": self.feature_cfg.to_dict(),
            "classifier": self.clf_cfg.to_dict(),
            "normalization": self.normalization.to_dict(),
            "training": dict(self.training),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], estimator: Any) -> PixelClassifier:
        """Rebuild a classifier from :meth:`to_metadata` output and its estimator.

        Parameters
        ----------
        meta : dict
        estimator : fitted scikit-learn classifier

        Returns
        -------
        model : PixelClassifier

        Raises
        ------
        PixlearnError
            Missing keys, another model kind, or an estimator that does not match.
        """
        try:
            if meta.get("kind", cls.kind) != cls.kind:
                raise PixlearnError(f"metadata describes a {meta['kind']!r} model, not a classical one")
            model = cls(
                estimator=estimator,
                feature_cfg=FeatureConfig.from_dict(meta["features"]),
                clf_cfg=ClassifierConfig.from_dict(meta["classifier"]),
                normalization=NormalizeConfig.from_dict(meta["normalization"]),
                class_names=tuple(str(c) for c in meta["class_names"]),
                ndim=int(meta["ndim"]),
                n_channels=int(meta["n_channels"]),
                training=dict(meta.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PixlearnError):
                raise
            raise PixlearnError(f"bad classical model metadata: {exc!r}") from None
        n_in = getattr(estimator, "n_features_in_", model.n_features)
        if n_in != model.n_features:
            raise PixlearnError(
                f"the estimator takes {n_in} features but the settings give {model.n_features}"
            )
        return model

